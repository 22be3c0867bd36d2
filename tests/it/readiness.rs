//! Traffic moves only to a region that is really ready, through the real binary on moto and
//! two kmock clusters: a failover waits for the new region's Deployments to be available,
//! and its health gate passes only on Route 53 observations taken after that.
//!
//! Two controllers the emulators lack are played, each in one place: the Deployment
//! controller by the kmock launcher (it marks every rollout complete unless a Deployment is
//! annotated `drplan.test/controller: "off"`, in which case the test patches its `status`
//! through the `/status` subresource as the controller would), and Route 53's checkers by
//! the harness proxy in front of moto (`Faults::health_checkers`), since moto reports one
//! checker succeeding, now, for every health check.

use crate::support;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use drplan_harness::{Emulator, FaultProxy, Faults, Running, write_kubeconfig};
use drplan_provider_fake::kit::Topology;
use support::{aws_region, dns_failover, http, text};

const ZONE: &str = "ready.example.com";
/// The health check's interval: the gate polls a third of it, so DNS moves within one.
const INTERVAL_SECS: u64 = 10;

struct World {
    moto: Running,
    aws: FaultProxy,
    use1: Running,
    usw2: Running,
    dir: tempfile::TempDir,
}

fn configuration(aws: &str, active: &str, standby: &str) -> String {
    let region =
        |name: &str, role: &str, context: &str| aws_region(name, role, ZONE, (2, 1, 0)).kubernetes(context, "app");
    Topology::new("ready")
        .aws(Some(aws))
        .component("web", None, (3, 1, 0))
        .region(region("us-east-1", active, "use1"))
        .region(region("us-west-2", standby, "usw2"))
        .failover(dns_failover(ZONE, &format!("{INTERVAL_SECS}s"), 1))
        .hcl()
}

fn deploy_pipeline(cluster: &str) {
    let body = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"app"},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx:1.27"}]}}}}"#;
    let (code, text) = http(cluster, "POST", "/apis/apps/v1/namespaces/app/deployments", "application/json", body);
    assert!((200..300).contains(&code), "creating the Deployment: {code} {text}");
}

fn patch(cluster: &str, path: &str, body: &serde_json::Value) {
    let (code, text) = http(cluster, "PATCH", path, "application/merge-patch+json", &body.to_string());
    assert_eq!(code, 200, "PATCH {path}: {text}");
}

/// The test takes over the Deployment controller's part for us-west-2's `web`.
fn hold_rollouts(cluster: &str) {
    let annotation = serde_json::json!({"metadata": {"annotations": {"drplan.test/controller": "off"}}});
    patch(cluster, "/apis/apps/v1/namespaces/app/deployments/web", &annotation);
}

/// What the Deployment controller writes: `ready` pods of the current generation, and the
/// conditions given.
fn set_rollout(cluster: &str, ready: i64, conditions: serde_json::Value) {
    let status = serde_json::json!({"status": {
        "observedGeneration": 1, "replicas": ready, "updatedReplicas": ready,
        "readyReplicas": ready, "availableReplicas": ready, "conditions": conditions,
    }});
    patch(cluster, "/apis/apps/v1/namespaces/app/deployments/web/status", &status);
}

fn replicas(cluster: &str) -> i64 {
    let (_, body) = http(cluster, "GET", "/apis/apps/v1/namespaces/app/deployments/web", "application/json", "");
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["spec"]["replicas"].as_i64().unwrap_or(-1)
}

/// Where the PRIMARY record points, read from moto's Route 53.
fn primary_target(moto: &Running) -> String {
    moto.failover_record("PRIMARY").expect("moto answers").expect("a PRIMARY record exists")
}

fn drplan(dir: &Path, args: &[&str]) -> std::process::Command {
    let mut c = support::drplan_aws(dir);
    c.args(args).env("KUBECONFIG", dir.join("kubeconfig"));
    c
}

fn describe(out: &Output) -> String {
    format!("exit {:?}\nstdout:\n{}\nstderr:\n{}", out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// us-east-1 serving, converged; then the configuration edited to fail over to us-west-2.
fn world() -> World {
    let moto = Running::start(Emulator::Moto).expect("moto starts");
    let use1 = Running::start(Emulator::Kmock).expect("kmock starts");
    let usw2 = Running::start(Emulator::Kmock).expect("kmock starts");
    let aws = FaultProxy::start(moto.url(), Faults::none()).expect("the proxy starts");
    moto.create_hosted_zone(ZONE).unwrap();
    deploy_pipeline(use1.url());
    deploy_pipeline(usw2.url());
    let dir = tempfile::tempdir().unwrap();
    write_kubeconfig(dir.path().join("kubeconfig"), &[("use1", use1.url()), ("usw2", usw2.url())]).unwrap();
    std::fs::write(dir.path().join("main.hcl"), configuration(aws.url(), "active", "standby")).unwrap();
    let out = drplan(dir.path(), &["apply", ".", "--auto-approve"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "converges: {}", describe(&out));
    assert_eq!(primary_target(&moto), format!("use1.{ZONE}"));
    std::fs::write(dir.path().join("main.hcl"), configuration(aws.url(), "standby", "active")).unwrap();
    World { moto, aws, use1, usw2, dir }
}

fn assert_traffic_stayed(w: &World) {
    assert_eq!(primary_target(&w.moto), format!("use1.{ZONE}"), "DNS did not move");
    assert_eq!(w.moto.live_instances("us-east-1").unwrap().len(), 2, "the old active keeps its capacity");
    assert_eq!(replicas(w.use1.url()), 3, "and its replicas");
}

#[test]
fn a_rollout_that_cannot_complete_keeps_traffic_where_it_is() {
    let w = world();
    hold_rollouts(w.usw2.url());
    set_rollout(
        w.usw2.url(),
        1,
        serde_json::json!([
            {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
             "message": "ReplicaSet \"web-7d4\" has timed out progressing."},
        ]),
    );
    let out = drplan(w.dir.path(), &["apply", ".", "--auto-approve"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains("FAILED   region.us-west-2.workload.web: deployment `web` will not become available: ProgressDeadlineExceeded"),
        "{}",
        describe(&out)
    );
    assert!(err.contains("skipped  gate.health.us-west-2"), "{}", describe(&out));
    assert_traffic_stayed(&w);

    // Applied again, nothing is left to scale, but the gate still waits for the rollout.
    let out = drplan(w.dir.path(), &["apply", ".", "--auto-approve", "--rollout-timeout", "2s"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains(
            "FAILED   gate.health.us-west-2: region.us-west-2.workload.web: deployment `web` will not become available"
        ),
        "{}",
        describe(&out)
    );
    assert_traffic_stayed(&w);

    // The scale-up that was made is in state: the next plan does not call it drift.
    let out = drplan(w.dir.path(), &["plan", "."]).output().unwrap();
    assert!(!text(&out.stdout).contains("changed outside drplan"), "{}", describe(&out));
}

#[test]
fn dns_moves_within_one_interval_of_the_rollout_completing() {
    let w = world();
    hold_rollouts(w.usw2.url());
    let child = drplan(w.dir.path(), &["apply", ".", "--auto-approve", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    set_rollout(
        w.usw2.url(),
        3,
        serde_json::json!([{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]),
    );
    let available_at = started.elapsed().as_secs_f64();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(primary_target(&w.moto), format!("usw2.{ZONE}"));

    let events: Vec<serde_json::Value> =
        text(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let at = |kind: &str, id: &str| {
        events
            .iter()
            .find(|e| e["type"] == kind && e["id"] == id)
            .and_then(|e| e["at"].as_f64())
            .unwrap_or_else(|| panic!("no {kind} event for {id}: {}", describe(&out)))
    };
    let rolled_out = at("done", "region.us-west-2.workload.web");
    let gate_started = at("started", "gate.health.us-west-2");
    let moved = at("done", "dns.api.ready.example.com.primary");
    assert!(events.iter().any(|e| e["type"] == "progress" && e["id"] == "region.us-west-2.workload.web"));
    // The apply's clock starts a little after the test's: the rollout cannot be seen as
    // done before the test marked it so.
    assert!(rolled_out >= 4.0, "the workload waited for its rollout ({rolled_out:.1}s, marked at {available_at:.1}s)");
    assert!(gate_started >= rolled_out, "the gate starts once the workload is available");
    let lag = moved - rolled_out;
    eprintln!("workload available → PRIMARY moved: {lag:.1}s (interval {INTERVAL_SECS}s)");
    assert!(lag < INTERVAL_SECS as f64, "PRIMARY moved {lag:.1}s after the rollout, more than one interval");
}

#[test]
fn observations_older_than_the_rollout_never_pass_the_gate() {
    let w = world();
    let began = SystemTime::now();
    // Three checkers: healthy, an hour ago; from 2 s into the test, fresh and failing.
    w.aws.set_faults(Faults::health_checkers(move || {
        let fresh = began.elapsed().unwrap_or_default() > Duration::from_secs(2);
        let (healthy, at) = if fresh { (false, SystemTime::now()) } else { (true, began - Duration::from_secs(3600)) };
        vec![(healthy, at); 3]
    }));
    let out = drplan(w.dir.path(), &["apply", ".", "--auto-approve", "--health-timeout", "8s"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = text(&out.stderr);
    assert!(err.contains("FAILED   gate.health.us-west-2"), "{}", describe(&out));
    assert!(
        err.contains("3 of 3 checkers observed it since it was ready, 0 healthy, 3 failing"),
        "the timeout says what the fresh observations said: {}",
        describe(&out)
    );
    assert_traffic_stayed(&w);
}
