//! The third copy verified, through the real binary: `examples/bot-core` on the emulators,
//! its NAS destination first as a share mounted where drplan runs (a local directory), then
//! reached through an S3-compatible endpoint (a second moto, as MinIO or TrueNAS would
//! serve it). Points are written the way the guide's backup script writes them: the dump,
//! then the manifest listing it.

use drplan_harness::{Emulator, Running};

use crate::support::bot_core::{self, Damage, World, describe, json, point_files};
use crate::support::text;

const NAS: &str = "path = \"/mnt/nas/bot-core\"";

/// A point taken `age` seconds ago; with `tampered`, its dump rewritten after the manifest
/// (same size, other bytes).
fn point(age: i64, tampered: bool) -> (String, Vec<(&'static str, String)>) {
    point_files(age, if tampered { Damage::Tampered } else { Damage::None })
}

/// The third copy's line in `backups` and its entry in `status --json`.
fn third_copy(w: &World) -> (String, serde_json::Value) {
    let out = w.drplan(&["backups", "bot-core"]);
    let listed = text(&out.stdout);
    let status = json(&w.drplan(&["status", "bot-core", "--json"]));
    let tertiary =
        status["backups"][0]["destinations"].as_array().unwrap().iter().find(|d| d["name"] == "tertiary").cloned();
    (listed, tertiary.unwrap_or_default())
}

#[test]
fn a_nas_mounted_here_is_listed_and_verified_like_a_bucket() {
    let share = tempfile::tempdir().unwrap();
    let path = share.path().to_str().unwrap().to_string();
    let w = bot_core::world(move |c| c.replacen(NAS, &format!("path = \"{path}\""), 1));
    w.converge();
    for (age, tampered) in [(50 * 60, false), (20 * 60, true)] {
        let (name, files) = point(age, tampered);
        for (file, body) in files {
            std::fs::create_dir_all(share.path().join(&name)).unwrap();
            std::fs::write(share.path().join(&name).join(file), body).unwrap();
        }
    }
    let (listed, tertiary) = third_copy(&w);
    assert!(listed.contains("tertiary file://") && listed.contains(": 2 point(s)"), "{listed}");
    assert!(
        listed.contains("20m old, 2 objects") && listed.contains("corrupt: `database.dump.gpg` has MD5"),
        "{listed}"
    );
    assert!(listed.contains("50m old, 2 objects") && listed.contains("verified"), "{listed}");
    assert!(
        tertiary["listed"] == true
            && tertiary["newest_age_seconds"].as_i64().is_some_and(|a| (2_990..3_100).contains(&a)),
        "{tertiary:#}"
    );
    let status = text(&w.drplan(&["status", "bot-core"]).stdout);
    assert!(status.contains("tertiary 50m"), "{status}");
    // The plan's RPO check counts the third copy: 50 minutes, within the hour.
    let plan = text(&w.drplan(&["plan", "bot-core"]).stdout);
    assert!(plan.contains("tertiary 50m"), "{plan}");
}

#[test]
fn a_nas_behind_an_s3_endpoint_is_listed_and_one_neither_mounted_nor_reached_says_so() {
    let nas = Running::start(Emulator::Moto).expect("a second moto starts");
    nas.create_bucket("bot-core-nas").unwrap();
    let endpoint = nas.url().to_string();
    let w = bot_core::world(move |c| {
        c.replacen(
            NAS,
            &format!("s3_endpoint = \"{endpoint}\"\n      bucket      = \"bot-core-nas\"\n      prefix      = \"dr/\""),
            1,
        )
    });
    w.converge();
    for (age, tampered) in [(45 * 60, false), (10 * 60, true)] {
        let (name, files) = point(age, tampered);
        for (file, body) in files {
            nas.put_object("bot-core-nas", &format!("dr/{name}/{file}"), &body).unwrap();
        }
    }
    let (listed, tertiary) = third_copy(&w);
    let root = format!("tertiary {}/bot-core-nas/dr/: 2 point(s)", nas.url());
    assert!(listed.contains(&root), "{listed}");
    assert!(
        listed.contains("10m old, 2 objects") && listed.contains("corrupt: `database.dump.gpg` has MD5"),
        "{listed}"
    );
    assert!(tertiary["newest_age_seconds"].as_i64().is_some_and(|a| (2_690..2_800).contains(&a)), "{tertiary:#}");
    let report = json(&w.drplan(&["backups", "bot-core", "--json"]));
    let d = report["backups"][0]["destinations"].as_array().unwrap().iter().find(|d| d["name"] == "tertiary").cloned();
    assert_eq!(d.unwrap()["points"][1]["status"], "verified");

    // Unmounted and with no endpoint, the example's own NAS is not listed, and says why.
    let plain = bot_core::world(|c| c);
    let out = plain.drplan(&["backups", "bot-core"]);
    let listed = text(&out.stdout);
    assert!(
        listed.contains("tertiary file:///mnt/nas/bot-core: not listed: no share is mounted at /mnt/nas/bot-core"),
        "{}",
        describe(&out)
    );
    let plan = text(&plain.drplan(&["plan", "bot-core"]).stdout);
    assert!(plan.contains("tertiary not listed"), "{plan}");
}
