//! DR drills end to end through the real binary: `examples/bot-core` on moto, gcplocal and
//! three kmock clusters, drilled to its warm standby and to its cold GCP site, a drill that
//! fails its gate, one killed outright and cleaned up, and the drills refused.
//!
//! Two controllers the emulators lack are played, each in one place: Route 53's checkers by
//! the harness's fault proxy in front of moto (`Faults::health_checkers_by`, per health
//! check), and Kubernetes' Job controller for the drill's restore (`complete_jobs`), which
//! marks each Job complete through kmock's `/status` subresource. Nothing else is faked:
//! records, instances, Deployments and Jobs are read back from the emulators.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use drplan_core::recovery::PointFormat;
use drplan_harness::{Emulator, FaultProxy, Faults, Running, write_kubeconfig};
use md5::{Digest, Md5};
use support::{http, text};

const COMPONENTS: [&str; 3] = ["trading-engine", "ai-service", "dashboard"];

struct World {
    moto: Running,
    _aws: FaultProxy,
    gcplocal: Running,
    use1: Running,
    euw1: Running,
    apac: Running,
    dir: tempfile::TempDir,
    /// Health check ids whose checkers report failure (played by the proxy).
    failing: Arc<Mutex<BTreeSet<String>>>,
}

impl World {
    fn config(&self) -> PathBuf {
        self.dir.path().join("bot-core")
    }

    fn drplan(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("the drplan binary runs")
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = support::drplan_aws(self.dir.path());
        c.args(args).env("KUBECONFIG", self.dir.path().join("kubeconfig"));
        c
    }

    fn state(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.config().join(".drplan/state.json")).unwrap()).unwrap()
    }

    /// The id state records for `region`'s health check.
    fn health_check_id(&self, region: &str) -> String {
        let state = self.state();
        let address = format!("health_check.{region}");
        let object = state["objects"].as_array().unwrap().iter().find(|o| o["address"] == address).cloned();
        object.and_then(|o| o["id"].as_str().map(String::from)).unwrap_or_else(|| panic!("{address} in state"))
    }

    /// Route 53's checkers report `region`'s check unhealthy from now on.
    fn fail_checks_of(&self, region: &str) {
        self.failing.lock().unwrap().insert(self.health_check_id(region));
    }

    /// Everything the drill must leave as it was: the records, the active region's instances.
    fn untouchable(&self) -> (Option<String>, Option<String>, BTreeSet<String>) {
        (
            self.moto.failover_record("PRIMARY").unwrap(),
            self.moto.failover_record("SECONDARY").unwrap(),
            self.moto.live_instances("us-east-1").unwrap(),
        )
    }
}

fn world() -> World {
    let moto = Running::start(Emulator::Moto).expect("moto starts");
    let gcplocal = Running::start(Emulator::Gcplocal).expect("gcplocal starts");
    let [use1, euw1, apac] = [(); 3].map(|_| Running::start(Emulator::Kmock).expect("kmock starts"));
    let failing: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let played = Arc::clone(&failing);
    let checkers = Faults::health_checkers_by(move |id| {
        let healthy = !played.lock().unwrap().contains(id);
        (0..8).map(|_| (healthy, SystemTime::now())).collect()
    });
    let aws = FaultProxy::start(moto.url(), checkers).expect("the proxy starts");
    moto.create_hosted_zone("bot-core.com").unwrap();
    for cluster in [&use1, &euw1, &apac] {
        deploy_pipeline(cluster.url());
    }
    let dir = tempfile::tempdir().unwrap();
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
        .replacen("# credentials = \"anonymous\"", "credentials = \"anonymous\"", 1)
        .replacen("  uptime = 99.9", "  uptime = 99.9\n\n  drill_every = \"30d\"", 1);
    std::fs::create_dir(dir.path().join("bot-core")).unwrap();
    std::fs::write(dir.path().join("bot-core/main.hcl"), config).unwrap();
    World { moto, _aws: aws, gcplocal, use1, euw1, apac, dir, failing }
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

fn replicas(cluster: &Running) -> Vec<i64> {
    COMPONENTS
        .iter()
        .map(|c| {
            let path = format!("/apis/apps/v1/namespaces/bot-core/deployments/{c}");
            let (_, body) = http(cluster.url(), "GET", &path, "application/json", "");
            serde_json::from_str::<serde_json::Value>(&body).unwrap()["spec"]["replicas"].as_i64().unwrap_or(-1)
        })
        .collect()
}

fn jobs(cluster: &Running) -> Vec<serde_json::Value> {
    let (_, body) = http(cluster.url(), "GET", "/apis/batch/v1/namespaces/bot-core/jobs", "application/json", "");
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["items"].as_array().cloned().unwrap_or_default()
}

/// Plays Kubernetes' Job controller in `cluster` (kmock runs no pods): every Job found is
/// marked complete through its `/status` subresource, for as long as the returned flag holds.
fn complete_jobs(cluster: &Running) -> Arc<std::sync::atomic::AtomicBool> {
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (flag, url) = (Arc::clone(&running), cluster.url().to_string());
    std::thread::spawn(move || {
        while flag.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(200));
            let (code, body) = http(&url, "GET", "/apis/batch/v1/namespaces/bot-core/jobs", "application/json", "");
            if code != 200 {
                continue;
            }
            let list: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            for job in list["items"].as_array().cloned().unwrap_or_default() {
                if job["status"]["conditions"].as_array().is_some_and(|c| !c.is_empty()) {
                    continue;
                }
                let name = job["metadata"]["name"].as_str().unwrap_or_default();
                let done = serde_json::json!({"status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}});
                let path = format!("/apis/batch/v1/namespaces/bot-core/jobs/{name}/status");
                http(&url, "PATCH", &path, "application/merge-patch+json", &done.to_string());
            }
        }
    });
    running
}

/// A complete recovery point taken `age` seconds ago, in both destinations.
fn write_point(w: &World, age: i64) -> String {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    let name = PointFormat::default().name_at(now - age).unwrap();
    let dump = format!("pg_dump at {name}\n").repeat(10);
    let md5: String = Md5::digest(dump.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let manifest = serde_json::json!({"format": 1, "objects": [{"name": "db.dump", "size": dump.len(), "md5": md5}]});
    for (object, body) in [("db.dump", dump.clone()), ("manifest.json", manifest.to_string())] {
        w.moto.put_object("bot-core-backups", &format!("dr/{name}/{object}"), &body).unwrap();
        let path = format!("/upload/storage/v1/b/bot-core-backups-eu/o?uploadType=media&name=dr/{name}/{object}");
        let (code, answer) = http(w.gcplocal.url(), "POST", &path, "application/octet-stream", &body);
        assert_eq!(code, 200, "{answer}");
    }
    name
}

fn describe(out: &Output) -> String {
    format!("exit {:?}\nstdout:\n{}\nstderr:\n{}", out.status.code(), text(&out.stdout), text(&out.stderr))
}

fn converge(w: &World) {
    let out = w.drplan(&["apply", "bot-core", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "the first apply converges: {}", describe(&out));
    write_point(w, 10 * 60);
}

fn report(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(out)))
}

#[test]
fn drills_to_the_standby_and_the_cold_site_measure_the_rto_and_leave_everything_as_it_was() {
    let w = world();
    converge(&w);
    let before = w.untouchable();
    assert_eq!(replicas(&w.euw1), vec![1, 1, 0]);
    // Never drilled: drift says so (`drill_every = "30d"`).
    let out = w.drplan(&["drift", "bot-core"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));

    let out = w.drplan(&["drill", "--to", "eu-west-1", "bot-core", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let r = report(&out);
    let d = &r["drill"];
    assert_eq!(d["result"], "passed", "{r:#}");
    let steps: Vec<&str> = d["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(steps, ["capacity ready", "workloads scaled", "gate passed", "teardown"], "{r:#}");
    assert!(d["steps"].as_array().unwrap().iter().all(|s| s["seconds"].as_f64().is_some() && s["ok"] == true));
    let measured = d["measured_rto_seconds"].as_u64().expect("a measured RTO");
    // TTL 60 s and the `dns` estimate of 1 m come on top of the time to the gate.
    assert!(measured >= 120, "{measured}");
    assert!(d["estimate_seconds"].as_u64().is_some(), "{r:#}");
    // Nothing the drill must not touch moved; the standby is back to its declared counts.
    assert_eq!(w.untouchable(), before);
    assert_eq!(w.moto.live_instances("eu-west-1").unwrap().len(), 1);
    assert_eq!(replicas(&w.euw1), vec![1, 1, 0]);
    let out = w.drplan(&["plan", "bot-core", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "converged after the drill: {}", describe(&out));
    // Recorded in state, used by the RTO posture, shown by status.
    let state = w.state();
    assert_eq!(state["drills"][0]["result"], "passed", "{:#}", state["drills"]);
    let plan = text(&w.drplan(&["plan", "bot-core"]).stdout);
    assert!(plan.contains("measured by drill drill-eu-west-1-"), "{plan}");
    let status = w.drplan(&["status", "bot-core", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let euw1 = status["regions"].as_array().unwrap().iter().find(|r| r["name"] == "eu-west-1").cloned().unwrap();
    assert_eq!(euw1["last_drill"]["result"], "passed", "{euw1:#}");

    // The cold site, with a restore into scratch: a temporary health check, removed after.
    let jobs_done = complete_jobs(&w.apac);
    let out = w.drplan(&["drill", "--to", "asia-pacific-1", "bot-core", "--restore", "--json"]);
    jobs_done.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let r = report(&out);
    let steps: Vec<&str> =
        r["drill"]["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(steps, ["capacity ready", "restore done", "workloads scaled", "gate passed", "teardown"], "{r:#}");
    let removed: Vec<&str> = r["drill"]["removed"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert!(removed.contains(&"health_check.asia-pacific-1"), "{removed:?}");
    assert!(removed.iter().any(|a| a.contains(".drill.restore.")), "{removed:?}");
    assert_eq!(w.untouchable(), before);
    assert!(jobs(&w.apac).is_empty(), "the drill's restore Job is gone: {:?}", jobs(&w.apac));
    assert_eq!(replicas(&w.apac), vec![0, 0, 0]);
    let out = w.drplan(&["plan", "bot-core", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "converged after the cold drill: {}", describe(&out));
    // Both regions drilled within 30 days: drift is clean again.
    let out = w.drplan(&["drift", "bot-core"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let _ = &w.use1;
}

#[test]
fn a_drill_that_fails_its_gate_still_tears_down() {
    let w = world();
    converge(&w);
    let before = w.untouchable();
    w.fail_checks_of("eu-west-1");
    let out = w.drplan(&["drill", "--to", "eu-west-1", "bot-core", "--health-timeout", "4s"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let human = text(&out.stdout);
    assert!(human.contains("FAILED") && human.contains("✗ gate passed"), "{human}");
    assert!(human.contains("✓ teardown"), "{human}");
    assert_eq!(w.untouchable(), before);
    assert_eq!(w.moto.live_instances("eu-west-1").unwrap().len(), 1, "back to standby capacity");
    assert_eq!(replicas(&w.euw1), vec![1, 1, 0]);
    assert_eq!(w.state()["drills"][0]["result"], "failed");
}

#[test]
fn a_drill_killed_outright_is_reported_and_cleaned_up() {
    let w = world();
    converge(&w);
    // The gate never passes, so the drill is caught with the standby at active capacity.
    w.fail_checks_of("eu-west-1");
    let mut drill = w
        .command(&["drill", "--to", "eu-west-1", "bot-core", "--health-timeout", "5m"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while w.moto.live_instances("eu-west-1").unwrap().len() < 3 {
        assert!(started.elapsed().as_secs() < 60, "the drill never scaled eu-west-1 up");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    drill.kill().unwrap();
    drill.wait().unwrap();

    let out = w.drplan(&["plan", "bot-core"]);
    let plan = text(&out.stdout);
    assert!(plan.contains("drplan::drill::in_progress") && plan.contains("drplan drill --cleanup"), "{plan}");
    // Another drill is refused until the teardown is done.
    let out = w.drplan(&["drill", "--to", "asia-pacific-1", "bot-core"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text(&out.stderr).contains("did not finish"), "{}", describe(&out));

    let out = w.drplan(&["drill", "--cleanup", "bot-core"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(text(&out.stdout).contains("ABANDONED"), "{}", describe(&out));
    assert_eq!(w.moto.live_instances("eu-west-1").unwrap().len(), 1);
    assert_eq!(replicas(&w.euw1), vec![1, 1, 0]);
    let out = w.drplan(&["drill", "--cleanup", "bot-core"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(text(&out.stderr).contains("No drill to clean up"), "{}", describe(&out));
    let out = w.drplan(&["plan", "bot-core", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

#[test]
fn drills_to_the_active_or_an_unknown_region_or_during_an_incident_are_refused() {
    let w = world();
    converge(&w);
    let serial = w.state()["serial"].clone();
    for (args, says) in [
        (vec!["drill", "--to", "us-east-1", "bot-core"], "`us-east-1` is the active region"),
        (vec!["drill", "--to", "eu-west-2", "bot-core"], "did you mean `eu-west-1`?"),
    ] {
        let out = w.drplan(&args);
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        assert!(
            text(&out.stderr).contains(says) && text(&out.stderr).contains("drplan::drill::refused"),
            "{}",
            describe(&out)
        );
    }
    w.fail_checks_of("us-east-1");
    let out = w.drplan(&["drill", "--to", "eu-west-1", "bot-core"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text(&out.stderr).contains("the active region us-east-1 is not healthy"), "{}", describe(&out));
    assert_eq!(w.state()["serial"], serial, "nothing was written");
    assert_eq!(w.moto.live_instances("eu-west-1").unwrap().len(), 1);
}
