//! DR drills end to end through the real binary: `examples/bot-core` on moto, gcplocal and
//! three kmock clusters, drilled to its warm standby and to its cold GCP site, a drill that
//! fails its gate, one killed outright and cleaned up, and the drills refused.
//!
//! Two controllers the emulators lack are played, each in one place: Route 53's checkers by
//! the harness's fault proxy in front of moto (`Faults::health_checkers_by`, per health
//! check), and Kubernetes' Job controller for the drill's restore by the kmock launcher
//! (`Running::play_jobs`), which marks each Job complete through kmock's `/status`
//! subresource. Nothing else is faked:
//! records, instances, Deployments and Jobs are read back from the emulators.

use crate::support;

use std::process::Output;

use drplan_harness::JobOutcome;
use support::bot_core::{self, Damage, World, describe, jobs, replicas, write_point};
use support::text;

fn world() -> World {
    bot_core::world(|c| c.replacen("  uptime = 99.9", "  uptime = 99.9\n\n  drill_every = \"30d\"", 1))
}

fn converge(w: &World) {
    w.converge();
    write_point(w, 10 * 60, Damage::None);
}

/// Everything a drill must leave as it was: the records, the active region's instances.
fn untouchable(w: &World) -> (Option<String>, Option<String>, std::collections::BTreeSet<String>) {
    (
        w.moto.failover_record("PRIMARY").unwrap(),
        w.moto.failover_record("SECONDARY").unwrap(),
        w.moto.live_instances("us-east-1").unwrap(),
    )
}

fn report(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(out)))
}

#[test]
fn drills_to_the_standby_and_the_cold_site_measure_the_rto_and_leave_everything_as_it_was() {
    let w = world();
    converge(&w);
    let before = untouchable(&w);
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
    // What a failover to the standby would lose of the ledger, as the drill found it.
    let replica = &d["replicas"][0];
    assert_eq!((replica["database"].as_str(), replica["lag_seconds"].as_u64()), (Some("ledger"), Some(0)), "{r:#}");
    assert!(replica["problem"].is_null(), "{r:#}");
    // Nothing the drill must not touch moved; the standby is back to its declared counts.
    assert_eq!(untouchable(&w), before);
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
    w.apac.play_jobs(JobOutcome::Complete).unwrap();
    let out = w.drplan(&["drill", "--to", "asia-pacific-1", "bot-core", "--restore", "--json"]);
    w.apac.play_jobs(JobOutcome::Hold).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let r = report(&out);
    let steps: Vec<&str> =
        r["drill"]["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(steps, ["capacity ready", "restore done", "workloads scaled", "gate passed", "teardown"], "{r:#}");
    let removed: Vec<&str> = r["drill"]["removed"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert!(removed.contains(&"health_check.asia-pacific-1"), "{removed:?}");
    assert!(removed.iter().any(|a| a.contains(".drill.restore.")), "{removed:?}");
    assert_eq!(untouchable(&w), before);
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
    let before = untouchable(&w);
    w.fail_checks_of("eu-west-1");
    let out = w.drplan(&["drill", "--to", "eu-west-1", "bot-core", "--health-timeout", "4s"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let human = text(&out.stdout);
    assert!(human.contains("FAILED") && human.contains("✗ gate passed"), "{human}");
    assert!(human.contains("✓ teardown"), "{human}");
    assert_eq!(untouchable(&w), before);
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
