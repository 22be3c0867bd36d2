//! The plan engine: configuration + prior state + live snapshot → a reviewed, ordered plan.
//!
//! Pure: the snapshot and state come in as data, the time comes in as a number.

pub mod data;
pub mod desired;
pub mod diff;
pub mod doc;
pub mod graph;
pub mod hooks;
pub mod incident;
pub mod posture;
pub mod resource;
pub mod restore;
pub mod safety;
pub mod step;

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{Config, Role};
use crate::diagnostics::Diagnostic;
pub use diff::{Action, Change, Drift, DriftKind};
pub use graph::{Node, Step};
pub use posture::{Estimates, Posture};
pub use resource::{Attrs, Kind, Resource, Value};

/// An object as it exists (live) or as state recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub resource: Resource,
    /// The cloud's id (instance id, health check id, `zone/name/set-id` for a record).
    pub id: String,
}

/// What the providers saw, in bulk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub objects: BTreeMap<String, Observed>,
    /// Regions whose cloud or cluster could not be reached, with the reason.
    pub unreachable: BTreeMap<String, String>,
    /// Objects outside any region's cloud that could not be read (a bucket whose region is
    /// down, Cloud Storage during an outage), by address, with the reason. Like an
    /// unreachable region, they fall back on state and their actions are skipped; they never
    /// fail the refresh of everything else.
    pub unreachable_objects: BTreeMap<String, String>,
    /// Age in seconds of the newest object under each backup bucket's prefix.
    pub newest_backup_age: BTreeMap<String, u64>,
    /// The recovery points of each backup destination (by bucket address), when discovered.
    pub points: BTreeMap<String, crate::recovery::Catalog>,
    /// The last successful run of each backup CronJob (by address), seconds since the epoch,
    /// from its `status.lastSuccessfulTime`. Live only: never recorded in state nor diffed,
    /// so a backup running is not drift.
    pub backup_runs: BTreeMap<String, i64>,
    /// Each database replica's replication lag (by member address), as last published.
    /// Live only, like `backup_runs`.
    pub replication: BTreeMap<String, data::Lag>,
}

/// The prior state, as far as planning needs it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prior {
    pub objects: BTreeMap<String, Observed>,
    /// The role each region had when drplan last applied.
    pub roles: BTreeMap<String, Role>,
    /// Regions declared lost by an apply with `--allow-unreachable`, with the actions owed
    /// to them (the fence: scale down to the new role, suspend the backup schedule).
    pub lost: BTreeMap<String, Lost>,
    /// The drills run, oldest first (the newest [`crate::drill::KEPT`]).
    pub drills: Vec<crate::drill::Drill>,
    /// The failover a watcher made, until a person accepts it (`failover --to ... --write`)
    /// or fails back on purpose (`--fail-back`).
    pub override_: Option<crate::watch::Override>,
    /// A planned failover under way (watchers observe only).
    pub switchover: Option<crate::watch::Switchover>,
    /// What state keeps about each database (by name).
    pub databases: BTreeMap<String, data::Record>,
    /// The incidents declared, open and closed.
    pub incidents: Vec<crate::incident::Incident>,
    /// The failovers carried out, with the downtime each took (the uptime budget's).
    pub history: crate::uptime::History,
}

/// A region declared lost while it could not be reached, and what it is still owed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lost {
    /// When the apply that declared it lost ran (RFC 3339, the caller's clock).
    pub since: String,
    /// The addresses of the actions skipped in it, still to be carried out when it returns.
    pub owed: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only changes at these addresses, or under them (`region.us-east-1`), are planned.
    pub targets: Vec<String>,
    /// Per-action estimates for the RTO; `None` takes them from the configuration.
    pub estimates: Option<Estimates>,
    /// Now, in seconds since the epoch: recovery points' ages are measured from it.
    pub now: Option<i64>,
    /// `--restore-point`: a promotion restores the newest usable point at or before it.
    pub restore_point: Option<i64>,
    /// `--accept-data-loss`: a recovery point older than the RPO is a warning, not an error.
    pub accept_data_loss: bool,
    /// `drplan restore`: the plan is this restore alone, nothing else the configuration wants.
    pub restore_only: Option<restore::Explicit>,
    /// `--allow-suspect`: a restore asked for by time (`--restore-point`) may use a point
    /// written during an open incident.
    pub allow_suspect: bool,
    /// `--fail-back`: a configuration naming the region a watcher failed over from is planned
    /// (a deliberate failback) instead of refused.
    pub fail_back: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleTransition {
    pub region: String,
    pub from: Role,
    pub to: Role,
}

impl RoleTransition {
    /// The verb reviewers look for.
    pub fn verb(&self) -> &'static str {
        match (self.from, self.to) {
            (_, Role::Active) => "promote",
            (Role::Active, _) => "demote",
            (Role::Cold, Role::Standby) => "warm up",
            (Role::Standby, Role::Cold) => "retire",
            _ => "change",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub project: String,
    pub changes: Vec<Change>,
    pub drift: Vec<Drift>,
    pub forget: Vec<String>,
    pub transitions: Vec<RoleTransition>,
    /// The actions in execution order, each with what it waits for.
    pub graph: Vec<Node>,
    pub unreachable: BTreeMap<String, String>,
    pub unreachable_objects: BTreeMap<String, String>,
    /// Regions declared lost and still owed their fence, first thing when they are back.
    pub fences: Vec<Fence>,
    /// The restores this plan runs, with the recovery point each uses.
    pub restores: Vec<restore::RestorePlan>,
    /// The databases whose writer this plan moves, with the data-loss window of each.
    pub switches: Vec<data::Switch>,
    /// Safety rule violations (errors refuse apply) and warnings.
    pub safety: Vec<Diagnostic>,
    pub posture: Posture,
    /// Roles after the plan, for summaries.
    pub roles: BTreeMap<String, Role>,
    /// Whether the plan looked at the clouds (false with `--refresh=false`).
    pub refreshed: bool,
    /// The id of the failover this plan makes, which its hooks' Jobs carry.
    pub failover_id: Option<String>,
    /// The incidents open.
    pub incidents: Vec<crate::incident::Incident>,
}

/// A fence still owed to a region declared lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub region: String,
    pub since: String,
    /// What the apply that declared it lost skipped there.
    pub owed: Vec<String>,
    /// Whether the region answers again: then this plan carries the fence out (its
    /// `actions`, first in the region) and apply clears the record.
    pub reachable: bool,
    /// Every change the region needs now, when reachable (all of them, even those a
    /// `--target` leaves out of this plan: the fence is done only when they all are).
    pub actions: Vec<String>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        // A returned region's fence is a change even when nothing is left to do there: the
        // apply records that it is done.
        !self.changes.is_empty() || !self.forget.is_empty() || self.fences.iter().any(|f| f.reachable)
    }

    /// Whether apply may run this plan: no safety errors, and no skipped action unless the
    /// user declared the unreachable regions lost.
    pub fn can_apply(&self, allow_unreachable: bool) -> bool {
        // Declaring the unreachable regions lost also accepts that a schedule there may
        // still run: that is the split-brain rule's only way out.
        let blocking = |d: &Diagnostic| d.is_error() && !(allow_unreachable && d.code == crate::Code::SplitBrain);
        // A region declared lost once stays lost until it answers: what it is owed waits
        // for it without the flag being given again.
        let still_lost: BTreeSet<&str> =
            self.fences.iter().filter(|f| !f.reachable).map(|f| f.region.as_str()).collect();
        let waits_for_lost = |n: &Node| match &n.step {
            Step::Change(i) => self.changes[*i].region.as_deref().is_some_and(|r| still_lost.contains(r)),
            Step::HealthGate { .. } | Step::Barrier { .. } => false,
        };
        !self.safety.iter().any(blocking)
            && (allow_unreachable || self.graph.iter().all(|n| n.skipped.is_none() || waits_for_lost(n)))
    }
}

/// Plans `config` against the prior state and, unless `live` is `None` (no refresh), what
/// the providers saw. `now` is not needed: ages in the snapshot are already relative.
pub fn plan(
    config: &Config,
    prior: &Prior,
    live: Option<&Snapshot>,
    options: &Options,
) -> Result<Plan, graph::CycleError> {
    let mut desired = desired::desired(config);
    incident::adjust_desired(&mut desired, config, &prior.incidents);
    let mut d = diff::diff(&desired, prior, live);
    // A lost region's fence is every change it needs, whatever `--target` leaves in this
    // plan: a targeted apply that does part of it must not record it done.
    let owed_now: BTreeMap<&str, Vec<String>> = prior
        .lost
        .keys()
        .map(|r| {
            let there = d.changes.iter().filter(|c| c.region.as_deref() == Some(r.as_str()));
            (r.as_str(), there.map(|c| c.address.clone()).collect())
        })
        .collect();
    if !options.targets.is_empty() {
        d.changes.retain(|c| options.targets.iter().any(|t| target_matches(t, &c.address)));
        d.forget.retain(|a| options.targets.iter().any(|t| target_matches(t, a)));
    }
    // A promotion from a role a backup's `restore` lists restores its recovery point first.
    let restores = restore::plan(config, prior, live, options);
    if options.restore_only.is_some() {
        d.changes.clear();
        d.forget.clear();
    }
    // The once-planned steps below are kept to `--target` as the diffed ones are.
    let targeted =
        |c: &&Change| options.targets.is_empty() || options.targets.iter().any(|t| target_matches(t, &c.address));
    d.changes.extend(restores.changes.iter().filter(targeted).cloned());
    // A database whose writer moves: its writers stopped and its replica caught up first.
    let data = data::plan(config, prior, live, options);
    if options.restore_only.is_none() {
        d.changes.extend(data.changes.iter().filter(targeted).cloned());
    }
    // The team's hooks at their points of the failover.
    let hooks = hooks::plan(config, prior, options);
    d.changes.extend(hooks.changes.iter().filter(targeted).cloned());
    // An open incident's evidence and isolation; a closed one's lifted.
    let incidents = incident::plan(config, prior, live);
    if options.restore_only.is_none() {
        d.changes.extend(incidents.changes.iter().filter(targeted).cloned());
        d.forget.extend(incidents.forget.iter().cloned());
    }
    // Nothing destroys evidence in a region under an open incident.
    let held = incident::hold(&mut d.changes, &prior.incidents);
    d.changes.sort_by(|a, b| resource::natural_cmp(&a.address, &b.address));
    let unreachable = live.map(|l| l.unreachable.clone()).unwrap_or_default();
    let unreachable_objects = live.map(|l| l.unreachable_objects.clone()).unwrap_or_default();
    // drplan scales Deployments, it never authors them: one the clusters were read for and
    // did not have is either nothing to do (wanted at zero) or a problem to say up front.
    let mut missing = Vec::new();
    if live.is_some() {
        d.changes.retain(|c| {
            let absent = !c.kind.spec().owned && c.action == Action::Create;
            let reachable = c.region.as_ref().is_some_and(|r| !unreachable.contains_key(r));
            if !(absent && reachable) {
                return true;
            }
            if c.after.as_ref().and_then(|a| a.get("replicas")) != Some(&Value::Int(0)) {
                missing.push(c.clone());
            }
            false
        });
    }
    let serving = config.active_region().map(|r| r.name.as_str());
    // Without a refresh nothing says a lost region is back: its fence waits for one.
    let fences: Vec<Fence> = prior
        .lost
        .iter()
        .map(|(region, lost)| {
            let reachable = live.is_some() && !unreachable.contains_key(region);
            Fence {
                region: region.clone(),
                since: lost.since.clone(),
                owed: lost.owed.clone(),
                reachable,
                actions: match reachable {
                    true => owed_now.get(region.as_str()).cloned().unwrap_or_default(),
                    false => Vec::new(),
                },
            }
        })
        .collect();
    let fenced: BTreeSet<String> = fences.iter().filter(|f| f.reachable).map(|f| f.region.clone()).collect();
    let writers = writers_of(config);
    let cx = graph::Context {
        serving,
        unreachable: &unreachable,
        unreachable_objects: &unreachable_objects,
        fenced: &fenced,
        writers: &writers,
    };
    let graph = graph::build(&d.changes, cx)?;
    let transitions: Vec<RoleTransition> = config
        .regions
        .iter()
        .filter_map(|r| {
            prior.roles.get(&r.name).filter(|from| **from != r.role).map(|from| RoleTransition {
                region: r.name.clone(),
                from: *from,
                to: r.role,
            })
        })
        .collect();
    let roles: BTreeMap<String, Role> = config.regions.iter().map(|r| (r.name.clone(), r.role)).collect();
    let mut safety = safety::check(config, prior, &d.changes, &graph, &desired, !options.targets.is_empty());
    safety.extend(restores.findings);
    safety.extend(data.findings);
    safety.extend(hooks.findings);
    safety.extend(incidents.findings);
    safety.extend(held);
    // After an automatic failover, a configuration that still names the old active would
    // fail back by accident: refused unless asked for.
    if let (Some(o), Some(active)) = (&prior.override_, config.active_region())
        && active.name != o.active
        && !options.fail_back
    {
        safety.push(
            Diagnostic::error(
                crate::Code::FailoverOverride,
                format!("{} failed over to {} at {} ({}); this configuration still names {} active", o.by, o.active, o.at, o.why, active.name),
            )
            .help(format!("accept it: `drplan failover --to {} --write` (then review and commit the edit); or fail back on purpose, with its health gate: plan or apply with `--fail-back`", o.active)),
        );
    }
    // A drill killed outright left its region scaled up (and maybe a temporary check): this
    // plan would take it back down, but the drill's record says to finish it properly.
    if let Some(d) = crate::drill::in_progress(&prior.drills) {
        safety.push(
            Diagnostic::warning(
                crate::Code::DrillInProgress,
                format!("drill {} of {} started {} did not finish", d.id, d.region, d.started),
            )
            .help(format!("its teardown is owed: run `drplan drill --cleanup` to return {} to its declared role and record the drill as abandoned", d.region)),
        );
    }
    for c in missing {
        let attr = |k: &str| match c.after.as_ref().and_then(|a| a.get(k)) {
            Some(Value::Str(s)) => s.clone(),
            _ => String::new(),
        };
        safety.push(Diagnostic::error(crate::Code::MissingDeployment, format!(
            "deployment `{}` not found in namespace `{}` of context `{}`",
            attr("deployment"),
            attr("namespace"),
            attr("context")
        )).help(format!(
            "drplan scales Deployments that your deploy pipeline creates; deploy `{}` to that cluster first ({} wants {} replicas)",
            attr("deployment"),
            c.address,
            c.after.as_ref().and_then(|a| a.get("replicas")).map(ToString::to_string).unwrap_or_default()
        )));
    }
    let estimates = options.estimates.clone().unwrap_or_else(|| Estimates::from_config(config));
    let posture = posture::assess(config, &desired, prior, live, &d.changes, &graph, &estimates, options.now)?;
    // A failover expected to take longer than the downtime the uptime objective has left.
    if let (Some(rto), Some(uptime), Some(now)) =
        (posture.rto.as_ref().filter(|r| !r.hypothetical), config.objectives.uptime, options.now)
    {
        let budget = crate::uptime::budget(uptime, &prior.history, now);
        if rto.estimate.as_secs() as i64 > budget.remaining_seconds {
            safety.push(
                Diagnostic::warning(
                    crate::Code::UptimeBudget,
                    format!(
                        "this failover to {} is estimated at {}, more than the uptime budget has left: {}",
                        rto.to_region,
                        crate::uptime::duration_text(rto.estimate.as_secs()),
                        budget.text()
                    ),
                )
                .help("the objective will likely be missed for the year: fail over anyway if it is needed, and say so to whoever owns `objectives.uptime`"),
            );
        }
    }
    Ok(Plan {
        project: config.project.clone(),
        changes: d.changes,
        drift: d.drift,
        forget: d.forget,
        transitions,
        graph,
        unreachable,
        unreachable_objects,
        fences,
        restores: restores.plans,
        switches: data.switches,
        safety,
        posture,
        roles,
        refreshed: live.is_some(),
        failover_id: hooks.failover_id,
        incidents: crate::incident::open(&prior.incidents).cloned().collect(),
    })
}

/// The components that write to a database: their Deployments start only where the writer is.
pub fn writers_of(config: &Config) -> BTreeSet<String> {
    config.databases.iter().flat_map(|d| d.writers.iter().cloned()).collect()
}

/// `--target` matches an address itself or everything under it (`region.us-east-1`). The
/// one place targets are matched: planning and the check that a target names something.
pub fn target_matches(target: &str, address: &str) -> bool {
    address == target || address.strip_prefix(target).is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// Addresses of desired resources, for validating `--target` values.
pub fn known_addresses(config: &Config, prior: &Prior) -> BTreeSet<String> {
    desired::desired(config).into_iter().map(|r| r.address).chain(prior.objects.keys().cloned()).collect()
}

/// What keeps a plan document from being applied, judged again from the document itself
/// rather than from its `applyable` flag, which a hand-edited saved plan could carry: the
/// safety rules re-run on its changes against the configuration and state it is applied
/// with, its action graph compared with the one the ordering rules give for those changes,
/// and actions it skips in regions not declared lost. Each reason is a sentence; none
/// means the document may run. Policies are the shell's to evaluate (`policy.rs`).
pub fn recheck(config: &Config, prior: &Prior, doc: &doc::PlanDoc, allow_unreachable: bool) -> Vec<String> {
    let mut out = Vec::new();
    let changes: Vec<Change> = match doc.resource_changes.iter().map(|rc| rc.to_change()).collect() {
        Ok(c) => c,
        Err(e) => return vec![format!("its changes cannot be read: {e}")],
    };
    let fenced: BTreeSet<String> = doc.fences.iter().filter(|f| f.reachable).map(|f| f.region.clone()).collect();
    let writers = writers_of(config);
    let cx = graph::Context {
        serving: config.active_region().map(|r| r.name.as_str()),
        unreachable: &doc.unreachable,
        unreachable_objects: &doc.unreachable_objects,
        fenced: &fenced,
        writers: &writers,
    };
    let graph = match graph::build(&changes, cx) {
        Ok(g) => g,
        Err(e) => return vec![e.to_string()],
    };
    let declared = allow_unreachable || doc.declares_lost;
    let mut desired = desired::desired(config);
    incident::adjust_desired(&mut desired, config, &prior.incidents);
    for d in safety::check(config, prior, &changes, &graph, &desired, false) {
        if d.is_error() && !(declared && d.code == crate::Code::SplitBrain) {
            out.push(format!("{} ({})", d.message, d.code.as_str()));
        }
    }
    // The order is the safety of a failover: traffic behind its gate, capacity down after.
    let expected: Vec<(&str, Vec<&str>)> =
        graph.iter().map(|n| (n.id.as_str(), n.depends_on.iter().map(|d| graph[*d].id.as_str()).collect())).collect();
    let actual: Vec<(&str, Vec<&str>)> =
        doc.actions.iter().map(|a| (a.id.as_str(), a.depends_on.iter().map(String::as_str).collect())).collect();
    if sorted_edges(expected) != sorted_edges(actual) {
        out.push("its actions or their order differ from what drplan's ordering rules give for its changes".into());
    }
    let still_lost: BTreeSet<&str> = doc.fences.iter().filter(|f| !f.reachable).map(|f| f.region.as_str()).collect();
    let region_of: BTreeMap<&str, Option<&str>> =
        changes.iter().map(|c| (c.address.as_str(), c.region.as_deref())).collect();
    if !declared
        && let Some(a) = doc.actions.iter().find(|a| {
            a.skipped.is_some()
                && !region_of.get(a.id.as_str()).copied().flatten().is_some_and(|r| still_lost.contains(r))
        })
    {
        out.push(format!(
            "it skips {} ({}) and the unreachable regions are not declared lost",
            a.id,
            a.skipped.as_deref().unwrap_or_default()
        ));
    }
    // What the plan itself found stays found: a restore past the RPO, a drill owed.
    for s in doc.safety.iter().filter(|s| s.severity == "error") {
        let waived = declared && s.code == crate::Code::SplitBrain.as_str();
        let line = format!("{} ({})", s.message, s.code);
        if !waived && !out.contains(&line) {
            out.push(line);
        }
    }
    out
}

/// Edges in a comparable order: by action, each action's dependencies sorted.
fn sorted_edges<'a>(mut v: Vec<(&'a str, Vec<&'a str>)>) -> Vec<(&'a str, Vec<&'a str>)> {
    for (_, d) in &mut v {
        d.sort_unstable();
    }
    v.sort_unstable();
    v
}
