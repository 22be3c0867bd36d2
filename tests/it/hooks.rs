//! The team's own scripts as steps, end to end through the real binary: `examples/bot-core`
//! on moto, gcplocal and three kmock clusters, with `hook` blocks at named points of a
//! failover to the cold site, and its backup CronJob running the reference plan's tool.
//!
//! kmock runs no pods, so no Job ever finishes by itself: the emulator launcher plays the Job
//! controller, finishing every Job as the test says (`Running::play_jobs`), or the Jobs whose
//! name starts with a prefix (`Running::play_jobs_named`: one hook fails, the rest complete).

use std::time::{Duration, Instant};

use drplan_harness::{JobOutcome, Running};

use crate::support::bot_core::{
    self, Damage, World, describe, done_order, env_of, jobs, json, position, promote_cold_site, write_point,
};
use crate::support::{http, text};

const PREFLIGHT: &str = "region.us-east-1.hook.preflight";
const VALIDATE: &str = "region.asia-pacific-1.hook.validate-recovery";
const VERIFY: &str = "region.asia-pacific-1.hook.verify-failover";
const RESTORE: &str = "region.asia-pacific-1.restore.database";
const PRIMARY: &str = "dns.api.bot-core.com.primary";

/// The reference plan's scripts as hooks: its preflight checks in the old active region,
/// its recovery validation after the restore, its failover verification after DNS moved.
const HOOKS: &str = r#"
hook "preflight" {
  at      = "before_failover"
  region  = "old"
  image   = "bot-core/dr-scripts:latest"
  command = ["/scripts/preflight-checks.sh"]
  timeout = "5m"
}

hook "validate-recovery" {
  at              = "after_restore"
  image           = "bot-core/dr-scripts:latest"
  command         = ["/scripts/validate-recovery.sh"]
  env             = { CHECK_LEVEL = "full" }
  env_from_secret = ["dr-scripts"]
  drill           = true
}

hook "verify-failover" {
  at      = "after_traffic"
  image   = "bot-core/dr-scripts:latest"
  command = ["/scripts/verify-failover.sh"]
}
"#;

fn world(hooks: &str) -> World {
    let hooks = hooks.to_string();
    bot_core::world(move |c| format!("{c}\n{hooks}"))
}

/// The names of the Jobs in `cluster` that start with `prefix`.
fn jobs_named(cluster: &Running, prefix: &str) -> Vec<serde_json::Value> {
    jobs(cluster)
        .into_iter()
        .filter(|j| j["metadata"]["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
        .collect()
}

fn record(w: &World, address: &str) -> serde_json::Value {
    let state = w.state();
    state["objects"].as_array().unwrap().iter().find(|o| o["address"] == address).cloned().unwrap_or_default()
}

#[test]
fn a_failover_runs_its_hooks_at_their_points_in_the_right_clusters() {
    let w = world(HOOKS);
    w.converge();
    write_point(&w, 40 * 60, Damage::None);
    promote_cold_site(&w);

    // In the plan, in its order and its JSON, with their estimate on the RTO path.
    let doc = json(&w.drplan(&["plan", "bot-core", "--json"]));
    let ids: Vec<&str> = doc["actions"].as_array().unwrap().iter().filter_map(|a| a["id"].as_str()).collect();
    assert_eq!(ids.first(), Some(&PREFLIGHT), "before any change: {ids:?}");
    let path = doc["posture"]["rto"]["critical_path"].to_string();
    assert!(path.contains(PREFLIGHT) && path.contains(VALIDATE), "{path}");
    let human = text(&w.drplan(&["plan", "bot-core"]).stdout);
    assert!(human.contains(&format!("+ {VERIFY}")), "{human}");

    w.use1.play_jobs(JobOutcome::Complete).unwrap();
    w.apac.play_jobs(JobOutcome::Complete).unwrap();
    let out = w.drplan(&["apply", "bot-core", "--auto-approve", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let order = done_order(&out);
    assert_eq!(order.first().map(String::as_str), Some(PREFLIGHT), "{order:?}");
    let restored = position(&order, RESTORE);
    let validated = position(&order, VALIDATE);
    let workload = position(&order, "region.asia-pacific-1.workload.trading-engine");
    assert!(restored < validated && validated < workload, "{order:?}");
    assert!(position(&order, PRIMARY) < position(&order, VERIFY), "{order:?}");

    // Each in its region's cluster, its Job named for this failover.
    let preflight = jobs_named(&w.use1, "drplan-hook-preflight-");
    assert_eq!(preflight.len(), 1, "{preflight:?}");
    let validate = jobs_named(&w.apac, "drplan-hook-validate-recovery-");
    assert_eq!(validate.len(), 1);
    let job = &validate[0];
    assert_eq!(job["spec"]["template"]["spec"]["containers"][0]["command"][0], "/scripts/validate-recovery.sh");
    assert_eq!(env_of(job, "CHECK_LEVEL").as_deref(), Some("full"));
    assert_eq!(env_of(job, "DRPLAN_FAILOVER_FROM").as_deref(), Some("us-east-1"));
    assert_eq!(env_of(job, "DRPLAN_FAILOVER_TO").as_deref(), Some("asia-pacific-1"));
    assert_eq!(job["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["secretRef"]["name"], "dr-scripts");
    assert_eq!(job["spec"]["backoffLimit"], 0, "a hook never runs twice unasked");
    let id = env_of(job, "DRPLAN_FAILOVER_ID").unwrap();
    assert!(job["metadata"]["name"].as_str().unwrap().ends_with(&id), "{job:#}");
    assert_eq!(jobs_named(&w.apac, "drplan-hook-verify-failover-").len(), 1);
    assert_eq!(record(&w, VERIFY)["attributes"]["status"], "complete");
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("apac.bot-core.com"));
    let out = w.drplan(&["plan", "bot-core", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "converged, nothing runs twice: {}", describe(&out));
}

/// A smoke test that may fail without stopping the failover.
const SMOKE: &str = r#"
hook "smoke" {
  at         = "after_capacity"
  image      = "bot-core/dr-scripts:latest"
  command    = ["/scripts/health-check.sh", "--comprehensive"]
  on_failure = "continue"
}
"#;

#[test]
fn a_failing_hook_before_traffic_keeps_dns_and_after_traffic_exits_non_zero_holding_the_demotion() {
    let w = world(&format!("{HOOKS}{SMOKE}"));
    w.converge();
    write_point(&w, 40 * 60, Damage::None);
    promote_cold_site(&w);
    w.use1.play_jobs(JobOutcome::Complete).unwrap();
    w.apac.play_jobs(JobOutcome::Complete).unwrap();
    w.apac.play_jobs_named("drplan-hook-validate-recovery-", JobOutcome::Fail).unwrap();

    let out = w.drplan(&["apply", "bot-core", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text(&out.stderr).contains(VALIDATE) || text(&out.stdout).contains(VALIDATE), "{}", describe(&out));
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("use1.bot-core.com"), "DNS stays");
    assert_eq!(record(&w, VALIDATE)["attributes"]["status"], "failed");

    // Fixed, applied again: the hook runs again (the plan says so), DNS moves; the check
    // after traffic fails, and the old active keeps its capacity: the way back stays open.
    w.apac.play_jobs_named("drplan-hook-validate-recovery-", JobOutcome::Complete).unwrap();
    w.apac.play_jobs_named("drplan-hook-verify-failover-", JobOutcome::Fail).unwrap();
    w.apac.play_jobs_named("drplan-hook-smoke-", JobOutcome::Fail).unwrap();
    let plan = text(&w.drplan(&["plan", "bot-core"]).stdout);
    assert!(plan.contains(&format!("± {VALIDATE}")) && plan.contains(r#"status: "failed" → "complete""#), "{plan}");
    let serving = bot_core::replicas(&w.use1);
    let out = w.drplan(&["apply", "bot-core", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("apac.bot-core.com"), "DNS moved");
    assert_eq!(record(&w, VERIFY)["attributes"]["status"], "failed");
    // The smoke test failed before traffic, and said `continue`: reported, DNS moved anyway.
    assert_eq!(record(&w, "region.asia-pacific-1.hook.smoke")["attributes"]["status"], "failed");
    assert!(describe(&out).contains("region.asia-pacific-1.hook.smoke"), "{}", describe(&out));
    assert_eq!(bot_core::replicas(&w.use1), serving, "the old active's demotion is held");
    assert_eq!(jobs_named(&w.apac, "drplan-hook-validate-recovery-").len(), 1);
}

#[test]
fn with_the_old_active_unreachable_an_apply_killed_during_a_hook_adopts_its_job() {
    let w = world(
        r#"
hook "rotate-secrets" {
  at      = "after_capacity"
  image   = "bot-core/dr-scripts:latest"
  command = ["/scripts/rotate-all-secrets.sh"]
}

hook "fence-report" {
  at         = "after_fence"
  region     = "old"
  image      = "bot-core/dr-scripts:latest"
  on_failure = "continue"
}
"#,
    );
    w.converge();
    write_point(&w, 20 * 60, Damage::None);
    promote_cold_site(&w);
    w.lose_us_east_1();
    w.apac.play_jobs(JobOutcome::Complete).unwrap();
    w.apac.play_jobs_named("drplan-hook-rotate-secrets-", JobOutcome::Hold).unwrap();

    // The old region's `continue` hook cannot run there: skipped and named.
    let out = w.drplan(&["plan", "bot-core", "--allow-unreachable"]);
    assert!(text(&out.stdout).contains("region.us-east-1.hook.fence-report"), "{}", describe(&out));

    let mut apply = w
        .command(&["apply", "bot-core", "--auto-approve", "--allow-unreachable"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while jobs_named(&w.apac, "drplan-hook-rotate-secrets-").is_empty() {
        assert!(started.elapsed().as_secs() < 120, "the hook's Job was never created");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    apply.kill().unwrap();
    apply.wait().unwrap();
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("use1.bot-core.com"), "before DNS");

    w.apac.play_jobs_named("drplan-hook-rotate-secrets-", JobOutcome::Complete).unwrap();
    let out = w.drplan(&["apply", "bot-core", "--auto-approve", "--allow-unreachable"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(jobs_named(&w.apac, "drplan-hook-rotate-secrets-").len(), 1, "adopted, not run twice");
    let seen = w.apac.jobs_seen().unwrap();
    assert_eq!(seen.iter().filter(|n| n.starts_with("drplan-hook-rotate-secrets-")).count(), 1, "{seen:?}");
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("apac.bot-core.com"));
}

#[test]
fn a_drill_runs_its_opted_in_hooks_with_drplan_drill_and_tears_them_down() {
    let w = world(HOOKS);
    w.converge();
    write_point(&w, 30 * 60, Damage::None);
    w.apac.play_jobs(JobOutcome::Complete).unwrap();
    w.apac.play_jobs_named("drplan-drill-hook-", JobOutcome::Hold).unwrap();
    let drill = w
        .command(&["drill", "--to", "asia-pacific-1", "--restore", "bot-core"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let job = loop {
        if let Some(j) = jobs_named(&w.apac, "drplan-drill-hook-validate-recovery-").into_iter().next() {
            break j;
        }
        assert!(started.elapsed().as_secs() < 120, "the drill never ran its hook");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(env_of(&job, "DRPLAN_DRILL").as_deref(), Some("1"), "{job:#}");
    w.apac.play_jobs_named("drplan-drill-hook-", JobOutcome::Complete).unwrap();
    let out = drill.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(text(&out.stdout).contains("PASSED"), "{}", describe(&out));
    // Torn down: the drill's Jobs are gone, the hooks that did not opt in never ran.
    assert!(jobs_named(&w.apac, "drplan-drill-").is_empty(), "{:?}", jobs(&w.apac));
    let seen = w.apac.jobs_seen().unwrap();
    assert!(!seen.iter().any(|n| n.contains("verify-failover")), "{seen:?}");
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("use1.bot-core.com"));
    let out = w.drplan(&["plan", "bot-core", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

#[test]
fn the_reference_backup_cronjob_runs_the_teams_tool_and_a_fresh_topology_shows_no_backup_yet() {
    let w = bot_core::world(|c| c);
    let out = w.drplan(&["plan", "bot-core"]);
    let plan = text(&out.stdout);
    assert!(plan.contains("✗ RPO   database") && plan.contains("no backup yet"), "{}", describe(&out));
    w.converge();
    let out = w.drplan(&["drift", "bot-core"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(text(&out.stdout).contains("no backup yet"), "{}", describe(&out));

    let (code, body) = http(
        w.use1.url(),
        "GET",
        "/apis/batch/v1/namespaces/bot-core/cronjobs/drplan-backup-database",
        "application/json",
        "",
    );
    assert_eq!(code, 200, "{body}");
    let mut cronjob: serde_json::Value = serde_json::from_str(&body).unwrap();
    let container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0].clone();
    assert_eq!(container["image"], "bot-core/backup-tool:latest");
    assert_eq!(container["command"], serde_json::json!(["/scripts/backup.sh"]));
    let env = |name: &str| {
        container["env"].as_array().unwrap().iter().find(|e| e["name"] == name).map(|e| e["value"].clone())
    };
    assert_eq!(env("BACKUP_TYPE"), Some("full".into()));
    assert_eq!(env("RETENTION_DAYS"), Some("30".into()));
    assert!(env("DRPLAN_DESTINATIONS").is_some(), "drplan's own variables are still passed");
    assert_eq!(container["envFrom"][0]["secretRef"]["name"], "bot-core-backup-credentials");
    // As the API server holds it, minus what the server adds: valid under --strict.
    cronjob.as_object_mut().unwrap().remove("status");
    let meta = cronjob["metadata"].as_object_mut().unwrap();
    meta.retain(|k, _| matches!(k.as_str(), "name" | "namespace" | "labels" | "annotations"));
    let file = w.dir.path().join("cronjob.json");
    std::fs::write(&file, serde_json::to_string_pretty(&cronjob).unwrap()).unwrap();
    let out = drplan_harness::venv_command("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", "1.30.0"])
        .arg(&file)
        .output()
        .expect("kubernetes-validate from the emulator virtualenv");
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success() && said.contains("passed"), "{said}");
}

#[test]
fn a_hook_failing_after_the_promotion_never_starts_the_old_writers_again() {
    let w = world(
        r#"
hook "verify-ledger" {
  at      = "after_capacity"
  image   = "bot-core/dr-scripts:latest"
  command = ["/scripts/verify-data-integrity.sh"]
}
"#,
    );
    w.converge();
    let out = w.drplan(&["failover", "--to", "eu-west-1", "bot-core", "--write"]);
    assert!(describe(&out).contains("+  role     = \"active\""), "{}", describe(&out));
    w.euw1.play_jobs(JobOutcome::Fail).unwrap();

    let out = w.drplan(&["apply", "bot-core", "--auto-approve", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let order = done_order(&out);
    // Writes stopped in us-east-1, the replica caught up and promoted; then the hook failed.
    assert!(order.iter().any(|id| id == "region.eu-west-1.database.ledger"), "promoted: {order:?}");
    assert_eq!(record(&w, "region.eu-west-1.hook.verify-ledger")["attributes"]["status"], "failed");
    // The writers stopped for the promotion stay stopped: resumed, they would be a second
    // writer beside the promoted one.
    assert_eq!(bot_core::replicas(&w.use1)[0], 0, "trading-engine in us-east-1");
    assert!(!text(&out.stdout).contains("resume_writes"), "{}", describe(&out));
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("use1.bot-core.com"), "DNS stays");
}
