//! The data tier in the plan: each database's members (the active region's the writer, each
//! standby's a replica of it), and the steps of a change of writer, planned once by the
//! transition that needs them. With the old writer's region answering ("graceful"), its
//! writers stop and the target's replica catches up before it is promoted, so nothing is
//! lost. With it dark ("ungraceful"), no catch-up is possible: the plan shows the
//! data-loss window (the replica's last lag, plus the time from that sample to the last
//! moment the old writer was seen alive) and refuses one past the database's budget unless
//! a person accepts it.
//!
//! Nothing here deletes a database: an old writer is renamed and kept (`step::Spec::kept`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::diff::{Action, Change};
use super::resource::{Attrs, Kind, Resource, Value, address, attrs};
use super::{Options, Prior, Snapshot};
use crate::config::{Config, Database, MemberKind, Region, Role};
use crate::diagnostics::{Code, Diagnostic};

/// A replica's replication lag as last published (live only: never recorded nor diffed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lag {
    /// Seconds behind the writer, rounded up; `None` when unknown (no sample, or replication
    /// not running). Unknown is never 0.
    pub seconds: Option<u64>,
    /// When the sample was taken (seconds since the epoch); `None` without one.
    pub at: Option<i64>,
}

/// What state keeps about one database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Record {
    /// The last time a refresh saw the writer alive (RFC 3339): the end of the data-loss
    /// window if its region goes dark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer_seen: Option<String>,
    /// Every promotion, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub promotions: Vec<Promotion>,
    /// Old writers and replicas renamed and kept instead of deleted, until a person removes
    /// them (`drplan state forget-kept`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<Kept>,
}

/// One promotion of a replica to writer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Promotion {
    pub region: String,
    /// The region whose writer it replaced, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// When it finished (RFC 3339).
    pub at: String,
    /// `graceful` (writes stopped, caught up) or `ungraceful` (the old writer dark).
    pub how: String,
    /// The data-loss window taken, in seconds: 0 after a catch-up; `None` when unknown and
    /// accepted by a person.
    pub window_seconds: Option<u64>,
    /// Accepted with `--accept-data-loss`.
    #[serde(default)]
    pub accepted: bool,
}

/// An instance drplan renamed instead of deleting it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Kept {
    pub region: String,
    /// Its name now.
    pub identifier: String,
    /// Its name before.
    pub was: String,
    /// Whether it was the writer (it may hold the newest writes).
    pub writer: bool,
    /// When it was renamed (RFC 3339).
    pub since: String,
}

/// The name an instance is renamed to when it is fenced: deterministic for one plan and
/// address (a resumed apply renames to the same name, or finds it done), within RDS's 63
/// characters.
pub fn kept_name(identifier: &str, token: &str) -> String {
    let suffix = format!("-kept-{}", &token[..token.len().min(8)]);
    let room = 63usize.saturating_sub(suffix.len());
    let stem: String = identifier.chars().take(room).collect();
    format!("{}{suffix}", stem.trim_end_matches('-'))
}

/// Where a member's steps are performed: the AWS account, or the region's cluster.
fn performer(kind: MemberKind) -> &'static str {
    match kind {
        MemberKind::RdsInstance | MemberKind::AuroraCluster => "aws",
        MemberKind::CloudNativePg => "kubernetes",
    }
}

/// `region/identifier`: how a replica names its source.
pub fn source_name(region: &str, identifier: &str) -> String {
    format!("{region}/{identifier}")
}

fn member_attrs(db: &Database, region: &Region) -> Option<Attrs> {
    let m = region.member(&db.name)?;
    let mut a = attrs([
        ("cloud", performer(m.kind).into()),
        ("kind", m.kind.as_str().into()),
        ("engine", db.engine.as_str().into()),
        ("identifier", m.identifier.as_str().into()),
    ]);
    if let (MemberKind::CloudNativePg, Some(k)) = (m.kind, &region.kubernetes) {
        a.insert("context".into(), k.context.as_str().into());
        a.insert("namespace".into(), k.namespace.as_str().into());
    }
    Some(a)
}

/// Each database's members: the active region's is the writer, each standby's a replica
/// of it. A cold region holds none (validation refuses one).
pub fn members(config: &Config) -> Vec<Resource> {
    let mut out = Vec::new();
    let Some(active) = config.active_region() else { return out };
    for db in &config.databases {
        // Without a writer declared (a region promoted from cold, its data restored) the
        // members are left alone.
        let Some(writer) = active.member(&db.name).map(|m| source_name(&active.name, &m.identifier)) else {
            continue;
        };
        for region in config.regions.iter().filter(|r| r.role != Role::Cold) {
            let Some(mut a) = member_attrs(db, region) else { continue };
            if region.role == Role::Active {
                a.insert("role".into(), "writer".into());
            } else {
                a.insert("role".into(), "replica".into());
                // The writer's source is left out: a replica promoted in place is an update.
                a.insert("source".into(), writer.clone().into());
            }
            out.push(Resource {
                address: address::database(&region.name, &db.name),
                kind: Kind::Database,
                region: Some(region.name.clone()),
                attrs: a,
            });
        }
    }
    out
}

/// One database changing writer in this plan, as the reviewer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    pub database: String,
    /// The region whose replica is promoted.
    pub to: String,
    /// The region of the writer it replaces, when known.
    pub from: Option<String>,
    /// The old writer's region answers: writes stop and the replica catches up first.
    pub graceful: bool,
    /// The replica's last lag sample (ungraceful only).
    pub lag: Lag,
    /// The last moment the old writer was seen alive (seconds since the epoch).
    pub seen: Option<i64>,
    /// The data-loss window: 0 when graceful; `None` when unknown.
    pub window: Option<u64>,
    /// The database's budget (`max_lag`, or the RPO), in seconds.
    pub budget: Option<u64>,
    /// Past the budget (or unknown) and accepted with `--accept-data-loss`.
    pub accepted: bool,
    /// The writers stopped in the old region, with their replicas before.
    pub writers: BTreeMap<String, i64>,
    /// The open incident on the old writer's region: its writers are cut off by the
    /// isolation rather than stopped, and nothing is waited for from it.
    pub incident: Option<String>,
}

impl Switch {
    /// Whether the window is known and within the budget.
    pub fn within_budget(&self) -> bool {
        matches!((self.window, self.budget), (Some(w), Some(b)) if w <= b)
    }
}

/// What the data tier adds to a plan.
#[derive(Debug, Default)]
pub struct DataPlan {
    pub changes: Vec<Change>,
    pub findings: Vec<Diagnostic>,
    pub switches: Vec<Switch>,
}

/// The once-planned steps of every database whose writer moves to the active region.
pub fn plan(config: &Config, prior: &Prior, live: Option<&Snapshot>, options: &Options) -> DataPlan {
    let mut out = DataPlan::default();
    // Without a refresh nothing says which member is the writer now.
    let (Some(live), Some(target)) = (live, config.active_region()) else { return out };
    for db in &config.databases {
        let Some(member) = target.member(&db.name) else { continue };
        let at_target = address::database(&target.name, &db.name);
        if live.unreachable.contains_key(&target.name) {
            continue;
        }
        let Some(found) = live.objects.get(&at_target) else {
            out.findings.push(
                Diagnostic::error(Code::Replication, format!("database `{}` has no member `{}` in {}", db.name, member.identifier, target.name))
                    .help(format!("the active region holds the writer, and drplan never creates a writer from nothing: create `{}` (or restore it), or correct `{}` in region `{}`", member.identifier, member.kind.as_str(), target.name)),
            );
            continue;
        };
        if found.resource.str("role") == Some("writer") {
            continue;
        }
        let from = found.resource.str("source").and_then(|s| s.split_once('/')).map(|(r, _)| r.to_string());
        let graceful = from.as_ref().is_some_and(|r| {
            !live.unreachable.contains_key(r) && live.objects.contains_key(&address::database(r, &db.name))
        });
        let budget = db.max_lag.map(|d| d.as_secs());
        let mut switch = Switch {
            database: db.name.clone(),
            to: target.name.clone(),
            from: from.clone(),
            graceful,
            lag: Lag::default(),
            seen: None,
            window: None,
            budget,
            accepted: false,
            writers: BTreeMap::new(),
            incident: None,
        };
        // The old writer's region is compromised: its writes since the incident began are
        // not trusted, its writers are evidence (never scaled to zero), and the data is
        // restored from the newest clean point after the promotion.
        if let Some(i) = from.as_deref().and_then(|r| crate::incident::open_in(&prior.incidents, r)) {
            switch.graceful = false;
            switch.incident = Some(i.id.clone());
            switch.window = options.now.map(|now| (now - i.since_seconds()).max(0) as u64);
            out.findings.push(
                Diagnostic::warning(Code::DataLoss, format!("promoting {} ({}) without waiting for {}, under incident {}: writes to `{}` since {} are not trusted", target.name, member.identifier, i.region, i.id, db.name, i.since))
                    .help("the old writer is cut off by the region's isolation, not stopped; the restore from before the incident replaces what replication carried over"),
            );
            out.switches.push(switch);
            continue;
        }
        let mut catch_up = member_attrs(db, target).unwrap_or_default();
        catch_up.insert("database".into(), db.name.as_str().into());
        catch_up.insert("source".into(), found.resource.str("source").unwrap_or_default().into());
        catch_up.insert("timeout_seconds".into(), (db.catch_up_timeout.as_secs() as i64).into());
        match (&from, graceful) {
            (Some(old), true) => {
                let old_region = config.region(old);
                // The writers' replicas before the stop: as recorded by a switchover this
                // resumes (they are at 0 now), else as they run.
                let recorded = prior.switchover.as_ref().filter(|s| s.to == target.name).map(|s| &s.writers);
                for w in &db.writers {
                    let a = address::workload(old, w);
                    let running = live.objects.get(&a).and_then(|o| o.resource.int("replicas"));
                    let count = recorded.and_then(|r| r.get(&a).copied()).or(running);
                    if let Some(n) = count {
                        switch.writers.insert(w.clone(), n);
                    }
                }
                match old_region.and_then(|r| r.kubernetes.as_ref()) {
                    Some(k) if !switch.writers.is_empty() => {
                        let list: Vec<String> = switch.writers.iter().map(|(w, n)| format!("{w}={n}")).collect();
                        out.changes.push(once(
                            Kind::StopWrites,
                            address::stop_writes(old, &db.name),
                            old,
                            attrs([
                                ("database", db.name.as_str().into()),
                                ("context", k.context.as_str().into()),
                                ("namespace", k.namespace.as_str().into()),
                                ("workloads", list.join(",").into()),
                            ]),
                        ));
                    }
                    _ => out.findings.push(
                        Diagnostic::warning(Code::DataLoss, format!("nothing stops writes to `{}` in {old} before the promotion", db.name))
                            .help(format!("list the components that write to it in `writers` (and give region `{old}` a `kubernetes` block): they are scaled to 0 there before {} is promoted, so the catch-up can finish", target.name)),
                    ),
                }
                switch.window = Some(0);
                out.changes.push(once(
                    Kind::CatchUp,
                    address::catch_up(&target.name, &db.name),
                    &target.name,
                    catch_up,
                ));
            }
            _ => {
                // The old writer is dark: what the replica lacks is its last lag, plus
                // whatever was written between that sample and the writer's last sign of life.
                let lag = live.replication.get(&at_target).copied().unwrap_or_default();
                let seen = prior
                    .databases
                    .get(&db.name)
                    .and_then(|r| r.writer_seen.as_deref())
                    .and_then(crate::recovery::parse_rfc3339);
                switch.lag = lag;
                switch.seen = seen;
                switch.window = match (lag.seconds, lag.at) {
                    (Some(s), Some(at)) => Some(s + seen.map_or(0, |seen| (seen - at).max(0) as u64)),
                    _ => None,
                };
                if !switch.within_budget() {
                    let shown = switch
                        .window
                        .map_or("unknown".to_string(), |w| crate::config::Duration::from_secs(w).to_string());
                    let budget_text = budget
                        .map_or("no budget (neither `max_lag` nor `objectives.rpo` is set)".to_string(), |b| {
                            format!("the budget of {}", crate::config::Duration::from_secs(b))
                        });
                    let message = format!(
                        "promoting {} ({}) may lose {} of writes to `{}`, past {budget_text}",
                        target.name, member.identifier, shown, db.name
                    );
                    switch.accepted = options.accept_data_loss;
                    out.findings.push(match options.accept_data_loss {
                        true => Diagnostic::warning(Code::DataLoss, format!("{message}: accepted with `--accept-data-loss`")),
                        false => Diagnostic::error(Code::DataLoss, message).help(format!(
                            "{} cannot be reached, so its last writes cannot be waited for; to promote anyway, apply with `--accept-data-loss` (the acceptance holds for this window only); or wait for {} to answer and fail over gracefully",
                            from.as_deref().unwrap_or("the old writer's region"),
                            from.as_deref().unwrap_or("it")
                        )),
                    });
                }
            }
        }
        out.switches.push(switch);
    }
    out
}

fn once(kind: Kind, address: String, region: &str, after: Attrs) -> Change {
    Change {
        address,
        kind,
        region: Some(region.to_string()),
        action: Action::Create,
        before: None,
        after: Some(after),
        id: None,
        replace_paths: Vec::new(),
    }
}

/// The workloads a stop-writes step scales, with their replicas before: `api=3,ledger=2`.
pub fn parse_workloads(list: &str) -> Vec<(String, i64)> {
    list.split(',')
        .filter_map(|w| w.split_once('='))
        .filter_map(|(w, n)| Some((w.trim().to_string(), n.trim().parse().ok()?)))
        .collect()
}

impl Value {
    /// A string attribute's text, if it is one.
    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// How one standby's replica stands against its database's budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaCheck {
    pub database: String,
    pub region: String,
    pub identifier: String,
    /// Its lag as last published.
    pub lag: Lag,
    pub budget: Option<u64>,
    /// What is wrong, when something is: missing, not replicating from the writer, lag
    /// unknown or past the budget.
    pub problem: Option<String>,
}

impl ReplicaCheck {
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }

    /// `ledger 2s behind (budget 30s)`, or the problem.
    pub fn text(&self) -> String {
        let dur = |s: u64| crate::config::Duration::from_secs(s).to_string();
        match (&self.problem, self.lag.seconds) {
            (Some(p), _) => format!("{} {p}", self.database),
            (None, Some(s)) => format!(
                "{} {} behind{}",
                self.database,
                dur(s),
                self.budget.map(|b| format!(" (budget {})", dur(b))).unwrap_or_default()
            ),
            (None, None) => format!("{} lag unknown", self.database),
        }
    }
}

/// Every standby's replica of every database, judged against the database's budget: what a
/// failover to that standby could lose now. `live` is what a refresh saw.
pub fn replica_checks(config: &Config, live: &Snapshot) -> Vec<ReplicaCheck> {
    let wanted = members(config);
    let mut out = Vec::new();
    for want in wanted.iter().filter(|m| m.str("role") == Some("replica")) {
        let (Some(region), Some(database)) = (want.region.as_deref(), want.address.rsplit('.').next()) else {
            continue;
        };
        if live.unreachable.contains_key(region) {
            continue;
        }
        let budget = config.database(database).and_then(|d| d.max_lag).map(|d| d.as_secs());
        let lag = live.replication.get(&want.address).copied().unwrap_or_default();
        let dur = |s: u64| crate::config::Duration::from_secs(s).to_string();
        let problem = match live.objects.get(&want.address) {
            None => Some(format!("replica `{}` does not exist", want.str("identifier").unwrap_or_default())),
            Some(o) if o.resource.str("source") != want.str("source") => Some(format!(
                "replica `{}` does not replicate from the writer {} (its source: {})",
                want.str("identifier").unwrap_or_default(),
                want.str("source").unwrap_or_default(),
                o.resource.str("source").unwrap_or("none: it is a writer")
            )),
            Some(_) => match (lag.seconds, budget) {
                (None, _) => Some("lag unknown (no recent sample): a failover could lose any amount".to_string()),
                (Some(s), Some(b)) if s > b => Some(format!("{} behind, past its budget of {}", dur(s), dur(b))),
                _ => None,
            },
        };
        out.push(ReplicaCheck {
            database: database.to_string(),
            region: region.to_string(),
            identifier: want.str("identifier").unwrap_or_default().to_string(),
            lag,
            budget,
            problem,
        });
    }
    out
}
