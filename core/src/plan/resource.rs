//! The resource model: what drplan manages, named by stable, human-readable addresses.

use std::collections::BTreeMap;
use std::fmt;

/// The kinds of step a plan holds: what drplan manages, and what it runs once. How each
/// behaves is its row in the step table (`step.rs`). NAS destinations are posture checks,
/// not resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// An EC2 or GCE instance of a compute pool.
    Instance,
    /// The replica count of a Kubernetes Deployment the application's pipeline created.
    Workload,
    /// A Route 53 health check of a region endpoint.
    HealthCheck,
    /// A Route 53 failover record set (PRIMARY or SECONDARY).
    DnsRecord,
    /// An S3 or GCS bucket holding backups.
    Bucket,
    /// The Kubernetes CronJob `drplan-backup-<name>` in a region's cluster.
    BackupJob,
    /// A Kubernetes Job restoring a backup's recovery point into a promoted region.
    Restore,
    /// A region's member of a database: the writer, or a replica of it.
    Database,
    /// The old writer region's writers scaled to 0 before a promotion.
    StopWrites,
    /// Waiting for a replica to have every write before it is promoted.
    CatchUp,
    /// The writers scaled back up when a promotion could not go on.
    ResumeWrites,
    /// An archived recovery point's objects brought back within reach (S3's RestoreObject)
    /// before the restore Job reads them.
    Thaw,
    /// A script of the team's run as a Kubernetes Job at a named point of a failover.
    Hook,
    /// An incident's evidence of one instance: a snapshot of each of its volumes, tagged
    /// with the incident, copied to another region.
    Evidence,
    /// An incident's quarantine of one instance: moved into a security group that lets
    /// nothing in or out, its previous groups recorded.
    Quarantine,
    /// An incident's cordon of every Node of a region's cluster.
    Cordon,
    /// An incident's deny-all NetworkPolicy in a region's namespace.
    DenyAll,
}

impl Kind {
    pub const ALL: [Kind; 17] = [
        Kind::Instance,
        Kind::Workload,
        Kind::HealthCheck,
        Kind::DnsRecord,
        Kind::Bucket,
        Kind::BackupJob,
        Kind::Restore,
        Kind::Database,
        Kind::StopWrites,
        Kind::CatchUp,
        Kind::ResumeWrites,
        Kind::Thaw,
        Kind::Hook,
        Kind::Evidence,
        Kind::Quarantine,
        Kind::Cordon,
        Kind::DenyAll,
    ];

    /// The kind's name in addresses, plan files and state, from the step table.
    pub fn as_str(self) -> &'static str {
        self.spec().name
    }

    pub fn parse(s: &str) -> Option<Kind> {
        super::step::TABLE.iter().find(|spec| spec.name == s).map(|spec| spec.kind)
    }

    /// Attributes that cannot change in place: a change replaces the object.
    pub fn forces_replacement(self, attr: &str) -> bool {
        self.spec().replaces_on.contains(&attr)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// An attribute value. Deliberately small: drplan's attributes are names, counts and flags.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<u32> for Value {
    fn from(i: u32) -> Value {
        Value::Int(i64::from(i))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

pub type Attrs = BTreeMap<String, Value>;

/// One desired or observed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub address: String,
    pub kind: Kind,
    /// The region whose cloud or cluster hosts the object, when it is hosted in one.
    /// Route 53 objects and buckets are not: an unreachable region does not hide them.
    pub region: Option<String>,
    pub attrs: Attrs,
}

impl Resource {
    pub fn str(&self, name: &str) -> Option<&str> {
        match self.attrs.get(name) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        match self.attrs.get(name) {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        }
    }

    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.attrs.get(name) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }
}

/// Builds attribute maps tersely.
pub fn attrs<const N: usize>(pairs: [(&str, Value); N]) -> Attrs {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Addresses. Each is the one way to name an object in plans, state and `--target`.
pub mod address {
    pub fn instance(region: &str, pool: &str, index: u32) -> String {
        format!("region.{region}.compute.{pool}[{index}]")
    }

    pub fn workload(region: &str, component: &str) -> String {
        format!("region.{region}.workload.{component}")
    }

    pub fn backup_job(region: &str, backup: &str) -> String {
        format!("region.{region}.backup_job.{backup}")
    }

    pub fn restore(region: &str, backup: &str) -> String {
        format!("region.{region}.restore.{backup}")
    }

    /// Hook `name` of a failover, run in `region`.
    pub fn hook(region: &str, name: &str) -> String {
        format!("region.{region}.hook.{name}")
    }

    /// The thaw of the archived point the restore of `backup` into `region` reads.
    pub fn thaw(region: &str, backup: &str) -> String {
        format!("region.{region}.thaw.{backup}")
    }

    pub fn database(region: &str, database: &str) -> String {
        format!("region.{region}.database.{database}")
    }

    pub fn stop_writes(region: &str, database: &str) -> String {
        format!("region.{region}.stop_writes.{database}")
    }

    pub fn catch_up(region: &str, database: &str) -> String {
        format!("region.{region}.catch_up.{database}")
    }

    pub fn resume_writes(region: &str, database: &str) -> String {
        format!("region.{region}.resume_writes.{database}")
    }

    /// An incident's evidence of the instance at `instance` (`region.R.compute.P[i]`).
    pub fn evidence(instance: &str) -> String {
        instance.replacen(".compute.", ".evidence.", 1)
    }

    /// An incident's quarantine of the instance at `instance`.
    pub fn quarantine(instance: &str) -> String {
        instance.replacen(".compute.", ".quarantine.", 1)
    }

    pub fn cordon(region: &str) -> String {
        format!("region.{region}.cordon")
    }

    pub fn deny_all(region: &str) -> String {
        format!("region.{region}.deny_all")
    }

    pub fn health_check(region: &str) -> String {
        format!("health_check.{region}")
    }

    pub fn dns_record(record: &str, failover: &str) -> String {
        format!("dns.{}.{}", record.trim_end_matches('.'), failover.to_ascii_lowercase())
    }

    pub fn bucket(backup: &str, destination: &str) -> String {
        format!("backup.{backup}.destination.{destination}")
    }
}

/// Orders addresses as people count: `nodes[2]` before `nodes[10]`. Runs of digits compare
/// by value, everything else by character; addresses equal that way (`a01`, `a1`) fall back
/// on plain string order, so this is a total order and plans stay byte-for-byte stable.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn runs(s: &str) -> impl Iterator<Item = (bool, &str)> {
        let mut rest = s;
        std::iter::from_fn(move || {
            let digit = rest.chars().next()?.is_ascii_digit();
            let end = rest.find(|c: char| c.is_ascii_digit() != digit).unwrap_or(rest.len());
            let (run, tail) = rest.split_at(end);
            rest = tail;
            Some((digit, run))
        })
    }
    let mut xs = runs(a);
    let mut ys = runs(b);
    loop {
        let ord = match (xs.next(), ys.next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some((true, x)), Some((true, y))) => {
                let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                x.len().cmp(&y.len()).then_with(|| x.cmp(y))
            }
            (Some((_, x)), Some((_, y))) => x.cmp(y),
        };
        if ord.is_ne() {
            return ord;
        }
    }
}

/// An address ordered by [`natural_cmp`], for ordered sets and sort keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Natural<'a>(pub &'a str);

impl Ord for Natural<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        natural_cmp(self.0, other.0)
    }
}

impl PartialOrd for Natural<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod natural_tests {
    use super::natural_cmp;

    #[test]
    fn addresses_sort_as_people_count() {
        let mut v = vec!["web[10]", "web[2]", "web[1]", "dns.a", "web[02]", "web", "web[100]", "region.b"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["dns.a", "region.b", "web", "web[1]", "web[02]", "web[2]", "web[10]", "web[100]"]);
        assert_eq!(natural_cmp("a", "a"), std::cmp::Ordering::Equal);
    }
}
