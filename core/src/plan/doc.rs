//! The serialized plan: a versioned contract read by `show`, by `apply FILE`, by CI
//! tooling (`--json`) and by every renderer. Field names follow Terraform's JSON plan
//! where they fit (`format_version`, `resource_changes[].change.actions`, `before`,
//! `after`), so existing plan tooling can read it. Its schema is `docs/schemas/plan.json`:
//! a change of these types raises `FORMAT_VERSION` as `crate::formats` asks (the minor for a
//! new optional field, the major for a breaking change), and a test holds them to it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Plan;
use super::diff::{Action, DriftKind};
use super::graph::Step;
use super::resource::{Attrs, Value};
use crate::diagnostics::Severity;

/// 1.1 added `unreachable_objects`, `fences` and `posture.rpo[].unreachable` (absent in
/// 1.0 documents, read as empty); 1.2 added `configuration_path` and `declares_lost`; 1.3
/// added `restores`; 1.4 `posture.rto.measured_by` and `posture.drills`; 1.5 `policy`;
/// 1.6 `databases`; 1.7 `restores[].thaw`, `restores[].time_to_data_seconds`,
/// `restores[].target_time`, `posture.rto.thaw`, `posture.rpo[].thaw`, `failover_id`,
/// `posture.rpo[].no_backup_yet`, `posture.rpo[].unmeasured` and `posture.rpo[].not_listed`;
/// 1.8 `incidents` and `databases[].how = "incident"`.
pub const FORMAT_VERSION: &str = "1.8";

/// A plan: what `drplan plan --out` saves and `--json` prints, and what `apply FILE` runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlanDoc {
    pub format_version: String,
    pub drplan_version: String,
    pub project: String,
    /// Hash of the configuration's text the plan was made from.
    pub configuration_hash: String,
    /// Where the configuration was (the absolute path planned), so `apply FILE` finds it from
    /// another directory. Since 1.2; `None` in older plans and plans made from memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_path: Option<String>,
    /// The state the plan was made against; `None` when there was none yet.
    pub prior_state: Option<StateRef>,
    /// False when made with `--refresh=false` (state only, no cloud calls).
    pub refreshed: bool,
    /// Apply must not branch on this: it is for humans and reviews.
    pub role_transitions: Vec<Transition>,
    /// Every region's role once applied.
    pub roles: BTreeMap<String, String>,
    pub resource_changes: Vec<ResourceChange>,
    /// Objects changed outside drplan since the last apply.
    pub resource_drift: Vec<ResourceChange>,
    /// State entries dropped on apply (nothing live, nothing wanted).
    pub forget: Vec<String>,
    /// The action graph, in execution order; apply runs exactly this.
    pub actions: Vec<ActionNode>,
    /// Regions whose cloud or cluster could not be read, with the reason.
    pub unreachable: BTreeMap<String, String>,
    /// Objects outside a region that could not be read (a bucket whose region is down), by
    /// address, with the reason.
    #[serde(default)]
    pub unreachable_objects: BTreeMap<String, String>,
    /// Regions declared lost that are still owed their fence.
    #[serde(default)]
    pub fences: Vec<FenceDoc>,
    /// The restores the plan runs (a promotion from a role a backup's `restore` lists), each
    /// with the recovery point it uses. Since 1.3; absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restores: Vec<RestoreDoc>,
    /// The databases whose writer the plan moves, each with its data-loss window. Since
    /// 1.6; absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub databases: Vec<SwitchDoc>,
    pub safety: Vec<SafetyFinding>,
    /// What each region runs once the plan is applied, by the configuration: the totals
    /// policies compare (a standby against the active region). Since 1.5.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capacity: BTreeMap<String, CapacityDoc>,
    /// What the `--policy` rules said, denials first. Since 1.5; absent when none spoke.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy: Vec<crate::policy::PolicyResult>,
    pub posture: PostureDoc,
    /// Whether apply may run it (no safety errors, no policy denial and nothing skipped).
    pub applyable: bool,
    /// Made with `--allow-unreachable`: applying it declares the unreachable regions lost,
    /// whatever the flags of the `apply` that carries it out.
    #[serde(default)]
    pub declares_lost: bool,
    /// The id of the failover the plan makes, which its hooks' Job names carry; apply keeps
    /// it in state while the failover is under way. Since 1.7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_id: Option<String>,
    /// The incidents open when the plan was made: their regions are isolated and their
    /// evidence kept. Since 1.8; absent when none is open.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incidents: Vec<crate::incident::Incident>,
}

/// Why a text is not a plan document this drplan reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not a drplan plan document: {0}")]
    NotAPlan(String),
    #[error("plan format {found}, this drplan reads {FORMAT_VERSION}")]
    Version { found: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StateRef {
    pub lineage: String,
    pub serial: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Transition {
    pub region: String,
    pub from: String,
    pub to: String,
    pub action: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ResourceChange {
    pub address: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub region: Option<String>,
    /// The cloud's id of the existing object.
    pub id: Option<String>,
    pub change: ChangeDoc,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChangeDoc {
    /// Terraform's vocabulary: `create`, `update`, `delete`, `no-op`; a replacement is
    /// `["create", "delete"]` (the new object first).
    pub actions: Vec<String>,
    pub before: Option<BTreeMap<String, serde_json::Value>>,
    pub after: Option<BTreeMap<String, serde_json::Value>>,
    /// Attribute paths forcing a replacement, as Terraform writes them: `[["image"]]`.
    pub replace_paths: Vec<Vec<String>>,
    /// Set when an existing tagged object is adopted into state rather than created.
    pub importing: Option<Importing>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Importing {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ActionNode {
    pub id: String,
    /// `change` (the resource change of the same address), `health_gate`, or `barrier` (no
    /// work: the serving region has scaled up).
    pub kind: String,
    pub depends_on: Vec<String>,
    /// For a health gate: the region and the health check it waits on.
    pub region: Option<String>,
    pub health_check: Option<String>,
    pub skipped: Option<String>,
}

/// A restore and the recovery point it uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RestoreDoc {
    /// The action's address (`region.R.restore.B`).
    pub address: String,
    pub region: String,
    pub backup: String,
    /// The Kubernetes Job's name.
    pub job: String,
    /// The destination the point is read from (`backup.B.destination.D`).
    pub destination: String,
    /// The point's folder as a URI (`gs://bucket/dr/20261201_070000/`).
    pub uri: String,
    pub point: String,
    /// When the point's backup ran (RFC 3339), when known.
    pub point_time: Option<String>,
    pub age_seconds: Option<i64>,
    pub rpo_seconds: Option<u64>,
    /// Whether the data-loss window is within the RPO, when both are known.
    pub within_rpo: Option<bool>,
    pub objects: Option<u64>,
    pub bytes: Option<u64>,
    /// `verified`, `unverified` (no manifest configured), `not examined` (an adopted Job's).
    pub status: String,
    /// A Job of this name was found in the cluster and is adopted, not started again.
    pub adopted: bool,
    /// `--restore-point`, when given (RFC 3339).
    pub requested: Option<String>,
    /// The time the Job is asked to recover to, passed as `DRPLAN_RESTORE_TARGET_TIME`
    /// (RFC 3339). Since 1.7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_time: Option<String>,
    /// The point's archive class, thaw time and tier when it must be thawed first
    /// (`GLACIER, thaw up to 5m (Expedited)`). Since 1.7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thaw: Option<String>,
    /// Seconds until the point can be read (its thaw), on the restore's critical path.
    /// Since 1.7.
    #[serde(default)]
    pub time_to_data_seconds: u64,
    /// Destinations not used, and why.
    pub passed_over: Vec<PassedOver>,
    /// The one line a reviewer reads.
    pub summary: String,
}

/// A database whose writer moves, and what the move may lose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SwitchDoc {
    pub database: String,
    /// The region whose replica is promoted.
    pub to: String,
    /// The region of the writer it replaces, when known.
    pub from: Option<String>,
    /// `graceful` (writes stopped, the replica caught up first), `ungraceful` (the old
    /// writer's region is dark) or `incident` (the old writer's region is compromised: cut
    /// off, and its writes since the incident replaced by a restore).
    pub how: String,
    /// The replica's last lag sample, in seconds (ungraceful only); `None` when unknown.
    pub lag_seconds: Option<u64>,
    /// When that sample was taken (RFC 3339).
    pub lag_at: Option<String>,
    /// The last moment the old writer was seen alive (RFC 3339), when recorded.
    pub writer_seen: Option<String>,
    /// What the promotion may lose, in seconds: 0 when graceful; `None` when unknown.
    pub window_seconds: Option<u64>,
    /// `max_lag`, or the RPO, in seconds.
    pub budget_seconds: Option<u64>,
    /// Past the budget (or unknown) and accepted with `--accept-data-loss`: an apply that
    /// finds a larger window asks again.
    pub accepted: bool,
    /// The writers stopped in the old region, with their replicas before the stop.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub writers: BTreeMap<String, i64>,
}

impl SwitchDoc {
    /// `ledger: promote eu-west-1, writes stopped in us-east-1 first (trading-engine=3), nothing lost`.
    pub fn summary(&self) -> String {
        let dur = |s: u64| crate::config::Duration::from_secs(s).to_string();
        let budget = self.budget_seconds.map_or("no budget".to_string(), |b| format!("budget {}", dur(b)));
        match self.how.as_str() {
            "graceful" => {
                let writers: Vec<String> = self.writers.iter().map(|(w, n)| format!("{w}={n}")).collect();
                let stopped = match writers.is_empty() {
                    true => "no writers declared to stop".to_string(),
                    false => format!("writers stopped first ({})", writers.join(", ")),
                };
                format!(
                    "{}: promote {} once it has caught up with {}; {stopped}; nothing lost",
                    self.database,
                    self.to,
                    self.from.as_deref().unwrap_or("its writer")
                )
            }
            "incident" => format!(
                "{}: promote {} without waiting for {} (under an incident): its writes of the last {} are not trusted",
                self.database,
                self.to,
                self.from.as_deref().unwrap_or("its writer"),
                self.window_seconds.map_or("unknown".to_string(), dur)
            ),
            _ => {
                let window = self.window_seconds.map_or("unknown".to_string(), dur);
                let lag = match (self.lag_seconds, &self.lag_at) {
                    (Some(l), Some(at)) => format!("last lag {} at {at}", dur(l)),
                    _ => "no lag sample".to_string(),
                };
                let seen = self.writer_seen.as_ref().map(|s| format!(", writer last seen {s}")).unwrap_or_default();
                let verdict = match (self.window_seconds, self.budget_seconds) {
                    (Some(w), Some(b)) if w <= b => "✓".to_string(),
                    _ if self.accepted => "✗ accepted with --accept-data-loss".to_string(),
                    _ => "✗ needs --accept-data-loss".to_string(),
                };
                format!(
                    "{}: promote {} without {} (unreachable): may lose {window} of writes ({lag}{seen}; {budget} {verdict})",
                    self.database,
                    self.to,
                    self.from.as_deref().unwrap_or("its writer")
                )
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PassedOver {
    pub destination: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FenceDoc {
    pub region: String,
    /// When the region was declared lost (RFC 3339).
    pub since: String,
    /// The actions skipped there when it was declared lost.
    pub owed: Vec<String>,
    /// True when the region answers again and this plan carries the fence out.
    pub reachable: bool,
    /// The changes this plan makes in the region (first there), when reachable.
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SafetyFinding {
    pub code: String,
    pub severity: String,
    pub message: String,
    pub help: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PostureDoc {
    pub rpo: Vec<RpoDoc>,
    pub rto: Option<RtoDoc>,
    pub copies: Vec<CopiesDoc>,
    pub standby: Vec<ReadinessDoc>,
    /// With `objectives.drill_every`: each standby and cold region's last passed drill.
    /// Since 1.4; absent without the setting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drills: Vec<DrillCheckDoc>,
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DrillCheckDoc {
    pub region: String,
    /// When its last passed drill started (RFC 3339).
    pub last: Option<String>,
    pub every_seconds: u64,
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RpoDoc {
    pub backup: String,
    pub rpo_seconds: Option<u64>,
    pub schedule_gap_seconds: u64,
    /// Destination name → age in seconds of its newest backup, when measured.
    pub newest_backup_age_seconds: BTreeMap<String, Option<u64>>,
    /// Destinations that could not be read; the check rests on the others.
    #[serde(default)]
    pub unreachable: Vec<String>,
    /// Destination name → its newest usable point's archive class, thaw time and tier, when
    /// it must be thawed before a restore. Since 1.7.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub thaw: BTreeMap<String, String>,
    /// Every destination was listed and none holds a point: no backup has run. Since 1.7.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_backup_yet: bool,
    /// No destination's newest point was measured: the check rests on the schedule alone
    /// and is unknown. Since 1.7.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unmeasured: bool,
    /// NAS destinations not listed (neither mounted where drplan runs nor reached through
    /// an S3 endpoint). Since 1.7.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_listed: Vec<String>,
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RtoDoc {
    pub to_region: String,
    pub estimate_seconds: u64,
    pub rto_seconds: Option<u64>,
    pub critical_path: Vec<String>,
    /// The drill whose measured durations the estimate uses (`ID of DATE`). Since 1.4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_by: Option<String>,
    pub hypothetical: bool,
    /// The thaw of an archived copy on the critical path, named with its class, tier and
    /// time. Since 1.7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thaw: Option<String>,
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CopiesDoc {
    pub backup: String,
    pub destinations: usize,
    pub sites: Vec<String>,
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReadinessDoc {
    pub region: String,
    pub instances: [usize; 2],
    pub replicas: [i64; 2],
    pub dns_secondary: Option<bool>,
    pub health_check: Option<bool>,
    /// Its database replicas, each against its budget. Since 1.6.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replication: Vec<ReplicaDoc>,
    pub ready: bool,
    pub ready_after_plan: bool,
}

/// A standby's replica of a database, against the database's budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReplicaDoc {
    pub database: String,
    pub identifier: String,
    /// Seconds behind the writer as last published; `None`: unknown.
    pub lag_seconds: Option<u64>,
    /// When that sample was taken (RFC 3339).
    pub lag_at: Option<String>,
    pub budget_seconds: Option<u64>,
    /// What keeps it from being ready (missing, following another writer, lag unknown or
    /// past the budget); `None` when it is fine.
    pub problem: Option<String>,
    /// The one line a reader sees: `ledger 2s behind (budget 30s)`.
    pub text: String,
}

/// A region's declared capacity in its role after the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CapacityDoc {
    pub role: String,
    /// Instances over all its compute pools.
    pub instances: u32,
    /// Replicas over all components, in its cluster (0 without a `kubernetes` block).
    pub replicas: u32,
}

/// Every region's [`CapacityDoc`] under `config` (the configuration planned).
pub fn capacity(config: &crate::config::Config) -> BTreeMap<String, CapacityDoc> {
    config
        .regions
        .iter()
        .map(|r| {
            let instances = r.compute.iter().map(|p| p.count.for_role(r.role)).sum();
            let replicas = if r.kubernetes.is_some() {
                config.components.iter().map(|c| c.replicas.for_role(r.role)).sum()
            } else {
                0
            };
            (r.name.clone(), CapacityDoc { role: r.role.as_str().to_string(), instances, replicas })
        })
        .collect()
}

/// Where the plan came from, for the stale-plan check of `apply FILE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub drplan_version: String,
    pub configuration_hash: String,
    pub prior_state: Option<StateRef>,
}

pub fn value_to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Str(s) => serde_json::Value::String(s.clone()),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Bool(b) => serde_json::Value::Bool(*b),
    }
}

fn attrs_json(a: &Option<Attrs>) -> Option<BTreeMap<String, serde_json::Value>> {
    a.as_ref().map(|a| a.iter().map(|(k, v)| (k.clone(), value_to_json(v))).collect())
}

impl PlanDoc {
    pub fn new(plan: &Plan, origin: Origin, allow_unreachable: bool) -> PlanDoc {
        let resource_changes = plan
            .changes
            .iter()
            .map(|c| ResourceChange {
                address: c.address.clone(),
                kind: c.kind.as_str().to_string(),
                region: c.region.clone(),
                id: c.id.clone(),
                change: ChangeDoc {
                    actions: match c.action {
                        Action::Create => vec!["create".into()],
                        Action::Update => vec!["update".into()],
                        Action::Replace => vec!["create".into(), "delete".into()],
                        Action::Delete => vec!["delete".into()],
                        Action::Adopt => vec!["no-op".into()],
                    },
                    before: attrs_json(&c.before),
                    after: attrs_json(&c.after),
                    replace_paths: c.replace_paths.iter().map(|p| vec![p.clone()]).collect(),
                    importing: (c.action == Action::Adopt).then(|| Importing { id: c.id.clone().unwrap_or_default() }),
                },
            })
            .collect();
        let resource_drift = plan
            .drift
            .iter()
            .map(|d| ResourceChange {
                address: d.address.clone(),
                kind: d.kind.as_str().to_string(),
                region: d.region.clone(),
                id: Some(d.id.clone()),
                change: ChangeDoc {
                    actions: vec![match d.drift {
                        DriftKind::Changed => "update".into(),
                        DriftKind::Deleted => "delete".into(),
                        DriftKind::Untracked => "create".into(),
                    }],
                    before: attrs_json(&d.before),
                    after: attrs_json(&d.after),
                    replace_paths: Vec::new(),
                    importing: None,
                },
            })
            .collect();
        let actions = plan
            .graph
            .iter()
            .map(|n| {
                let (kind, region, health_check) = match &n.step {
                    Step::Change(_) => ("change", None, None),
                    Step::HealthGate { region, health_check } => {
                        ("health_gate", Some(region.clone()), Some(health_check.clone()))
                    }
                    Step::Barrier { region } => ("barrier", Some(region.clone()), None),
                };
                ActionNode {
                    id: n.id.clone(),
                    kind: kind.into(),
                    depends_on: n.depends_on.iter().map(|d| plan.graph[*d].id.clone()).collect(),
                    region,
                    health_check,
                    skipped: n.skipped.clone(),
                }
            })
            .collect();
        let p = &plan.posture;
        let secs = |d: Option<crate::config::Duration>| d.map(|d| d.as_secs());
        PlanDoc {
            format_version: FORMAT_VERSION.into(),
            drplan_version: origin.drplan_version,
            project: plan.project.clone(),
            configuration_hash: origin.configuration_hash,
            configuration_path: None,
            prior_state: origin.prior_state,
            refreshed: plan.refreshed,
            role_transitions: plan
                .transitions
                .iter()
                .map(|t| Transition {
                    region: t.region.clone(),
                    from: t.from.to_string(),
                    to: t.to.to_string(),
                    action: t.verb().into(),
                })
                .collect(),
            roles: plan.roles.iter().map(|(r, role)| (r.clone(), role.to_string())).collect(),
            resource_changes,
            resource_drift,
            forget: plan.forget.clone(),
            actions,
            unreachable: plan.unreachable.clone(),
            unreachable_objects: plan.unreachable_objects.clone(),
            fences: plan
                .fences
                .iter()
                .map(|f| FenceDoc {
                    region: f.region.clone(),
                    since: f.since.clone(),
                    owed: f.owed.clone(),
                    reachable: f.reachable,
                    actions: f.actions.clone(),
                })
                .collect(),
            databases: plan
                .switches
                .iter()
                .map(|s| SwitchDoc {
                    database: s.database.clone(),
                    to: s.to.clone(),
                    from: s.from.clone(),
                    how: match (&s.incident, s.graceful) {
                        (Some(_), _) => "incident",
                        (None, true) => "graceful",
                        (None, false) => "ungraceful",
                    }
                    .into(),
                    lag_seconds: s.lag.seconds,
                    lag_at: s.lag.at.map(crate::recovery::rfc3339),
                    writer_seen: s.seen.map(crate::recovery::rfc3339),
                    window_seconds: s.window,
                    budget_seconds: s.budget,
                    accepted: s.accepted,
                    writers: s.writers.clone(),
                })
                .collect(),
            restores: plan
                .restores
                .iter()
                .map(|r| RestoreDoc {
                    address: r.address.clone(),
                    region: r.region.clone(),
                    backup: r.backup.clone(),
                    job: r.job.clone(),
                    destination: r.choice.destination.clone(),
                    uri: r.choice.uri.clone(),
                    point: r.choice.point.name.clone(),
                    point_time: r.choice.point.time.map(crate::recovery::rfc3339),
                    age_seconds: r.age,
                    rpo_seconds: r.rpo,
                    within_rpo: r.within_rpo(),
                    objects: r.choice.point.objects,
                    bytes: r.choice.point.bytes,
                    status: r.choice.point.status.as_str().to_string(),
                    adopted: r.adopted,
                    requested: r.requested.map(crate::recovery::rfc3339),
                    target_time: r.requested.map(crate::recovery::rfc3339),
                    thaw: r.choice.thaw.clone(),
                    time_to_data_seconds: r.choice.time_to_data,
                    passed_over: r
                        .choice
                        .passed_over
                        .iter()
                        .map(|(d, why)| PassedOver { destination: d.clone(), reason: why.clone() })
                        .collect(),
                    summary: r.summary(),
                })
                .collect(),
            safety: plan
                .safety
                .iter()
                .map(|d| SafetyFinding {
                    code: d.code.as_str().into(),
                    severity: match d.severity {
                        Severity::Error => "error".into(),
                        Severity::Warning => "warning".into(),
                    },
                    message: d.message.clone(),
                    help: d.help.clone(),
                })
                .collect(),
            capacity: BTreeMap::new(),
            policy: Vec::new(),
            posture: PostureDoc {
                rpo: p
                    .rpo
                    .iter()
                    .map(|r| RpoDoc {
                        backup: r.backup.clone(),
                        rpo_seconds: secs(r.rpo),
                        schedule_gap_seconds: r.schedule_gap.as_secs(),
                        newest_backup_age_seconds: r.destinations.iter().map(|(d, a)| (d.clone(), secs(*a))).collect(),
                        unreachable: r.unreachable.clone(),
                        thaw: r.thaws.iter().cloned().collect(),
                        no_backup_yet: r.no_backup_yet,
                        unmeasured: r.unmeasured,
                        not_listed: r.not_listed.clone(),
                        ok: r.ok,
                    })
                    .collect(),
                rto: p.rto.as_ref().map(|r| RtoDoc {
                    to_region: r.to_region.clone(),
                    estimate_seconds: r.estimate.as_secs(),
                    rto_seconds: secs(r.rto),
                    critical_path: r.critical_path.clone(),
                    measured_by: r.measured_by.clone(),
                    thaw: r.thaw.clone(),
                    hypothetical: r.hypothetical,
                    ok: r.ok,
                }),
                copies: p
                    .copies
                    .iter()
                    .map(|c| CopiesDoc {
                        backup: c.backup.clone(),
                        destinations: c.destinations,
                        sites: c.sites.iter().map(|s| s.to_string()).collect(),
                        ok: c.ok,
                    })
                    .collect(),
                standby: p
                    .standby
                    .iter()
                    .map(|s| ReadinessDoc {
                        region: s.region.clone(),
                        instances: [s.instances.0, s.instances.1],
                        replicas: [s.replicas.0, s.replicas.1],
                        dns_secondary: s.dns_secondary,
                        health_check: s.health_check,
                        ready: s.ready,
                        ready_after_plan: s.ready_after_plan,
                        replication: s
                            .replication
                            .iter()
                            .map(|c| ReplicaDoc {
                                database: c.database.clone(),
                                identifier: c.identifier.clone(),
                                lag_seconds: c.lag.seconds,
                                lag_at: c.lag.at.map(crate::recovery::rfc3339),
                                budget_seconds: c.budget,
                                problem: c.problem.clone(),
                                text: c.text(),
                            })
                            .collect(),
                    })
                    .collect(),
                drills: p
                    .drills
                    .iter()
                    .map(|d| DrillCheckDoc {
                        region: d.region.clone(),
                        last: d.last.clone(),
                        every_seconds: d.every.as_secs(),
                        ok: d.ok,
                    })
                    .collect(),
                // A fence still owed is a posture problem: the old active may still serve.
                ok: p.ok() && plan.fences.is_empty(),
            },
            applyable: plan.can_apply(allow_unreachable),
            declares_lost: allow_unreachable,
            failover_id: plan.failover_id.clone(),
            incidents: plan.incidents.clone(),
        }
    }

    /// Whether anything would change (drift alone changes nothing). A returned region's
    /// fence counts even with nothing left to do there: apply records it done.
    pub fn has_changes(&self) -> bool {
        !self.resource_changes.is_empty() || !self.forget.is_empty() || self.fences.iter().any(|f| f.reachable)
    }

    /// A document read back (a saved plan): refused when it is not one, or when its major
    /// format version is not this drplan's (a minor one reads, its new fields defaulted).
    pub fn parse(text: &str) -> Result<PlanDoc, ParseError> {
        #[derive(Deserialize)]
        struct Version {
            format_version: String,
        }
        let version: Version = serde_json::from_str(text).map_err(|e| ParseError::NotAPlan(e.to_string()))?;
        let major = |v: &str| v.split('.').next().map(str::to_string);
        if major(&version.format_version) != major(FORMAT_VERSION) {
            return Err(ParseError::Version { found: version.format_version });
        }
        serde_json::from_str(text).map_err(|e| ParseError::NotAPlan(e.to_string()))
    }

    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

fn json_to_value(v: &serde_json::Value) -> Option<Value> {
    match v {
        serde_json::Value::String(s) => Some(Value::Str(s.clone())),
        serde_json::Value::Bool(b) => Some(Value::Bool(*b)),
        serde_json::Value::Number(n) => n.as_i64().map(Value::Int),
        _ => None,
    }
}

fn attrs_from_json(a: &Option<BTreeMap<String, serde_json::Value>>) -> Result<Option<Attrs>, String> {
    let Some(a) = a else { return Ok(None) };
    let mut out = Attrs::new();
    for (k, v) in a {
        out.insert(k.clone(), json_to_value(v).ok_or_else(|| format!("attribute `{k}` has an unsupported value {v}"))?);
    }
    Ok(Some(out))
}

impl ResourceChange {
    /// The change apply performs, read back from the document (a saved plan is applied
    /// exactly as written, never re-planned).
    pub fn to_change(&self) -> Result<super::Change, String> {
        let kind =
            super::Kind::parse(&self.kind).ok_or_else(|| format!("{}: unknown type `{}`", self.address, self.kind))?;
        let actions: Vec<&str> = self.change.actions.iter().map(String::as_str).collect();
        let action = match actions.as_slice() {
            ["create"] => Action::Create,
            ["update"] => Action::Update,
            ["create", "delete"] | ["delete", "create"] => Action::Replace,
            ["delete"] => Action::Delete,
            ["no-op"] => Action::Adopt,
            other => return Err(format!("{}: unknown actions {other:?}", self.address)),
        };
        let bad = |e: String| format!("{}: {e}", self.address);
        Ok(super::Change {
            address: self.address.clone(),
            kind,
            region: self.region.clone(),
            action,
            before: attrs_from_json(&self.change.before).map_err(bad)?,
            after: attrs_from_json(&self.change.after).map_err(bad)?,
            id: self.id.clone(),
            replace_paths: self.change.replace_paths.iter().filter_map(|p| p.first().cloned()).collect(),
        })
    }
}
