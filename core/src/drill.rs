//! DR drills: a rehearsal of a failover to a standby or cold region that runs only the
//! serving side there (capacity up, optionally a restore into scratch, workloads up, the
//! region's health gate), measures each step, and never moves DNS, scales the active region
//! down or moves the backup schedule. Teardown then returns the region to its declared role.
//!
//! Pure: what a drill plans ([`plan`]), the record it leaves in state ([`Drill`]), the
//! measured RTO, and the report. Running it is the engine's (`drplan::drill`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{Config, Role};
use crate::diagnostics::{Code, Diagnostic};
use crate::plan::diff::{self, Action, Change};
use crate::plan::graph::{self, Node, Step};
use crate::plan::resource::{Kind, Value, address};
use crate::plan::step::{self, Planned};
use crate::plan::{Options, Plan, Prior, RoleTransition, Snapshot, desired, restore};

/// The version of the drill report (`drplan drill --json`).
pub const FORMAT_VERSION: &str = "1.1";

/// How many drill records state keeps (the newest).
pub const KEPT: usize = 20;

/// Results of a drill.
pub const RUNNING: &str = "running";
pub const PASSED: &str = "passed";
pub const FAILED: &str = "failed";
pub const INTERRUPTED: &str = "interrupted";
/// Killed outright, then torn down by `drplan drill --cleanup`.
pub const ABANDONED: &str = "abandoned";

/// The steps a drill measures, in order.
pub const CAPACITY: &str = "capacity ready";
pub const RESTORE: &str = "restore done";
pub const WORKLOADS: &str = "workloads scaled";
pub const GATE: &str = "gate passed";
pub const TEARDOWN: &str = "teardown";

/// One drill, as recorded in state and reported. State keeps it as written here: a field
/// added is a state format change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Drill {
    pub id: String,
    pub region: String,
    /// The role the region was drilled from.
    pub role: String,
    pub restore: bool,
    /// RFC 3339.
    pub started: String,
    pub finished: Option<String>,
    /// `running` (in progress, or killed outright), `passed`, `failed`, `interrupted`,
    /// `abandoned` (cleaned up by `drill --cleanup`).
    pub result: String,
    pub steps: Vec<DrillStep>,
    /// Time to gate passed plus the DNS move the drill did not make (TTL + the `dns` estimate).
    pub measured_rto_seconds: Option<u64>,
    /// The plan's estimate of a failover to the region, for comparison.
    pub estimate_seconds: Option<u64>,
    pub rto_objective_seconds: Option<u64>,
    /// What teardown removed or scaled back.
    pub removed: Vec<String>,
    pub error: Option<String>,
    /// The drilled region's database replicas when the drill started: what a failover to
    /// it would lose, against each database's budget. Since state 3.2 and report 1.1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<DrillReplica>,
}

/// A replica in the drilled region, as the drill found it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DrillReplica {
    pub database: String,
    pub identifier: String,
    /// Seconds behind its writer; `None`: unknown.
    pub lag_seconds: Option<u64>,
    pub budget_seconds: Option<u64>,
    /// What keeps a failover to the region from being within the budget, if anything.
    pub problem: Option<String>,
}

impl DrillReplica {
    pub fn of(c: &crate::plan::data::ReplicaCheck) -> DrillReplica {
        DrillReplica {
            database: c.database.clone(),
            identifier: c.identifier.clone(),
            lag_seconds: c.lag.seconds,
            budget_seconds: c.budget,
            problem: c.problem.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DrillStep {
    pub name: String,
    /// How long the step took, from the end of the one before (from the drill's start for
    /// the first).
    pub seconds: f64,
    pub ok: bool,
    pub detail: Option<String>,
}

impl Drill {
    pub fn passed(&self) -> bool {
        self.result == PASSED
    }

    pub fn step(&self, name: &str) -> Option<&DrillStep> {
        self.steps.iter().find(|s| s.name == name)
    }
}

/// The last passed drill of `region`, newest last in `drills`.
pub fn last_passed<'a>(drills: &'a [Drill], region: &str) -> Option<&'a Drill> {
    drills.iter().rev().find(|d| d.region == region && d.passed())
}

/// A drill still recorded as running: killed outright, its teardown owed.
pub fn in_progress(drills: &[Drill]) -> Option<&Drill> {
    drills.iter().rev().find(|d| d.result == RUNNING)
}

/// The measured RTO: the time to the gate (every step before DNS) plus what the DNS move
/// would have taken: the record's TTL and the `dns` estimate.
pub fn measured_rto(steps: &[DrillStep], ttl: u64, dns: u64) -> Option<u64> {
    let to_gate: f64 = steps.iter().filter(|s| s.name != TEARDOWN).map(|s| s.seconds).sum();
    steps.iter().all(|s| s.ok || s.name == TEARDOWN).then(|| to_gate.ceil() as u64 + ttl + dns)
}

/// What a drill runs in its region, as a plan the engine's driver executes: the serving
/// side of a failover there and its health gate, nothing else.
pub struct DrillPlan {
    pub plan: Plan,
    /// The configuration as if the drilled region served: what its gate waits for.
    pub serving: Config,
    /// The address of the health check the drill creates for a region that has none (a
    /// cold site), removed by teardown.
    pub temporary_check: Option<String>,
}

/// Plans a drill of `region`. Refused, with the reason, when the region is the active one or
/// unknown, or (with `restore`) when it cannot be restored into.
pub fn plan(
    config: &Config,
    prior: &Prior,
    live: &Snapshot,
    region_name: &str,
    with_restore: bool,
    options: &Options,
    posture: crate::plan::Posture,
) -> Result<DrillPlan, Diagnostic> {
    let names: Vec<&str> = config.regions.iter().map(|r| r.name.as_str()).collect();
    let Some(region) = config.region(region_name) else {
        let hint = crate::suggest::closest(region_name, names.iter().copied())
            .map(|s| format!("did you mean `{s}`? "))
            .unwrap_or_default();
        return Err(Diagnostic::error(Code::DrillRefused, format!("no region is named `{region_name}`"))
            .help(format!("{hint}drill one of: {}", names.join(", "))));
    };
    if region.role == Role::Active {
        let others: Vec<&str> =
            config.regions.iter().filter(|r| r.role != Role::Active).map(|r| r.name.as_str()).collect();
        return Err(Diagnostic::error(Code::DrillRefused, format!("`{region_name}` is the active region"))
            .help(format!("a drill rehearses a failover to a standby or cold region: drill one of {}; to move traffic for real, use `drplan failover --to REGION`", others.join(", "))));
    }
    // The topology as if the region served, for what it then needs; the active region is
    // left out of the comparison entirely.
    let mut serving = config.clone();
    for r in &mut serving.regions {
        if r.name == region_name {
            r.role = Role::Active;
        } else if r.role == Role::Active {
            r.role = Role::Standby;
        }
    }
    let check = address::health_check(region_name);
    let wanted: Vec<_> = desired::desired(&serving)
        .into_iter()
        .filter(|r| {
            (r.region.as_deref() == Some(region_name)
                && r.kind.spec().drill
                && r.kind.spec().planned == Planned::Diffed)
                || r.address == check
        })
        .collect();
    let d = diff::diff(&wanted, prior, Some(live));
    // Only what adds capacity in the region (and its check): a drill takes nothing down.
    let mut changes: Vec<Change> = d
        .changes
        .into_iter()
        .filter(|c| c.action != Action::Delete)
        // What drplan only scales is never created, and scaled only up.
        .filter(|c| c.kind.spec().owned || (c.action != Action::Create && step::scales_up(c)))
        .collect();
    let temporary_check =
        changes.iter().find(|c| c.address == check && c.action == Action::Create).map(|c| c.address.clone());
    // A health check that exists but points elsewhere (another port or path) is the
    // region's own: the drill does not change it.
    changes.retain(|c| c.address != check || c.action == Action::Create);
    let mut restores = Vec::new();
    let mut findings = Vec::new();
    if with_restore {
        let explicit = Options {
            restore_only: Some(restore::Explicit { region: Some(region_name.to_string()), backup: None }),
            ..options.clone()
        };
        let r = restore::plan(&serving, prior, Some(live), &explicit);
        findings.extend(r.findings.into_iter().filter(|f| f.is_error()));
        if let Some(first) = findings.first() {
            return Err(first.clone());
        }
        for mut c in r.changes {
            // The drill's restore goes into scratch (the backup tool reads DRPLAN_DRILL) and
            // under its own address, so a promotion never mistakes it for its restore.
            let backup = c
                .after
                .as_ref()
                .and_then(|a| a.get("backup"))
                .map(|v| v.to_string().trim_matches('"').to_string())
                .unwrap_or_default();
            c.address = match c.kind {
                Kind::Thaw => format!("region.{region_name}.drill.thaw.{backup}"),
                _ => drill_restore_address(region_name, &backup),
            };
            c.action = Action::Create;
            c.before = None;
            c.id = None;
            if let Some(a) = c.after.as_mut() {
                let name = match a.get("name") {
                    Some(Value::Str(n)) => n.replacen("drplan-restore-", "drplan-drill-restore-", 1),
                    _ => String::new(),
                };
                a.insert("name".into(), name.chars().take(63).collect::<String>().trim_end_matches('-').into());
                a.insert("drill".into(), "true".into());
            }
            changes.push(c);
        }
        for mut p in r.plans {
            p.address = drill_restore_address(region_name, &p.backup);
            restores.push(p);
        }
    }
    // The team's validation scripts that opted in, at the serving side's points.
    let drill_id = crate::recovery::rfc3339(options.now.unwrap_or_default());
    changes.extend(crate::plan::hooks::drill(config, region_name, &drill_id));
    changes.sort_by(|a, b| crate::plan::resource::natural_cmp(&a.address, &b.address));
    let mut nodes = graph::build(&changes, graph::Context::serving(Some(region_name))).map_err(|e| {
        Diagnostic::error(Code::Cycle, e.to_string()).help("this is a bug in drplan's ordering rules; please report it")
    })?;
    // The region's health gate, after everything the drill brings up: what DNS would wait for.
    let gated = config.failover.as_ref().is_some_and(|f| f.dns.is_some());
    if gated {
        nodes.push(Node {
            id: graph::gate_id(region_name),
            step: Step::HealthGate { region: region_name.to_string(), health_check: check.clone() },
            depends_on: (0..nodes.len()).collect(),
            skipped: None,
        });
    }
    // The driver waits for the rollouts of the region that serves: the drilled one.
    let roles: BTreeMap<String, Role> = serving.regions.iter().map(|r| (r.name.clone(), r.role)).collect();
    let plan = Plan {
        project: config.project.clone(),
        changes,
        drift: Vec::new(),
        forget: Vec::new(),
        transitions: vec![RoleTransition { region: region_name.to_string(), from: region.role, to: Role::Active }],
        graph: nodes,
        unreachable: live.unreachable.clone(),
        unreachable_objects: live.unreachable_objects.clone(),
        fences: Vec::new(),
        restores,
        switches: Vec::new(),
        safety: findings,
        posture,
        roles,
        refreshed: true,
        failover_id: None,
        incidents: Vec::new(),
    };
    Ok(DrillPlan { plan, serving, temporary_check })
}

/// Where a drill's restore Job is recorded while the drill runs.
pub fn drill_restore_address(region: &str, backup: &str) -> String {
    format!("region.{region}.drill.restore.{backup}")
}

/// Whether `address` is a drill's restore Job in `region` (an address
/// [`drill_restore_address`] made), the thaw before it (removed with it: the thawed copies
/// expire by themselves), or a hook's Job the drill ran: what its teardown removes.
pub fn is_drill_restore(address: &str, region: &str) -> bool {
    ["restore", "thaw", "hook"].iter().any(|step| {
        address.strip_prefix(&format!("region.{region}.drill.{step}.")).is_some_and(|backup| !backup.is_empty())
    })
}

/// Which measured step an action of a drill belongs to: `action` is the action's kind in
/// the plan document, `change` the kind of its change when it is one. The step table's
/// layer decides: a region's data is the restore, its workloads are scaled, the rest is
/// capacity.
pub fn step_of(action: &str, change: Option<Kind>) -> &'static str {
    use crate::plan::step::{Layer, Phase};
    match (action, change.map(|k| k.spec().phase)) {
        ("health_gate", _) => GATE,
        // A thaw is the first part of the restore: its data coming within reach.
        (_, Some(Phase::Stack(Layer::Data) | Phase::Retrieve)) => RESTORE,
        (_, Some(Phase::Stack(Layer::Workloads))) => WORKLOADS,
        _ => CAPACITY,
    }
}

/// The report of one drill, as `drplan drill` prints it (`--json`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct Report<'a> {
    pub format_version: &'static str,
    pub project: &'a str,
    pub drill: &'a Drill,
}

impl Report<'_> {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    pub fn human(&self) -> String {
        let d = self.drill;
        let mut out = format!(
            "Drill {} of {} ({} → active, rehearsed{}): {}\n",
            d.id,
            d.region,
            d.role,
            if d.restore { ", with a restore into scratch" } else { "" },
            d.result.to_uppercase()
        );
        out.push_str(&format!("  started {}, finished {}\n", d.started, d.finished.as_deref().unwrap_or("-")));
        for s in &d.steps {
            let mark = if s.ok { "✓" } else { "✗" };
            let detail = s.detail.as_ref().map(|x| format!(": {x}")).unwrap_or_default();
            out.push_str(&format!("  {mark} {:<17} {:>7.1}s{detail}\n", s.name, s.seconds));
        }
        let secs = |s: u64| crate::config::Duration::from_secs(s).to_string();
        match d.measured_rto_seconds {
            Some(m) => {
                let objective = d
                    .rto_objective_seconds
                    .map(|o| format!(", RTO {} {}", secs(o), if m <= o { "✓" } else { "✗" }))
                    .unwrap_or_default();
                let estimate = d.estimate_seconds.map(|e| format!(", estimated {}", secs(e))).unwrap_or_default();
                out.push_str(&format!(
                    "  measured RTO {} (to the gate, plus the DNS move the drill did not make){estimate}{objective}\n",
                    secs(m)
                ));
            }
            None => out.push_str("  no measured RTO: the drill did not reach its gate\n"),
        }
        for r in &d.replicas {
            let lag = r.lag_seconds.map_or("lag unknown".to_string(), |l| format!("{} behind", secs(l)));
            let budget = r.budget_seconds.map(|b| format!(" (budget {})", secs(b))).unwrap_or_default();
            let verdict = r.problem.as_ref().map_or("✓".to_string(), |p| format!("✗ {p}"));
            out.push_str(&format!("  database {} replica {}: {lag}{budget} {verdict}\n", r.database, r.identifier));
        }
        if !d.removed.is_empty() {
            out.push_str(&format!("  teardown: {}\n", d.removed.join(", ")));
        }
        if let Some(e) = &d.error {
            out.push_str(&format!("  error: {e}\n"));
        }
        out
    }

    pub fn markdown(&self) -> String {
        let d = self.drill;
        let mut out = format!("### DR drill `{}`: `{}` — **{}**\n\n", d.id, d.region, d.result);
        out.push_str(&format!(
            "Started {}, finished {}. Rehearsed a failover from `{}` to active{}.\n\n",
            d.started,
            d.finished.as_deref().unwrap_or("-"),
            d.role,
            if d.restore { " with a restore into scratch" } else { "" }
        ));
        out.push_str("| step | seconds | result |\n| --- | ---: | --- |\n");
        for s in &d.steps {
            out.push_str(&format!(
                "| {} | {:.1} | {}{} |\n",
                s.name,
                s.seconds,
                if s.ok { "ok" } else { "failed" },
                s.detail.as_ref().map(|x| format!(": {x}")).unwrap_or_default()
            ));
        }
        let secs = |s: u64| crate::config::Duration::from_secs(s).to_string();
        out.push_str(&format!(
            "\n**Measured RTO:** {}{}{}\n",
            d.measured_rto_seconds.map_or("not reached".to_string(), secs),
            d.estimate_seconds.map(|e| format!(" (estimated {})", secs(e))).unwrap_or_default(),
            d.rto_objective_seconds.map(|o| format!(", objective {}", secs(o))).unwrap_or_default()
        ));
        if !d.removed.is_empty() {
            out.push_str(&format!(
                "\n**Teardown:** {}\n",
                d.removed.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", ")
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, seconds: f64, ok: bool) -> DrillStep {
        DrillStep { name: name.into(), seconds, ok, detail: None }
    }

    #[test]
    fn the_measured_rto_adds_the_dns_move_the_drill_did_not_make() {
        let steps = [
            step(CAPACITY, 100.2, true),
            step(WORKLOADS, 30.0, true),
            step(GATE, 12.5, true),
            step(TEARDOWN, 50.0, true),
        ];
        assert_eq!(measured_rto(&steps, 60, 60), Some(143 + 120));
        let failed = [step(CAPACITY, 100.0, true), step(GATE, 600.0, false)];
        assert_eq!(measured_rto(&failed, 60, 60), None);
    }

    #[test]
    fn the_last_passed_drill_of_a_region_is_found() {
        let d = |id: &str, region: &str, result: &str| Drill {
            id: id.into(),
            region: region.into(),
            role: "standby".into(),
            restore: false,
            started: String::new(),
            finished: None,
            result: result.into(),
            steps: Vec::new(),
            measured_rto_seconds: None,
            estimate_seconds: None,
            rto_objective_seconds: None,
            removed: Vec::new(),
            replicas: Vec::new(),
            error: None,
        };
        let drills = [d("1", "a", PASSED), d("2", "a", FAILED), d("3", "b", PASSED), d("4", "a", RUNNING)];
        assert_eq!(last_passed(&drills, "a").map(|x| x.id.as_str()), Some("1"));
        assert_eq!(in_progress(&drills).map(|x| x.id.as_str()), Some("4"));
        assert_eq!(step_of("change", Some(Kind::Workload)), WORKLOADS);
        assert_eq!(step_of("change", Some(Kind::Restore)), RESTORE);
        assert_eq!(step_of("health_gate", None), GATE);
        assert_eq!(step_of("change", Some(Kind::HealthCheck)), CAPACITY);
    }
}
