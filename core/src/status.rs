//! DR readiness on one screen: what `drplan status` shows. Per region its capacity against its
//! role, where DNS points, its health check, its backup CronJob and last drill; per backup the
//! newest usable recovery point against the RPO; then a verdict (READY, DEGRADED, NOT READY)
//! with its reasons first. A versioned contract (`--json`) with human and Markdown renderings.
//!
//! Pure: the configuration, the prior state, one refresh's snapshot, the health checks'
//! current observations and the time (seconds since the epoch) come in as data.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use crate::config::{Config, Role};
use crate::plan::resource::{Kind, Resource, address};
use crate::plan::{Prior, Snapshot, desired};
use crate::recovery::{age_text, rfc3339};

/// The version of the JSON report: 1.1 added databases; 1.2 the archive class and thaw of
/// the newest points (`thaw`); 1.3 `incidents`, the uptime budget and the readiness checklist.
pub const FORMAT_VERSION: &str = "1.3";

/// Route 53 calls an endpoint healthy when more than this share of its checkers (in percent)
/// report it healthy; `status`, drills and the watcher read a check as Route 53 routes on it.
/// The one quorum constant.
pub const HEALTHY_PERCENT: u32 = crate::watch::ROUTE53_QUORUM_PERCENT;

/// Route 53's checkers' latest observations of one health check (`GetHealthCheckStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkers {
    /// How many checkers reported.
    pub checkers: usize,
    /// How many of them report success.
    pub healthy: usize,
    /// One failing checker's report, to show why.
    pub failing: Option<String>,
}

impl Checkers {
    /// Route 53's own rule: more than 18% of the checkers report success.
    pub fn healthy(&self) -> bool {
        self.health().healthy(HEALTHY_PERCENT)
    }

    /// The same observations as the watcher judges them, with any quorum.
    pub fn health(&self) -> crate::watch::Health {
        crate::watch::Health::Checked { healthy: self.healthy as u32, checkers: self.checkers as u32 }
    }
}

/// A region's last drill, as `status` shows it (from the drill records in state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct DrillSummary {
    pub id: String,
    /// When it finished (RFC 3339).
    pub finished: String,
    /// `passed`, `failed`, `in progress`, ...
    pub result: String,
    /// Time to the gate passed plus the DNS move the drill did not make.
    pub measured_rto_seconds: Option<u64>,
}

/// The newest drill of `region` recorded in `prior`.
pub fn last_drill(prior: &Prior, region: &str) -> Option<DrillSummary> {
    let d = prior.drills.iter().rev().find(|d| d.region == region)?;
    Some(DrillSummary {
        id: d.id.clone(),
        finished: d.finished.clone().unwrap_or_else(|| d.started.clone()),
        result: match d.result.as_str() {
            crate::drill::RUNNING => "in progress".to_string(),
            other => other.to_string(),
        },
        measured_rto_seconds: d.measured_rto_seconds,
    })
}

/// What the report is made from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub config: &'a Config,
    pub prior: &'a Prior,
    pub snapshot: &'a Snapshot,
    /// Each region's health check read, by region: the observations, or why they could not
    /// be read. A region whose check exists but is absent here was not read.
    pub health: &'a BTreeMap<String, Result<Checkers, String>>,
    /// Seconds since the epoch.
    pub now: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum Verdict {
    #[serde(rename = "READY")]
    Ready,
    #[serde(rename = "DEGRADED")]
    Degraded,
    #[serde(rename = "NOT READY")]
    NotReady,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ready => "READY",
            Verdict::Degraded => "DEGRADED",
            Verdict::NotReady => "NOT READY",
        }
    }
}

/// What `drplan status --json` prints.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Report {
    pub format_version: &'static str,
    pub project: String,
    /// When the clouds were read (RFC 3339).
    pub at: String,
    pub verdict: Verdict,
    /// Why the verdict is not READY: every NOT READY reason first, then the DEGRADED ones.
    pub reasons: Vec<Reason>,
    pub regions: Vec<RegionStatus>,
    pub dns: Option<DnsStatus>,
    pub backups: Vec<BackupStatus>,
    /// Each database: its writer, its replicas' lag against the budget, and the instances
    /// renamed and kept instead of deleted. Since 1.1.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub databases: Vec<DatabaseStatus>,
    /// The incidents open. Since 1.3; absent when none is.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub incidents: Vec<crate::incident::Incident>,
    /// `objectives.uptime` as a downtime budget over the last 365 days, spent by the
    /// failovers state recorded; absent without the objective. Since 1.3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime_budget: Option<crate::uptime::Budget>,
    /// The readiness checklist of the DR plan document (`drplan doc`), each item computed
    /// with its evidence. Since 1.3.
    pub checklist: Vec<crate::document::Check>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DatabaseStatus {
    pub database: String,
    /// `region/identifier` of the writer as seen, when one was.
    pub writer: Option<String>,
    pub replicas: Vec<ReplicaStatus>,
    /// Old writers and replicas renamed and kept (they may hold the newest writes): listed
    /// until a person removes them (`drplan state forget-kept`).
    pub kept: Vec<crate::plan::data::Kept>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ReplicaStatus {
    pub region: String,
    pub identifier: String,
    pub lag_seconds: Option<u64>,
    /// When the lag was sampled (RFC 3339).
    pub lag_at: Option<String>,
    pub budget_seconds: Option<u64>,
    /// What is wrong, when something is.
    pub problem: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Reason {
    /// The verdict this reason alone gives: `NOT READY` or `DEGRADED`.
    pub verdict: Verdict,
    /// `region eu-west-1`, `dns PRIMARY`, `backup database`, ...
    pub subject: String,
    pub detail: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RegionStatus {
    pub name: String,
    pub cloud: String,
    pub role: String,
    pub reachable: bool,
    /// Why it could not be read, when it could not.
    pub unreachable: Option<String>,
    pub instances: Count,
    pub replicas: Count,
    /// The failover records (`PRIMARY`, `SECONDARY`) that send traffic here.
    pub dns: Vec<String>,
    /// Its Route 53 health check; `None` when the configuration gives it none (a cold site).
    pub health: Option<Health>,
    pub backup_jobs: Vec<CronJobStatus>,
    /// The last drill to this region (see [`last_drill`]); `None`: never drilled.
    pub last_drill: Option<DrillSummary>,
}

/// Running against what the role needs; `have` is `None` when the region could not be read.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
pub struct Count {
    pub have: Option<i64>,
    pub want: i64,
}

impl Count {
    fn short(&self) -> bool {
        self.have.is_some_and(|h| h < self.want)
    }

    fn text(&self) -> String {
        format!("{}/{}", self.have.map_or("?".to_string(), |h| h.to_string()), self.want)
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Health {
    /// The Route 53 health check id; `None` when it does not exist.
    pub health_check: Option<String>,
    pub checkers: Option<usize>,
    pub healthy_checkers: Option<usize>,
    /// More than 18% of the checkers report success (Route 53's rule); `None` when unknown.
    pub healthy: Option<bool>,
    /// One failing checker's report.
    pub failing: Option<String>,
    /// Why the status could not be read.
    pub error: Option<String>,
}

impl Health {
    fn text(&self) -> String {
        match (&self.health_check, self.healthy, self.checkers, self.healthy_checkers) {
            (None, ..) => "missing".into(),
            (_, Some(true), Some(n), Some(h)) => format!("ok {h}/{n}"),
            (_, Some(false), Some(n), Some(h)) => format!("FAIL {h}/{n}"),
            _ => "unread".into(),
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CronJobStatus {
    pub backup: String,
    /// The CronJob's name (`drplan-backup-database`).
    pub name: String,
    pub present: bool,
    pub schedule: Option<String>,
    pub suspended: Option<bool>,
    /// The role wants it suspended (every region but the active one).
    pub should_suspend: bool,
    /// Its last successful run, from the CronJob's `status.lastSuccessfulTime` (RFC 3339).
    pub last_success: Option<String>,
    pub last_success_age_seconds: Option<i64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DnsStatus {
    pub record: String,
    pub ttl: u32,
    pub records: Vec<RecordStatus>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RecordStatus {
    /// `PRIMARY` or `SECONDARY`.
    pub failover: String,
    /// Where it points, live; `None` when the record does not exist.
    pub target: Option<String>,
    /// The region it serves, live.
    pub serves: Option<String>,
    /// The region the configuration sends it to.
    pub want: String,
    pub ok: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BackupStatus {
    pub backup: String,
    pub rpo_seconds: Option<u64>,
    /// The newest usable recovery point across the destinations.
    pub newest: Option<NewestPoint>,
    /// `None` without an RPO.
    pub within_rpo: Option<bool>,
    pub destinations: Vec<DestinationStatus>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct NewestPoint {
    pub destination: String,
    pub uri: String,
    pub time: String,
    pub age_seconds: i64,
    /// `GLACIER, thaw up to 5h (Standard)` when it must be thawed before a restore. Since 1.2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thaw: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DestinationStatus {
    pub name: String,
    /// `aws`, `gcp` or `on-premises` (a NAS is a posture check, never listed).
    pub site: String,
    /// Age of its newest usable point.
    pub newest_age_seconds: Option<i64>,
    /// Its newest usable point's archive class and thaw, when it must be thawed. Since 1.2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thaw: Option<String>,
    /// The longest that thaw takes, in seconds. Since 1.2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thaw_seconds: Option<u64>,
    pub unreachable: Option<String>,
    /// Its points were listed (false for a NAS neither mounted where drplan runs nor
    /// reached through an S3 endpoint). Since 1.2.
    pub listed: bool,
}

/// The report of `inputs`.
pub fn report(inputs: &Inputs<'_>) -> Report {
    let Inputs { config, prior, snapshot, health, now } = *inputs;
    let desired = desired::desired(config);
    let dns = dns_status(config, &desired, snapshot);
    let regions: Vec<RegionStatus> =
        config.regions.iter().map(|r| region_status(r, &desired, snapshot, health, prior, now)).collect();
    let backups: Vec<BackupStatus> = config.backups.iter().map(|b| backup_status(config, b, snapshot, now)).collect();
    let checks = crate::plan::data::replica_checks(config, snapshot);
    let databases: Vec<DatabaseStatus> = config
        .databases
        .iter()
        .map(|d| {
            let writer = snapshot
                .objects
                .values()
                .filter(|o| {
                    o.resource.kind == Kind::Database && o.resource.address.rsplit('.').next() == Some(d.name.as_str())
                })
                .find(|o| o.resource.str("role") == Some("writer"))
                .and_then(|o| Some(format!("{}/{}", o.resource.region.as_deref()?, o.resource.str("identifier")?)));
            DatabaseStatus {
                database: d.name.clone(),
                writer,
                replicas: checks
                    .iter()
                    .filter(|c| c.database == d.name)
                    .map(|c| ReplicaStatus {
                        region: c.region.clone(),
                        identifier: c.identifier.clone(),
                        lag_seconds: c.lag.seconds,
                        lag_at: c.lag.at.map(rfc3339),
                        budget_seconds: c.budget,
                        problem: c.problem.clone(),
                    })
                    .collect(),
                kept: prior.databases.get(&d.name).map(|r| r.kept.clone()).unwrap_or_default(),
            }
        })
        .collect();
    let mut reasons = reasons(config, prior, &regions, dns.as_ref(), &backups, Some(inputs.now));
    // A standby whose replica could lose more than the budget is not ready to take over.
    for c in checks.iter().filter(|c| !c.ok()) {
        reasons.push(Reason { verdict: Verdict::Degraded, subject: format!("standby {}", c.region), detail: c.text() });
    }
    reasons.sort_by_key(|r| r.verdict != Verdict::NotReady);
    // An open incident: the region is compromised until a person closes it.
    for i in crate::incident::open(&prior.incidents) {
        reasons.push(Reason {
            verdict: Verdict::Degraded,
            subject: format!("incident {}", i.id),
            detail: format!(
                "{} compromised since {} ({}): evidence kept, backups since suspect, retention held",
                i.region, i.since, i.reason
            ),
        });
    }
    let verdict = reasons.first().map_or(Verdict::Ready, |r| r.verdict);
    let mut report = Report {
        format_version: FORMAT_VERSION,
        project: config.project.clone(),
        at: rfc3339(now),
        verdict,
        reasons,
        regions,
        dns,
        backups,
        databases,
        incidents: crate::incident::open(&prior.incidents).cloned().collect(),
        uptime_budget: config.objectives.uptime.map(|u| crate::uptime::budget(u, &prior.history, now)),
        checklist: Vec::new(),
    };
    report.checklist = crate::document::checklist(inputs, &report, None);
    report
}

fn region_status(
    region: &crate::config::Region,
    desired: &[Resource],
    snapshot: &Snapshot,
    health: &BTreeMap<String, Result<Checkers, String>>,
    prior: &Prior,
    now: i64,
) -> RegionStatus {
    let name = region.name.as_str();
    let unreachable = snapshot.unreachable.get(name).cloned();
    let reachable = unreachable.is_none();
    let here: Vec<&Resource> = desired.iter().filter(|d| d.region.as_deref() == Some(name)).collect();
    let live = |a: &str| snapshot.objects.get(a).map(|o| &o.resource);
    let of = |kind: Kind| here.iter().filter(move |d| d.kind == kind);
    let running = of(Kind::Instance).filter(|d| live(&d.address).and_then(|o| o.str("state")) == Some("running"));
    let instances = Count { have: reachable.then(|| running.count() as i64), want: of(Kind::Instance).count() as i64 };
    let replicas = Count {
        have: reachable
            .then(|| of(Kind::Workload).filter_map(|d| live(&d.address).and_then(|o| o.int("replicas"))).sum()),
        want: of(Kind::Workload).filter_map(|d| d.int("replicas")).sum(),
    };
    let mut dns: Vec<String> = snapshot
        .objects
        .values()
        .filter(|o| o.resource.kind == Kind::DnsRecord && o.resource.str("serves") == Some(name))
        .filter_map(|o| o.resource.str("failover").map(str::to_string))
        .collect();
    dns.sort();
    let check = address::health_check(name);
    let wants_check = desired.iter().any(|d| d.address == check);
    let health = match snapshot.objects.get(&check) {
        Some(o) => Some(match health.get(name) {
            Some(Ok(c)) => Health {
                health_check: Some(o.id.clone()),
                checkers: Some(c.checkers),
                healthy_checkers: Some(c.healthy),
                healthy: Some(c.healthy()),
                failing: c.failing.clone(),
                error: None,
            },
            Some(Err(why)) => Health { error: Some(why.clone()), ..unknown(Some(o.id.clone())) },
            None => unknown(Some(o.id.clone())),
        }),
        None if wants_check => Some(unknown(None)),
        None => None,
    };
    let backup_jobs = of(Kind::BackupJob)
        .map(|d| {
            let o = live(&d.address);
            let last = snapshot.backup_runs.get(&d.address).copied();
            CronJobStatus {
                backup: d.address.rsplit('.').next().unwrap_or_default().to_string(),
                name: d.str("name").unwrap_or_default().to_string(),
                present: o.is_some(),
                schedule: o.and_then(|o| o.str("schedule")).map(str::to_string),
                suspended: o.and_then(|o| o.bool("suspend")),
                should_suspend: region.role != Role::Active,
                last_success: last.map(rfc3339),
                last_success_age_seconds: last.map(|t| now - t),
            }
        })
        .collect();
    RegionStatus {
        name: name.to_string(),
        cloud: region.cloud.as_str().to_string(),
        role: region.role.as_str().to_string(),
        reachable,
        unreachable,
        instances,
        replicas,
        dns,
        health,
        backup_jobs,
        last_drill: last_drill(prior, name),
    }
}

fn unknown(health_check: Option<String>) -> Health {
    Health { health_check, checkers: None, healthy_checkers: None, healthy: None, failing: None, error: None }
}

fn dns_status(config: &Config, desired: &[Resource], snapshot: &Snapshot) -> Option<DnsStatus> {
    let dns = config.failover.as_ref()?.dns.as_ref()?;
    let records = desired
        .iter()
        .filter(|d| d.kind == Kind::DnsRecord)
        .map(|d| {
            let live = snapshot.objects.get(&d.address).map(|o| &o.resource);
            let want = d.str("serves").unwrap_or_default().to_string();
            let serves = live.and_then(|l| l.str("serves")).map(str::to_string);
            RecordStatus {
                failover: d.str("failover").unwrap_or_default().to_string(),
                target: live.and_then(|l| l.str("target")).map(str::to_string),
                ok: serves.as_deref() == Some(want.as_str()),
                serves,
                want,
            }
        })
        .collect::<Vec<_>>();
    // PRIMARY before SECONDARY, as people read failover.
    let mut records = records;
    records.sort_by_key(|r| r.failover != "PRIMARY");
    Some(DnsStatus { record: dns.record.clone(), ttl: dns.ttl, records })
}

fn backup_status(config: &Config, b: &crate::config::Backup, snapshot: &Snapshot, now: i64) -> BackupStatus {
    let mut newest: Option<NewestPoint> = None;
    let destinations = b
        .destinations
        .iter()
        .map(|d| {
            let at = address::bucket(&b.name, &d.name);
            let catalog = snapshot.points.get(&at);
            let unreachable =
                catalog.and_then(|c| c.unreachable.clone()).or_else(|| snapshot.unreachable_objects.get(&at).cloned());
            // A destination that could not be read vouches for nothing.
            let point = catalog
                .filter(|c| c.unreachable.is_none())
                .and_then(|c| c.newest_usable().and_then(|p| Some((c, p, p.time?))));
            // The newest; at equal times the copy read sooner (no thaw).
            if let Some((c, p, t)) = point
                && newest
                    .as_ref()
                    .is_none_or(|n| (n.age_seconds, n.thaw.is_some()) > (now - t, c.thaw_text(p).is_some()))
            {
                newest = Some(NewestPoint {
                    destination: d.name.clone(),
                    uri: c.point_uri(&p.name),
                    time: rfc3339(t),
                    age_seconds: now - t,
                    thaw: c.thaw_text(p),
                });
            }
            DestinationStatus {
                name: d.name.clone(),
                site: d.target.site().to_string(),
                newest_age_seconds: point.map(|(_, _, t)| now - t),
                thaw: point.and_then(|(c, p, _)| c.thaw_text(p)),
                thaw_seconds: point.filter(|(_, p, _)| p.archive.is_some()).map(|(c, p, _)| c.time_to_data(p)),
                listed: catalog.is_some() || !matches!(d.target, crate::config::Target::Nas { .. }),
                unreachable,
            }
        })
        .collect();
    let rpo = config.objectives.rpo.map(|r| r.as_secs());
    let within_rpo = rpo.map(|r| newest.as_ref().is_some_and(|n| n.age_seconds <= r as i64));
    BackupStatus { backup: b.name.clone(), rpo_seconds: rpo, newest, within_rpo, destinations }
}

/// The verdict's reasons. NOT READY: the active region is unreachable, unhealthy or runs
/// nothing; the PRIMARY record is missing; no other region can take over. DEGRADED: anything
/// short of what a role needs or of the objectives (see the guide's `## status`).
fn reasons(
    config: &Config,
    prior: &Prior,
    regions: &[RegionStatus],
    dns: Option<&DnsStatus>,
    backups: &[BackupStatus],
    now: Option<i64>,
) -> Vec<Reason> {
    let mut out = Vec::new();
    let mut say = |verdict: Verdict, subject: String, detail: String| out.push(Reason { verdict, subject, detail });
    let checkers = |h: &Health| {
        format!(
            "{} of {} checkers report success (healthy needs more than {HEALTHY_PERCENT}%)",
            h.healthy_checkers.unwrap_or(0),
            h.checkers.unwrap_or(0)
        )
    };
    for r in regions {
        let subject = format!("{} {}", r.role, r.name);
        let active = r.role == Role::Active.as_str();
        if let Some(why) = &r.unreachable {
            let verdict = if active { Verdict::NotReady } else { Verdict::Degraded };
            say(verdict, subject, format!("unreachable: {why}"));
            continue;
        }
        let mut short = Vec::new();
        if r.instances.short() {
            short.push(format!("instances {}", r.instances.text()));
        }
        if r.replicas.short() {
            short.push(format!("replicas {}", r.replicas.text()));
        }
        let runs_nothing = (r.instances.want > 0 && r.instances.have == Some(0))
            || (r.replicas.want > 0 && r.replicas.have == Some(0));
        if !short.is_empty() {
            let verdict = if active && runs_nothing { Verdict::NotReady } else { Verdict::Degraded };
            say(verdict, subject.clone(), format!("below its {} count: {}", r.role, short.join(", ")));
        }
        match &r.health {
            Some(h) if h.health_check.is_none() => {
                say(Verdict::Degraded, subject.clone(), "its Route 53 health check is missing".into())
            }
            Some(h) if h.healthy == Some(false) => {
                let verdict = if active { Verdict::NotReady } else { Verdict::Degraded };
                let why = h.failing.as_ref().map(|f| format!("; one says: {f}")).unwrap_or_default();
                say(verdict, subject.clone(), format!("unhealthy: {}{why}", checkers(h)));
            }
            Some(h) if h.healthy.is_none() => say(
                Verdict::Degraded,
                subject.clone(),
                format!(
                    "its health check's status could not be read{}",
                    h.error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
                ),
            ),
            _ => {}
        }
        for j in &r.backup_jobs {
            let job = format!("backup CronJob {}", j.name);
            match (j.present, j.suspended, j.should_suspend) {
                (false, ..) if !j.should_suspend => {
                    say(Verdict::Degraded, subject.clone(), format!("{job} is missing: no backups run"))
                }
                (true, Some(true), false) => {
                    say(Verdict::Degraded, subject.clone(), format!("{job} is suspended: no backups run"))
                }
                (true, Some(false), true) => say(
                    Verdict::Degraded,
                    subject.clone(),
                    format!("{job} is not suspended: two regions write backups"),
                ),
                _ => {}
            }
        }
    }
    // A drill killed outright left its region scaled up; one overdue leaves the RTO unproven.
    if let Some(d) = crate::drill::in_progress(&prior.drills) {
        say(
            Verdict::Degraded,
            format!("region {}", d.region),
            format!("drill {} did not finish: run `drplan drill --cleanup`", d.id),
        );
    }
    if let Some(every) = config.objectives.drill_every {
        for r in regions.iter().filter(|r| r.role != Role::Active.as_str()) {
            let last = crate::drill::last_passed(&prior.drills, &r.name);
            let age = last.and_then(|d| crate::recovery::seconds_since(&d.started, now?));
            if age.is_none_or(|a| a > every.as_secs() as i64) {
                let when = last.map_or("never drilled".to_string(), |d| format!("last passed drill {}", d.started));
                say(Verdict::Degraded, format!("{} {}", r.role, r.name), format!("{when}; `drill_every` is {every}"));
            }
        }
    }
    for (region, lost) in &prior.lost {
        say(
            Verdict::Degraded,
            format!("region {region}"),
            format!("declared lost {}: its fence is pending ({} action(s) owed)", lost.since, lost.owed.len()),
        );
    }
    if let Some(dns) = dns {
        for rec in &dns.records {
            let subject = format!("dns {}", rec.failover);
            match (&rec.serves, rec.ok) {
                (_, true) => {}
                (None, _) => {
                    let verdict = if rec.failover == "PRIMARY" { Verdict::NotReady } else { Verdict::Degraded };
                    say(verdict, subject, format!("{} has no {} record (want {})", dns.record, rec.failover, rec.want))
                }
                (Some(at), false) => {
                    say(Verdict::Degraded, subject, format!("points at {at}, the configuration says {}", rec.want))
                }
            }
        }
    }
    for b in backups {
        let subject = format!("backup {}", b.backup);
        let rpo = b.rpo_seconds.map(|r| crate::config::Duration::from_secs(r).to_string()).unwrap_or_default();
        match (&b.newest, b.within_rpo) {
            (None, _) => say(Verdict::Degraded, subject.clone(), "no usable recovery point".into()),
            (Some(n), Some(false)) => say(
                Verdict::Degraded,
                subject.clone(),
                format!("newest usable point is {} old, older than the RPO {rpo}", age_text(n.age_seconds)),
            ),
            _ => {}
        }
        for d in &b.destinations {
            if let Some(why) = &d.unreachable {
                say(Verdict::Degraded, subject.clone(), format!("destination {} is unreachable: {why}", d.name));
            }
        }
    }
    // Who could take over if the active region were lost now.
    let takeover: Vec<&RegionStatus> = regions
        .iter()
        .filter(|r| r.role != Role::Active.as_str() && r.reachable)
        .filter(|r| r.health.as_ref().is_none_or(|h| h.healthy != Some(false)))
        .filter(|r| r.role != Role::Cold.as_str() || restorable(config, backups))
        .collect();
    if takeover.is_empty() {
        let others = regions.iter().filter(|r| r.role != Role::Active.as_str()).count();
        let detail = if others == 0 {
            "the configuration has no standby or cold region".to_string()
        } else {
            "every standby and cold region is unreachable, unhealthy or has nothing to restore".to_string()
        };
        say(Verdict::NotReady, "failover".into(), format!("no region can take over: {detail}"));
    }
    // NOT READY first; otherwise in the order found (configuration order).
    out.sort_by_key(|r| r.verdict != Verdict::NotReady);
    out
}

/// A cold site can take over when every backup restored into it has a usable point.
fn restorable(config: &Config, backups: &[BackupStatus]) -> bool {
    config
        .backups
        .iter()
        .filter(|b| b.restore.as_ref().is_some_and(|r| r.when.contains(&Role::Cold)))
        .all(|b| backups.iter().any(|s| s.backup == b.name && s.newest.is_some()))
}

impl Report {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// For a terminal: under 40 lines and 100 columns for a topology like bot-core's.
    pub fn human(&self) -> String {
        let mut out = format!("{}: {} (read {})\n", self.project, self.verdict.as_str(), self.at);
        for r in &self.reasons {
            let line = format!("  {:<9}  {}: {}", r.verdict.as_str(), r.subject, r.detail);
            out.push_str(&wrap(&line, WIDTH, &" ".repeat(13)));
        }
        out.push('\n');
        let mut rows = vec![
            ["REGION", "CLOUD", "ROLE", "REACH", "INSTANCES", "REPLICAS", "DNS", "HEALTH", "LAST DRILL"]
                .map(String::from)
                .to_vec(),
        ];
        for r in &self.regions {
            rows.push(vec![
                r.name.clone(),
                r.cloud.clone(),
                r.role.clone(),
                if r.reachable { "yes".into() } else { "NO".into() },
                r.instances.text(),
                r.replicas.text(),
                if r.dns.is_empty() { "-".into() } else { r.dns.join("+") },
                r.health.as_ref().map_or("-".into(), Health::text),
                r.last_drill.as_ref().map_or("never".into(), drill_text),
            ]);
        }
        out.push_str(&columns(&rows, ""));
        if let Some(dns) = &self.dns {
            out.push_str(&format!("\nDNS {} (TTL {}s):\n", dns.record, dns.ttl));
            let rows: Vec<Vec<String>> = dns
                .records
                .iter()
                .map(|r| {
                    vec![
                        r.failover.clone(),
                        r.target.clone().unwrap_or_else(|| "(missing)".into()),
                        format!("→ {}", r.serves.as_deref().unwrap_or("-")),
                        if r.ok { "✓".into() } else { format!("✗ want {}", r.want) },
                    ]
                })
                .collect();
            out.push_str(&columns(&rows, "  "));
        }
        let jobs: Vec<Vec<String>> = self
            .regions
            .iter()
            .flat_map(|r| r.backup_jobs.iter().map(move |j| (r, j)))
            .map(|(r, j)| {
                let state = match (j.present, j.suspended) {
                    (false, _) => "MISSING",
                    (true, Some(true)) => "suspended",
                    _ => "running",
                };
                let want_ok = j.present && j.suspended == Some(j.should_suspend);
                vec![
                    r.name.clone(),
                    j.name.clone(),
                    j.schedule.clone().unwrap_or_else(|| "-".into()),
                    format!("{state}{}", if want_ok { "" } else { " ✗" }),
                    format!(
                        "last success {}",
                        j.last_success_age_seconds.map_or("never seen".into(), |a| format!("{} ago", age_text(a)))
                    ),
                ]
            })
            .collect();
        if !jobs.is_empty() {
            out.push_str("\nBackup CronJobs:\n");
            out.push_str(&columns(&jobs, "  "));
        }
        if !self.backups.is_empty() {
            out.push_str("\nNewest backups:\n");
        }
        for b in &self.backups {
            let rpo =
                b.rpo_seconds.map(|r| format!(", RPO {}", crate::config::Duration::from_secs(r))).unwrap_or_default();
            let verdict = match b.within_rpo {
                Some(true) => " ✓",
                Some(false) => " ✗",
                None => "",
            };
            match &b.newest {
                Some(n) => out.push_str(&format!(
                    "  {}: {} ({} old{rpo}){verdict}\n",
                    b.backup,
                    n.uri,
                    age_text(n.age_seconds)
                )),
                None => out.push_str(&format!("  {}: no usable recovery point{rpo} ✗\n", b.backup)),
            }
            let each: Vec<String> = b
                .destinations
                .iter()
                .map(|d| match (&d.unreachable, d.newest_age_seconds, d.site.as_str()) {
                    (Some(_), ..) => format!("{} unreachable", d.name),
                    (None, Some(a), _) => match &d.thaw {
                        Some(thaw) => format!("{} {} ({thaw})", d.name, age_text(a)),
                        None => format!("{} {}", d.name, age_text(a)),
                    },
                    (None, None, "on-premises") if !d.listed => format!("{} on premises (not listed)", d.name),
                    (None, None, _) => format!("{} none", d.name),
                })
                .collect();
            out.push_str(&format!("    {}\n", each.join(" · ")));
        }
        for d in &self.databases {
            out.push_str(&format!("\nDatabase {}: writer {}\n", d.database, d.writer.as_deref().unwrap_or("not seen")));
            for r in &d.replicas {
                let lag = match (r.lag_seconds, &r.lag_at) {
                    (Some(s), Some(at)) => format!("{} behind at {at}", crate::config::Duration::from_secs(s)),
                    _ => "lag unknown".to_string(),
                };
                let verdict = match &r.problem {
                    None => "✓".to_string(),
                    Some(p) => format!("✗ {p}"),
                };
                out.push_str(&format!("  replica {}/{}: {lag} {verdict}\n", r.region, r.identifier));
            }
            for k in &d.kept {
                let what = if k.writer { "old writer" } else { "old replica" };
                out.push_str(&format!(
                    "  kept {}/{} ({what} `{}`, since {}): drplan never deletes it; remove it when reviewed, then `drplan state forget-kept {}`\n",
                    k.region, k.identifier, k.was, k.since, k.identifier
                ));
            }
        }
        // Short, to keep one screen: the reasons above and `drplan doc` give the evidence.
        out.push('\n');
        if let Some(b) = &self.uptime_budget {
            out.push_str(&wrap(&format!("Uptime budget: {}", b.text()), WIDTH, "  "));
        }
        let items: Vec<String> = self.checklist.iter().map(|c| format!("{} {}", c.mark.symbol(), c.item)).collect();
        out.push_str(&wrap(&format!("Checklist: {}", items.join(" · ")), WIDTH, "  "));
        out.push_str(&format!(
            "\nHealth is Route 53's: healthy when more than {HEALTHY_PERCENT}% of its checkers report success.\n"
        ));
        out
    }

    /// For a ticket or a chat message.
    pub fn markdown(&self) -> String {
        let icon = match self.verdict {
            Verdict::Ready => "✅",
            Verdict::Degraded => "⚠️",
            Verdict::NotReady => "❌",
        };
        let mut s = format!(
            "### drplan status: `{}`\n\n{icon} **{}** (read {})\n\n",
            self.project,
            self.verdict.as_str(),
            self.at
        );
        for r in &self.reasons {
            s.push_str(&format!("- **{}** `{}`: {}\n", r.verdict.as_str(), r.subject, r.detail.replace('|', "\\|")));
        }
        if !self.reasons.is_empty() {
            s.push('\n');
        }
        s.push_str("| region | cloud | role | reachable | instances | replicas | DNS | health | backup CronJob | last drill |\n");
        s.push_str("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
        for r in &self.regions {
            let jobs: Vec<String> = r
                .backup_jobs
                .iter()
                .map(|j| match (j.present, j.suspended) {
                    (false, _) => format!("`{}` missing", j.name),
                    (true, Some(true)) => format!("`{}` suspended", j.name),
                    _ => format!("`{}` running", j.name),
                })
                .collect();
            s.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.name,
                r.cloud,
                r.role,
                if r.reachable { "yes" } else { "**no**" },
                r.instances.text(),
                r.replicas.text(),
                if r.dns.is_empty() { "-".into() } else { r.dns.join(", ") },
                r.health.as_ref().map_or("-".into(), Health::text),
                if jobs.is_empty() { "-".into() } else { jobs.join(", ") },
                r.last_drill.as_ref().map_or("never".into(), drill_text),
            ));
        }
        for b in &self.backups {
            let rpo =
                b.rpo_seconds.map(|r| format!(" (RPO {})", crate::config::Duration::from_secs(r))).unwrap_or_default();
            match &b.newest {
                Some(n) => s.push_str(&format!(
                    "\n**Backup `{}`**{rpo}: newest usable `{}`, {} old {}\n",
                    b.backup,
                    n.uri,
                    age_text(n.age_seconds),
                    if b.within_rpo == Some(false) { "❌" } else { "✅" }
                )),
                None => s.push_str(&format!("\n**Backup `{}`**{rpo}: no usable recovery point ❌\n", b.backup)),
            }
        }
        if let Some(b) = &self.uptime_budget {
            s.push_str(&format!("\n**Uptime budget**: {}\n", b.text()));
        }
        s.push_str(&checklist_markdown(&self.checklist));
        s
    }
}

/// The readiness checklist as a Markdown table: what `status --markdown` and
/// `plan --markdown` show a reviewer.
pub fn checklist_markdown(checklist: &[crate::document::Check]) -> String {
    let mut s = String::from("\n| readiness | | evidence |\n| --- | --- | --- |\n");
    for c in checklist {
        s.push_str(&format!("| {} | {} | {} |\n", c.item, c.mark.symbol(), c.evidence.replace('|', "\\|")));
    }
    s
}

fn drill_text(d: &DrillSummary) -> String {
    let date = d.finished.get(..10).unwrap_or(&d.finished);
    // Short, to keep the table within 100 columns: a measured RTO means the drill passed.
    match d.measured_rto_seconds {
        Some(rto) => format!("{date} RTO {}", age_text(rto as i64)),
        None => format!("{date} {}", d.result),
    }
}

/// The terminal width the human layout keeps within.
const WIDTH: usize = 100;

/// `line` broken at spaces into lines of at most `width` characters, the later ones
/// starting with `indent`; a word longer than a line is left whole.
fn wrap(line: &str, width: usize, indent: &str) -> String {
    let body = line.trim_start();
    let mut out = String::new();
    let mut current = line[..line.len() - body.len()].to_string();
    let mut words = 0;
    for word in body.split(' ') {
        let len = current.chars().count();
        if words > 0 && len + 1 + word.chars().count() > width {
            out.push_str(current.trim_end());
            out.push('\n');
            current = indent.to_string();
            words = 0;
        } else if words > 0 {
            current.push(' ');
        }
        current.push_str(word);
        words += 1;
    }
    out.push_str(current.trim_end());
    out.push('\n');
    out
}

/// Rows as left-aligned columns two spaces apart, each line indented by `indent`.
fn columns(rows: &[Vec<String>], indent: &str) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..n).map(|i| rows.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let mut line = indent.to_string();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::Checkers;

    /// Route 53's rule, not the gate's majority: one of five checkers (20%) is healthy, one of
    /// six (16.7%) is not.
    #[test]
    fn healthy_is_more_than_eighteen_percent_of_the_checkers() {
        let c = |checkers, healthy| Checkers { checkers, healthy, failing: None }.healthy();
        assert!(c(5, 1));
        assert!(!c(6, 1));
        assert!(c(1, 1));
        assert!(!c(0, 0), "no checker, no evidence");
        assert!(!c(16, 2), "12.5%");
        assert!(c(16, 3), "18.75%");
    }
}
