//! Automatic failover end to end through the real binary: `examples/bot-core` (in
//! `mode = "automatic"`, rounds every second) on moto, gcplocal and three kmock clusters,
//! watched by `drplan watch`.
//!
//! Route 53's checkers are played by the harness's fault proxy in front of moto
//! (`Faults::health_checkers_by`, per health check), since moto's always report success:
//! a test makes a region's check fail by adding its id to `failing`. A local webhook
//! receiver ([`Webhook`]) collects the notifications. Nothing else is faked.

use crate::support;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use drplan_harness::Running;
use support::bot_core::{self, Damage, World, describe, replicas, suspended, write_point};
use support::{http, text};

fn world() -> World {
    bot_core::world(|c| {
        c.replacen("mode  = \"manual\"", "mode  = \"automatic\"", 1).replacen(
            "  health_check {",
            "  automatic {\n    interval = \"1s\"\n  }\n\n  health_check {",
            1,
        )
    })
}

fn converge(w: &World) {
    w.converge();
    write_point(w, 10 * 60, Damage::None);
}

/// A webhook receiver on a free loopback port: every POST body it gets, as JSON.
struct Webhook {
    url: String,
    got: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Webhook {
    fn start() -> Webhook {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let into = Arc::clone(&got);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut stream = stream;
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Headers, then as many body bytes as Content-Length says.
                loop {
                    let n = stream.read(&mut chunk).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
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
                            if let Ok(v) = serde_json::from_str(body) {
                                into.lock().unwrap().push(v);
                            }
                            break;
                        }
                    }
                }
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        Webhook { url, got }
    }

    fn kinds(&self) -> Vec<String> {
        self.got.lock().unwrap().iter().filter_map(|v| v["type"].as_str().map(String::from)).collect()
    }
}

#[test]
fn a_sustained_failure_fails_over_once_fences_and_holds_until_accepted() {
    let w = world();
    converge(&w);
    let hook = Webhook::start();
    w.fail_checks_of("us-east-1");
    let started = std::time::Instant::now();
    let out = w.drplan(&["watch", "bot-core", "--rounds", "4", "--interval", "1s", "--json", "--notify", &hook.url]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let events: Vec<serde_json::Value> =
        text(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds, ["suspect", "failed-over", "overridden", "overridden"], "{}", describe(&out));
    eprintln!(
        "first failed round to PRIMARY moved, with rounds 1 s apart and threshold 2: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("euw1.bot-core.com"));
    assert_eq!(w.moto.live_instances("us-east-1").unwrap().len(), 1, "the old active at standby capacity");
    assert_eq!(replicas(&w.use1), vec![1, 1, 0]);
    assert_eq!(suspended(&w.use1), vec![true], "the old active's backup schedule is suspended");
    assert_eq!(suspended(&w.euw1), vec![false]);
    let state = w.state();
    assert_eq!(state["override"]["active"], "eu-west-1", "{:#}", state["override"]);
    assert_eq!(state["override"]["previous"], "us-east-1");
    assert_eq!(hook.kinds(), ["failing-over", "failed-over"], "the decision, then the outcome");

    // Nothing fails back by accident: the unchanged configuration is refused.
    let out = w.drplan(&["plan", "bot-core"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text(&out.stdout).contains("drplan::plan::failover_override"), "{}", describe(&out));
    assert!(text(&out.stdout).contains("drplan failover --to eu-west-1 --write"), "{}", describe(&out));
    // Accepted by a person: the edit is written, the override cleared, the plan converged.
    let out = w.drplan(&["failover", "--to", "eu-west-1", "bot-core", "--write"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(text(&out.stderr).contains("is accepted: its override is cleared"), "{}", describe(&out));
    assert!(w.state().get("override").is_none());
    let out = w.drplan(&["plan", "bot-core", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

#[test]
fn flapping_never_fails_over_and_separate_once_runs_decide_as_the_loop() {
    let w = world();
    converge(&w);
    for i in 0..6 {
        if i % 2 == 0 {
            w.fail_checks_of("us-east-1");
        } else {
            w.failing.lock().unwrap().clear();
        }
        let out = w.drplan(&["watch", "bot-core", "--once", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        let kind = serde_json::from_str::<serde_json::Value>(text(&out.stdout).trim()).unwrap()["type"].clone();
        assert_eq!(kind, if i % 2 == 0 { "suspect" } else { "healthy" }, "round {i}");
    }
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("use1.bot-core.com"));
    // Two failed --once runs in a row: the second fails over, as the loop's second round does.
    w.fail_checks_of("us-east-1");
    let first = w.drplan(&["watch", "bot-core", "--once", "--json"]);
    assert!(text(&first.stdout).contains("\"suspect\""), "{}", describe(&first));
    let second = w.drplan(&["watch", "bot-core", "--once", "--json"]);
    assert!(text(&second.stdout).contains("\"failed-over\""), "{}", describe(&second));
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("euw1.bot-core.com"));
}

#[test]
fn two_watchers_fail_over_exactly_once() {
    let w = world();
    converge(&w);
    w.fail_checks_of("us-east-1");
    let start = || {
        w.command(&["watch", "bot-core", "--rounds", "3", "--interval", "1s", "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let failed_over = [&a, &b].iter().filter(|o| text(&o.stdout).contains("\"failed-over\"")).count();
    assert_eq!(failed_over, 1, "a:\n{}\nb:\n{}", describe(&a), describe(&b));
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("euw1.bot-core.com"));
    assert_eq!(w.state()["override"]["active"], "eu-west-1");
}

#[test]
fn with_the_old_active_lost_the_fence_is_pending_then_completed_when_it_returns() {
    let w = world();
    converge(&w);
    w.fail_checks_of("us-east-1");
    w.lose_us_east_1();
    let out = w.drplan(&["watch", "bot-core", "--rounds", "3", "--interval", "1s", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let kinds: Vec<String> = text(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|e| e["type"].as_str().map(String::from))
        .collect();
    assert_eq!(kinds[..2], ["suspect", "fence-pending"], "{}", describe(&out));
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("euw1.bot-core.com"));
    assert!(w.state()["lost"]["us-east-1"].is_object(), "the fence is owed: {:#}", w.state()["lost"]);
    // us-east-1 comes back: the next round fences it (scaled down, its schedule suspended).
    w.restore_us_east_1();
    let out = w.drplan(&["watch", "bot-core", "--rounds", "1", "--json"]);
    assert!(text(&out.stdout).contains("\"fenced\""), "{}", describe(&out));
    assert_eq!(w.moto.live_instances("us-east-1").unwrap().len(), 1);
    assert_eq!(replicas(&w.use1), vec![1, 1, 0]);
    assert_eq!(suspended(&w.use1), vec![true]);
    assert!(w.state().get("lost").is_none(), "{:#}", w.state());
    assert_eq!(w.state()["override"]["active"], "eu-west-1", "still held until accepted");
}

/// Holds (`off`) or releases the played Deployment controller for `cluster`'s Deployments
/// (the kmock launcher honours `drplan.test/controller: "off"`).
fn controller(cluster: &Running, on: bool) {
    for name in bot_core::COMPONENTS {
        let value = if on { serde_json::Value::Null } else { "off".into() };
        let patch = serde_json::json!({"metadata": {"annotations": {"drplan.test/controller": value}}});
        let path = format!("/apis/apps/v1/namespaces/bot-core/deployments/{name}");
        let (code, body) = http(cluster.url(), "PATCH", &path, "application/merge-patch+json", &patch.to_string());
        assert_eq!(code, 200, "{body}");
    }
}

#[test]
fn a_watcher_killed_mid_failover_is_finished_by_the_next_round() {
    let w = world();
    converge(&w);
    // The standby's rollout never completes while the watcher fails over: it waits there.
    controller(&w.euw1, false);
    w.fail_checks_of("us-east-1");
    let mut watcher = w
        .command(&["watch", "bot-core", "--interval", "1s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while w.state().get("override").is_none() {
        assert!(started.elapsed().as_secs() < 60, "the watcher never started failing over");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    watcher.kill().unwrap();
    watcher.wait().unwrap();
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("use1.bot-core.com"), "killed before DNS");

    controller(&w.euw1, true);
    let out = w.drplan(&["watch", "bot-core", "--rounds", "1", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(text(&out.stdout).contains("\"fenced\""), "{}", describe(&out));
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("euw1.bot-core.com"));
    assert_eq!(suspended(&w.use1), vec![true]);
    let out = w.drplan(&["watch", "bot-core", "--rounds", "1", "--json"]);
    assert!(text(&out.stdout).contains("\"overridden\""), "nothing left to do: {}", describe(&out));
}

#[test]
fn a_failover_a_policy_denies_is_reported_and_nothing_changes() {
    let w = bot_core::world(|c| {
        c.replacen("mode  = \"manual\"", "mode  = \"automatic\"", 1)
            .replacen("  health_check {", "  automatic {\n    interval = \"1s\"\n  }\n\n  health_check {", 1)
            .replacen("(tags / labels)\n", "(tags / labels)\n\n  policy {\n    paths = [\"policies\"]\n  }\n", 1)
    });
    std::fs::create_dir(w.config().join("policies")).unwrap();
    std::fs::write(w.config().join("policies/promotions.rego"), support::DENY_PROMOTIONS).unwrap();
    converge(&w);
    let serial = w.state()["serial"].as_u64();
    let hook = Webhook::start();
    w.fail_checks_of("us-east-1");
    let out = w.drplan(&["watch", "bot-core", "--rounds", "3", "--interval", "1s", "--json", "--notify", &hook.url]);
    assert_eq!(out.status.code(), Some(1), "a refused failover is an error: {}", describe(&out));
    let events: Vec<serde_json::Value> =
        text(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds, ["suspect", "failover-refused", "failover-refused"], "it keeps observing: {}", describe(&out));
    let refused = events[1]["text"].as_str().unwrap();
    assert!(refused.contains("main.deny: no automatic promotion of eu-west-1"), "the rule is named: {refused}");
    // Nothing changed: DNS, capacity on both sides, the schedule, and no override.
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("use1.bot-core.com"));
    assert_eq!(w.moto.live_instances("us-east-1").unwrap().len(), 3);
    assert_eq!(replicas(&w.use1), vec![3, 3, 2]);
    assert_eq!(replicas(&w.euw1), vec![1, 1, 0]);
    assert_eq!(suspended(&w.use1), vec![false]);
    assert!(w.state().get("override").is_none());
    assert_eq!(w.state()["serial"].as_u64(), serial, "no state written");
    assert_eq!(hook.kinds(), ["failover-refused", "failover-refused"], "told, and never 'failing over'");
}
