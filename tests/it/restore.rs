//! Data recovery end to end through the real binary: `examples/bot-core` on moto, gcplocal
//! and three kmock clusters, its cold site promoted, and the database restored into it from
//! the newest complete recovery point before its workloads scale up and DNS moves.
//!
//! Recovery points are written the way the sample backup script of the guide writes them:
//! `dr/YYYYmmdd_HHMMSS/` folders with a dump and, last, `manifest.json` (its objects' sizes
//! and MD5s), in S3 and in Cloud Storage. kmock runs no pods, so no Job ever finishes by
//! itself: the emulator launcher plays the Job controller (`Running::play_jobs`), setting the
//! restore Job's `Complete` or `Failed` condition as the real controller would once its pod
//! exited. Nothing else is faked.

use crate::support;

use drplan_harness::{JobOutcome, Running};
use support::bot_core::{
    self, Damage, World, describe, done_order, env_of, jobs, position, promote_cold_site, write_point,
};
use support::text;

const COLD: &str = "asia-pacific-1";
const RESTORE: &str = "region.asia-pacific-1.restore.database";

fn world() -> World {
    bot_core::world(|c| c)
}

/// The restore Jobs in the cold site's cluster.
fn restore_jobs(apac: &Running) -> Vec<serde_json::Value> {
    jobs(apac)
}

fn converge(w: &World) {
    w.converge();
}

#[test]
fn cold_promotion_restores_the_newest_complete_point_before_workloads_and_traffic() {
    let w = world();
    converge(&w);
    write_point(&w, 3 * 3_600, Damage::None);
    let tampered = write_point(&w, 2 * 3_600, Damage::Tampered);
    let chosen = write_point(&w, 40 * 60, Damage::None);
    let incomplete = write_point(&w, 5 * 60, Damage::NoManifest);

    promote_cold_site(&w);
    let out = w.drplan(&["plan", "bot-core", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let restore = &doc["restores"][0];
    assert_eq!(restore["point"], chosen.as_str(), "{doc:#}");
    // The cold site is in GCP: at equal times, the Cloud Storage copy is used.
    assert_eq!(restore["uri"], format!("gs://bot-core-backups-eu/dr/{chosen}/"), "{restore:#}");
    assert_eq!(restore["status"], "verified");
    assert_eq!(restore["within_rpo"], true);
    assert_eq!(doc["applyable"], true, "{doc:#}");
    let human = text(&w.drplan(&["plan", "bot-core"]).stdout);
    let line = format!("restore database into {COLD} from gs://bot-core-backups-eu/dr/{chosen}/ (40m old, RPO 1h ✓");
    assert!(human.contains(&line), "{human}");
    assert!(!human.contains(&incomplete) || !human.contains(&format!("dr/{incomplete}/ (")), "{human}");

    // Before an incident an hour ago: the tampered point is passed over, the older one is
    // beyond the RPO, and apply would refuse it without --accept-data-loss.
    let out = w.drplan(&["plan", "bot-core", "--json", "--restore-point", "1h"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(doc["restores"][0]["point"], tampered.as_str(), "{doc:#}");
    assert_eq!(doc["restores"][0]["within_rpo"], false, "{doc:#}");
    assert_eq!(doc["applyable"], false);
    let codes: Vec<&str> = doc["safety"].as_array().unwrap().iter().filter_map(|s| s["code"].as_str()).collect();
    assert!(codes.contains(&"drplan::plan::data_loss"), "{codes:?}");
    let out = w.drplan(&["plan", "bot-core", "--json", "--restore-point", "1h", "--accept-data-loss"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["applyable"], true, "{doc:#}");

    w.apac.play_jobs(JobOutcome::Complete).unwrap();
    let out = w.drplan(&["apply", "bot-core", "--auto-approve", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let order = done_order(&out);
    let compute = position(&order, "region.asia-pacific-1.compute.full-stack[0]");
    let restored = position(&order, RESTORE);
    let workload = position(&order, "region.asia-pacific-1.workload.trading-engine");
    let gate = position(&order, "gate.health.asia-pacific-1");
    let dns = position(&order, "dns.api.bot-core.com.primary");
    assert!(compute < restored && restored < workload && workload < gate && gate < dns, "{order:?}");
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("apac.bot-core.com"));

    let jobs = restore_jobs(&w.apac);
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["metadata"]["name"], format!("drplan-restore-database-{}", chosen.replace('_', "-")));
    assert_eq!(env_of(&jobs[0], "DRPLAN_RESTORE_URI"), Some(format!("gs://bot-core-backups-eu/dr/{chosen}/")));
    let point = env_of(&jobs[0], "DRPLAN_RESTORE_POINT").unwrap();
    assert!(point.ends_with('Z') && point.contains('T'), "{point}");
    assert_eq!(env_of(&jobs[0], "DRPLAN_GPG_RECIPIENT").as_deref(), Some("disaster-recovery@bot-core.com"));
    assert_eq!(w.apac.jobs_seen().unwrap().len(), 1);

    // Recorded in state, and the promotion is done: nothing is restored twice.
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.config().join(".drplan/state.json")).unwrap()).unwrap();
    let record = state["objects"].as_array().unwrap().iter().find(|o| o["address"] == RESTORE).cloned();
    let record = record.expect("the restore is recorded");
    assert_eq!(record["attributes"]["status"], "complete", "{record:#}");
    assert_eq!(record["attributes"]["point_name"], chosen.as_str());
    assert!(record["attributes"]["duration_seconds"].as_i64().is_some(), "{record:#}");
    assert!(record["attributes"]["finished"].as_str().is_some_and(|t| t.ends_with('Z')), "{record:#}");
    let out = w.drplan(&["plan", "bot-core", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "converged: {}", describe(&out));
}

#[test]
fn a_failed_restore_keeps_traffic_away_and_a_fixed_one_converges() {
    let w = world();
    converge(&w);
    let chosen = write_point(&w, 20 * 60, Damage::None);
    promote_cold_site(&w);

    w.apac.play_jobs(JobOutcome::Fail).unwrap();
    let out = w.drplan(&["apply", "bot-core", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("FAILED   {RESTORE}")) && err.contains("BackoffLimitExceeded"), "{err}");
    assert!(err.contains("skipped  dns.api.bot-core.com.primary"), "{err}");
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("use1.bot-core.com"), "DNS stays");
    // What finished is in state: the cold site's machines.
    let state = std::fs::read_to_string(w.config().join(".drplan/state.json")).unwrap();
    assert!(state.contains("region.asia-pacific-1.compute.full-stack[2]"), "{state}");

    // The cause fixed, apply restores again (the failed Job replaced) and converges.
    w.apac.play_jobs(JobOutcome::Complete).unwrap();
    let out = w.drplan(&["apply", "bot-core", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("apac.bot-core.com"));
    let jobs = restore_jobs(&w.apac);
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["status"]["conditions"][0]["type"], "Complete");
    assert!(jobs[0]["metadata"]["name"].as_str().unwrap().ends_with(&chosen.replace('_', "-")));
    let out = w.drplan(&["plan", "bot-core", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "converged: {}", describe(&out));
}

#[test]
fn an_apply_killed_while_the_restore_runs_adopts_its_job() {
    let w = world();
    converge(&w);
    write_point(&w, 10 * 60, Damage::None);
    promote_cold_site(&w);

    w.apac.play_jobs(JobOutcome::Hold).unwrap();
    let mut apply = w
        .command(&["apply", "bot-core", "--auto-approve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while restore_jobs(&w.apac).is_empty() {
        assert!(started.elapsed().as_secs() < 60, "the restore Job was never created");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The Job runs; apply waits on it. Killed outright, it records nothing more.
    std::thread::sleep(std::time::Duration::from_millis(500));
    apply.kill().unwrap();
    apply.wait().unwrap();

    let out = w.drplan(&["plan", "bot-core"]);
    assert!(text(&out.stdout).contains("resuming Job drplan-restore-database-"), "{}", describe(&out));
    w.apac.play_jobs(JobOutcome::Complete).unwrap();
    let out = w.drplan(&["apply", "bot-core", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(restore_jobs(&w.apac).len(), 1, "the Job was adopted, not started twice");
    assert_eq!(w.apac.jobs_seen().unwrap().len(), 1);
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("apac.bot-core.com"));
    let out = w.drplan(&["plan", "bot-core", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "converged: {}", describe(&out));
}

#[test]
fn with_the_active_region_and_its_bucket_lost_the_cloud_storage_point_is_restored() {
    let w = world();
    converge(&w);
    let chosen = write_point(&w, 15 * 60, Damage::None);
    promote_cold_site(&w);
    // us-east-1 goes dark: its EC2 API, its cluster's proxy is not needed (it is not the
    // one restored), and its S3 bucket, which holds the primary destination.
    w.lose_us_east_1();

    let out = w.drplan(&["plan", "bot-core", "--allow-unreachable"]);
    let plan = text(&out.stdout);
    assert!(plan.contains(&format!("from gs://bot-core-backups-eu/dr/{chosen}/")), "{}", describe(&out));
    assert!(plan.contains("not from backup.database.destination.primary: unreachable"), "{plan}");

    w.apac.play_jobs(JobOutcome::Complete).unwrap();
    let out = w.drplan(&["apply", "bot-core", "--auto-approve", "--allow-unreachable"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("apac.bot-core.com"));
    let jobs = restore_jobs(&w.apac);
    assert_eq!(env_of(&jobs[0], "DRPLAN_RESTORE_URI"), Some(format!("gs://bot-core-backups-eu/dr/{chosen}/")));
}

#[test]
fn backups_lists_every_point_and_judges_the_newest_usable_against_the_rpo() {
    let w = world();
    converge(&w);
    let out = w.drplan(&["backups", "bot-core", "--json"]);
    assert_eq!(out.status.code(), Some(2), "no point yet: {}", describe(&out));

    let good = write_point(&w, 50 * 60, Damage::None);
    let incomplete = write_point(&w, 20 * 60, Damage::NoManifest);
    let tampered = write_point(&w, 10 * 60, Damage::Tampered);
    let out = w.drplan(&["backups", "bot-core", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let b = &report["backups"][0];
    assert_eq!(b["within_rpo"], true, "{report:#}");
    assert_eq!(b["newest_usable"]["point"], good.as_str());
    for d in b["destinations"].as_array().unwrap().iter().filter(|d| d["name"] != "tertiary") {
        let status: Vec<(&str, &str)> = d["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["name"].as_str().unwrap(), p["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            status,
            [(tampered.as_str(), "corrupt"), (incomplete.as_str(), "incomplete"), (good.as_str(), "verified")],
            "{d:#}"
        );
        assert!(d["points"][0]["reason"].as_str().unwrap().contains("MD5"), "{d:#}");
    }
    let human = text(&w.drplan(&["backups", "bot-core"]).stdout);
    assert!(
        human.contains(&format!("{tampered}  10m old")) && human.contains("corrupt: `database.dump.gpg` has MD5"),
        "{human}"
    );
    assert!(human.contains("newest usable: ") && human.contains("✓ within the RPO"), "{human}");

    // The RPO posture of plan and drift rests on the newest usable point, not the newest
    // object: with only a stale usable point, the check fails.
    let w2 = world();
    converge(&w2);
    write_point(&w2, 3 * 3_600, Damage::None);
    write_point(&w2, 5 * 60, Damage::NoManifest);
    let out = w2.drplan(&["backups", "bot-core"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(text(&out.stdout).contains("✗ older than the RPO"), "{}", describe(&out));
    let out = w2.drplan(&["plan", "bot-core", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["posture"]["rpo"][0]["ok"], false, "{:#}", doc["posture"]);
}

#[test]
fn restore_brings_back_a_point_from_before_an_incident_into_the_active_region() {
    let w = world();
    converge(&w);
    let clean = write_point(&w, 3 * 3_600, Damage::None);
    write_point(&w, 30 * 60, Damage::None);

    // Bad input first: a time that is none, a backup that does not exist.
    let out = w.drplan(&["restore", "bot-core", "--point", "yesterday"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("neither a time (RFC 3339"), "{}", describe(&out));
    let out = w.drplan(&["restore", "bot-core", "--point", "1h", "--backup", "logs", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text(&out.stdout).contains("no backup is named `logs`"), "{}", describe(&out));

    w.use1.play_jobs(JobOutcome::Complete).unwrap();
    let out = w.drplan(&["restore", "bot-core", "--point", "2h", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let shown = text(&out.stdout);
    // The data-loss window is shown: three hours, beyond the RPO, as asked for.
    assert!(shown.contains("restore database into us-east-1 from s3://bot-core-backups/dr/"), "{shown}");
    assert!(shown.contains("3h old, RPO 1h ✗"), "{shown}");
    assert!(!shown.contains("region.us-east-1.compute"), "a plan of the restore alone: {shown}");
    let jobs = restore_jobs(&w.use1);
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert!(env_of(&jobs[0], "DRPLAN_RESTORE_URI").unwrap().ends_with(&format!("/dr/{clean}/")));
    let state = std::fs::read_to_string(w.config().join(".drplan/state.json")).unwrap();
    assert!(state.contains("region.us-east-1.restore.database"), "recorded in state");
    // The topology is untouched, and a second run finds the Job done.
    let out = w.drplan(&["plan", "bot-core", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = w.drplan(&["restore", "bot-core", "--point", "2h", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(restore_jobs(&w.use1).len(), 1, "not started twice");
}
