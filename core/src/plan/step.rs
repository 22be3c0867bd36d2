//! Step kinds as data: one table says, for every kind of step a plan can hold, how it is
//! planned, who performs it, whether apply waits for it, where it sits in a failover and
//! what it costs on the RTO path. The graph, the posture, the executor, drills, `Clouds` and
//! the providers read [`Kind::spec`]; nothing else decides behaviour by comparing kinds.
//!
//! Adding a step is adding a [`Kind`] variant and its row in [`TABLE`] (and the provider
//! that performs it): the ordering rules are written against phases and layers, never
//! against kinds. See "Adding a step" in `docs/ARCHITECTURE.md`.

use super::diff::{Action, Change};
use super::posture::Estimates;
use super::resource::{Attrs, Kind, Resource, Value};

/// How a step comes into a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Planned {
    /// Diffed against live state every plan: created, updated, deleted, adopted, drifted.
    Diffed,
    /// Planned once, by the transition that needs it (a promotion's restore), recorded in
    /// state when done and never diffed: it belongs to that transition, and is forgotten
    /// once its region no longer holds the role that asked for it.
    Once,
    /// Planned by an open incident and kept in state while it is open (isolation, evidence);
    /// never diffed. Once the incident is closed and may be lifted, the plan deletes it,
    /// which undoes it (evidence is kept: forgotten, never deleted).
    Incident,
}

/// The provider family that performs a step. Compute and storage are per cloud: the
/// provider of the change's `cloud` performs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Machines: EC2, Compute Engine.
    Compute,
    /// Route 53 records and health checks (global).
    Dns,
    /// Buckets: S3, Cloud Storage.
    Storage,
    /// Objects in a region's Kubernetes cluster.
    Kubernetes,
    /// A database's members: the provider of the change's `cloud` performs them (`aws` for
    /// RDS and Aurora, `kubernetes` for CloudNativePG).
    Database,
}

/// What apply waits for once the step's call returned, before it counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// Nothing: the call's answer is the outcome.
    Never,
    /// When it adds capacity in the region about to serve: until that capacity is
    /// available (a Deployment's rollout), so traffic never moves onto it early.
    WhenServing,
    /// Always, until the step reports it finished (a Job's `Complete`), within a timeout.
    Finished,
}

/// The layers of a region's stack: brought up in this order before traffic moves to the
/// region, and taken down in the reverse order after it left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    /// Machines the rest runs on.
    Machines,
    /// The region's data (a restore): after its machines, before what serves from it.
    Data,
    /// The application's workloads.
    Workloads,
}

impl Layer {
    /// Whether the layer is serving capacity (what a role's counts size), rather than data.
    pub fn is_capacity(self) -> bool {
        matches!(self, Layer::Machines | Layer::Workloads)
    }
}

/// Where a step sits in a failover; the graph's ordering rules are written against these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Part of a region's stack (see [`Layer`]).
    Stack(Layer),
    /// What traffic moves on (a health check): in place before the traffic step that uses
    /// it, removed only after every traffic step.
    Probe,
    /// Moves traffic (a DNS failover record): behind the serving region's health gate.
    Traffic,
    /// Holds backups: created before a schedule writes to it, deleted last.
    Storage,
    /// The backup schedule: moves with the serving role once traffic and the region's data
    /// moved, the old schedule stopped before the new one starts.
    Schedule,
    /// A database changing writer (see [`DataStep`]): between the target's capacity coming
    /// up and traffic moving to it.
    Data(DataStep),
    /// Brings archived data back within reach (a thaw): before the region's data layer that
    /// reads it, beside its machines (both take time; neither waits for the other).
    Retrieve,
    /// A team's script at a named point of a failover: its `at` attribute says which (see
    /// [`HookPoint`]).
    Hook,
    /// An incident's evidence (snapshots): before any other change in its region.
    Evidence,
    /// An incident's isolation (quarantine, cordon, deny-all): after the evidence; a
    /// promotion waits for the isolation of a reachable region it takes over from.
    Isolate,
}

/// The named points of a failover a hook runs at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HookPoint {
    /// Before any change.
    BeforeFailover,
    /// After the target's restores (its machines when there is none), before its workloads.
    AfterRestore,
    /// Once the target's stack is up and rolled out, before its health gate and DNS.
    AfterCapacity,
    /// Once DNS has moved; a `stop` hook holds the old active's demotion.
    AfterTraffic,
    /// Once the old active is demoted or fenced.
    AfterFence,
}

impl HookPoint {
    pub const ALL: [HookPoint; 5] = [
        HookPoint::BeforeFailover,
        HookPoint::AfterRestore,
        HookPoint::AfterCapacity,
        HookPoint::AfterTraffic,
        HookPoint::AfterFence,
    ];
    pub const NAMES: [&'static str; 5] =
        ["before_failover", "after_restore", "after_capacity", "after_traffic", "after_fence"];

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn parse(text: &str) -> Option<HookPoint> {
        Self::NAMES.iter().position(|n| *n == text).map(|i| Self::ALL[i])
    }
}

/// The point a hook change runs at (its `at`); `None` for any other step.
pub fn hook_point(c: &Change) -> Option<HookPoint> {
    if c.kind.spec().phase != Phase::Hook {
        return None;
    }
    let a = c.after.as_ref().or(c.before.as_ref())?;
    HookPoint::parse(a.get("at").and_then(Value::text)?)
}

/// Whether a failure of `c` stops what depends on it. A step that says
/// `on_failure = "continue"` (a hook) is reported when it fails, and the rest goes on.
pub fn stops_on_failure(c: &Change) -> bool {
    let a = c.after.as_ref().or(c.before.as_ref());
    a.and_then(|a| a.get("on_failure")).and_then(Value::text) != Some("continue")
}

/// The steps of a database changing writer, in the order a planned failover runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DataStep {
    /// The old writer's writers scaled to 0, once the target's other capacity is up.
    StopWrites,
    /// Waiting until the target's replica has every write (a gate, not a cloud call).
    CatchUp,
    /// A region's member of the database: promoted where the writer goes (before the
    /// writers there start and before traffic moves), re-protected elsewhere after it (the
    /// old writer first fenced, renamed and kept, before anything else in its region).
    Member,
    /// The writers scaled back up: the undo of [`DataStep::StopWrites`] when the catch-up or
    /// the promotion fails.
    ResumeWrites,
}

/// How a change is judged to add capacity (before traffic moves) or take it away (after).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// The object is the capacity: creating adds, deleting removes.
    Presence,
    /// An integer attribute is (`replicas`): lowering it takes capacity away.
    Count(&'static str),
    /// A flag stops it (`suspend`): setting it takes capacity away.
    Suspend(&'static str),
}

/// Which estimate a step costs on the RTO's critical path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// `estimates.instance` (a third of it for an in-place update).
    Instance,
    Workload,
    HealthCheck,
    /// `estimates.dns` plus the record's TTL, which clients wait out.
    Dns,
    Bucket,
    BackupJob,
    Restore,
    /// `estimates.stop_writes`.
    StopWrites,
    /// `estimates.catch_up`.
    CatchUp,
    /// `estimates.promotion` for a promotion; a re-protection is off the critical path's
    /// cost (two calls; the new replica is not waited for).
    Member,
    /// The thaw's own `seconds`: the archive's retrieval time for its class and tier.
    Thaw,
    /// `estimates.hook`.
    Hook,
    /// Nothing: a few API calls (a snapshot is taken at its call; its copy runs on).
    Isolate,
}

/// How a step interrupted by a crash is found again by the next run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adopt {
    /// The refresh finds it by drplan's tags (or by what it scales) and the diff adopts it.
    Refresh,
    /// It is created under a deterministic name; a create that finds that name takes it.
    Name,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub kind: Kind,
    /// The name in addresses' types, plan files and state (`instance`): a serialized contract.
    pub name: &'static str,
    pub planned: Planned,
    pub family: Family,
    pub ready: Ready,
    pub phase: Phase,
    pub scale: Scale,
    pub cost: Cost,
    /// drplan authors the object (creates and deletes it). `false`: another system creates
    /// it and drplan only scales it, so one that is missing is a problem to say, and one
    /// found untagged is not drift.
    pub owned: bool,
    /// A drill rehearses it in the region drilled (the serving side of a failover).
    pub drill: bool,
    /// Attributes that cannot change in place: changing one replaces the object.
    pub replaces_on: &'static [&'static str],
    /// An attribute value that means the object is gone although still listed.
    pub gone_when: Option<(&'static str, &'static str)>,
    /// Never deleted: one no longer wanted is forgotten and left as it is, and its
    /// replacement keeps the old object (a database: renamed, never dropped).
    pub kept: bool,
    pub adopt: Adopt,
    /// The step that undoes it when a later step of the same transition fails; none of
    /// today's steps has one (drplan never rolls back a failover by itself).
    pub undo: Option<Kind>,
}

/// What a row does not say: a step diffed against live state, that drplan owns, performs
/// with one call and adopts through the refresh, with no undo; drills leave it alone.
const DIFFED: Spec = Spec {
    kind: Kind::Instance,
    name: "",
    planned: Planned::Diffed,
    family: Family::Compute,
    ready: Ready::Never,
    phase: Phase::Stack(Layer::Machines),
    scale: Scale::Presence,
    cost: Cost::Instance,
    owned: true,
    drill: false,
    replaces_on: &[],
    gone_when: None,
    kept: false,
    adopt: Adopt::Refresh,
    undo: None,
};

/// Every step kind, in [`Kind::ALL`]'s order.
pub const TABLE: [Spec; 17] = [
    Spec {
        kind: Kind::Instance,
        name: "instance",
        family: Family::Compute,
        phase: Phase::Stack(Layer::Machines),
        cost: Cost::Instance,
        drill: true,
        replaces_on: &["image", "instance_type", "cloud", "zone"],
        gone_when: Some(("state", "terminated")),
        ..DIFFED
    },
    Spec {
        kind: Kind::Workload,
        name: "workload",
        family: Family::Kubernetes,
        ready: Ready::WhenServing,
        phase: Phase::Stack(Layer::Workloads),
        scale: Scale::Count("replicas"),
        cost: Cost::Workload,
        owned: false,
        drill: true,
        ..DIFFED
    },
    Spec {
        kind: Kind::HealthCheck,
        name: "health_check",
        family: Family::Dns,
        phase: Phase::Probe,
        cost: Cost::HealthCheck,
        replaces_on: &["protocol", "interval"],
        ..DIFFED
    },
    Spec {
        kind: Kind::DnsRecord,
        name: "dns_record",
        family: Family::Dns,
        phase: Phase::Traffic,
        cost: Cost::Dns,
        ..DIFFED
    },
    Spec {
        kind: Kind::Bucket,
        name: "bucket",
        family: Family::Storage,
        phase: Phase::Storage,
        cost: Cost::Bucket,
        replaces_on: &["cloud", "location"],
        ..DIFFED
    },
    Spec {
        kind: Kind::BackupJob,
        name: "backup_job",
        family: Family::Kubernetes,
        phase: Phase::Schedule,
        scale: Scale::Suspend("suspend"),
        cost: Cost::BackupJob,
        ..DIFFED
    },
    Spec {
        kind: Kind::Restore,
        name: "restore",
        planned: Planned::Once,
        family: Family::Kubernetes,
        ready: Ready::Finished,
        phase: Phase::Stack(Layer::Data),
        cost: Cost::Restore,
        drill: true,
        adopt: Adopt::Name,
        ..DIFFED
    },
    Spec {
        kind: Kind::Database,
        name: "database",
        family: Family::Database,
        phase: Phase::Data(DataStep::Member),
        cost: Cost::Member,
        // A writer that must become a replica, or a replica of another writer, cannot
        // change in place: the old one is renamed and kept, a new replica takes its name.
        replaces_on: &["source"],
        kept: true,
        ..DIFFED
    },
    Spec {
        kind: Kind::StopWrites,
        name: "stop_writes",
        planned: Planned::Once,
        family: Family::Kubernetes,
        phase: Phase::Data(DataStep::StopWrites),
        cost: Cost::StopWrites,
        adopt: Adopt::Name,
        undo: Some(Kind::ResumeWrites),
        ..DIFFED
    },
    Spec {
        kind: Kind::CatchUp,
        name: "catch_up",
        planned: Planned::Once,
        family: Family::Database,
        ready: Ready::Finished,
        phase: Phase::Data(DataStep::CatchUp),
        cost: Cost::CatchUp,
        adopt: Adopt::Name,
        ..DIFFED
    },
    Spec {
        kind: Kind::ResumeWrites,
        name: "resume_writes",
        planned: Planned::Once,
        family: Family::Kubernetes,
        phase: Phase::Data(DataStep::ResumeWrites),
        cost: Cost::StopWrites,
        adopt: Adopt::Name,
        ..DIFFED
    },
    Spec {
        kind: Kind::Thaw,
        name: "thaw",
        planned: Planned::Once,
        family: Family::Storage,
        ready: Ready::Finished,
        phase: Phase::Retrieve,
        cost: Cost::Thaw,
        drill: true,
        // A thaw already asked for is found by the objects' own restore status: asking
        // again is what the step does first, object by object, and it skips those.
        adopt: Adopt::Name,
        ..DIFFED
    },
    Spec {
        kind: Kind::Hook,
        name: "hook",
        planned: Planned::Once,
        family: Family::Kubernetes,
        ready: Ready::Finished,
        phase: Phase::Hook,
        cost: Cost::Hook,
        // The Job's name carries the failover's id: a run killed while it waited finds it.
        adopt: Adopt::Name,
        ..DIFFED
    },
    Spec {
        kind: Kind::Evidence,
        name: "evidence",
        planned: Planned::Incident,
        family: Family::Compute,
        phase: Phase::Evidence,
        cost: Cost::Isolate,
        // Snapshots are tagged with the incident and the volume in their create call: a
        // run killed midway finds those it took and takes only the rest.
        adopt: Adopt::Name,
        kept: true,
        ..DIFFED
    },
    Spec {
        kind: Kind::Quarantine,
        name: "quarantine",
        planned: Planned::Incident,
        family: Family::Compute,
        phase: Phase::Isolate,
        cost: Cost::Isolate,
        // The previous groups are tagged on the instance before it moves: a run killed
        // midway reads them back.
        adopt: Adopt::Name,
        ..DIFFED
    },
    Spec {
        kind: Kind::Cordon,
        name: "cordon",
        planned: Planned::Incident,
        family: Family::Kubernetes,
        phase: Phase::Isolate,
        cost: Cost::Isolate,
        adopt: Adopt::Name,
        ..DIFFED
    },
    Spec {
        kind: Kind::DenyAll,
        name: "deny_all",
        planned: Planned::Incident,
        family: Family::Kubernetes,
        phase: Phase::Isolate,
        cost: Cost::Isolate,
        adopt: Adopt::Name,
        ..DIFFED
    },
];

impl Kind {
    /// This kind's row of [`TABLE`].
    pub fn spec(self) -> &'static Spec {
        // The table is in `Kind::ALL`'s order, which a test checks.
        &TABLE[self as usize]
    }
}

/// Whether a change adds serving capacity (before traffic moves) or removes it (after).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// The direction of `c`, judged by its kind's [`Scale`].
pub fn direction(c: &Change) -> Direction {
    if c.action == Action::Delete {
        return Direction::Down;
    }
    let get = |a: &Option<Attrs>, k: &str| a.as_ref().and_then(|a| a.get(k)).cloned();
    match c.kind.spec().scale {
        Scale::Presence => Direction::Up,
        Scale::Count(attr) => match (get(&c.before, attr), get(&c.after, attr)) {
            (Some(b), Some(a)) if a < b => Direction::Down,
            _ => Direction::Up,
        },
        Scale::Suspend(flag) => match get(&c.after, flag) == Some(Value::Bool(true)) {
            true => Direction::Down,
            false => Direction::Up,
        },
    }
}

/// Whether `c` adds to what its kind scales by (more replicas, an object created): the one
/// rule for "scales up", which decides what apply waits for and what a drill rehearses.
pub fn scales_up(c: &Change) -> bool {
    let count = |a: &Option<Attrs>, attr: &str| match a.as_ref().and_then(|a| a.get(attr)) {
        Some(Value::Int(n)) => Some(*n),
        _ => None,
    };
    match (c.action, c.kind.spec().scale) {
        (Action::Delete, _) => false,
        (_, Scale::Count(attr)) => match (count(&c.before, attr), count(&c.after, attr)) {
            (Some(b), Some(a)) => a > b,
            (None, Some(a)) => a > 0,
            _ => false,
        },
        _ => direction(c) == Direction::Up,
    }
}

/// Whether apply must wait for `c` to be ready once performed; `serving` is the region
/// active once the plan is applied.
pub fn awaited(c: &Change, serving: Option<&str>) -> bool {
    match c.kind.spec().ready {
        Ready::Never => false,
        Ready::WhenServing => serving.is_some_and(|s| c.region.as_deref() == Some(s)) && scales_up(c),
        Ready::Finished => c.action != Action::Delete,
    }
}

/// How much serving capacity `r` gives its region: one machine, or its replicas. `None` for
/// what is not capacity.
pub fn capacity(r: &Resource) -> Option<i64> {
    let spec = r.kind.spec();
    match spec.phase {
        Phase::Stack(layer) if layer.is_capacity() => match spec.scale {
            Scale::Count(attr) => Some(r.int(attr).unwrap_or(0)),
            _ => Some(1),
        },
        _ => None,
    }
}

/// Whether `r` is listed but gone (a terminated instance).
pub fn is_gone(r: &Resource) -> bool {
    r.kind.spec().gone_when.is_some_and(|(attr, value)| r.str(attr) == Some(value))
}

/// The estimated seconds `c` takes on the critical path.
pub fn estimate(c: &Change, e: &Estimates) -> u64 {
    if c.action == Action::Adopt {
        return 0;
    }
    match c.kind.spec().cost {
        Cost::Instance if c.action == Action::Update => e.instance / 3,
        Cost::Instance => e.instance,
        Cost::Workload => e.workload,
        Cost::HealthCheck => e.health_check,
        Cost::Dns => {
            let ttl = match c.after.as_ref().and_then(|a| a.get("ttl")) {
                Some(Value::Int(t)) => *t as u64,
                _ => 0,
            };
            e.dns + ttl
        }
        Cost::Bucket => e.bucket,
        Cost::BackupJob => e.backup_job,
        Cost::Restore => e.restore,
        Cost::StopWrites => e.stop_writes,
        Cost::CatchUp => e.catch_up,
        Cost::Member if is_promotion(c) => e.promotion,
        Cost::Member => 0,
        Cost::Hook => e.hook,
        Cost::Isolate => 0,
        Cost::Thaw => match c.after.as_ref().and_then(|a| a.get("seconds")) {
            Some(Value::Int(s)) => (*s).max(0) as u64,
            _ => 0,
        },
    }
}

/// Whether `c` promotes a database member to writer (a replica's role changing in place).
pub fn is_promotion(c: &Change) -> bool {
    c.kind.spec().phase == Phase::Data(DataStep::Member)
        && c.action == Action::Update
        && c.after.as_ref().and_then(|a| a.get("role")) == Some(&Value::Str("writer".into()))
}

/// Whether `c` retires a database writer: its member becoming a replica (the old writer
/// renamed and kept, a new replica under its name). Nothing else may run in its region
/// before it: two writers must never accept writes.
pub fn retires_writer(c: &Change) -> bool {
    c.kind.spec().phase == Phase::Data(DataStep::Member)
        && matches!(c.action, Action::Replace | Action::Update)
        && c.before.as_ref().and_then(|a| a.get("role")) == Some(&Value::Str("writer".into()))
        && c.after.as_ref().and_then(|a| a.get("role")) == Some(&Value::Str("replica".into()))
}

/// Whether the provider of `family` on `cloud` performs steps of `kind`, for providers
/// that implement `manages` from the table: compute and storage on their own cloud, DNS on
/// any, Kubernetes objects in any cluster.
pub fn performed_by(kind: Kind, family: Family, cloud_of_provider: Option<&str>, cloud: Option<&str>) -> bool {
    let spec = kind.spec();
    spec.family == family
        && match family {
            Family::Compute | Family::Storage | Family::Database => cloud.is_some() && cloud == cloud_of_provider,
            Family::Dns | Family::Kubernetes => true,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_kind_order_with_distinct_names() {
        for (i, k) in Kind::ALL.iter().enumerate() {
            assert_eq!(TABLE[i].kind, *k, "row {i}");
            assert_eq!(k.spec().kind, *k);
        }
        let mut names: Vec<&str> = TABLE.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TABLE.len());
    }

    #[test]
    fn undo_names_a_step_of_the_same_family() {
        for s in &TABLE {
            if let Some(u) = s.undo {
                assert_eq!(u.spec().family, s.family, "{}", s.name);
            }
        }
    }

    fn change(kind: Kind, action: Action, before: Option<i64>, after: Option<i64>) -> Change {
        let attrs = |n: Option<i64>| n.map(|n| Attrs::from([("replicas".to_string(), Value::Int(n))]));
        Change {
            address: "a".into(),
            kind,
            region: Some("r".into()),
            action,
            before: attrs(before),
            after: attrs(after),
            id: None,
            replace_paths: Vec::new(),
        }
    }

    #[test]
    fn scaling_up_and_down_is_judged_by_the_table() {
        assert!(scales_up(&change(Kind::Workload, Action::Update, Some(1), Some(3))));
        assert!(!scales_up(&change(Kind::Workload, Action::Update, Some(3), Some(1))));
        assert_eq!(direction(&change(Kind::Workload, Action::Update, Some(3), Some(1))), Direction::Down);
        assert!(scales_up(&change(Kind::Instance, Action::Create, None, None)));
        assert!(!scales_up(&change(Kind::Instance, Action::Delete, None, None)));
        assert!(awaited(&change(Kind::Workload, Action::Update, Some(1), Some(3)), Some("r")));
        assert!(!awaited(&change(Kind::Workload, Action::Update, Some(1), Some(3)), Some("elsewhere")));
        assert!(awaited(&change(Kind::Restore, Action::Create, None, None), None));
        assert!(!awaited(&change(Kind::Instance, Action::Create, None, None), Some("r")));
    }
}
