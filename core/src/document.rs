//! The DR plan as a document (`drplan doc`): objectives, critical systems, backups,
//! architecture, recovery procedures, testing, a checklist with its evidence, history and
//! contacts, each computed from the configuration, the state and one refresh. Pure: the
//! status report's inputs, the policies' results and the time come in as values, so the same
//! inputs give the same document, byte for byte. Rendered to Markdown and HTML by
//! [`crate::render::document`].

use schemars::JsonSchema;
use serde::Serialize;

use crate::config::{Config, Duration, Role};
use crate::plan::graph::Step;
use crate::plan::{self, Prior, Snapshot};
use crate::recovery::{age_text, rfc3339};
use crate::status::{self, Report};
use crate::uptime::{self, duration_text};

/// What the document is made from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub status: status::Inputs<'a>,
    /// The configuration's path as its commands name it (`examples/bot-core`, `.`).
    pub path: &'a str,
}

/// A checklist item's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    Yes,
    No,
    Unknown,
}

impl Mark {
    pub fn symbol(self) -> &'static str {
        match self {
            Mark::Yes => "✓",
            Mark::No => "✗",
            Mark::Unknown => "unknown",
        }
    }

    fn of(ok: Option<bool>) -> Mark {
        match ok {
            Some(true) => Mark::Yes,
            Some(false) => Mark::No,
            None => Mark::Unknown,
        }
    }
}

/// One item of the readiness checklist, computed, with what shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Check {
    pub item: String,
    pub mark: Mark,
    pub evidence: String,
}

/// The checklist's items, in order.
pub const ITEMS: [&str; 6] = [
    "backups running",
    "replication lag within budget",
    "DR tested within drill_every",
    "standbys ready",
    "policies passing",
    "no incident open",
];

/// What is known of incidents: whether one is open, and the rows of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incidents {
    /// `None`: not known.
    pub open: Option<bool>,
    pub evidence: String,
    /// Date, region, what, state.
    pub rows: Vec<Vec<String>>,
}

/// The incidents state records: the checklist's "no incident open" and the history's
/// incidents read them from here alone.
pub fn incidents(prior: &Prior) -> Incidents {
    let open: Vec<&crate::incident::Incident> = crate::incident::open(&prior.incidents).collect();
    let evidence = match open.as_slice() {
        [] if prior.incidents.is_empty() => "none recorded".to_string(),
        [] => format!("none open ({} closed)", prior.incidents.len()),
        some => some
            .iter()
            .map(|i| format!("{} open on {} since {} ({})", i.id, i.region, i.since, i.reason))
            .collect::<Vec<_>>()
            .join("; "),
    };
    // Newest first, as the other histories.
    let rows = prior
        .incidents
        .iter()
        .rev()
        .map(|i| {
            let state = match &i.closed_at {
                None => "open".to_string(),
                Some(at) if i.evidence.is_empty() => format!("closed {at}"),
                Some(at) => format!("closed {at}; evidence kept: {}", i.evidence.join(", ")),
            };
            vec![i.declared_at.clone(), i.region.clone(), format!("{}: {} (since {})", i.id, i.reason, i.since), state]
        })
        .collect();
    Incidents { open: Some(!open.is_empty()), evidence, rows }
}

/// The readiness checklist of `report` (which `inputs` made), with the policies' results
/// when they were evaluated. `drplan status` and `drplan doc` show the same values.
pub fn checklist(
    inputs: &status::Inputs<'_>,
    report: &Report,
    policies: Option<&[crate::policy::PolicyResult]>,
) -> Vec<Check> {
    let status::Inputs { config, prior, now, .. } = *inputs;
    let mut out = Vec::new();
    let mut push = |item: &str, ok: Option<bool>, evidence: String| {
        out.push(Check { item: item.to_string(), mark: Mark::of(ok), evidence })
    };
    // Backups: the active region's CronJobs running, and each backup's newest point within
    // the RPO.
    let active = report.regions.iter().find(|r| r.role == Role::Active.as_str());
    let mut evidence = Vec::new();
    let mut ok = Some(true);
    let mut and = |v: Option<bool>| {
        ok = match (ok, v) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (None, _) | (_, None) => None,
            _ => Some(true),
        }
    };
    match active {
        Some(r) if r.reachable => {
            for j in &r.backup_jobs {
                let running = j.present && j.suspended == Some(false);
                and(Some(running));
                let last = j.last_success_age_seconds.map_or("never seen".into(), |a| format!("{} ago", age_text(a)));
                let state = if running {
                    "running"
                } else if j.present {
                    "suspended"
                } else {
                    "missing"
                };
                evidence.push(format!("CronJob {} in {} {state}, last success {last}", j.name, r.name));
            }
        }
        Some(r) => {
            and(None);
            evidence.push(format!("{} could not be read", r.name));
        }
        None => and(None),
    }
    for b in &report.backups {
        and(Some(b.newest.is_some() && b.within_rpo != Some(false)));
        evidence.push(match &b.newest {
            Some(n) => {
                format!("{}: newest usable point {} old in {}", b.backup, age_text(n.age_seconds), n.destination)
            }
            None => format!("{}: no usable recovery point", b.backup),
        });
    }
    if config.backups.is_empty() {
        and(None);
        evidence.push("no backup is configured".into());
    }
    push(ITEMS[0], ok, evidence.join("; "));
    // Replication: each replica's lag against its budget.
    let replicas: Vec<&status::ReplicaStatus> = report.databases.iter().flat_map(|d| &d.replicas).collect();
    let (ok, evidence) = if report.databases.is_empty() {
        (Some(true), "no database is configured: nothing replicates".to_string())
    } else if replicas.is_empty() {
        (None, "no replica was seen".to_string())
    } else {
        let ok = if replicas.iter().any(|r| r.problem.is_some()) {
            Some(false)
        } else if replicas.iter().all(|r| r.lag_seconds.is_some()) {
            Some(true)
        } else {
            None
        };
        let each: Vec<String> = replicas
            .iter()
            .map(|r| {
                let lag = r.lag_seconds.map_or("lag unknown".into(), |s| format!("{} behind", duration_text(s)));
                let budget = r.budget_seconds.map_or(String::new(), |b| format!(" (budget {})", duration_text(b)));
                let problem = r.problem.as_ref().map(|p| format!(": {p}")).unwrap_or_default();
                format!("{}/{} {lag}{budget}{problem}", r.region, r.identifier)
            })
            .collect();
        (ok, each.join("; "))
    };
    push(ITEMS[1], ok, evidence);
    // Drills: every standby and cold region's last passed drill within `drill_every`.
    let (ok, evidence) = match config.objectives.drill_every {
        None => (None, "`objectives.drill_every` is not set".to_string()),
        Some(every) => {
            let mut ok = true;
            let each: Vec<String> = config
                .regions
                .iter()
                .filter(|r| r.role != Role::Active)
                .map(|r| {
                    let last = crate::drill::last_passed(&prior.drills, &r.name);
                    let age = last.and_then(|d| crate::recovery::seconds_since(&d.started, now));
                    let fresh = age.is_some_and(|a| a <= every.as_secs() as i64);
                    ok &= fresh;
                    match (last, age) {
                        (Some(d), Some(a)) => format!(
                            "{}: last passed drill {} ({} ago){}",
                            r.name,
                            d.id,
                            age_text(a),
                            if fresh { "" } else { ", overdue" }
                        ),
                        _ => format!("{}: never drilled", r.name),
                    }
                })
                .collect();
            (Some(ok), format!("every {}: {}", every, each.join("; ")))
        }
    };
    push(ITEMS[2], ok, evidence);
    // Standbys: reachable, at their counts, healthy.
    let mut ok = Some(true);
    let mut each = Vec::new();
    for r in report.regions.iter().filter(|r| r.role == Role::Standby.as_str()) {
        let short = r.instances.have.is_some_and(|h| h < r.instances.want)
            || r.replicas.have.is_some_and(|h| h < r.replicas.want);
        let healthy = r.health.as_ref().and_then(|h| h.healthy);
        let this = if !r.reachable || short || healthy == Some(false) {
            Some(false)
        } else if r.health.is_some() && healthy.is_none() {
            None
        } else {
            Some(true)
        };
        ok = match (ok, this) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (None, _) | (_, None) => None,
            _ => Some(true),
        };
        let count = |c: &status::Count| format!("{}/{}", c.have.map_or("?".into(), |h| h.to_string()), c.want);
        let health = match healthy {
            Some(true) => "healthy",
            Some(false) => "unhealthy",
            None if r.health.is_none() => "no health check",
            None => "health unread",
        };
        each.push(if r.reachable {
            format!("{}: instances {}, replicas {}, {health}", r.name, count(&r.instances), count(&r.replicas))
        } else {
            format!("{}: unreachable", r.name)
        });
    }
    if each.is_empty() {
        ok = Some(false);
        each.push("no standby region is configured".into());
    }
    push(ITEMS[3], ok, each.join("; "));
    // Policies: the team's rules on the plan of the configuration as it is.
    let (ok, evidence) = match policies {
        None => (None, "not evaluated".to_string()),
        Some(_) if config.policy.is_empty() => (Some(true), "no policy is configured".to_string()),
        Some(results) => {
            let denied: Vec<String> = results
                .iter()
                .filter(|r| r.level == crate::policy::Level::Deny)
                .map(|r| format!("{}: {}", r.namespace, r.msg))
                .collect();
            let warned = results.iter().filter(|r| r.level == crate::policy::Level::Warn).count();
            if denied.is_empty() {
                (Some(true), format!("no denial on the current plan ({warned} warning(s))"))
            } else {
                (Some(false), format!("denied: {}", denied.join("; ")))
            }
        }
    };
    push(ITEMS[4], ok, evidence);
    let inc = incidents(prior);
    push(ITEMS[5], inc.open.map(|open| !open), inc.evidence);
    out
}

/// A block of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A paragraph; `code` in backquotes.
    Text(String),
    /// A subheading.
    Heading(String),
    Table {
        head: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    List(Vec<String>),
    /// Shell commands, one a line.
    Commands(Vec<Vec<String>>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub title: &'static str,
    pub blocks: Vec<Block>,
}

/// The document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub project: String,
    /// When it was made (RFC 3339).
    pub at: String,
    pub verdict: String,
    pub sections: Vec<Section>,
    pub checklist: Vec<Check>,
}

impl Document {
    /// Every command the document gives, as the words of its command line.
    pub fn commands(&self) -> Vec<Vec<String>> {
        self.sections
            .iter()
            .flat_map(|s| &s.blocks)
            .filter_map(|b| match b {
                Block::Commands(c) => Some(c.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }
}

/// The section titles, in order.
pub const SECTIONS: [&str; 9] = [
    "Objectives",
    "Critical systems",
    "Backup strategy",
    "Architecture",
    "Recovery procedures",
    "Testing",
    "Checklist",
    "History",
    "Contacts",
];

/// The document of `inputs`, with the policies' results when they were evaluated.
pub fn document(inputs: &Inputs<'_>, policies: Option<&[crate::policy::PolicyResult]>) -> Document {
    let report = status::report(&inputs.status);
    let checklist = checklist(&inputs.status, &report, policies);
    let status::Inputs { config, prior, snapshot, now, .. } = inputs.status;
    let sections = vec![
        Section { title: SECTIONS[0], blocks: objectives(config, prior, snapshot, &report, now) },
        Section { title: SECTIONS[1], blocks: critical(config, &report) },
        Section { title: SECTIONS[2], blocks: backups(config, &report) },
        Section { title: SECTIONS[3], blocks: architecture(config, &report) },
        Section { title: SECTIONS[4], blocks: procedures(config, prior, snapshot, inputs.path, now) },
        Section { title: SECTIONS[5], blocks: testing(config, prior, now) },
        Section {
            title: SECTIONS[6],
            blocks: vec![Block::Table {
                head: cells(["item", "", "evidence"]),
                rows: checklist
                    .iter()
                    .map(|c| vec![c.item.clone(), c.mark.symbol().to_string(), c.evidence.clone()])
                    .collect(),
            }],
        },
        Section { title: SECTIONS[7], blocks: history(prior) },
        Section { title: SECTIONS[8], blocks: contacts(config) },
    ];
    Document {
        project: config.project.clone(),
        at: rfc3339(now),
        verdict: report.verdict.as_str().to_string(),
        sections,
        checklist,
    }
}

fn cells<const N: usize>(c: [&str; N]) -> Vec<String> {
    c.iter().map(|s| s.to_string()).collect()
}

fn dur(d: Option<Duration>) -> String {
    d.map_or("not set".to_string(), |d| duration_text(d.as_secs()))
}

fn objectives(config: &Config, prior: &Prior, snapshot: &Snapshot, report: &Report, now: i64) -> Vec<Block> {
    let o = &config.objectives;
    // The planned switchover's estimate, against the clouds now (measured drills included):
    // the same figure as its procedure below.
    let options = plan::Options { now: Some(now), accept_data_loss: true, ..Default::default() };
    let posture = config.active_region().zip(next_region(config)).and_then(|(active, next)| {
        let promoted = with_roles(config, &next, &active.name);
        plan::plan(&promoted, prior, Some(snapshot), &options).ok()?.posture.rto.filter(|r| !r.hypothetical)
    });
    let rto_now = posture.as_ref().map_or("no failover to estimate".to_string(), |r| {
        format!(
            "{} to fail over to {} (estimated){}",
            duration_text(r.estimate.as_secs()),
            r.to_region,
            if r.ok { " ✓" } else { " ✗" }
        )
    });
    let rpo_now: Vec<String> = report
        .backups
        .iter()
        .map(|b| match (&b.newest, b.within_rpo) {
            (Some(n), ok) => format!(
                "{}: newest point {} old{}",
                b.backup,
                age_text(n.age_seconds),
                match ok {
                    Some(true) => " ✓",
                    Some(false) => " ✗",
                    None => "",
                }
            ),
            (None, _) => format!("{}: no usable point ✗", b.backup),
        })
        .collect();
    let uptime_now = match o.uptime {
        None => "not set".to_string(),
        Some(u) => uptime::budget(u, &prior.history, now).text(),
    };
    vec![
        Block::Text(format!("Readiness now: **{}** (read {}).", report.verdict.as_str(), rfc3339(now))),
        Block::Table {
            head: cells(["objective", "target", "now"]),
            rows: vec![
                vec!["RTO".into(), dur(o.rto), rto_now],
                vec![
                    "RPO".into(),
                    dur(o.rpo),
                    if rpo_now.is_empty() { "no backup configured".into() } else { rpo_now.join("; ") },
                ],
                vec![
                    "uptime".into(),
                    o.uptime.map_or("not set".into(), |u| {
                        format!("{u}% (downtime budget {} a year)", duration_text(uptime::allowed(u)))
                    }),
                    uptime_now,
                ],
            ],
        },
    ]
}

fn critical(config: &Config, report: &Report) -> Vec<Block> {
    let mut components = config.components.clone();
    components.sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
    let writes_to = |c: &str| -> String {
        let dbs: Vec<&str> =
            config.databases.iter().filter(|d| d.writers.iter().any(|w| w == c)).map(|d| d.name.as_str()).collect();
        if dbs.is_empty() { "-".into() } else { dbs.join(", ") }
    };
    let mut blocks = vec![Block::Table {
        head: cells(["priority", "component", "replicas active / standby / cold", "writes to"]),
        rows: components
            .iter()
            .map(|c| {
                vec![
                    c.priority.to_string(),
                    c.name.clone(),
                    format!("{} / {} / {}", c.replicas.active, c.replicas.standby, c.replicas.cold),
                    writes_to(&c.name),
                ]
            })
            .collect(),
    }];
    if !config.databases.is_empty() {
        blocks.push(Block::Heading("Databases".into()));
        blocks.push(Block::Table {
            head: cells(["database", "engine", "writers", "members", "writer now", "max data loss"]),
            rows: config
                .databases
                .iter()
                .map(|d| {
                    let members: Vec<String> = config
                        .regions
                        .iter()
                        .filter_map(|r| r.member(&d.name).map(|m| format!("{} ({})", r.name, m.kind.as_str())))
                        .collect();
                    let writer = report
                        .databases
                        .iter()
                        .find(|s| s.database == d.name)
                        .and_then(|s| s.writer.clone())
                        .unwrap_or_else(|| "not seen".into());
                    vec![
                        d.name.clone(),
                        d.engine.as_str().to_string(),
                        d.writers.join(", "),
                        members.join(", "),
                        writer,
                        dur(d.max_lag),
                    ]
                })
                .collect(),
        });
    }
    blocks
}

fn backups(config: &Config, report: &Report) -> Vec<Block> {
    let mut blocks = Vec::new();
    if config.backups.is_empty() {
        blocks.push(Block::Text("No backup is configured.".into()));
    }
    for b in &config.backups {
        let status = report.backups.iter().find(|s| s.backup == b.name);
        blocks.push(Block::Heading(format!("Backup `{}`", b.name)));
        let encryption =
            b.gpg_recipient.as_ref().map_or("none configured in drplan".to_string(), |r| format!("GPG, to `{r}`"));
        let restore = b.restore.as_ref().map_or("not restored by a promotion".to_string(), |r| {
            let when: Vec<&str> = r.when.iter().map(|w| w.as_str()).collect();
            format!("restored when a {} region is promoted (timeout {})", when.join(" or "), dur(Some(r.timeout)))
        });
        blocks.push(Block::List(vec![
            format!("schedule `{}` ({} backup), image `{}`", b.schedule.as_str(), b.kind.as_str(), b.image),
            format!("retention {}", duration_text(b.retention.as_secs())),
            format!("encryption: {encryption}"),
            format!("restore: {restore}"),
        ]));
        blocks.push(Block::Table {
            head: cells(["copy", "site", "where", "newest verified point"]),
            rows: b
                .destinations
                .iter()
                .map(|d| {
                    let s = status.and_then(|s| s.destinations.iter().find(|x| x.name == d.name));
                    let newest = match s {
                        Some(s) if s.unreachable.is_some() => "unreachable".to_string(),
                        Some(s) => match (s.newest_age_seconds, &s.thaw) {
                            (Some(a), Some(t)) => format!("{} old ({t})", age_text(a)),
                            (Some(a), None) => format!("{} old", age_text(a)),
                            (None, _) if !s.listed => "not listed where drplan runs".to_string(),
                            (None, _) => "none".to_string(),
                        },
                        None => "unknown".to_string(),
                    };
                    let uri = d.target.uri();
                    vec![
                        d.name.clone(),
                        d.target.site().to_string(),
                        if uri.is_empty() { "-".into() } else { format!("`{uri}`") },
                        newest,
                    ]
                })
                .collect(),
        });
    }
    blocks
}

fn architecture(config: &Config, report: &Report) -> Vec<Block> {
    let mut blocks = vec![Block::Table {
        head: cells(["region", "cloud", "role", "endpoint", "instances", "replicas", "health"]),
        rows: report
            .regions
            .iter()
            .map(|r| {
                let endpoint = config.region(&r.name).and_then(|c| c.endpoint.clone()).unwrap_or_else(|| "-".into());
                let count = |c: &status::Count| format!("{}/{}", c.have.map_or("?".into(), |h| h.to_string()), c.want);
                let health = r.health.as_ref().map_or("-".to_string(), |h| match h.healthy {
                    Some(true) => "healthy".into(),
                    Some(false) => "unhealthy".into(),
                    None if h.health_check.is_none() => "missing".into(),
                    None => "unread".into(),
                });
                vec![
                    r.name.clone(),
                    r.cloud.clone(),
                    r.role.clone(),
                    endpoint,
                    count(&r.instances),
                    count(&r.replicas),
                    if r.reachable { health } else { "unreachable".into() },
                ]
            })
            .collect(),
    }];
    let pools: Vec<Vec<String>> = config
        .regions
        .iter()
        .flat_map(|r| {
            r.compute.iter().map(move |p| {
                vec![
                    r.name.clone(),
                    p.name.clone(),
                    p.instance_type.clone(),
                    format!("{} / {} / {}", p.count.active, p.count.standby, p.count.cold),
                ]
            })
        })
        .collect();
    if !pools.is_empty() {
        blocks.push(Block::Heading("Capacity per role".into()));
        blocks.push(Block::Table {
            head: cells(["region", "pool", "instance type", "instances active / standby / cold"]),
            rows: pools,
        });
    }
    blocks.push(Block::Heading("Failover".into()));
    match &config.failover {
        None => blocks.push(Block::Text("No `failover` block: traffic is not moved by drplan.".into())),
        Some(f) => {
            let mut items = Vec::new();
            items.push(match f.mode {
                crate::config::FailoverMode::Manual => {
                    "mode: manual (a person runs `drplan failover` and `drplan apply`; `drplan watch` only reports)"
                        .to_string()
                }
                crate::config::FailoverMode::Automatic => {
                    let a = f.automatic.clone().unwrap_or_default();
                    format!(
                        "mode: automatic (`drplan watch` fails over after {} failed rounds every {}, health above {}% of checkers, cool-down {}{})",
                        f.health_check.threshold,
                        duration_text(a.interval.as_secs()),
                        a.quorum,
                        duration_text(a.cooldown.as_secs()),
                        if a.allow_cold { ", the cold site allowed" } else { "" }
                    )
                }
            });
            let order: Vec<String> = crate::watch::candidates(config).into_iter().map(|(r, _)| r).collect();
            items.push(format!("failover order: {}", if order.is_empty() { "-".into() } else { order.join(" → ") }));
            if let Some(d) = &f.dns {
                let records: Vec<String> = report
                    .dns
                    .iter()
                    .flat_map(|s| &s.records)
                    .map(|r| format!("{} → {}", r.failover, r.serves.as_deref().unwrap_or("missing")))
                    .collect();
                items.push(format!("DNS: `{}` in zone `{}`, TTL {}s; {}", d.record, d.zone, d.ttl, records.join(", ")));
            }
            let h = &f.health_check;
            items.push(format!(
                "health checks: {} port {} path `{}` every {}, {} failures to fail",
                h.protocol.as_str(),
                h.port,
                h.path,
                duration_text(h.interval.as_secs()),
                h.threshold
            ));
            blocks.push(Block::List(items));
        }
    }
    blocks
}

/// The region a failover would go to now: DNS SECONDARY's, then the order's.
fn next_region(config: &Config) -> Option<String> {
    let active = config.active_region()?;
    plan::desired::secondary_region(config)
        .map(|r| r.name.clone())
        .or_else(|| crate::watch::candidates(config).into_iter().map(|(r, _)| r).find(|r| *r != active.name))
}

fn with_roles(config: &Config, active: &str, previous: &str) -> Config {
    let mut c = config.clone();
    for r in &mut c.regions {
        if r.name == active {
            r.role = Role::Active;
        } else if r.name == previous {
            r.role = Role::Standby;
        }
    }
    c
}

/// The steps a plan would take, in order, with their estimates.
fn steps(config: &Config, prior: &Prior, live: Option<&Snapshot>, options: &plan::Options) -> Block {
    let e = plan::Estimates::from_config(config);
    let interval = config.failover.as_ref().map_or(0, |f| f.health_check.interval.as_secs());
    let Ok(p) = plan::plan(config, prior, live, options) else {
        return Block::Text("The plan cannot be made (a cycle in its order).".into());
    };
    let mut rows = Vec::new();
    for n in &p.graph {
        let (what, seconds) = match &n.step {
            Step::Change(i) => {
                let c = &p.changes[*i];
                (format!("{} `{}`", c.action.as_str(), c.address), plan::step::estimate(c, &e))
            }
            Step::HealthGate { region, .. } => {
                (format!("wait until {region}'s health check passes"), interval + e.gate)
            }
            Step::Barrier { .. } => continue,
        };
        let skipped = n.skipped.as_ref().map(|s| format!(" (skipped: {s})")).unwrap_or_default();
        rows.push(vec![(rows.len() + 1).to_string(), format!("{what}{skipped}"), duration_text(seconds)]);
    }
    if rows.is_empty() {
        let why: Vec<String> = p.safety.iter().map(|d| d.message.clone()).collect();
        return Block::Text(if why.is_empty() {
            "No step: the clouds already match.".into()
        } else {
            format!("No step can be planned now: {}.", why.join("; "))
        });
    }
    let rto = p.posture.rto.filter(|r| !r.hypothetical).map(|r| {
        vec![
            String::new(),
            "**estimated time until traffic is served (RTO)**".into(),
            duration_text(r.estimate.as_secs()),
        ]
    });
    rows.extend(rto);
    Block::Table { head: cells(["#", "step", "estimate"]), rows }
}

fn command(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn procedures(config: &Config, prior: &Prior, snapshot: &Snapshot, path: &str, now: i64) -> Vec<Block> {
    let mut blocks = Vec::new();
    let Some(active) = config.active_region().map(|r| r.name.clone()) else { return blocks };
    let Some(next) = next_region(config) else {
        blocks.push(Block::Text("There is no other region to fail over to.".into()));
        return blocks;
    };
    let options = plan::Options { now: Some(now), accept_data_loss: true, ..Default::default() };
    let promoted = with_roles(config, &next, &active);
    let (a, n) = (active.as_str(), next.as_str());

    blocks.push(Block::Heading(format!("Planned switchover: {a} → {n}")));
    blocks.push(Block::Text(format!(
        "Writers in {a} are stopped, the replica catches up, {n} is promoted and DNS moves; nothing is lost. Review the plan, then apply it."
    )));
    blocks.push(Block::Commands(vec![
        command(&["drplan", "status", path]),
        command(&["drplan", "failover", "--to", n, "--write", path]),
        command(&["drplan", "apply", path]),
    ]));
    blocks.push(steps(&promoted, prior, Some(snapshot), &options));

    blocks.push(Block::Heading(format!("The active region lost: {a} → {n}")));
    blocks.push(Block::Text(format!(
        "{a} does not answer: it is declared lost, {n} is promoted without it (the data-loss window is shown and must be accepted), and {a}'s fence runs once it answers again."
    )));
    blocks.push(Block::Commands(vec![
        command(&["drplan", "failover", "--to", n, "--write", "--allow-unreachable", path]),
        command(&["drplan", "apply", "--allow-unreachable", "--accept-data-loss", path]),
        command(&["drplan", "apply", path]),
    ]));
    let mut lost = snapshot.clone();
    lost.unreachable.insert(active.clone(), "the region is lost".into());
    blocks.push(steps(&promoted, prior, Some(&lost), &options));

    blocks.push(Block::Heading("Data corruption: restore to a point".into()));
    let restorable: Vec<&crate::config::Backup> = config.backups.iter().filter(|b| b.restore.is_some()).collect();
    if restorable.is_empty() {
        blocks.push(Block::Text("No backup has a `restore` block: drplan cannot restore one.".into()));
    } else {
        // The newest verified point of the first backup restored, as the example; an hour ago
        // when there is none.
        let newest = restorable
            .first()
            .and_then(|b| {
                b.destinations
                    .iter()
                    .filter_map(|d| snapshot.points.get(&plan::resource::address::bucket(&b.name, &d.name)))
                    .filter(|c| c.unreachable.is_none())
                    .filter_map(|c| c.newest_usable().and_then(|p| p.time))
                    .max()
            })
            .unwrap_or(now - 3600);
        let point = rfc3339(newest);
        blocks.push(Block::Text(format!(
            "List the verified points, then restore the newest one from before the damage (here {point}, the newest verified point now) into {a}."
        )));
        let mut cmds = vec![command(&["drplan", "backups", path])];
        for b in &restorable {
            cmds.push(command(&["drplan", "restore", "--backup", &b.name, "--point", &point, "--to", a, path]));
        }
        blocks.push(Block::Commands(cmds));
        let explicit = plan::restore::Explicit { region: Some(active.clone()), backup: None };
        let opts = plan::Options { restore_only: Some(explicit), restore_point: Some(newest), ..options.clone() };
        blocks.push(steps(config, prior, Some(snapshot), &opts));
    }

    blocks.push(Block::Heading(format!("Cyber attack: an incident in {a}")));
    let since = rfc3339(now - 3600);
    blocks.push(Block::Text(format!(
        "Declare the incident with the time the attack began (here {since}), then fail over to {n}. The apply snapshots every volume of {a}'s instances first (copied out of the region), quarantines them, cordons {a}'s Nodes and fences its pods with a deny-all NetworkPolicy; nothing there is terminated or scaled down. Backups written since that time are suspect, the newest point from before it is restored into {n}, and retention is held. If {a} does not answer, add `--allow-unreachable`: its evidence and isolation wait for it. Close the incident once {a}'s pools have a new image (or with `--keep-instances`); the next apply lifts the isolation, and the snapshots stay."
    )));
    blocks.push(Block::Commands(vec![
        command(&[
            "drplan",
            "incident",
            "declare",
            "--region",
            a,
            "--since",
            &since,
            "--reason",
            "suspected compromise",
            path,
        ]),
        command(&["drplan", "failover", "--to", n, "--write", path]),
        command(&["drplan", "apply", path]),
        command(&["drplan", "backups", path]),
        command(&["drplan", "incident", "list", path]),
        command(&["drplan", "incident", "close", "inc-1", "--keep-instances", path]),
        command(&["drplan", "apply", path]),
    ]));
    let mut attacked = prior.clone();
    attacked.incidents.push(crate::incident::Incident {
        id: crate::incident::next_id(&prior.incidents),
        region: active.clone(),
        since: since.clone(),
        reason: "suspected compromise".into(),
        declared_by: String::new(),
        declared_at: rfc3339(now),
        isolate_serving: false,
        closed_at: None,
        closed_by: None,
        keep_instances: false,
        evidence: Vec::new(),
    });
    blocks.push(steps(&promoted, &attacked, Some(snapshot), &options));

    // Failback: to the region the last failover left, when state recorded one; otherwise
    // back here after a failover to the next region.
    let back_to = prior
        .history
        .failovers
        .last()
        .filter(|f| f.to == active)
        .and_then(|f| f.from.clone())
        .filter(|r| config.region(r).is_some_and(|r| r.role != Role::Active));
    // A watcher's failover is failed back on purpose only with `--fail-back`.
    let flag: &[&str] = if prior.override_.is_some() { &["--fail-back"] } else { &[] };
    match back_to {
        Some(home) => {
            let h = home.as_str();
            blocks.push(Block::Heading(format!("Failback: {a} → {h}")));
            blocks.push(Block::Text(format!(
                "The last failover moved from {h} to {a}. Once {h} is healthy and its replica caught up, fail back as a planned switchover."
            )));
            let mut failover = command(&["drplan", "failover", "--to", h, "--write"]);
            failover.extend(command(flag));
            failover.push(path.to_string());
            let mut apply = command(&["drplan", "apply"]);
            apply.extend(command(flag));
            apply.push(path.to_string());
            blocks.push(Block::Commands(vec![command(&["drplan", "status", path]), failover, apply]));
            if home == next {
                blocks.push(Block::Text("Its steps are the planned switchover's, above.".into()));
            } else {
                let opts = plan::Options { fail_back: true, ..options.clone() };
                blocks.push(steps(&with_roles(config, h, a), prior, Some(snapshot), &opts));
            }
        }
        None => {
            blocks.push(Block::Heading(format!("Failback: {n} → {a}")));
            blocks.push(Block::Text(format!(
                "After a failover to {n}, once {a} is healthy again, fail back the same way: a planned switchover. A watcher's failover is failed back on purpose with `--fail-back`."
            )));
            blocks.push(Block::Commands(vec![
                command(&["drplan", "status", path]),
                command(&["drplan", "failover", "--to", a, "--write", "--fail-back", path]),
                command(&["drplan", "apply", "--fail-back", path]),
            ]));
            // From the topology after the failover to `next`, converged.
            let converged = Prior {
                objects: plan::desired::desired(&promoted)
                    .into_iter()
                    .map(|r| (r.address.clone(), plan::Observed { resource: r, id: String::new() }))
                    .collect(),
                roles: promoted.regions.iter().map(|r| (r.name.clone(), r.role)).collect(),
                ..Prior::default()
            };
            blocks.push(steps(config, &converged, None, &options));
        }
    }
    blocks
}

fn testing(config: &Config, prior: &Prior, now: i64) -> Vec<Block> {
    let mut blocks = vec![Block::Text(match config.objectives.drill_every {
        Some(d) => format!(
            "Each standby and cold region is drilled at least every {} (`drplan drill --to REGION`): the failover rehearsed without moving traffic, its RTO measured.",
            duration_text(d.as_secs())
        ),
        None => "`objectives.drill_every` is not set: drills are not required at any interval.".into(),
    })];
    let overdue: Vec<String> = config
        .objectives
        .drill_every
        .map(|every| {
            config
                .regions
                .iter()
                .filter(|r| r.role != Role::Active)
                .filter(|r| {
                    let last = crate::drill::last_passed(&prior.drills, &r.name);
                    last.and_then(|d| crate::recovery::seconds_since(&d.started, now))
                        .is_none_or(|a| a > every.as_secs() as i64)
                })
                .map(|r| r.name.clone())
                .collect()
        })
        .unwrap_or_default();
    if !overdue.is_empty() {
        blocks.push(Block::Text(format!("Overdue: {}.", overdue.join(", "))));
    } else if config.objectives.drill_every.is_some() {
        blocks.push(Block::Text("Nothing is overdue.".into()));
    }
    blocks.push(drills_table(prior));
    blocks
}

fn drills_table(prior: &Prior) -> Block {
    if prior.drills.is_empty() {
        return Block::Text("No drill has been run.".into());
    }
    Block::Table {
        head: cells(["date", "drill", "region", "result", "measured RTO"]),
        rows: prior
            .drills
            .iter()
            .rev()
            .map(|d| {
                vec![
                    d.started.clone(),
                    d.id.clone(),
                    d.region.clone(),
                    d.result.clone(),
                    d.measured_rto_seconds.map_or("-".into(), duration_text),
                ]
            })
            .collect(),
    }
}

fn history(prior: &Prior) -> Vec<Block> {
    let mut blocks = vec![Block::Heading("Failovers".into())];
    let h = &prior.history;
    if h.failovers.is_empty() {
        blocks.push(Block::Text("No failover has been recorded.".into()));
    } else {
        blocks.push(Block::Table {
            head: cells(["date", "from", "to", "by", "downtime", "counted from"]),
            rows: h
                .failovers
                .iter()
                .rev()
                .map(|f| {
                    vec![
                        f.started.clone(),
                        f.from.clone().unwrap_or_else(|| "-".into()),
                        f.to.clone(),
                        f.by.clone(),
                        f.downtime_text(),
                        f.counted_from.clone(),
                    ]
                })
                .collect(),
        });
    }
    blocks.push(Block::Text(format!(
        "State keeps the newest {} failovers{}.",
        uptime::KEPT,
        if h.dropped > 0 { format!("; {} older ones were dropped", h.dropped) } else { String::new() }
    )));
    blocks.push(Block::Heading("Incidents".into()));
    let inc = incidents(prior);
    if inc.rows.is_empty() {
        blocks.push(Block::Text(format!("Incidents: {}.", inc.evidence)));
    } else {
        blocks.push(Block::Table { head: cells(["date", "region", "what", "state"]), rows: inc.rows });
    }
    blocks.push(Block::Heading("Drills".into()));
    blocks.push(drills_table(prior));
    blocks.push(Block::Text(format!(
        "State keeps the newest {} drills{}.",
        crate::drill::KEPT,
        if h.drills_dropped > 0 { format!("; {} older ones were dropped", h.drills_dropped) } else { String::new() }
    )));
    blocks
}

fn contacts(config: &Config) -> Vec<Block> {
    if config.contacts.is_empty() {
        return vec![Block::Text("No `contact` block is configured.".into())];
    }
    let opt = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
    vec![Block::Table {
        head: cells(["name", "role", "phone", "email"]),
        rows: config
            .contacts
            .iter()
            .map(|c| vec![c.name.clone(), opt(&c.role), opt(&c.phone), opt(&c.email)])
            .collect(),
    }]
}
