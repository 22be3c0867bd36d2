//! The typed configuration model every later stage reads. Built only from a configuration
//! without errors, so its invariants (one active region, known clouds, ...) hold.

use super::cron::Cron;
use super::duration::Duration;
use crate::source::Span;

macro_rules! keyword_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($variant,)* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];
            pub const NAMES: &'static [&'static str] = &[$($text,)*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)* _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

keyword_enum!(
    /// A cloud drplan can manage.
    Cloud { Aws => "aws", Gcp => "gcp", }
);
keyword_enum!(
    /// What a region does: serve, stand by warm, or hold nothing until promoted.
    Role { Active => "active", Standby => "standby", Cold => "cold", }
);
keyword_enum!(
    /// A database engine.
    Engine { Postgres => "postgres", Mysql => "mysql", Mariadb => "mariadb", Mongodb => "mongodb", }
);
keyword_enum!(BackupType { Full => "full", Incremental => "incremental", Differential => "differential", });
keyword_enum!(FailoverMode { Manual => "manual", Automatic => "automatic", });
keyword_enum!(Protocol { Http => "HTTP", Https => "HTTPS", Tcp => "TCP", });

/// A number per role: replicas of a component, instances of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoleCounts {
    pub active: u32,
    pub standby: u32,
    pub cold: u32,
}

impl RoleCounts {
    pub fn for_role(&self, role: Role) -> u32 {
        match role {
            Role::Active => self.active,
            Role::Standby => self.standby,
            Role::Cold => self.cold,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub project: String,
    pub backend: Backend,
    pub objectives: Objectives,
    pub aws: Option<AwsProvider>,
    pub gcp: Option<GcpProvider>,
    pub components: Vec<Component>,
    pub regions: Vec<Region>,
    pub backups: Vec<Backup>,
    /// Databases that fail over with the regions.
    pub databases: Vec<Database>,
    pub failover: Option<Failover>,
    /// `drplan { policy { paths } }`: policy directories, relative to the configuration.
    pub policy: Vec<String>,
    /// The team's own scripts, run at named points of a failover or a drill.
    pub hooks: Vec<Hook>,
    /// People to call in a recovery: free text the DR plan document repeats.
    pub contacts: Vec<Contact>,
}

/// A `contact "NAME"` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub name: String,
    pub role: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

impl Config {
    pub fn region(&self, name: &str) -> Option<&Region> {
        self.regions.iter().find(|r| r.name == name)
    }

    /// The one region whose role is active (validation guarantees exactly one).
    pub fn active_region(&self) -> Option<&Region> {
        self.regions.iter().find(|r| r.role == Role::Active)
    }

    pub fn database(&self, name: &str) -> Option<&Database> {
        self.databases.iter().find(|d| d.name == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Local {
        path: String,
    },
    /// `replicas` are further copies of the same key in other buckets, primary first in order.
    S3 {
        bucket: String,
        key: String,
        region: String,
        endpoint: Option<String>,
        replicas: Vec<Replica>,
        /// The lock's lease; `None`: the backend's default.
        lock_lease: Option<super::Duration>,
    },
}

/// A `replica` block: another bucket, in another region, holding a copy of the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub bucket: String,
    pub region: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Objectives {
    pub rto: Option<Duration>,
    pub rpo: Option<Duration>,
    pub uptime: Option<f64>,
    /// Each standby and cold region is drilled at least this often.
    pub drill_every: Option<Duration>,
    /// Overrides of the per-action estimates behind the RTO check, by action kind.
    pub estimates: Estimates,
}

/// Per-action duration overrides from `objectives.estimates`; unset ones keep defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Estimates {
    pub instance: Option<Duration>,
    pub workload: Option<Duration>,
    pub health_check: Option<Duration>,
    pub dns: Option<Duration>,
    pub bucket: Option<Duration>,
    pub backup_job: Option<Duration>,
    pub restore: Option<Duration>,
    pub health_gate: Option<Duration>,
    pub hook: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AwsProvider {
    pub endpoint: Option<String>,
    pub profile: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcpProvider {
    pub project: String,
    pub endpoint: Option<String>,
    pub anonymous: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub name: String,
    pub priority: u32,
    pub replicas: RoleCounts,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub name: String,
    /// Where the region's name is declared, for later diagnostics about it.
    pub span: Span,
    pub cloud: Cloud,
    pub role: Role,
    pub role_span: Span,
    pub endpoint: Option<String>,
    pub location: Option<String>,
    pub compute: Vec<ComputePool>,
    pub kubernetes: Option<Kubernetes>,
    /// This region's member of each database it holds.
    pub databases: Vec<Member>,
}

impl Region {
    /// This region's member of database `name`.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.databases.iter().find(|m| m.database == name)
    }
}

/// A top-level `database` block: one logical database whose writer lives in the active
/// region and whose replicas live in the standbys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    pub name: String,
    pub engine: Engine,
    /// Components writing to it: scaled to 0 in the old active before a promotion.
    pub writers: Vec<String>,
    /// The most a promotion may lose without `--accept-data-loss`: `max_lag`, or the RPO.
    /// `None`: neither is set, so any loss needs a person's acceptance.
    pub max_lag: Option<Duration>,
    /// How long a planned failover waits for the replica to catch up.
    pub catch_up_timeout: Duration,
}

/// How a region holds its member of a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MemberKind {
    RdsInstance,
    AuroraCluster,
    CloudNativePg,
}

impl MemberKind {
    pub const ALL: [MemberKind; 3] = [MemberKind::RdsInstance, MemberKind::AuroraCluster, MemberKind::CloudNativePg];

    /// The attribute that declares it, which is also its name in plans and state.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::RdsInstance => "rds_instance",
            MemberKind::AuroraCluster => "aurora_cluster",
            MemberKind::CloudNativePg => "cloudnativepg",
        }
    }

    pub fn parse(s: &str) -> Option<MemberKind> {
        MemberKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A region's `database "NAME"` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub database: String,
    pub kind: MemberKind,
    /// The RDS instance identifier, Aurora cluster identifier or CloudNativePG Cluster name.
    pub identifier: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputePool {
    pub name: String,
    pub instance_type: String,
    pub image: String,
    pub count: RoleCounts,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kubernetes {
    pub context: String,
    pub namespace: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub name: String,
    pub schedule: Cron,
    pub kind: BackupType,
    pub retention: Duration,
    pub image: String,
    pub gpg_recipient: Option<String>,
    pub destinations: Vec<Destination>,
    /// How point folders name their time.
    pub point_format: crate::recovery::PointFormat,
    /// The manifest object's name inside a point, when backups write one.
    pub manifest: Option<String>,
    pub restore: Option<Restore>,
    /// The backup container's command; empty: the image's entrypoint.
    pub command: Vec<String>,
    /// The team's own environment variables (drplan's `DRPLAN_*` are added to them).
    pub env: std::collections::BTreeMap<String, String>,
    /// Secrets whose keys become environment variables (`envFrom`).
    pub env_from_secret: Vec<String>,
}

/// How a backup is restored into a promoted region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restore {
    pub image: String,
    /// Empty: the image's entrypoint.
    pub command: Vec<String>,
    pub timeout: Duration,
    /// The roles a promotion from which needs the restore.
    pub when: Vec<Role>,
}

/// A `hook` block: a container run as a Kubernetes Job at a named point of a failover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub name: String,
    pub at: crate::plan::step::HookPoint,
    pub region: HookRegion,
    pub image: String,
    /// Empty: the image's entrypoint.
    pub command: Vec<String>,
    pub env: std::collections::BTreeMap<String, String>,
    /// Secret names whose keys become environment variables (`envFrom`).
    pub env_from_secret: Vec<String>,
    pub timeout: Duration,
    pub retries: u32,
    /// Drills run it too.
    pub drill: bool,
    /// `true`: a failure stops what depends on it; `false` (`continue`): reported only.
    pub stop: bool,
}

/// Where a hook runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookRegion {
    /// The region being promoted.
    Target,
    /// The region that was active.
    Old,
    Named(String),
}

impl HookRegion {
    /// The region it means in a failover from `old` to `target`.
    pub fn resolve<'a>(&'a self, target: &'a str, old: Option<&'a str>) -> Option<&'a str> {
        match self {
            HookRegion::Target => Some(target),
            HookRegion::Old => old,
            HookRegion::Named(n) => Some(n),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub name: String,
    pub target: Target,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    S3 {
        bucket: String,
        prefix: String,
        region: String,
        storage_class: Option<String>,
        /// How fast its archived points are thawed (S3's retrieval tier; default Standard).
        restore_tier: crate::recovery::Tier,
    },
    Gcs {
        bucket: String,
        prefix: String,
        location: String,
        storage_class: Option<String>,
    },
    Nas {
        /// Where the share is mounted, where drplan runs.
        path: Option<String>,
        /// Its S3-compatible endpoint.
        s3: Option<NasS3>,
        /// Restore Jobs can reach it (the share mounted into them, or its endpoint routable
        /// from the clusters): restores may use its points.
        restore_from: bool,
        /// The PersistentVolumeClaim of the share in the clusters, which restore Jobs mount
        /// at `path`.
        claim: Option<String>,
    },
}

/// A NAS reached through an S3-compatible endpoint (MinIO, TrueNAS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NasS3 {
    pub endpoint: String,
    pub bucket: String,
    pub prefix: String,
    pub region: String,
}

impl Target {
    /// Where the copy lives, for the 3-2-1 rule: a cloud, or on premises.
    pub fn site(&self) -> &'static str {
        match self {
            Target::S3 { .. } => "aws",
            Target::Gcs { .. } => "gcp",
            Target::Nas { .. } => "on-premises",
        }
    }

    /// Where its points live, as a URI: `s3://bucket/prefix`, `gs://…`, `file:///mnt/nas/…`,
    /// or a NAS's endpoint and bucket (`http://nas.local:9000/bucket/prefix`).
    pub fn uri(&self) -> String {
        match self {
            Target::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}"),
            Target::Gcs { bucket, prefix, .. } => format!("gs://{bucket}/{prefix}"),
            Target::Nas { path: Some(path), .. } => format!("file://{path}"),
            Target::Nas { s3: Some(s3), .. } => {
                let prefix = s3.prefix.trim_end_matches('/');
                let folder = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
                format!("{}/{}/{folder}", s3.endpoint.trim_end_matches('/'), s3.bucket)
            }
            Target::Nas { .. } => String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failover {
    pub mode: FailoverMode,
    pub order: Vec<String>,
    pub dns: Option<Dns>,
    pub health_check: HealthCheck,
    /// How `drplan watch` acts (`None`: the defaults).
    pub automatic: Option<Automatic>,
}

/// The watcher's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Automatic {
    pub interval: Duration,
    pub cooldown: Duration,
    pub quorum: u32,
    pub allow_cold: bool,
}

impl Default for Automatic {
    fn default() -> Automatic {
        Automatic {
            interval: Duration::from_secs(30),
            cooldown: Duration::from_secs(3_600),
            quorum: 18,
            allow_cold: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dns {
    pub zone: String,
    pub record: String,
    pub ttl: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub protocol: Protocol,
    pub port: u16,
    pub path: String,
    pub interval: Duration,
    pub threshold: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            protocol: Protocol::Https,
            port: 443,
            path: "/".into(),
            interval: Duration::from_secs(30),
            threshold: 3,
        }
    }
}
