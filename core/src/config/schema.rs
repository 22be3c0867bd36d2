//! The configuration schema: every block, label and attribute drplan accepts, in one table.
//!
//! Lowering checks structure against it (unknown names, missing attributes, duplicates,
//! types), suggestions come from it, and the user guide's reference is checked against it.

/// The shape a value must have. Semantic checks (ranges, enums, durations) come later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    String,
    /// A whole number.
    Int,
    /// Any number.
    Number,
    Bool,
    /// A list of strings.
    StringList,
    /// An object `{ active = N, standby = N, cold = N }`.
    RoleCounts,
    /// An object of strings `{ NAME = "value" }`.
    StringMap,
}

impl Ty {
    pub fn describe(self) -> &'static str {
        match self {
            Ty::String => "a string",
            Ty::Int => "a whole number",
            Ty::Number => "a number",
            Ty::Bool => "true or false",
            Ty::StringList => "a list of strings",
            Ty::RoleCounts => "an object `{ active = N, standby = N, cold = N }`",
            Ty::StringMap => "an object of strings `{ NAME = \"value\" }`",
        }
    }
}

#[derive(Debug)]
pub struct Attr {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    pub doc: &'static str,
}

/// A block kind selected by its label, with its own attributes (`backend "s3"`, `provider "gcp"`).
#[derive(Debug)]
pub struct Variant {
    pub label: &'static str,
    pub attrs: &'static [Attr],
    pub doc: &'static str,
}

#[derive(Debug)]
pub struct Block {
    pub name: &'static str,
    /// At most one such block per parent, whatever its labels (`backend "local"` and
    /// `backend "s3"` cannot both be given).
    pub once: bool,
    /// Names of the labels, for messages (`region "NAME"`). Empty for unlabelled blocks.
    pub labels: &'static [&'static str],
    pub attrs: &'static [Attr],
    /// When non-empty, the first label selects one of these and its attributes apply.
    pub variants: &'static [Variant],
    pub blocks: &'static [Child],
    pub doc: &'static str,
}

#[derive(Debug)]
pub struct Child {
    pub block: &'static Block,
    pub required: bool,
}

impl Block {
    pub fn child(&self, name: &str) -> Option<&'static Child> {
        self.blocks.iter().find(|c| c.block.name == name)
    }

    /// Whether the block may appear several times under one parent (once per name).
    pub fn repeats(&self) -> bool {
        !self.once
    }

    /// Attributes in force for a block with these labels.
    pub fn attrs_for(&self, label: Option<&str>) -> &'static [Attr] {
        match self.variants.iter().find(|v| Some(v.label) == label) {
            Some(v) => v.attrs,
            None => self.attrs,
        }
    }
}

const fn req(name: &'static str, ty: Ty, doc: &'static str) -> Attr {
    Attr { name, ty, required: true, doc }
}

const fn opt(name: &'static str, ty: Ty, doc: &'static str) -> Attr {
    Attr { name, ty, required: false, doc }
}

const fn child(block: &'static Block) -> Child {
    Child { block, required: false }
}

const fn required(block: &'static Block) -> Child {
    Child { block, required: true }
}

pub static BACKEND: Block = Block {
    name: "backend",
    once: true,
    labels: &["type"],
    attrs: &[],
    variants: &[
        Variant {
            label: "local",
            attrs: &[opt(
                "path",
                Ty::String,
                "state file path, relative to the configuration (default `.drplan/state.json`)",
            )],
            doc: "state in a local file",
        },
        Variant {
            label: "s3",
            attrs: &[
                req("bucket", Ty::String, "bucket holding the state object"),
                req("key", Ty::String, "object key of the state"),
                req("region", Ty::String, "AWS region of the bucket"),
                opt("endpoint", Ty::String, "another S3 API address (an emulator, a VPC endpoint)"),
                opt(
                    "lock_lease",
                    Ty::String,
                    "the state lock's lease (default `60s`, at least `3s`): a live holder renews it, and a lock left unchanged for a whole lease is taken over",
                ),
            ],
            doc: "state in an S3 object, locked with a conditional write",
        },
    ],
    blocks: &[child(&REPLICA)],
    doc: "where state lives",
};

pub static REPLICA: Block = Block {
    name: "replica",
    once: false,
    labels: &[],
    attrs: &[
        req("bucket", Ty::String, "bucket holding this copy, under the same key"),
        req("region", Ty::String, "AWS region of the bucket, another than the primary's"),
    ],
    variants: &[],
    blocks: &[],
    doc: "another copy of the state, for `backend \"s3\"`: drplan reads, locks and writes every copy itself, the primary first",
};

pub static DRPLAN: Block = Block {
    name: "drplan",
    once: true,
    labels: &[],
    attrs: &[req("project", Ty::String, "project name, stamped on every managed object as a tag or label")],
    variants: &[],
    blocks: &[child(&BACKEND), child(&POLICY)],
    doc: "project settings",
};

pub static POLICY: Block = Block {
    name: "policy",
    once: true,
    labels: &[],
    attrs: &[req(
        "paths",
        Ty::StringList,
        "directories of Rego policies (`*.rego`, searched recursively), relative to the configuration, evaluated against every plan; `--policy DIR` adds more",
    )],
    variants: &[],
    blocks: &[],
    doc: "policy as code: conftest-style Rego rules (`deny`, `violation`, `warn`) checked against the plan document",
};

pub static ESTIMATES: Block = Block {
    name: "estimates",
    once: true,
    labels: &[],
    attrs: &[
        opt("instance", Ty::String, "time to launch an instance until it is usable (default `3m`)"),
        opt("workload", Ty::String, "time for a Deployment to reach its replicas (default `1m30s`)"),
        opt("health_check", Ty::String, "time to create or change a health check (default `30s`)"),
        opt("dns", Ty::String, "time for a record change to propagate, before its TTL (default `1m`)"),
        opt("bucket", Ty::String, "time to create or change a bucket (default `15s`)"),
        opt("backup_job", Ty::String, "time to create or change the backup CronJob (default `10s`)"),
        opt("restore", Ty::String, "time a restore Job takes to restore a recovery point (default `15m`)"),
        opt("health_gate", Ty::String, "margin added to a health gate's `interval` (default `30s`)"),
        opt("hook", Ty::String, "time a hook's Job takes (default `1m`)"),
    ],
    variants: &[],
    blocks: &[],
    doc: "how long each kind of action takes, for the RTO estimate",
};

pub static OBJECTIVES: Block = Block {
    name: "objectives",
    once: true,
    labels: &[],
    attrs: &[
        opt("rto", Ty::String, "recovery time objective (duration)"),
        opt("rpo", Ty::String, "recovery point objective (duration)"),
        opt(
            "uptime",
            Ty::Number,
            "availability target in percent: a downtime budget over a rolling 365 days (99.9 allows 8h 45m 36s), spent by failovers",
        ),
        opt(
            "drill_every",
            Ty::String,
            "how often each standby and cold region must be drilled (`drplan drill`); older is a posture failure (duration, optional)",
        ),
    ],
    variants: &[],
    blocks: &[child(&ESTIMATES)],
    doc: "recovery objectives",
};

pub static PROVIDER: Block = Block {
    name: "provider",
    once: false,
    labels: &["cloud"],
    attrs: &[],
    variants: &[
        Variant {
            label: "aws",
            attrs: &[
                opt("endpoint", Ty::String, "another AWS API address (an emulator, a VPC endpoint)"),
                opt("profile", Ty::String, "named profile of the shared AWS configuration"),
            ],
            doc: "Amazon Web Services account",
        },
        Variant {
            label: "gcp",
            attrs: &[
                req("project", Ty::String, "GCP project id"),
                opt("endpoint", Ty::String, "another Google Cloud API address (an emulator)"),
                opt("credentials", Ty::String, "`anonymous` for emulators; default: application default credentials"),
            ],
            doc: "Google Cloud project",
        },
    ],
    blocks: &[],
    doc: "cloud account settings",
};

pub static COMPONENT: Block = Block {
    name: "component",
    once: false,
    labels: &["name"],
    attrs: &[
        opt("priority", Ty::Int, "start order during recovery, 1 first"),
        req("replicas", Ty::RoleCounts, "Deployment replicas per role"),
    ],
    variants: &[],
    blocks: &[],
    doc: "a service running in every region's cluster",
};

pub static COMPUTE: Block = Block {
    name: "compute",
    once: false,
    labels: &["pool"],
    attrs: &[
        req("instance_type", Ty::String, "EC2 instance type or GCE machine type"),
        req("image", Ty::String, "AMI id or GCE image"),
        req("count", Ty::RoleCounts, "instances per role"),
    ],
    variants: &[],
    blocks: &[],
    doc: "a pool of virtual machines",
};

pub static KUBERNETES: Block = Block {
    name: "kubernetes",
    once: true,
    labels: &[],
    attrs: &[
        req("context", Ty::String, "kubeconfig context of the region's cluster"),
        opt("namespace", Ty::String, "namespace of the application's Deployments (default `default`)"),
    ],
    variants: &[],
    blocks: &[],
    doc: "the region's Kubernetes cluster",
};

pub static REGION: Block = Block {
    name: "region",
    once: false,
    labels: &["name"],
    attrs: &[
        req("cloud", Ty::String, "`aws` or `gcp`"),
        req("role", Ty::String, "`active`, `standby` or `cold`"),
        opt("endpoint", Ty::String, "host name DNS points at while this region serves"),
        opt("location", Ty::String, "GCP zone (GCP regions only)"),
    ],
    variants: &[],
    blocks: &[child(&COMPUTE), child(&KUBERNETES), child(&REGION_DATABASE)],
    doc: "a place the application can run, with its role",
};

pub static DATABASE: Block = Block {
    name: "database",
    once: false,
    labels: &["name"],
    attrs: &[
        req("engine", Ty::String, "`postgres`, `mysql`, `mariadb` or `mongodb`"),
        opt(
            "writers",
            Ty::StringList,
            "the components that write to it: stopped in the old region before a promotion, started in the new one after it",
        ),
        opt(
            "max_lag",
            Ty::String,
            "the most data a promotion may lose without `--accept-data-loss` (duration, default `objectives.rpo`, never above it)",
        ),
        opt(
            "catch_up_timeout",
            Ty::String,
            "how long a planned failover waits for the replica to catch up once writes stopped (duration, default `5m`)",
        ),
    ],
    variants: &[],
    blocks: &[],
    doc: "a database that fails over with the regions: the active region's instance is the writer, each standby's a replica of it",
};

pub static REGION_DATABASE: Block = Block {
    name: "database",
    once: false,
    labels: &["name"],
    attrs: &[
        opt("rds_instance", Ty::String, "identifier of the region's RDS instance"),
        opt("aurora_cluster", Ty::String, "identifier of the region's Aurora cluster (MySQL engines)"),
        opt("cloudnativepg", Ty::String, "name of a CloudNativePG Cluster in the region's Kubernetes namespace"),
    ],
    variants: &[],
    blocks: &[],
    doc: "this region's member of a database declared at the top level: exactly one of `rds_instance`, `aurora_cluster` or `cloudnativepg`",
};

pub static ENCRYPTION: Block = Block {
    name: "encryption",
    once: true,
    labels: &[],
    attrs: &[req("gpg_recipient", Ty::String, "GPG recipient the backup job encrypts to")],
    variants: &[],
    blocks: &[],
    doc: "backup encryption",
};

pub static S3: Block = Block {
    name: "s3",
    once: true,
    labels: &[],
    attrs: &[
        req("bucket", Ty::String, "bucket name"),
        opt("prefix", Ty::String, "key prefix of the backups"),
        req("region", Ty::String, "AWS region of the bucket"),
        opt("storage_class", Ty::String, "class objects transition to"),
        opt("restore_tier", Ty::String, "how fast archived points are thawed: Expedited, Standard or Bulk"),
    ],
    variants: &[],
    blocks: &[],
    doc: "an S3 bucket",
};

pub static GCS: Block = Block {
    name: "gcs",
    once: true,
    labels: &[],
    attrs: &[
        req("bucket", Ty::String, "bucket name"),
        opt("prefix", Ty::String, "object prefix of the backups"),
        req("location", Ty::String, "GCS location of the bucket"),
        opt("storage_class", Ty::String, "storage class of the bucket"),
    ],
    variants: &[],
    blocks: &[],
    doc: "a Cloud Storage bucket",
};

pub static NAS: Block = Block {
    name: "nas",
    once: true,
    labels: &[],
    attrs: &[
        opt("path", Ty::String, "absolute path of the share as mounted where drplan runs"),
        opt("s3_endpoint", Ty::String, "the share's S3-compatible endpoint (MinIO, TrueNAS), instead of `path`"),
        opt("bucket", Ty::String, "bucket at `s3_endpoint`"),
        opt("prefix", Ty::String, "key prefix of the backups at `s3_endpoint`"),
        opt("region", Ty::String, "region the endpoint signs for (default `us-east-1`)"),
        opt("restore_from", Ty::Bool, "restore Jobs can reach the share: restores may use its points (default false)"),
        opt("claim", Ty::String, "PersistentVolumeClaim of the share in the clusters: restore Jobs mount it at `path`"),
    ],
    variants: &[],
    blocks: &[],
    doc: "an on-premises share: its points listed and verified like a bucket's",
};

pub static DESTINATION: Block = Block {
    name: "destination",
    once: false,
    labels: &["name"],
    attrs: &[],
    variants: &[],
    blocks: &[child(&S3), child(&GCS), child(&NAS)],
    doc: "where backups are written; exactly one of `s3`, `gcs`, `nas`",
};

pub static RESTORE: Block = Block {
    name: "restore",
    once: true,
    labels: &[],
    attrs: &[
        opt("image", Ty::String, "container image of the restore Job (default: the backup's `image`)"),
        opt("command", Ty::StringList, "command of the restore Job (default: the image's entrypoint)"),
        opt("timeout", Ty::String, "how long apply waits for the Job to finish (duration, default `1h`)"),
        opt(
            "when",
            Ty::StringList,
            "roles a region is promoted from that need a restore (default `[\"cold\"]`: a warm standby holds a live replica)",
        ),
    ],
    variants: &[],
    blocks: &[],
    doc: "restoring this backup into a region promoted to active, as a Kubernetes Job in its cluster",
};

pub static BACKUP: Block = Block {
    name: "backup",
    once: false,
    labels: &["name"],
    attrs: &[
        req("schedule", Ty::String, "five-field cron expression"),
        opt("type", Ty::String, "`full`, `incremental` or `differential` (default `full`)"),
        req("retention", Ty::String, "how long backups are kept (duration)"),
        req("image", Ty::String, "container image of the backup job"),
        opt(
            "point_format",
            Ty::String,
            "how a recovery point's folder under the prefix names its time, strftime-style, UTC (default `%Y%m%d_%H%M%S`)",
        ),
        opt(
            "manifest",
            Ty::String,
            "object a backup writes last into its point, listing its objects (absent: every point counts as complete)",
        ),
        opt("command", Ty::StringList, "command of the backup container (default: the image's entrypoint)"),
        opt(
            "env",
            Ty::StringMap,
            "environment variables of the backup container, never secrets (see `env_from_secret`)",
        ),
        opt(
            "env_from_secret",
            Ty::StringList,
            "Kubernetes Secrets whose keys become the backup container's environment",
        ),
    ],
    variants: &[],
    blocks: &[child(&ENCRYPTION), required(&DESTINATION), child(&RESTORE)],
    doc: "a scheduled backup and its destinations",
};

pub static DNS: Block = Block {
    name: "dns",
    once: true,
    labels: &[],
    attrs: &[
        req("zone", Ty::String, "Route 53 hosted zone (must already exist)"),
        req("record", Ty::String, "failover record name, inside the zone"),
        opt("ttl", Ty::Int, "record TTL in seconds (default 60)"),
    ],
    variants: &[],
    blocks: &[],
    doc: "the failover DNS record",
};

pub static HEALTH_CHECK: Block = Block {
    name: "health_check",
    once: true,
    labels: &[],
    attrs: &[
        opt("protocol", Ty::String, "`HTTP`, `HTTPS` or `TCP` (default `HTTPS`)"),
        opt("port", Ty::Int, "port (default 443)"),
        opt("path", Ty::String, "request path for HTTP and HTTPS (default `/`)"),
        opt("interval", Ty::String, "`10s` or `30s` (default `30s`)"),
        opt("threshold", Ty::Int, "failures before unhealthy, 1-10 (default 3)"),
    ],
    variants: &[],
    blocks: &[],
    doc: "Route 53 health check of each serving endpoint",
};

pub static FAILOVER: Block = Block {
    name: "failover",
    once: true,
    labels: &[],
    attrs: &[
        opt(
            "mode",
            Ty::String,
            "`manual` (a watcher only says what it would do) or `automatic` (`drplan watch` fails over) (default `manual`)",
        ),
        opt("order", Ty::StringList, "regions that take over, in order"),
    ],
    variants: &[],
    blocks: &[child(&DNS), child(&HEALTH_CHECK), child(&AUTOMATIC)],
    doc: "failover policy",
};

pub static AUTOMATIC: Block = Block {
    name: "automatic",
    once: true,
    labels: &[],
    attrs: &[
        opt("interval", Ty::String, "time between the watcher's rounds (duration, default `30s`)"),
        opt("cooldown", Ty::String, "time between two automatic failovers (duration, default `1h`)"),
        opt(
            "quorum",
            Ty::Int,
            "percent of Route 53's checkers that must report success for a region to count healthy (default 18, Route 53's own)",
        ),
        opt("allow_cold", Ty::Bool, "fail over to the cold site when no standby is healthy (default false)"),
    ],
    variants: &[],
    blocks: &[],
    doc: "how `drplan watch` fails over",
};

pub static HOOK: Block = Block {
    name: "hook",
    once: false,
    labels: &["name"],
    attrs: &[
        req(
            "at",
            Ty::String,
            "when it runs: `before_failover`, `after_restore`, `after_capacity`, `after_traffic` or `after_fence`",
        ),
        opt("region", Ty::String, "where it runs: `target` (default), `old`, or a region's name"),
        req("image", Ty::String, "container image of the hook's Job"),
        opt("command", Ty::StringList, "command of the Job (default: the image's entrypoint)"),
        opt("env", Ty::StringMap, "environment variables, never secrets (see `env_from_secret`)"),
        opt("env_from_secret", Ty::StringList, "Kubernetes Secrets whose keys become environment variables"),
        opt("timeout", Ty::String, "how long the Job may run (default 10m)"),
        opt("retries", Ty::Int, "attempts after a failed one (default 0: a hook never runs twice unasked)"),
        opt("drill", Ty::Bool, "drills run it too, with `DRPLAN_DRILL=1` (default false)"),
        opt("on_failure", Ty::String, "`stop` (default) or `continue`"),
    ],
    variants: &[],
    blocks: &[],
    doc: "a script of the team's, run as a Kubernetes Job at a named point of a failover or a drill",
};

pub static CONTACT: Block = Block {
    name: "contact",
    once: false,
    labels: &["name"],
    attrs: &[
        opt("role", Ty::String, "what they do in a recovery (free text, such as \"incident commander\")"),
        opt("phone", Ty::String, "how to call them (free text)"),
        opt("email", Ty::String, "where to write to them (free text)"),
    ],
    variants: &[],
    blocks: &[],
    doc: "a person to call in a recovery, listed in the DR plan document (`drplan doc`); at least one of `phone` and `email`",
};

pub static ROOT: Block = Block {
    name: "configuration",
    once: true,
    labels: &[],
    attrs: &[],
    variants: &[],
    blocks: &[
        required(&DRPLAN),
        child(&OBJECTIVES),
        child(&PROVIDER),
        child(&COMPONENT),
        child(&REGION),
        child(&DATABASE),
        child(&BACKUP),
        child(&FAILOVER),
        child(&HOOK),
        child(&CONTACT),
    ],
    doc: "a drplan configuration",
};

/// Every block reachable from the root, depth first, each with its dotted path.
pub fn walk() -> Vec<(String, &'static Block)> {
    fn visit(prefix: &str, block: &'static Block, out: &mut Vec<(String, &'static Block)>) {
        for c in block.blocks {
            let path = if prefix.is_empty() { c.block.name.to_string() } else { format!("{prefix}.{}", c.block.name) };
            out.push((path.clone(), c.block));
            visit(&path, c.block, out);
        }
    }
    let mut out = Vec::new();
    visit("", &ROOT, &mut out);
    out
}

/// The configuration reference in Markdown, generated from this table so it cannot drift
/// from what the parser accepts.
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from core/src/config/schema.rs; do not edit by hand. \
         Regenerate with `UPDATE_EXPECT=1 cargo test -p drplan-core --test it reference`. -->\n\n\
         A configuration is a directory of `*.hcl` files, merged, or a single file. Values are \
         literals; durations are strings such as `\"30s\"`, `\"15m\"`, `\"2h\"`, `\"30d\"` (sums like \
         `\"1h30m\"` too); schedules are five-field cron expressions; any value may be \
         `env(\"NAME\")` or `env(\"NAME\", \"default\")`, read from the environment of the run.\n",
    );
    for (path, block) in walk() {
        let depth = path.matches('.').count();
        let heading = "#".repeat((depth + 2).min(6));
        let labels: String = block.labels.iter().map(|l| format!(" \"{}\"", l.to_uppercase())).collect();
        out.push_str(&format!("\n{heading} `{path}{labels}`\n\n{}.", capitalise(block.doc)));
        let parent_child = parent_of(&path).and_then(|p| p.child(block.name));
        match (block.repeats(), parent_child.is_some_and(|c| c.required)) {
            (true, true) => out.push_str(" One or more, each with a name of its own."),
            (true, false) if block.labels.is_empty() => out.push_str(" Any number."),
            (true, false) => out.push_str(" Any number, each with a name of its own."),
            (false, true) => out.push_str(" Required, once."),
            (false, false) => out.push_str(" Optional, at most once."),
        }
        out.push('\n');
        if block.variants.is_empty() {
            attr_table(&mut out, block.attrs);
        } else {
            for v in block.variants {
                out.push_str(&format!("\n`{} \"{}\"`: {}.\n", block.name, v.label, v.doc));
                attr_table(&mut out, v.attrs);
            }
        }
        if !block.blocks.is_empty() {
            let names: Vec<String> = block.blocks.iter().map(|c| format!("`{}`", c.block.name)).collect();
            out.push_str(&format!("\nNested blocks: {}.\n", names.join(", ")));
        }
    }
    out
}

fn parent_of(path: &str) -> Option<&'static Block> {
    match path.rsplit_once('.') {
        None => Some(&ROOT),
        Some((parent, _)) => walk().into_iter().find(|(p, _)| p == parent).map(|(_, b)| b),
    }
}

fn attr_table(out: &mut String, attrs: &[Attr]) {
    if attrs.is_empty() {
        return;
    }
    out.push_str("\n| attribute | type | required | description |\n| --- | --- | --- | --- |\n");
    for a in attrs {
        let ty = match a.ty {
            Ty::String => "string",
            Ty::Int => "whole number",
            Ty::Number => "number",
            Ty::Bool => "bool",
            Ty::StringList => "list of strings",
            Ty::RoleCounts => "`{ active, standby, cold }`",
            Ty::StringMap => "`{ NAME = \"value\" }`",
        };
        out.push_str(&format!("| `{}` | {ty} | {} | {} |\n", a.name, if a.required { "yes" } else { "no" }, a.doc));
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}
