//! `examples/bot-core` on the emulators for the metrics and policy tests: moto behind the
//! harness's fault proxy (which plays Route 53's checkers, all healthy), gcplocal and one
//! kmock cluster per region with the application's Deployments, as a team's pipeline
//! would have left them. `edit` changes the configuration before a run.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::PathBuf;
use std::process::Output;
use std::time::SystemTime;

use drplan_core::recovery::PointFormat;
use drplan_harness::{Emulator, FaultProxy, Faults, Running, write_kubeconfig};
use md5::{Digest, Md5};

use crate::support::{self, http, text};

pub const COMPONENTS: [&str; 3] = ["trading-engine", "ai-service", "dashboard"];

pub struct World {
    pub moto: Running,
    pub aws: FaultProxy,
    pub gcplocal: Running,
    pub clusters: [Running; 3],
    pub dir: tempfile::TempDir,
}

impl World {
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("bot-core")
    }

    pub fn drplan(&self, args: &[&str]) -> Output {
        let mut c = support::drplan_aws(self.dir.path());
        c.args(args).env("KUBECONFIG", self.dir.path().join("kubeconfig"));
        c.output().expect("the drplan binary runs")
    }

    /// Replaces every `from` by `to` in the configuration; panics if `from` is not there.
    pub fn edit(&self, from: &str, to: &str) {
        let path = self.config().join("main.hcl");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{from:?} not in the configuration");
        std::fs::write(&path, text.replace(from, to)).unwrap();
    }

    /// Live replicas of each component in the cluster of region `i` (0 us-east-1, 1 eu-west-1).
    pub fn replicas(&self, i: usize) -> Vec<i64> {
        COMPONENTS
            .iter()
            .map(|c| {
                let path = format!("/apis/apps/v1/namespaces/bot-core/deployments/{c}");
                let (_, body) = http(self.clusters[i].url(), "GET", &path, "application/json", "");
                serde_json::from_str::<serde_json::Value>(&body).unwrap()["spec"]["replicas"].as_i64().unwrap_or(-1)
            })
            .collect()
    }

    /// Scales `component` in the cluster of region `i` by hand, behind drplan's back.
    pub fn scale(&self, i: usize, component: &str, replicas: i64) {
        let path = format!("/apis/apps/v1/namespaces/bot-core/deployments/{component}");
        let body = serde_json::json!({"spec": {"replicas": replicas}}).to_string();
        let (code, answer) = http(self.clusters[i].url(), "PATCH", &path, "application/merge-patch+json", &body);
        assert_eq!(code, 200, "{answer}");
    }

    /// A complete recovery point taken `age` seconds ago, in the S3 and GCS destinations.
    pub fn write_point(&self, age: i64) -> String {
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
        let name = PointFormat::default().name_at(now - age).unwrap();
        let dump = format!("pg_dump at {name}\n").repeat(10);
        let md5: String = Md5::digest(dump.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        let manifest =
            serde_json::json!({"format": 1, "objects": [{"name": "db.dump", "size": dump.len(), "md5": md5}]});
        for (object, body) in [("db.dump", dump.clone()), ("manifest.json", manifest.to_string())] {
            self.moto.put_object("bot-core-backups", &format!("dr/{name}/{object}"), &body).unwrap();
            let path = format!("/upload/storage/v1/b/bot-core-backups-eu/o?uploadType=media&name=dr/{name}/{object}");
            let (code, answer) = http(self.gcplocal.url(), "POST", &path, "application/octet-stream", &body);
            assert_eq!(code, 200, "{answer}");
        }
        name
    }

    /// The first apply, then a recovery point ten minutes old.
    pub fn converge(&self) {
        let out = self.drplan(&["apply", "bot-core", "--auto-approve"]);
        assert_eq!(out.status.code(), Some(0), "the first apply converges: {}", describe(&out));
        self.write_point(10 * 60);
    }
}

pub fn world() -> World {
    let moto = Running::start(Emulator::Moto).expect("moto starts");
    let gcplocal = Running::start(Emulator::Gcplocal).expect("gcplocal starts");
    let clusters = [(); 3].map(|_| Running::start(Emulator::Kmock).expect("kmock starts"));
    let checkers = Faults::health_checkers_by(|_| (0..8).map(|_| (true, SystemTime::now())).collect());
    let aws = FaultProxy::start(moto.url(), checkers).expect("the proxy starts");
    moto.create_hosted_zone("bot-core.com").unwrap();
    for cluster in &clusters {
        deploy_pipeline(cluster.url());
    }
    let dir = tempfile::tempdir().unwrap();
    let [use1, euw1, apac] = &clusters;
    write_kubeconfig(
        dir.path().join("kubeconfig"),
        &[("use1", use1.url()), ("euw1", euw1.url()), ("apac", apac.url())],
    )
    .unwrap();
    let example = support::root().join("examples/bot-core/main.hcl");
    let config = std::fs::read_to_string(example)
        .unwrap()
        .replacen("# endpoint = \"http://127.0.0.1:5000\"", &format!("endpoint = \"{}\"", aws.url()), 1)
        .replacen("# endpoint    = \"http://127.0.0.1:8400\"", &format!("endpoint    = \"{}\"", gcplocal.url()), 1)
        .replacen("# credentials = \"anonymous\"", "credentials = \"anonymous\"", 1);
    std::fs::create_dir(dir.path().join("bot-core")).unwrap();
    std::fs::write(dir.path().join("bot-core/main.hcl"), config).unwrap();
    World { moto, aws, gcplocal, clusters, dir }
}

fn deploy_pipeline(cluster: &str) {
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

pub fn describe(out: &Output) -> String {
    format!("exit {:?}\nstdout:\n{}\nstderr:\n{}", out.status.code(), text(&out.stdout), text(&out.stderr))
}

pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(out)))
}
