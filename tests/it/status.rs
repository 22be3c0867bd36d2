//! `drplan status` through the real binary: `examples/bot-core` on moto, gcplocal and three
//! kmock clusters (contexts use1, euw1, apac), converged with a recent complete recovery
//! point and READY; then degraded by hand, one thing after another, each said and exit 2: a
//! standby instance terminated (moto's TerminateInstances), the active cluster's backup
//! CronJob suspended (a PATCH to kmock), the newest complete point gone so the newest usable
//! one is older than the RPO; and finally NOT READY with every health check failing.
//!
//! `status` takes no lock: it answers while another run holds the state lock.
//!
//! moto's Route 53 checkers always report success (one checker, taken now), so a failing
//! check is played by the harness proxy in front of moto: `Faults::health_checkers` answers
//! `GetHealthCheckStatus` with the observations the test gives. Nothing else is faked.

use crate::support;

use std::process::Output;

use drplan_harness::Faults;
use support::bot_core::{self, Damage, World, describe, now};
use support::{http, text};

const CRONJOB: &str = "/apis/batch/v1/namespaces/bot-core/cronjobs/drplan-backup-database";

fn world() -> World {
    bot_core::world(|c| c)
}

/// `drplan status --json`, its exit code and report.
fn status(w: &World) -> (Option<i32>, serde_json::Value, Output) {
    let out = w.drplan(&["status", "bot-core", "--json"]);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(&out)));
    (out.status.code(), report, out)
}

/// A complete recovery point taken `age` seconds ago in both cloud destinations; its name.
fn write_point(w: &World, age: i64) -> String {
    bot_core::write_point(w, age, Damage::None)
}

/// Deletes point `name`'s manifest from both destinations: the point is incomplete.
fn drop_manifest(w: &World, name: &str) {
    let (code, answer) = w
        .moto
        .aws_request("s3", "us-east-1", "DELETE", &format!("/bot-core-backups/dr/{name}/manifest.json"), "")
        .unwrap();
    assert!((200..300).contains(&code), "{code} {answer}");
    let path = format!("/storage/v1/b/bot-core-backups-eu/o/dr%2F{name}%2Fmanifest.json");
    let (code, answer) = http(w.gcplocal.url(), "DELETE", &path, "application/json", "");
    assert!((200..300).contains(&code), "{code} {answer}");
}

/// The subjects of a report's reasons, with their verdicts.
fn reasons(report: &serde_json::Value) -> Vec<(String, String)> {
    report["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["verdict"].as_str().unwrap().to_string(), r["subject"].as_str().unwrap().to_string()))
        .collect()
}

fn region<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["regions"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap()
}

#[test]
fn converged_bot_core_is_ready_and_each_degradation_is_said_with_exit_2() {
    let w = world();
    let out = w.drplan(&["apply", "bot-core", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "the first apply converges: {}", describe(&out));
    write_point(&w, 3 * 3_600);
    let recent = write_point(&w, 10 * 60);
    let state = w.config().join(".drplan/state.json");
    let before = std::fs::read(&state).unwrap();

    // Converged: READY, exit 0, and the human layout on one screen.
    let out = w.drplan(&["status", "bot-core"]);
    let human = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(human.starts_with("bot-core: READY"), "{human}");
    assert!(human.lines().count() <= 40 && human.lines().all(|l| l.chars().count() <= 100), "{human}");
    assert!(human.contains(&format!("s3://bot-core-backups/dr/{recent}/")) || human.contains(&recent), "{human}");
    let (code, report, out) = status(&w);
    assert_eq!(code, Some(0), "{}", describe(&out));
    assert_eq!(report["format_version"], drplan_core::status::FORMAT_VERSION);
    assert_eq!(report["verdict"], "READY", "{report:#}");
    let active = region(&report, "us-east-1");
    assert_eq!(active["instances"]["have"], 3);
    assert_eq!(active["dns"], serde_json::json!(["PRIMARY"]));
    assert_eq!(active["health"]["healthy"], true, "moto's one checker reports success: {active:#}");
    assert_eq!(active["backup_jobs"][0]["suspended"], false);
    assert_eq!(region(&report, "eu-west-1")["dns"], serde_json::json!(["SECONDARY"]));
    assert!(report["regions"].as_array().unwrap().iter().all(|r| r["last_drill"].is_null()));
    let markdown = text(&w.drplan(&["status", "bot-core", "--markdown"]).stdout);
    assert!(markdown.contains("**READY**"), "{markdown}");

    // No lock: status runs while another holds the state lock, which stops a plan.
    {
        use drplan_state::Backend;
        let backend = drplan_state::LocalBackend::new(state.clone());
        let _held = backend.lock("apply", "someone@elsewhere", "2026-12-01T00:00:00Z", Default::default()).unwrap();
        let out = w.drplan(&["status", "bot-core"]);
        assert_eq!(out.status.code(), Some(0), "status takes no lock: {}", describe(&out));
        let out = w.drplan(&["plan", "bot-core"]);
        assert_eq!(out.status.code(), Some(1), "the lock is held: {}", describe(&out));
    }

    // A backup CronJob's last successful run is shown, and is not drift.
    let ran = drplan_core::recovery::rfc3339(now() - 5 * 60);
    let patch = serde_json::json!({"status": {"lastSuccessfulTime": ran}}).to_string();
    let (code, answer) =
        http(w.use1.url(), "PATCH", &format!("{CRONJOB}/status"), "application/merge-patch+json", &patch);
    assert!((200..300).contains(&code), "{code} {answer}");
    let (code, report, _) = status(&w);
    assert_eq!(code, Some(0));
    assert_eq!(region(&report, "us-east-1")["backup_jobs"][0]["last_success"], ran.as_str(), "{report:#}");
    let out = w.drplan(&["plan", "bot-core", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "a backup run is no drift: {}", describe(&out));

    // A standby instance terminated by hand.
    let ids = w.moto.live_instances("eu-west-1").unwrap();
    let id = ids.iter().next().expect("the standby runs an instance");
    let body = format!("Action=TerminateInstances&Version=2016-11-15&InstanceId.1={id}");
    let (code, answer) = w.moto.aws_request("ec2", "eu-west-1", "POST", "/", &body).unwrap();
    assert_eq!(code, 200, "{answer}");
    let (code, report, _) = status(&w);
    assert_eq!(code, Some(2));
    assert_eq!(report["verdict"], "DEGRADED");
    assert_eq!(reasons(&report), [("DEGRADED".to_string(), "standby eu-west-1".to_string())]);
    assert!(report["reasons"][0]["detail"].as_str().unwrap().contains("instances 0/1"), "{report:#}");
    let human = text(&w.drplan(&["status", "bot-core"]).stdout);
    assert!(human.contains("DEGRADED   standby eu-west-1: below its standby count: instances 0/1"), "{human}");

    // The active cluster's backup CronJob suspended by hand.
    let patch = serde_json::json!({"spec": {"suspend": true}}).to_string();
    let (code, answer) = http(w.use1.url(), "PATCH", CRONJOB, "application/merge-patch+json", &patch);
    assert!((200..300).contains(&code), "{code} {answer}");
    let (code, report, _) = status(&w);
    assert_eq!(code, Some(2));
    let subjects: Vec<String> = reasons(&report).into_iter().map(|(_, s)| s).collect();
    assert_eq!(subjects, ["active us-east-1", "standby eu-west-1"], "{report:#}");
    assert!(report["reasons"][0]["detail"].as_str().unwrap().contains("is suspended"), "{report:#}");

    // The newest point loses its manifest: the newest usable one is 3h old, beyond the 1h RPO.
    drop_manifest(&w, &recent);
    let (code, report, _) = status(&w);
    assert_eq!(code, Some(2));
    let last = report["reasons"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["subject"], "backup database", "{report:#}");
    assert!(last["detail"].as_str().unwrap().contains("older than the RPO 1h"), "{last:#}");
    assert_eq!(report["backups"][0]["within_rpo"], false);

    // Every checker fails (played by the proxy): the active region is unhealthy, NOT READY,
    // said first; the standby too, and the cold site, restorable, can still take over.
    w.aws.set_faults(Faults::health_checkers(|| vec![(false, std::time::SystemTime::now()); 3]));
    let (code, report, _) = status(&w);
    assert_eq!(code, Some(2));
    assert_eq!(report["verdict"], "NOT READY", "{report:#}");
    assert_eq!(reasons(&report)[0], ("NOT READY".to_string(), "active us-east-1".to_string()), "{report:#}");
    assert_eq!(region(&report, "us-east-1")["health"]["healthy_checkers"], 0);
    assert!(!reasons(&report).iter().any(|(_, s)| s == "failover"), "the cold site can take over: {report:#}");

    // Read-only: the state was never written.
    assert_eq!(std::fs::read(&state).unwrap(), before, "status wrote the state");
}
