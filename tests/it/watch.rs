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
    // Its downtime, from the first failed round to the PRIMARY change in sync, plus the TTL.
    let failovers = state["history"]["failovers"].as_array().unwrap();
    assert_eq!(failovers.len(), 1, "the override's later rounds are no failover: {failovers:#?}");
    assert_eq!(failovers[0]["counted_from"], "first failed health observation", "{failovers:#?}");
    assert_eq!(failovers[0]["by"], state["override"]["by"]);
    let downtime = failovers[0]["downtime_seconds"].as_u64().expect("a downtime");
    assert!((61..=60 + started.elapsed().as_secs() + 1).contains(&downtime), "{downtime}: {failovers:#?}");

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

/// bot-core with a second warm standby, eu-central-1 (machines only, no cluster), after
/// eu-west-1 in `failover.order`; automatic, rounds a second apart.
fn two_standbys() -> World {
    bot_core::world(|c| {
        let standby = "region \"eu-central-1\" {\n  cloud    = \"aws\"\n  role     = \"standby\"\n  endpoint = \"euc1.bot-core.com\"\n\n  compute \"nodes\" {\n    instance_type = \"c6i.2xlarge\"\n    image         = \"ami-0d71ea30463e0ff8d\"\n    count         = { active = 3, standby = 1, cold = 0 }\n  }\n}\n\nregion \"asia-pacific-1\" {";
        c.replacen("mode  = \"manual\"", "mode  = \"automatic\"", 1)
            .replacen("  health_check {", "  automatic {\n    interval = \"1s\"\n  }\n\n  health_check {", 1)
            .replacen("region \"asia-pacific-1\" {", standby, 1)
            .replacen(
                "order = [\"eu-west-1\", \"asia-pacific-1\"]",
                "order = [\"eu-west-1\", \"eu-central-1\", \"asia-pacific-1\"]",
                1,
            )
    })
}

fn events(out: &std::process::Output) -> Vec<serde_json::Value> {
    text(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn kinds(out: &std::process::Output) -> Vec<String> {
    events(out).iter().filter_map(|e| e["type"].as_str().map(String::from)).collect()
}

#[test]
fn with_the_first_standby_down_too_the_second_takes_over_and_flapping_never_fails_over() {
    let w = two_standbys();
    converge(&w);
    // Every standby is judged on its own check: the second one got one too.
    let state = w.state();
    let checks: Vec<&str> = state["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["type"] == "health_check")
        .filter_map(|o| o["address"].as_str())
        .collect();
    assert_eq!(checks, ["health_check.eu-central-1", "health_check.eu-west-1", "health_check.us-east-1"]);
    assert_eq!(w.moto.live_instances("eu-central-1").unwrap().len(), 1);

    // Flapping: failed, healthy, failed, healthy, in separate `--once` runs. Never twice in a row.
    for round in 0..4 {
        if round % 2 == 0 {
            w.fail_checks_of("us-east-1");
        } else {
            w.failing.lock().unwrap().clear();
        }
        let out = w.drplan(&["watch", "bot-core", "--once", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        assert!(!kinds(&out).iter().any(|k| k.contains("fail")), "round {round}: {}", describe(&out));
    }
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("use1.bot-core.com"));

    // The active and the first standby fail for good: the second standby takes over.
    w.fail_checks_of("us-east-1");
    w.fail_checks_of("eu-west-1");
    let started = std::time::Instant::now();
    let out = w.drplan(&["watch", "bot-core", "--rounds", "3", "--interval", "1s", "--json"]);
    eprintln!(
        "first failed round to PRIMARY moved, the first standby down too (rounds 1 s apart, threshold 2): {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(kinds(&out)[..2], ["suspect", "failed-over"], "{}", describe(&out));
    let failed_over = events(&out)[1]["text"].as_str().unwrap().to_string();
    assert!(failed_over.contains("to eu-central-1"), "{failed_over}");
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("euc1.bot-core.com"));
    assert_eq!(w.moto.live_instances("eu-central-1").unwrap().len(), 3, "at active capacity");
    assert_eq!(w.moto.live_instances("us-east-1").unwrap().len(), 1, "the old active fenced to standby");
    assert_eq!(replicas(&w.use1), vec![1, 1, 0]);
    assert_eq!(suspended(&w.use1), vec![true]);
    assert_eq!(w.state()["override"]["active"], "eu-central-1");
}

/// The standby's Deployments never finish rolling out (the played controller held), so a
/// failover waits there, mid-round, holding the state lock.
fn stuck_failover(w: &World) {
    controller(&w.euw1, false);
    w.fail_checks_of("us-east-1");
}

fn wait_for(what: &str, limit: std::time::Duration, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what} did not happen within {limit:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn signal(child: &std::process::Child, sig: &str) {
    let status = std::process::Command::new("kill").args([sig, &child.id().to_string()]).status().unwrap();
    assert!(status.success(), "kill {sig}");
}

#[test]
fn sigterm_mid_round_exits_promptly_gives_the_s3_lock_back_and_the_next_round_proceeds() {
    let w = world();
    w.state_in_s3("3s");
    converge(&w);
    stuck_failover(&w);
    let beat = w.dir.path().join("heartbeat");
    let watcher = w
        .command(&["watch", "bot-core", "--interval", "1s", "--json", "--heartbeat", beat.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the failover", std::time::Duration::from_secs(60), || w.state().get("override").is_some());
    assert!(w.lock_object().is_some(), "the watcher holds the lock while it waits on the rollout");
    assert!(std::fs::read_to_string(&beat).unwrap().ends_with("Z\n"), "the first round's heartbeat");
    let sent = std::time::Instant::now();
    signal(&watcher, "-TERM");
    let out = watcher.wait_with_output().unwrap();
    let took = sent.elapsed();
    eprintln!("SIGTERM to exit, mid-round: {:.1}s", took.as_secs_f64());
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(took < std::time::Duration::from_secs(15), "within the grace period: {took:?}");
    assert!(w.lock_object().is_none(), "no lock object left: {:?}", w.lock_object());
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("use1.bot-core.com"), "DNS never moved");
    // The next round takes the lock and finishes the failover.
    controller(&w.euw1, true);
    let out = w.drplan(&["watch", "bot-core", "--rounds", "1", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("euw1.bot-core.com"), "{}", describe(&out));
    assert!(w.lock_object().is_none());
}

#[test]
fn a_holder_killed_outright_is_taken_over_once_its_lease_runs_out_and_the_failover_finished() {
    let w = world();
    w.state_in_s3("3s");
    converge(&w);
    stuck_failover(&w);
    let mut first = w
        .command(&["watch", "bot-core", "--interval", "1s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the failover", std::time::Duration::from_secs(60), || w.state().get("override").is_some());
    first.kill().unwrap();
    first.wait().unwrap();
    let killed = std::time::Instant::now();
    assert!(w.lock_object().is_some(), "a holder killed outright leaves its lock object");
    controller(&w.euw1, true);
    let out = w.drplan(&["watch", "bot-core", "--rounds", "1", "--json"]);
    let took = killed.elapsed();
    eprintln!("holder killed to its failover finished by another watcher (lease 3 s): {:.1}s", took.as_secs_f64());
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(text(&out.stdout).contains("was taken over"), "{}", describe(&out));
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("euw1.bot-core.com"), "{}", describe(&out));
    assert_eq!(suspended(&w.use1), vec![true]);
    assert!(w.lock_object().is_none());
}

#[test]
fn a_holder_paused_past_its_lease_is_taken_over_and_once_resumed_changes_nothing() {
    let w = world();
    w.state_in_s3("3s");
    converge(&w);
    stuck_failover(&w);
    let paused = w
        .command(&["watch", "bot-core", "--interval", "1s", "--rounds", "2", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the failover", std::time::Duration::from_secs(60), || w.state().get("override").is_some());
    signal(&paused, "-STOP");
    let stopped = std::time::Instant::now();
    // Another watcher: it waits for the lease to run out, takes the lock over and finishes.
    controller(&w.euw1, true);
    let out = w.drplan(&["watch", "bot-core", "--rounds", "1", "--json"]);
    eprintln!(
        "paused holder to its failover finished by another watcher (lease 3 s): {:.1}s",
        stopped.elapsed().as_secs_f64()
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(text(&out.stdout).contains("was taken over"), "{}", describe(&out));
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("euw1.bot-core.com"));
    let serial = w.state()["serial"].as_u64();
    let instances = (w.moto.live_instances("us-east-1").unwrap(), w.moto.live_instances("eu-west-1").unwrap());

    // Resumed: its rollout wait ends, but it writes no state and changes nothing more.
    signal(&paused, "-CONT");
    let out = paused.wait_with_output().unwrap();
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        said.contains("lost the state lock's lease") || said.contains("state could not be written"),
        "{}",
        describe(&out)
    );
    assert_eq!(w.state()["serial"].as_u64(), serial, "no state write after it resumed");
    assert_eq!((w.moto.live_instances("us-east-1").unwrap(), w.moto.live_instances("eu-west-1").unwrap()), instances);
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("euw1.bot-core.com"));
    assert!(w.lock_object().is_none(), "the lock it lost is not deleted by it, and the taker gave it back");
}

#[test]
fn a_watcher_during_a_planned_switchover_observes_only() {
    let w = world();
    converge(&w);
    // A person's planned failover, waiting on the standby's rollout.
    controller(&w.euw1, false);
    let text_now = std::fs::read_to_string(w.config().join("main.hcl")).unwrap();
    let out = w.drplan(&["failover", "--to", "eu-west-1", "bot-core", "--write"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_ne!(text_now, std::fs::read_to_string(w.config().join("main.hcl")).unwrap());
    let apply = w
        .command(&["apply", "bot-core", "--auto-approve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the switchover record", std::time::Duration::from_secs(60), || w.state().get("switchover").is_some());
    // The old active is drained and looks failing to the checkers.
    w.fail_checks_of("us-east-1");
    for _ in 0..3 {
        let out = w.drplan(&["watch", "bot-core", "--once", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        assert_eq!(kinds(&out), ["switchover"], "{}", describe(&out));
    }
    assert!(w.state().get("override").is_none(), "no watcher's failover");
    controller(&w.euw1, true);
    let out = apply.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(w.state().get("switchover").is_none(), "cleared once the switchover completed");
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("euw1.bot-core.com"));
}

#[test]
fn a_watcher_meeting_a_newer_state_format_alerts_instead_of_failing_silently() {
    let w = world();
    converge(&w);
    let hook = Webhook::start();
    // A newer drplan (state format 4) wrote the state this watcher reads.
    let mut state = w.state();
    state["format_version"] = 4.into();
    std::fs::write(w.config().join(".drplan/state.json"), state.to_string()).unwrap();
    let out = w.drplan(&["watch", "bot-core", "--rounds", "2", "--interval", "1s", "--json", "--notify", &hook.url]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text(&out.stderr).contains("drplan::state::too_new"), "{}", describe(&out));
    assert_eq!(kinds(&out), ["round-failed"], "said once, not every round: {}", describe(&out));
    assert!(events(&out)[0]["text"].as_str().unwrap().contains("cannot fail over until it can"), "{}", describe(&out));
    assert_eq!(events(&out)[0]["format_version"], drplan_core::watch::EVENT_FORMAT_VERSION);
    assert_eq!(hook.kinds(), ["round-failed"], "and posted");
}
