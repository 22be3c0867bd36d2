//! `drplan plan` and `drplan apply` end to end through the real binary, against gcplocal
//! and two kmock clusters: deploy, converge, fail over with a saved plan, refuse a stale one.

use crate::support;

use std::io::{Read, Write};
use std::path::Path;

use drplan_harness::{Emulator, Running, write_kubeconfig};
use drplan_provider_fake::kit::{Backup, Region, Topology};
use support::drplan;

struct World {
    _gcp: Running,
    clusters: Vec<(String, Running)>,
    dir: tempfile::TempDir,
}

/// A JSON request to a cluster, as a deploy pipeline's `kubectl apply` would send.
fn http(url: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    support::http(url, method, path, "application/json", body)
}

fn deploy_pipeline(cluster: &str) {
    let body = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"app"},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx:1.27"}]}}}}"#;
    let (code, text) = http(cluster, "POST", "/apis/apps/v1/namespaces/app/deployments", body);
    assert!((200..300).contains(&code), "creating the Deployment: {code} {text}");
}

fn replicas(cluster: &str) -> i64 {
    let (_, body) = http(cluster, "GET", "/apis/apps/v1/namespaces/app/deployments/web", "");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["spec"]["replicas"].as_i64().unwrap_or(-1)
}

fn configuration(gcp: &str, main_role: &str, dr_role: &str) -> String {
    topology(gcp, main_role, dr_role).hcl()
}

/// Two GCP regions with a pool and a cluster each, backed up to GCS and a NAS.
fn topology(gcp: &str, main_role: &str, dr_role: &str) -> Topology {
    let region = |name: &str, role: &str, location: &str, context: &str| {
        Region::gcp(name, role, location).compute("app", "e2-standard-4", IMAGE, (2, 1, 0)).kubernetes(context, "app")
    };
    Topology::new("shop")
        .objectives("1h", "1h")
        .gcp("shop-dr", gcp)
        .component("web", None, (2, 1, 0))
        .region(region("gcp-main", main_role, "us-central1-a", "main"))
        .region(region("gcp-dr", dr_role, "europe-west1-b", "dr"))
        .backup(
            Backup::new("db", "*/30 * * * *", "7d", "shop/backup:1")
                .gcs("bucket", "shop-dr-backups", "db/", "europe-west1", None)
                .nas("onprem", "/mnt/nas/shop"),
        )
}

const IMAGE: &str = "projects/shop-dr/global/images/app";

fn world() -> World {
    let gcp = Running::start(Emulator::Gcplocal).expect("gcplocal starts");
    let clusters: Vec<(String, Running)> = ["main", "dr"]
        .iter()
        .map(|c| (c.to_string(), Running::start(Emulator::Kmock).expect("kmock starts")))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let contexts: Vec<(&str, &str)> = clusters.iter().map(|(c, r)| (c.as_str(), r.url())).collect();
    write_kubeconfig(dir.path().join("kubeconfig"), &contexts).unwrap();
    for (_, k) in &clusters {
        deploy_pipeline(k.url());
    }
    std::fs::create_dir(dir.path().join("config")).unwrap();
    std::fs::write(dir.path().join("config/main.hcl"), configuration(gcp.url(), "active", "standby")).unwrap();
    World { _gcp: gcp, clusters, dir }
}

fn run(w: &World, args: &[&str]) -> std::process::Output {
    drplan().args(args).env("KUBECONFIG", w.dir.path().join("kubeconfig")).current_dir(w.dir.path()).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn serial(dir: &Path) -> u64 {
    drplan_state::LocalBackend::new(dir.join("config/.drplan/state.json")).read().unwrap().map_or(0, |s| s.serial)
}

#[test]
fn deploy_converge_fail_over_with_a_saved_plan() {
    let w = world();
    let cluster = |name: &str| w.clusters.iter().find(|(c, _)| c == name).unwrap().1.url().to_string();

    let out = run(&w, &["plan", "config", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    for create in [
        "+ region.gcp-main.compute.app[1]",
        "+ region.gcp-dr.compute.app[0]",
        "+ backup.db.destination.bucket",
        "+ region.gcp-main.backup_job.db",
    ] {
        assert!(plan.contains(create), "{create} missing:\n{plan}");
    }
    assert!(
        plan.contains("~ region.gcp-main.workload.web"),
        "the pipeline's Deployment is scaled, not created:\n{plan}"
    );

    let out = run(&w, &["apply", "config"]);
    assert_eq!(out.status.code(), Some(1), "without a terminal, apply asks for --auto-approve");
    assert!(text(&out.stderr).contains("--auto-approve"));
    assert_eq!(serial(w.dir.path()), 0, "nothing was applied");

    let out = run(&w, &["apply", "config", "--auto-approve"]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stderr).contains("Apply complete"), "{}", text(&out.stderr));
    assert_eq!((replicas(&cluster("main")), replicas(&cluster("dr"))), (2, 1));
    let after_deploy = serial(w.dir.path());
    // Changes that finish together share a write, so how many there are depends on timing;
    // more than one shows state was written as the apply went, not once at its end.
    assert!(after_deploy > 2, "state written as changes finish, got serial {after_deploy}");

    let out = run(&w, &["plan", "config", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "converged:\n{}{}", text(&out.stdout), text(&out.stderr));

    // Fail over through a reviewed, saved plan.
    std::fs::write(w.dir.path().join("config/main.hcl"), configuration(w._gcp.url(), "standby", "active")).unwrap();
    let out = run(&w, &["plan", "config", "--out", "failover.plan"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("gcp-dr: standby → active (promote)"));
    let out = run(&w, &["apply", "failover.plan", "--config", "config", "--auto-approve", "--json"]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    let events: Vec<serde_json::Value> = text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let done = |id: &str| {
        events
            .iter()
            .position(|e| e["type"] == "done" && e["id"] == id)
            .unwrap_or_else(|| panic!("{id} not done: {events:?}"))
    };
    assert!(
        done("region.gcp-dr.workload.web") < done("region.gcp-main.workload.web"),
        "scale up the new active before scaling down the old"
    );
    assert_eq!((replicas(&cluster("main")), replicas(&cluster("dr"))), (1, 2));
    let out = run(&w, &["plan", "config", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "converged after failover:\n{}", text(&out.stdout));

    // A saved plan whose configuration changed since is refused, and nothing changes.
    let out = run(&w, &["plan", "config", "--out", "old.plan"]);
    assert!(out.status.success());
    std::fs::write(w.dir.path().join("config/main.hcl"), configuration(w._gcp.url(), "active", "standby")).unwrap();
    let before = serial(w.dir.path());
    let out = run(&w, &["apply", "old.plan", "--config", "config", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("saved plan is stale") && text(&out.stderr).contains("configuration changed"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(serial(w.dir.path()), before);
    assert_eq!((replicas(&cluster("main")), replicas(&cluster("dr"))), (1, 2));
}

/// A webhook receiver on a free loopback port: counts POSTs and keeps their bodies.
fn webhook() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/drplan", listener.local_addr().unwrap());
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read headers, then exactly Content-Length bytes of body.
            let body = loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break String::new();
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break body.to_string();
                    }
                }
            };
            seen.lock().unwrap().push(body);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (url, bodies)
}

#[test]
fn drift_is_clean_when_converged_then_names_a_hand_made_change_and_notifies_once() {
    let mut w = world();
    let main = w.clusters.iter().find(|(c, _)| c == "main").unwrap().1.url().to_string();
    let out = run(&w, &["apply", "config", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The backup has run once: a point in the bucket (no manifest is configured).
    let point = drplan_core::recovery::PointFormat::default().name_at(support::bot_core::now() - 600).unwrap();
    let path = format!("/upload/storage/v1/b/shop-dr-backups/o?uploadType=media&name=db/{point}/dump.gz");
    let (code, answer) = support::http(w._gcp.url(), "POST", &path, "application/octet-stream", "pg_dump");
    assert_eq!(code, 200, "{answer}");
    let (hook, received) = webhook();

    let out = run(&w, &["drift", "config", "--notify", &hook]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(received.lock().unwrap().is_empty(), "no notification when clean");

    // Someone scales the Deployment by hand.
    let (code, _) = http(&main, "PATCH", "/apis/apps/v1/namespaces/app/deployments/web", r#"{"spec":{"replicas":5}}"#);
    assert_eq!(code, 200);
    let before = serial(w.dir.path());
    let out = run(&w, &["drift", "config", "--json", "--notify", &hook]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["clean"], false);
    let findings = report["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["kind"] == "changed"
            && f["subject"] == "region.gcp-main.workload.web"
            && f["detail"].as_str().unwrap().contains("replicas: 2 → 5")),
        "{findings:?}"
    );
    let bodies = received.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "exactly one notification");
    let sent: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert!(sent["text"].as_str().unwrap().contains("region.gcp-main.workload.web"), "{sent}");
    assert_eq!(serial(w.dir.path()), before, "drift changes nothing");
    assert_eq!(replicas(&main), 5, "drift repairs nothing either");

    // A webhook that cannot be reached is reported; the exit code still says drift.
    let out = run(&w, &["drift", "config", "--notify", "http://127.0.0.1:9/down"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("notification to http://127.0.0.1:9/down failed"), "{}", text(&out.stderr));

    // A cluster that cannot be read is never vouched for as clean.
    let (code, _) = http(&main, "PATCH", "/apis/apps/v1/namespaces/app/deployments/web", r#"{"spec":{"replicas":2}}"#);
    assert_eq!(code, 200);
    w.clusters.retain(|(c, _)| c != "dr");
    let out = run(&w, &["drift", "config", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert!(findings.iter().any(|f| f["kind"] == "unreachable" && f["subject"] == "region gcp-dr"), "{findings:?}");
}

/// The configuration with a cold GCP region besides.
fn with_cold(gcp: &str) -> String {
    let cold = Region::gcp("gcp-cold", "cold", "asia-east1-a").compute("app", "e2-standard-4", IMAGE, (2, 1, 0));
    topology(gcp, "active", "standby").region(cold).hcl()
}

#[test]
fn failover_to_the_standby_then_to_the_cold_region_each_applied_and_converged() {
    let w = world();
    let file = w.dir.path().join("config/main.hcl");
    std::fs::write(&file, with_cold(w._gcp.url())).unwrap();
    let out = run(&w, &["apply", "config", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    for (to, from_role) in [("gcp-dr", "standby"), ("gcp-cold", "cold")] {
        let before = std::fs::read_to_string(&file).unwrap();
        let out = run(&w, &["failover", "--to", to, "config", "--write"]);
        assert!(out.status.success(), "failover to {to}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains(&format!("{to}: {from_role} → active (promote)")), "{}", text(&out.stdout));
        let after = std::fs::read_to_string(&file).unwrap();
        let changed: Vec<(&str, &str)> = before.lines().zip(after.lines()).filter(|(a, b)| a != b).collect();
        assert_eq!(changed.len(), 2, "only the two role lines change: {changed:?}");

        let out = run(&w, &["apply", "config", "--auto-approve"]);
        assert!(out.status.success(), "apply after failover to {to}: {}{}", text(&out.stdout), text(&out.stderr));
        let out = run(&w, &["plan", "config", "--detailed-exitcode"]);
        assert_eq!(out.status.code(), Some(0), "converged after failover to {to}:\n{}", text(&out.stdout));
    }
    // The cold region now serves: its instances were provisioned.
    let state =
        drplan_state::LocalBackend::new(w.dir.path().join("config/.drplan/state.json")).read().unwrap().unwrap();
    let cold: Vec<&str> =
        state.objects.iter().map(|o| o.address.as_str()).filter(|a| a.starts_with("region.gcp-cold.compute")).collect();
    assert_eq!(cold, ["region.gcp-cold.compute.app[0]", "region.gcp-cold.compute.app[1]"]);
}
