//! The disaster path end to end through the real binary: `examples/bot-core` on moto,
//! gcplocal and two kmock clusters, the active region then lost as in a real regional
//! outage (its cluster, its EC2 API and its S3 bucket, which holds the primary backup
//! destination), failed over with drplan's own commands, and fenced when it comes back.
//!
//! The outage is played by the harness's fault proxy, in front of moto and of the lost
//! region's cluster (`Faults::region_outage`, `Faults::outage`): moto serves every region on
//! one port, so the proxy drops the requests whose SigV4 credential scope names the region,
//! Route 53's (global) excepted, and every request to the cluster. Nothing else is faked:
//! instances, records, CronJobs and Deployments are read back from the emulators.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Instant;

use drplan_harness::{Emulator, FaultProxy, Faults, Running, write_kubeconfig};
use support::{http, text};

const LOST: &str = "us-east-1";
const STANDBY: &str = "eu-west-1";
const COMPONENTS: [&str; 3] = ["trading-engine", "ai-service", "dashboard"];

struct World {
    moto: std::sync::Arc<Running>,
    /// RDS's publisher of the ledger replica's lag, played.
    _lag: support::bot_core::LagPublisher,
    /// Between drplan and moto: where the AWS side of the outage is played.
    aws: FaultProxy,
    /// Between drplan and gcplocal: where a Cloud Storage outage is played.
    gcp: FaultProxy,
    _gcplocal: Running,
    use1: Running,
    /// Between drplan and us-east-1's cluster.
    use1_proxy: FaultProxy,
    euw1: Running,
    /// The cold site's cluster: nothing runs there, the example declares it.
    _apac: Running,
    dir: tempfile::TempDir,
}

impl World {
    fn config(&self) -> PathBuf {
        self.dir.path().join("bot-core")
    }

    fn drplan(&self, args: &[&str]) -> Output {
        support::drplan_aws(self.dir.path())
            .args(args)
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .env("DRPLAN_AWS_LAG_PERIOD", "1")
            .output()
            .expect("the drplan binary runs")
    }

    /// The whole of us-east-1 goes dark: its cluster and its AWS APIs (EC2, S3).
    fn lose_the_active_region(&self) {
        self.aws.set_faults(Faults::region_outage(LOST));
        self.use1_proxy.set_faults(Faults::outage());
    }

    fn restore_the_region(&self) {
        self.aws.set_faults(Faults::none());
        self.use1_proxy.set_faults(Faults::none());
    }
}

fn json(url: &str, path: &str) -> serde_json::Value {
    let (code, body) = http(url, "GET", path, "application/json", "");
    assert_eq!(code, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// The application's Deployments, as its own deploy pipeline would have made them.
fn deploy_pipeline(cluster: &str) {
    for name in COMPONENTS {
        let body = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "bot-core"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": name, "image": format!("bot-core/{name}:1.0")}]}}}
        });
        let (code, text) = http(
            cluster,
            "POST",
            "/apis/apps/v1/namespaces/bot-core/deployments",
            "application/json",
            &body.to_string(),
        );
        assert!((200..300).contains(&code), "creating {name}: {code} {text}");
    }
}

fn replicas(cluster: &str) -> Vec<i64> {
    COMPONENTS
        .iter()
        .map(|c| {
            json(cluster, &format!("/apis/apps/v1/namespaces/bot-core/deployments/{c}"))["spec"]["replicas"]
                .as_i64()
                .unwrap_or(-1)
        })
        .collect()
}

/// The `suspend` of each backup CronJob in the cluster (drplan's are the only ones).
fn cronjobs_suspended(cluster: &str) -> Vec<bool> {
    let list = json(cluster, "/apis/batch/v1/namespaces/bot-core/cronjobs");
    list["items"].as_array().unwrap().iter().map(|c| c["spec"]["suspend"].as_bool().unwrap_or(false)).collect()
}

/// Where the PRIMARY record points, read from moto's Route 53.
fn primary_target(moto: &Running) -> String {
    moto.failover_record("PRIMARY").expect("moto answers").expect("a PRIMARY record exists")
}

fn world() -> World {
    let moto = Running::start(Emulator::Moto).expect("moto starts");
    let gcplocal = Running::start(Emulator::Gcplocal).expect("gcplocal starts");
    let use1 = Running::start(Emulator::Kmock).expect("kmock starts");
    let euw1 = Running::start(Emulator::Kmock).expect("kmock starts");
    let apac = Running::start(Emulator::Kmock).expect("kmock starts");
    let aws = FaultProxy::start(moto.url(), Faults::none()).expect("the proxy starts");
    let gcp = FaultProxy::start(gcplocal.url(), Faults::none()).expect("the proxy starts");
    let use1_proxy = FaultProxy::start(use1.url(), Faults::none()).expect("the proxy starts");
    moto.create_hosted_zone("bot-core.com").unwrap();
    support::bot_core::seed_ledger(&moto);
    let moto = std::sync::Arc::new(moto);
    let lag = support::bot_core::LagPublisher::start(std::sync::Arc::clone(&moto), &[LOST, STANDBY]);
    deploy_pipeline(use1.url());
    deploy_pipeline(euw1.url());

    let dir = tempfile::tempdir().unwrap();
    write_kubeconfig(
        dir.path().join("kubeconfig"),
        &[("use1", use1_proxy.url()), ("euw1", euw1.url()), ("apac", apac.url())],
    )
    .unwrap();
    let example = support::root().join("examples/bot-core/main.hcl");
    let config = std::fs::read_to_string(example)
        .unwrap()
        .replacen("# endpoint = \"http://127.0.0.1:5000\"", &format!("endpoint = \"{}\"", aws.url()), 1)
        .replacen("# endpoint    = \"http://127.0.0.1:8400\"", &format!("endpoint    = \"{}\"", gcp.url()), 1)
        .replacen("# credentials = \"anonymous\"", "credentials = \"anonymous\"", 1);
    std::fs::create_dir(dir.path().join("bot-core")).unwrap();
    std::fs::write(dir.path().join("bot-core/main.hcl"), config).unwrap();
    World { moto, _lag: lag, aws, gcp, _gcplocal: gcplocal, use1, use1_proxy, euw1, _apac: apac, dir }
}

fn describe(out: &Output) -> String {
    format!("exit {:?}\nstdout:\n{}\nstderr:\n{}", out.status.code(), text(&out.stdout), text(&out.stderr))
}

fn converge(w: &World) {
    let out = w.drplan(&["apply", "bot-core", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "the first apply converges: {}", describe(&out));
    assert_eq!(primary_target(&w.moto), "use1.bot-core.com");
    assert_eq!(cronjobs_suspended(w.use1.url()), vec![false]);
}

fn role_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| l.trim_start().starts_with("role"))
        .map(String::from)
        .collect()
}

#[test]
fn failover_with_the_active_region_down_then_fenced_when_it_returns() {
    let w = world();
    converge(&w);
    let main = w.config().join("main.hcl");
    let before = std::fs::read_to_string(&main).unwrap();

    w.lose_the_active_region();

    // Planning works during the disaster: the region and its bucket are reported, not fatal.
    let out = w.drplan(&["plan", "bot-core", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["unreachable"][LOST].is_string(), "{doc}");
    assert!(doc["unreachable_objects"]["backup.database.destination.primary"].is_string(), "{doc}");
    // The RPO rests on the destinations that can be read.
    assert_eq!(doc["posture"]["rpo"][0]["unreachable"], serde_json::json!(["primary"]));

    // Without the flag, the refusal names the command to run, and nothing is written.
    let out = w.drplan(&["failover", "--to", STANDBY, "bot-core", "--write"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains(&format!("drplan failover --to {STANDBY} bot-core --write --allow-unreachable")),
        "{}",
        describe(&out)
    );
    assert_eq!(std::fs::read_to_string(&main).unwrap(), before);

    // With it: only the two role lines change.
    let started = Instant::now();
    let out = w.drplan(&["failover", "--to", STANDBY, "bot-core", "--write", "--allow-unreachable"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let after = std::fs::read_to_string(&main).unwrap();
    let changed: Vec<(&str, &str)> = before.lines().zip(after.lines()).filter(|(a, b)| a != b).collect();
    assert_eq!(changed.len(), 2, "{changed:?}");
    assert!(changed.iter().all(|(a, b)| a.trim_start().starts_with("role") && b.trim_start().starts_with("role")));
    assert!(text(&out.stderr).contains("drplan apply bot-core --allow-unreachable"), "{}", describe(&out));

    // Apply declares us-east-1 lost: the standby serves, the lost region's actions are owed.
    let out = w.drplan(&["apply", "bot-core", "--allow-unreachable", "--auto-approve"]);
    let moved = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(primary_target(&w.moto), "euw1.bot-core.com");
    assert_eq!(w.moto.live_instances(STANDBY).unwrap().len(), 3, "eu-west-1 at active capacity");
    assert_eq!(replicas(w.euw1.url()), vec![3, 3, 2]);
    assert_eq!(cronjobs_suspended(w.euw1.url()), vec![false], "the backup schedule runs in eu-west-1");
    let err = text(&out.stderr);
    assert!(err.contains(&format!("skipped in {LOST}, declared lost")), "{}", describe(&out));
    assert!(err.contains(&format!("region.{LOST}.backup_job.database")), "{}", describe(&out));
    eprintln!("failover --write to the PRIMARY change with {LOST} down: {:.1}s", moved.as_secs_f64());

    // The fence is owed: plan and drift say so; drift exits 2.
    let out = w.drplan(&["drift", "bot-core"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(text(&out.stdout).contains(&format!("fence pending for {LOST}")), "{}", describe(&out));
    let out = w.drplan(&["plan", "bot-core"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(text(&out.stdout).contains(&format!("Fence pending for {LOST}")), "{}", describe(&out));

    // Someone scales a Deployment in the lost region during the outage (straight to the
    // cluster, behind the proxy): when it returns, that is drift, shown before it is undone.
    let (code, body) = http(
        w.use1.url(),
        "PATCH",
        "/apis/apps/v1/namespaces/bot-core/deployments/dashboard",
        "application/merge-patch+json",
        r#"{"spec":{"replicas":4}}"#,
    );
    assert_eq!(code, 200, "{body}");

    w.restore_the_region();
    let out = w.drplan(&["plan", "bot-core", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let plan = text(&out.stdout);
    let fence_at = plan.find(&format!("Fence pending for {LOST}")).expect("the fence is shown");
    let drift_at = plan.find("Objects have changed outside of drplan").expect("the drift is shown");
    assert!(fence_at < drift_at, "the fence comes first:\n{plan}");
    assert!(plan.contains(&format!("region.{LOST}.workload.dashboard (changed outside drplan)")), "{plan}");

    // A targeted apply that does part of the fence carries that part out and keeps the rest owed.
    let out =
        w.drplan(&["apply", "bot-core", "--auto-approve", "--target", &format!("region.{LOST}.workload.dashboard")]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(!text(&out.stderr).contains(&format!("{LOST} is fenced")), "{}", describe(&out));
    let out = w.drplan(&["drift", "bot-core"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(text(&out.stdout).contains(&format!("fence pending for {LOST}")), "{}", describe(&out));

    // The apply needs no flag and fences the returned region.
    let out = w.drplan(&["apply", "bot-core", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(text(&out.stderr).contains(&format!("{LOST} is fenced")), "{}", describe(&out));
    assert_eq!(w.moto.live_instances(LOST).unwrap().len(), 1, "us-east-1 at standby capacity");
    assert_eq!(replicas(w.use1.url()), vec![1, 1, 0]);
    assert_eq!(cronjobs_suspended(w.use1.url()), vec![true], "the old schedule is suspended");
    assert_eq!(primary_target(&w.moto), "euw1.bot-core.com");

    let out = w.drplan(&["plan", "bot-core", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "converged: {}", describe(&out));
    // The new active region's backups have run: the RPO check has a point to measure.
    support::bot_core::write_point_into(
        &w.moto,
        w._gcplocal.url(),
        10 * 60,
        support::bot_core::Damage::None,
        Some("STANDARD"),
        true,
    );
    let out = w.drplan(&["drift", "bot-core"]);
    assert_eq!(out.status.code(), Some(0), "drift is clean: {}", describe(&out));
    assert_eq!(role_lines(&main).len(), 3);
}

#[test]
fn a_cloud_storage_outage_is_reported_and_does_not_stop_a_failover() {
    let w = world();
    converge(&w);
    // Google's storage API is down; Compute Engine still answers.
    w.gcp.set_faults(Faults::outage().matching(|r| r.path.starts_with("/storage/")));

    let out = w.drplan(&["failover", "--to", STANDBY, "bot-core", "--write"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = w.drplan(&["apply", "bot-core", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(primary_target(&w.moto), "euw1.bot-core.com");
    assert_eq!(cronjobs_suspended(w.use1.url()), vec![true]);
    assert_eq!(cronjobs_suspended(w.euw1.url()), vec![false]);

    let out = w.drplan(&["drift", "bot-core", "--json"]);
    assert_eq!(out.status.code(), Some(2), "an unreadable bucket is never reported clean: {}", describe(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let subjects: Vec<&str> =
        report["findings"].as_array().unwrap().iter().filter_map(|f| f["subject"].as_str()).collect();
    assert_eq!(subjects, vec!["backup.database.destination.secondary"], "{report}");

    w.gcp.set_faults(Faults::none());
    let out = w.drplan(&["plan", "bot-core", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

/// The path the guide gives CI: the failover saved as a plan made with the flag, applied
/// as it is. Applying it declares the region lost, with no flag on `apply`.
#[test]
fn a_saved_plan_made_with_the_flag_declares_the_region_lost() {
    let w = world();
    converge(&w);
    w.lose_the_active_region();
    let out = w.drplan(&["failover", "--to", STANDBY, "bot-core", "--write", "--allow-unreachable"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let plan = w.dir.path().join("failover.plan");
    let out = w.drplan(&["plan", "bot-core", "--allow-unreachable", "--out", plan.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = w.drplan(&["apply", plan.to_str().unwrap(), "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(primary_target(&w.moto), "euw1.bot-core.com");
    let out = w.drplan(&["drift", "bot-core"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(text(&out.stdout).contains(&format!("fence pending for {LOST}")), "{}", describe(&out));
}

/// A lost region is recorded before anything runs: an apply killed outright while its gate
/// waits (Route 53's checkers, played by the proxy, keep reporting eu-west-1 failing) still
/// leaves the fence owed in state.
#[test]
fn a_lost_region_is_recorded_even_when_the_apply_is_killed() {
    use std::io::{BufRead, BufReader};
    let w = world();
    converge(&w);
    w.use1_proxy.set_faults(Faults::outage());
    w.aws.set_faults(
        Faults::health_checkers(|| vec![(false, std::time::SystemTime::now()); 3])
            .dropping(move |r| r.region.as_deref() == Some(LOST) && r.service.as_deref() != Some("route53")),
    );
    let out = w.drplan(&["failover", "--to", STANDBY, "bot-core", "--write", "--allow-unreachable"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let mut child = support::drplan_aws(w.dir.path())
        .args(["apply", "bot-core", "--allow-unreachable", "--auto-approve"])
        .env("KUBECONFIG", w.dir.path().join("kubeconfig"))
        .env("DRPLAN_AWS_LAG_PERIOD", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let gate = format!("started  gate.health.{STANDBY}");
    assert!(lines.by_ref().map_while(Result::ok).any(|l| l.contains(&gate)), "the gate started");
    child.kill().unwrap();
    child.wait().unwrap();

    let out = w.drplan(&["drift", "bot-core"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(text(&out.stdout).contains(&format!("fence pending for {LOST}")), "{}", describe(&out));
}
