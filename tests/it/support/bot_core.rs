//! The world the recovery tests run in: `examples/bot-core` on moto, gcplocal and three kmock
//! clusters (contexts `use1`, `euw1`, `apac`), the application's Deployments made as its own
//! pipeline would, and the two controllers the emulators lack played in one place each:
//! Route 53's checkers by the fault proxy in front of moto (per health check: a test adds a
//! check's id to `failing`), and a region's outage by the same proxy and one in front of
//! us-east-1's cluster. Recovery points are written as the guide's backup script does.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use drplan_core::recovery::PointFormat;
use drplan_harness::{Emulator, FaultProxy, Faults, Running, write_kubeconfig};
use md5::{Digest, Md5};

use super::{http, text};

pub const COMPONENTS: [&str; 3] = ["trading-engine", "ai-service", "dashboard"];

/// The bucket of the state once [`World::state_in_s3`] moved it there.
pub const STATE_BUCKET: &str = "bot-core-state";

pub struct World {
    pub moto: Arc<Running>,
    /// In front of moto: plays Route 53's checkers, and drops us-east-1 when it is lost.
    pub aws: FaultProxy,
    /// In front of us-east-1's cluster.
    pub use1_proxy: FaultProxy,
    pub gcplocal: Running,
    pub use1: Running,
    pub euw1: Running,
    pub apac: Running,
    pub dir: tempfile::TempDir,
    /// Health check ids whose checkers report failure.
    pub failing: Arc<Mutex<BTreeSet<String>>>,
    /// The replication lag RDS's publisher reports, played (see [`LagPublisher`]).
    pub lag: LagPublisher,
}

/// The lag published for each (region, instance) set by a test; `None`: nothing published.
pub type Lags = std::collections::BTreeMap<(String, String), Option<f64>>;

/// RDS's publisher of `ReplicaLag` to CloudWatch, played: moto has none. Every 500 ms it puts,
/// for each read replica moto holds in `regions`, its lag stamped now: 0, or what a test set
/// for it with [`LagPublisher::set`] (`None`: nothing, so its lag turns unknown). The binary
/// reads it with one-second periods (`DRPLAN_AWS_LAG_PERIOD=1`), where RDS's own periods are
/// a minute long.
pub struct LagPublisher {
    pub values: Arc<Mutex<Lags>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl LagPublisher {
    /// Starts publishing for the replicas in `regions`.
    pub fn start(moto: Arc<Running>, regions: &[&str]) -> LagPublisher {
        let values: Arc<Mutex<Lags>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (v, s) = (Arc::clone(&values), Arc::clone(&stop));
        let regions: Vec<String> = regions.iter().map(|r| r.to_string()).collect();
        std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::SeqCst) {
                let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
                for region in &regions {
                    // Aurora replica clusters publish their binlog replication's lag.
                    for (id, _) in moto.db_clusters(region).unwrap_or_default().iter().filter(|(_, s)| s.is_some()) {
                        let set = v.lock().unwrap().get(&(region.clone(), id.clone())).copied();
                        if let Some(value) = set.unwrap_or(Some(0.0)) {
                            let dims = [("DBClusterIdentifier", id.as_str())];
                            let _ = moto.put_metric(region, "AWS/RDS", "AuroraBinlogReplicaLag", &dims, value, now);
                        }
                    }
                    let Ok(instances) = moto.db_instances(region) else { continue };
                    for id in instances.iter().filter(|(_, db)| db.source.is_some()).map(|(id, _)| id) {
                        let set = v.lock().unwrap().get(&(region.clone(), id.clone())).copied();
                        if let Some(value) = set.unwrap_or(Some(0.0)) {
                            let dims = [("DBInstanceIdentifier", id.as_str())];
                            let _ = moto.put_metric(region, "AWS/RDS", "ReplicaLag", &dims, value, now);
                        }
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
        });
        LagPublisher { values, stop }
    }

    /// From now on, `instance` in `region` reports `lag` seconds (`None`: nothing).
    pub fn set(&self, region: &str, instance: &str, lag: Option<f64>) {
        self.values.lock().unwrap().insert((region.into(), instance.into()), lag);
    }
}

impl Drop for LagPublisher {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// bot-core on the emulators, its configuration passed through `edit` (a test's own settings).
pub fn world(edit: impl Fn(String) -> String) -> World {
    let moto = Running::start(Emulator::Moto).expect("moto starts");
    let gcplocal = Running::start(Emulator::Gcplocal).expect("gcplocal starts");
    let [use1, euw1, apac] = [(); 3].map(|_| Running::start(Emulator::Kmock).expect("kmock starts"));
    let failing: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let aws = FaultProxy::start(moto.url(), checkers(&failing)).expect("the proxy starts");
    let use1_proxy = FaultProxy::start(use1.url(), Faults::none()).expect("the proxy starts");
    moto.create_hosted_zone("bot-core.com").unwrap();
    seed_ledger(&moto);
    for cluster in [&use1, &euw1, &apac] {
        deploy_pipeline(cluster.url());
    }
    let dir = tempfile::tempdir().unwrap();
    write_kubeconfig(
        dir.path().join("kubeconfig"),
        &[("use1", use1_proxy.url()), ("euw1", euw1.url()), ("apac", apac.url())],
    )
    .unwrap();
    let example = super::root().join("examples/bot-core/main.hcl");
    let config = std::fs::read_to_string(example)
        .unwrap()
        .replacen("# endpoint = \"http://127.0.0.1:5000\"", &format!("endpoint = \"{}\"", aws.url()), 1)
        .replacen("# endpoint    = \"http://127.0.0.1:8400\"", &format!("endpoint    = \"{}\"", gcplocal.url()), 1)
        .replacen("# credentials = \"anonymous\"", "credentials = \"anonymous\"", 1);
    std::fs::create_dir(dir.path().join("bot-core")).unwrap();
    std::fs::write(dir.path().join("bot-core/main.hcl"), edit(config)).unwrap();
    let moto = Arc::new(moto);
    let lag = LagPublisher::start(Arc::clone(&moto), &["us-east-1", "eu-west-1"]);
    World { moto, aws, use1_proxy, gcplocal, use1, euw1, apac, dir, failing, lag }
}

/// The ledger as its operators set it up before drplan: the writer in us-east-1, a
/// cross-region read replica of it in eu-west-1, each on its region's network.
pub fn seed_ledger(moto: &Running) {
    let east = moto.create_db_network("us-east-1", "ledger").expect("a network in us-east-1");
    let west = moto.create_db_network("eu-west-1", "ledger").expect("a network in eu-west-1");
    let tags = [("team", "payments")];
    let writer = moto.create_db_instance(&east, LEDGER_USE1, "db.r6g.large", &tags).expect("the writer");
    moto.create_db_replica(&west, LEDGER_EUW1, &writer).expect("the replica");
}

/// The ledger's RDS instances.
pub const LEDGER_USE1: &str = "bot-core-ledger-use1";
pub const LEDGER_EUW1: &str = "bot-core-ledger-euw1";

/// Route 53's checkers, played: eight per check, reporting failure for the checks in
/// `failing` and success for the others, in observations taken now.
pub fn checkers(failing: &Arc<Mutex<BTreeSet<String>>>) -> Faults {
    let played = Arc::clone(failing);
    Faults::health_checkers_by(move |id| {
        let healthy = !played.lock().unwrap().contains(id);
        (0..8).map(|_| (healthy, SystemTime::now())).collect()
    })
}

impl World {
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("bot-core")
    }

    pub fn drplan(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("the drplan binary runs")
    }

    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = super::drplan_aws(self.dir.path());
        c.args(args).env("KUBECONFIG", self.dir.path().join("kubeconfig")).env("DRPLAN_AWS_LAG_PERIOD", "1");
        c
    }

    /// The state, from the local file, or from S3 once [`World::state_in_s3`] moved it there.
    pub fn state(&self) -> serde_json::Value {
        let local = self.config().join(".drplan/state.json");
        let text = match std::fs::read_to_string(&local) {
            Ok(text) => text,
            Err(_) => {
                let (code, body) = self
                    .moto
                    .aws_request("s3", "us-east-1", "GET", &format!("/{STATE_BUCKET}/bot-core/state.json"), "")
                    .unwrap();
                assert_eq!(code, 200, "no state in S3: {body}");
                body
            }
        };
        serde_json::from_str(&text).unwrap()
    }

    /// The state's lock object in S3, when one is there.
    pub fn lock_object(&self) -> Option<serde_json::Value> {
        let path = format!("/{STATE_BUCKET}/bot-core/state.json.lock");
        let (code, body) = self.moto.aws_request("s3", "us-east-1", "GET", &path, "").unwrap();
        (code == 200).then(|| serde_json::from_str(&body).unwrap())
    }

    /// Moves the state to an S3 object (in bucket `bot-core-state`, through the proxy in front
    /// of moto) whose lock is held under a lease of `lease`, as a team running watchers would.
    pub fn state_in_s3(&self, lease: &str) {
        self.moto.create_bucket(STATE_BUCKET).unwrap();
        self.edit(
            "  backend \"local\" {\n    path = \".drplan/state.json\"\n  }",
            &format!(
                "  backend \"s3\" {{\n    bucket     = \"{STATE_BUCKET}\"\n    key        = \"bot-core/state.json\"\n    region     = \"us-east-1\"\n    endpoint   = \"{}\"\n    lock_lease = \"{lease}\"\n  }}",
                self.aws.url()
            ),
        );
    }

    /// The id state records for `region`'s health check.
    pub fn health_check_id(&self, region: &str) -> String {
        let state = self.state();
        let address = format!("health_check.{region}");
        let object = state["objects"].as_array().unwrap().iter().find(|o| o["address"] == address).cloned();
        object.and_then(|o| o["id"].as_str().map(String::from)).unwrap_or_else(|| panic!("{address} in state"))
    }

    /// Route 53's checkers report `region`'s check unhealthy from now on.
    pub fn fail_checks_of(&self, region: &str) {
        self.failing.lock().unwrap().insert(self.health_check_id(region));
    }

    /// us-east-1 goes dark: its EC2 and S3 APIs (Route 53 is global) and its cluster.
    pub fn lose_us_east_1(&self) {
        self.aws.set_faults(
            checkers(&self.failing)
                .dropping(|r| r.region.as_deref() == Some("us-east-1") && r.service.as_deref() != Some("route53")),
        );
        self.use1_proxy.set_faults(Faults::outage());
    }

    pub fn restore_us_east_1(&self) {
        self.aws.set_faults(checkers(&self.failing));
        self.use1_proxy.set_faults(Faults::none());
    }

    /// Replaces every `from` by `to` in the configuration, as a person editing it would;
    /// panics if `from` is not there.
    pub fn edit(&self, from: &str, to: &str) {
        let path = self.config().join("main.hcl");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{from:?} not in the configuration");
        std::fs::write(&path, text.replace(from, to)).unwrap();
    }

    /// The first apply (the PRIMARY record then names us-east-1).
    pub fn converge(&self) {
        let out = self.drplan(&["apply", "bot-core", "--auto-approve"]);
        assert_eq!(out.status.code(), Some(0), "the first apply converges: {}", describe(&out));
        assert_eq!(self.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("use1.bot-core.com"));
    }
}

/// The application's Deployments, as its own deploy pipeline would have made them.
pub fn deploy_pipeline(cluster: &str) {
    for name in COMPONENTS {
        let body = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "bot-core"},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": name, "image": format!("bot-core/{name}:1.0")}]}}}
        });
        let path = "/apis/apps/v1/namespaces/bot-core/deployments";
        let (code, text) = http(cluster, "POST", path, "application/json", &body.to_string());
        assert!((200..300).contains(&code), "creating {name}: {code} {text}");
    }
}

/// The replicas of the three components in `cluster`.
pub fn replicas(cluster: &Running) -> Vec<i64> {
    COMPONENTS
        .iter()
        .map(|c| {
            let path = format!("/apis/apps/v1/namespaces/bot-core/deployments/{c}");
            let (_, body) = http(cluster.url(), "GET", &path, "application/json", "");
            serde_json::from_str::<serde_json::Value>(&body).unwrap()["spec"]["replicas"].as_i64().unwrap_or(-1)
        })
        .collect()
}

/// Scales `component` in `cluster` by hand, behind drplan's back.
pub fn scale(cluster: &Running, component: &str, replicas: i64) {
    let path = format!("/apis/apps/v1/namespaces/bot-core/deployments/{component}");
    let body = serde_json::json!({"spec": {"replicas": replicas}}).to_string();
    let (code, answer) = http(cluster.url(), "PATCH", &path, "application/merge-patch+json", &body);
    assert_eq!(code, 200, "{answer}");
}

/// A command's standard output, read as the JSON document it must be.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(out)))
}

/// The `suspend` of each backup CronJob in `cluster`.
pub fn suspended(cluster: &Running) -> Vec<bool> {
    let (_, body) = http(cluster.url(), "GET", "/apis/batch/v1/namespaces/bot-core/cronjobs", "application/json", "");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    list["items"].as_array().unwrap().iter().map(|c| c["spec"]["suspend"].as_bool().unwrap_or(false)).collect()
}

/// The Jobs in `cluster`'s namespace.
pub fn jobs(cluster: &Running) -> Vec<serde_json::Value> {
    let (code, body) = http(cluster.url(), "GET", "/apis/batch/v1/namespaces/bot-core/jobs", "application/json", "");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["items"].as_array().cloned().unwrap_or_default()
}

pub fn describe(out: &Output) -> String {
    format!("exit {:?}\nstdout:\n{}\nstderr:\n{}", out.status.code(), text(&out.stdout), text(&out.stderr))
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// How a written point is damaged.
#[derive(Clone, Copy, PartialEq)]
pub enum Damage {
    None,
    /// The backup died before its manifest.
    NoManifest,
    /// An object changed after the manifest was written (same size, other bytes).
    Tampered,
}

/// A point taken `age` seconds ago, as the guide's backup script writes it: its name, and its
/// files (the dump, then the manifest listing it), damaged as `damage` says.
pub fn point_files(age: i64, damage: Damage) -> (String, Vec<(&'static str, String)>) {
    let name = PointFormat::default().name_at(now() - age).unwrap();
    let dump = format!("pg_dump of bot-core at {name}\n").repeat(20);
    let md5: String = Md5::digest(dump.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let manifest = serde_json::json!({
        "format": 1,
        "objects": [{"name": "database.dump.gpg", "size": dump.len(), "md5": md5}],
    })
    .to_string();
    let stored = if damage == Damage::Tampered { dump.replace("pg_dump", "PG_DUMP") } else { dump };
    let mut objects = vec![("database.dump.gpg", stored)];
    if damage != Damage::NoManifest {
        objects.push(("manifest.json", manifest));
    }
    (name, objects)
}

/// Writes a recovery point taken `age` seconds ago into both destinations, as the guide's
/// backup script does: the dump, then the manifest listing it. Returns its name.
pub fn write_point(w: &World, age: i64, damage: Damage) -> String {
    write_point_to(w, age, damage, Some("STANDARD"), true)
}

/// As [`write_point`], into S3 in storage class `s3` (`GLACIER`: as `aws s3 cp
/// --storage-class GLACIER` writes it, the manifest included; `None`: not into S3) and into
/// Cloud Storage when `gcs`.
pub fn write_point_to(w: &World, age: i64, damage: Damage, s3: Option<&str>, gcs: bool) -> String {
    write_point_into(&w.moto, w.gcplocal.url(), age, damage, s3, gcs)
}

/// As [`write_point_to`], into the buckets of bot-core on `moto` and the gcplocal at `gcs_url`.
pub fn write_point_into(
    moto: &Running,
    gcs_url: &str,
    age: i64,
    damage: Damage,
    s3: Option<&str>,
    gcs: bool,
) -> String {
    let (name, objects) = point_files(age, damage);
    for (object, body) in &objects {
        let key = format!("dr/{name}/{object}");
        match s3 {
            Some("STANDARD") => moto.put_object("bot-core-backups", &key, body).unwrap(),
            Some(class) => moto.put_object_in_class("bot-core-backups", &key, body, class).unwrap(),
            None => {}
        }
        if !gcs {
            continue;
        }
        let path = format!("/upload/storage/v1/b/bot-core-backups-eu/o?uploadType=media&name=dr/{name}/{object}");
        let (code, answer) = http(gcs_url, "POST", &path, "application/octet-stream", body);
        assert_eq!(code, 200, "uploading {name}/{object}: {answer}");
    }
    name
}

/// Promotes the cold site in the configuration (as `drplan failover --to` would write it).
pub fn promote_cold_site(w: &World) {
    w.edit("role     = \"active\"", "role     = \"standby\"");
    w.edit("role     = \"cold\"         # nothing runs here until promoted", "role     = \"active\"");
}

/// The value of environment variable `name` in a Job's first container.
pub fn env_of(job: &serde_json::Value, name: &str) -> Option<String> {
    job["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str().map(String::from))
}

/// The `done` events of an `apply --json`, by action id, in the order they came.
pub fn done_order(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["type"] == "done")
        .filter_map(|e| e["id"].as_str().map(String::from))
        .collect()
}

/// Where `id` finished in `order`; panics when it did not.
pub fn position(order: &[String], id: &str) -> usize {
    order.iter().position(|a| a == id).unwrap_or_else(|| panic!("{id} did not finish: {order:?}"))
}
