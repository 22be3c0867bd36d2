//! Archived recovery points end to end through the real binary: `examples/bot-core` on moto,
//! gcplocal and three kmock clusters, its backups written to S3 as GLACIER, as the seed
//! runbook's `aws s3 cp --storage-class GLACIER` writes them (the manifest included).
//!
//! moto holds the archive: it lists each object's storage class, refuses GetObject with
//! `InvalidObjectState` until RestoreObject is called, and then completes the thaw at once.
//! A thaw that takes time is played by [`Thawing`], the one helper here that stands in for
//! S3: while it holds, the proxy in front of moto rewrites HeadObject's
//! `x-amz-restore: ongoing-request="false"` into `"true"` for the point's objects, which is
//! what S3 answers for hours after the request. kmock runs no pods: the emulator launcher
//! plays the Job controller (`Running::play_jobs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drplan_harness::{Faults, JobOutcome, RequestInfo};

use crate::support::bot_core::{
    self, Damage, World, checkers, describe, done_order, env_of, jobs, json, position, promote_cold_site,
    write_point_to,
};
use crate::support::{http, text};

const THAW: &str = "region.asia-pacific-1.thaw.database";
const RESTORE: &str = "region.asia-pacific-1.restore.database";

/// bot-core with its S3 copy thawed with `tier`.
fn world(tier: Option<&str>) -> World {
    let tier = tier.map(str::to_string);
    bot_core::world(move |c| match &tier {
        Some(t) => c.replacen(
            "storage_class = \"GLACIER\"",
            &format!("storage_class = \"GLACIER\"\n      restore_tier  = \"{t}\""),
            1,
        ),
        None => c,
    })
}

/// A point written `age` seconds ago into S3 only, as GLACIER.
fn archived_point(w: &World, age: i64) -> String {
    write_point_to(w, age, Damage::None, Some("GLACIER"), false)
}

/// Whether `r` asks S3 to thaw an object (`POST /bucket/key?restore`).
fn is_restore_object(r: &RequestInfo) -> bool {
    r.method == "POST" && r.path.contains("?restore")
}

/// S3's thaw clock, played. Every RestoreObject that reaches moto is recorded with the
/// number of restore Jobs in the cold site's cluster at that moment; while `hold` is set,
/// HeadObject answers for the backups' objects say the thaw is still under way.
#[derive(Clone)]
struct Thawing {
    hold: Arc<AtomicBool>,
    /// `(key, restore Jobs in apac then)` for each RestoreObject.
    asked: Arc<Mutex<Vec<(String, usize)>>>,
}

impl Thawing {
    fn play(w: &World, old_active_down: bool) -> Thawing {
        let t = Thawing { hold: Arc::default(), asked: Arc::default() };
        let (asked, apac) = (Arc::clone(&t.asked), w.apac.url().to_string());
        let hold = Arc::clone(&t.hold);
        let mut faults = checkers(&w.failing)
            .stalling(Duration::ZERO, move |r: &RequestInfo| {
                if is_restore_object(r) {
                    let key = r.path.split('?').next().unwrap_or_default().to_string();
                    asked.lock().unwrap().push((key, jobs_in(&apac)));
                }
                false
            })
            .rewriting_headers(
                move |r| {
                    r.method == "HEAD" && r.path.starts_with("/bot-core-backups/dr/") && hold.load(Ordering::SeqCst)
                },
                |line| match line.split_once(':') {
                    Some((name, _)) if name.eq_ignore_ascii_case("x-amz-restore") => {
                        format!("{name}: ongoing-request=\"true\"")
                    }
                    _ => line.to_string(),
                },
            );
        if old_active_down {
            // us-east-1's machines, database and cluster are gone; S3 answers (a regional
            // service apart from the lost EC2 capacity), and so does its archive.
            faults = faults.dropping(|r| {
                r.region.as_deref() == Some("us-east-1")
                    && matches!(r.service.as_deref(), Some("ec2" | "rds" | "monitoring"))
            });
            w.use1_proxy.set_faults(Faults::outage());
        }
        w.aws.set_faults(faults);
        t
    }

    fn asked(&self) -> Vec<(String, usize)> {
        self.asked.lock().unwrap().clone()
    }
}

/// Restore Jobs in a cluster, read straight from it.
fn jobs_in(cluster_url: &str) -> usize {
    let (_, body) = http(cluster_url, "GET", "/apis/batch/v1/namespaces/bot-core/jobs", "application/json", "");
    serde_json::from_str::<serde_json::Value>(&body).ok().and_then(|v| v["items"].as_array().map(Vec::len)).unwrap_or(0)
}

#[test]
fn glacier_points_are_archived_not_corrupt_and_a_cold_promotion_thaws_before_its_restore() {
    let w = world(Some("Expedited"));
    w.converge();
    let point = archived_point(&w, 40 * 60);

    // Listed as archived, counted in the RPO: `backups` passes.
    let out = w.drplan(&["backups", "bot-core"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let listed = text(&out.stdout);
    assert!(
        listed.contains(&format!("{point}  40m old, 2 objects"))
            && listed.contains("archived (GLACIER: thaw up to 5m with Expedited retrieval)"),
        "{listed}"
    );
    assert!(!listed.contains("corrupt") && !listed.contains("access denied"), "{listed}");
    let report = json(&w.drplan(&["backups", "bot-core", "--json"]));
    let primary = &report["backups"][0]["destinations"][0];
    assert_eq!(primary["points"][0]["status"], "archived", "{primary:#}");
    assert_eq!(primary["points"][0]["storage_class"], "GLACIER");
    assert_eq!(primary["points"][0]["thaw_seconds"], 300);
    assert_eq!(report["backups"][0]["within_rpo"], true, "{report:#}");
    let status = text(&w.drplan(&["status", "bot-core"]).stdout);
    assert!(status.contains("primary 40m (GLACIER, thaw up to 5m (Expedited))"), "{status}");

    // The cold site is promoted from that copy, asked for a time: the thaw comes first.
    promote_cold_site(&w);
    let wanted = drplan_core::recovery::rfc3339(bot_core::now() - 30 * 60);
    let doc = json(&w.drplan(&["plan", "bot-core", "--json", "--restore-point", &wanted]));
    let restore = &doc["restores"][0];
    assert_eq!(restore["destination"], "backup.database.destination.primary", "{restore:#}");
    assert_eq!(restore["thaw"], "GLACIER, thaw up to 5m (Expedited)");
    assert_eq!(restore["target_time"], wanted.as_str());
    assert_eq!(doc["posture"]["rto"]["ok"], true, "5m of thaw fits the RTO of 2h: {:#}", doc["posture"]["rto"]);

    let thawing = Thawing::play(&w, false);
    w.apac.play_jobs(JobOutcome::Complete).unwrap();
    let out = w.drplan(&["apply", "bot-core", "--auto-approve", "--json", "--restore-point", &wanted]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // RestoreObject for every object of the point, each before any restore Job existed.
    let mut asked = thawing.asked();
    asked.sort();
    let keys: Vec<&str> = asked.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            format!("/bot-core-backups/dr/{point}/database.dump.gpg"),
            format!("/bot-core-backups/dr/{point}/manifest.json")
        ],
        "{asked:?}"
    );
    assert!(asked.iter().all(|(_, jobs)| *jobs == 0), "a Job existed before the thaw was asked: {asked:?}");
    let order = done_order(&out);
    assert!(position(&order, THAW) < position(&order, RESTORE), "{order:?}");
    assert!(position(&order, RESTORE) < position(&order, "dns.api.bot-core.com.primary"), "{order:?}");
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("apac.bot-core.com"));

    // The Job reads the thawed point, recovering to the time asked for.
    let restored = jobs(&w.apac);
    assert_eq!(restored.len(), 1, "{restored:?}");
    assert_eq!(env_of(&restored[0], "DRPLAN_RESTORE_URI"), Some(format!("s3://bot-core-backups/dr/{point}/")));
    assert_eq!(env_of(&restored[0], "DRPLAN_RESTORE_TARGET_TIME").as_deref(), Some(wanted.as_str()));

    // Thawed, the manifest is read again and vouches for the point.
    let report = json(&w.drplan(&["backups", "bot-core", "--json"]));
    assert_eq!(report["backups"][0]["destinations"][0]["points"][0]["status"], "verified", "{report:#}");
    let out = w.drplan(&["plan", "bot-core", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "converged: {}", describe(&out));
}

#[test]
fn a_standard_thaw_fails_the_rto_and_a_fresh_cloud_storage_copy_is_restored_instead() {
    let w = world(None);
    w.converge();
    archived_point(&w, 20 * 60);
    promote_cold_site(&w);

    let out = w.drplan(&["plan", "bot-core"]);
    let plan = text(&out.stdout);
    assert!(plan.contains("✗ RTO   this failover to asia-pacific-1 takes about 5h"), "{}", describe(&out));
    assert!(
        plan.contains("the restore waits for a thaw: backup.database.destination.primary (s3://bot-core-backups/dr/")
            && plan.contains("is GLACIER: a Standard thaw takes up to 5h"),
        "{plan}"
    );

    // A Cloud Storage point, older but within the RPO, is read at once: it is chosen.
    let gcs = write_point_to(&w, 45 * 60, Damage::None, None, true);
    let doc = json(&w.drplan(&["plan", "bot-core", "--json"]));
    let restore = &doc["restores"][0];
    assert_eq!(restore["uri"], format!("gs://bot-core-backups-eu/dr/{gcs}/"), "{restore:#}");
    assert_eq!(restore["time_to_data_seconds"], 0);
    let why = restore["passed_over"][0]["reason"].as_str().unwrap_or_default();
    assert!(
        why.contains("must be thawed (GLACIER, thaw up to 5h (Standard))") && why.contains("can be read at once"),
        "{restore:#}"
    );
    assert_eq!(doc["posture"]["rto"]["ok"], true, "{:#}", doc["posture"]["rto"]);
    assert!(doc["resource_changes"].as_array().unwrap().iter().all(|c| c["address"] != THAW), "no thaw is planned");
}

#[test]
fn an_apply_killed_while_the_thaw_runs_adopts_it_and_asks_for_no_object_twice() {
    let w = world(Some("Expedited"));
    w.converge();
    let point = archived_point(&w, 15 * 60);
    promote_cold_site(&w);
    // The old active region is unreachable throughout (its bucket's S3 still answers).
    let thawing = Thawing::play(&w, true);
    thawing.hold.store(true, Ordering::SeqCst);
    w.apac.play_jobs(JobOutcome::Complete).unwrap();

    let mut apply = w
        .command(&["apply", "bot-core", "--auto-approve", "--allow-unreachable"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while thawing.asked().len() < 2 {
        assert!(started.elapsed().as_secs() < 90, "the thaw was never asked for: {:?}", thawing.asked());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Asked for; the apply waits on S3, which says the thaw is under way. Killed outright.
    std::thread::sleep(Duration::from_secs(2));
    apply.kill().unwrap();
    apply.wait().unwrap();
    assert!(jobs(&w.apac).is_empty(), "no restore Job before the thaw finished");

    // Still thawing: the next apply finds the requests made and only waits.
    let out = w.drplan(&["plan", "bot-core", "--allow-unreachable"]);
    assert!(text(&out.stdout).contains(&format!("+ {THAW}")), "{}", describe(&out));
    thawing.hold.store(false, Ordering::SeqCst);
    let out = w.drplan(&["apply", "bot-core", "--auto-approve", "--allow-unreachable"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(thawing.asked().len(), 2, "each object was asked for once: {:?}", thawing.asked());
    let state = w.state();
    let thaw = state["objects"].as_array().unwrap().iter().find(|o| o["address"] == THAW).cloned();
    let thaw = thaw.expect("the thaw is recorded");
    assert_eq!((thaw["attributes"]["asked"].as_i64(), thaw["attributes"]["found_asked"].as_i64()), (Some(0), Some(2)));
    assert_eq!(thaw["attributes"]["point_name"], point.as_str());
    assert_eq!(jobs(&w.apac).len(), 1);
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("apac.bot-core.com"));
}
