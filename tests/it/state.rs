//! State commands and locking through the real binary, on real state files.

use crate::support;

use std::time::Duration;

use support::{root, run};

fn configured() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(root().join("examples/aws-pair/main.hcl"), dir.path().join("main.hcl")).unwrap();
    std::fs::copy(root().join("examples/aws-pair/regions.hcl"), dir.path().join("regions.hcl")).unwrap();
    std::fs::copy(root().join("examples/aws-pair/backup.hcl"), dir.path().join("backup.hcl")).unwrap();
    let mut state = drplan_state::StateFile::new("ledger", "test");
    state.serial = 3;
    state.objects = ["region.us-east-1.compute.api[0]", "region.us-east-1.compute.api[1]"]
        .iter()
        .map(|a| drplan_state::StateObject {
            address: a.to_string(),
            kind: "instance".into(),
            region: Some("us-east-1".into()),
            id: format!("i-{}", a.len()),
            attributes: [("image".to_string(), serde_json::json!("ami-1"))].into_iter().collect(),
            extra: Default::default(),
        })
        .collect();
    drplan_state::LocalBackend::new(dir.path().join(".drplan/state.json")).write(&state).unwrap();
    dir
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn list_show_pull_and_rm() {
    let dir = configured();
    let path = dir.path().to_str().unwrap();
    let out = run(&["state", "list", path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "region.us-east-1.compute.api[0]\nregion.us-east-1.compute.api[1]\n");

    let out = run(&["state", "show", "region.us-east-1.compute.api[1]", path]);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["id"], "i-31");

    let out = run(&["state", "pull", path]);
    let pulled: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pulled["serial"], 3);

    let out = run(&["state", "rm", "region.us-east-1.compute.api[0]", path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let state = drplan_state::LocalBackend::new(dir.path().join(".drplan/state.json")).read().unwrap().unwrap();
    assert_eq!(state.serial, 4);
    assert_eq!(state.objects.len(), 1);

    let out = run(&["state", "show", "region.us-east-1.compute.api[9]", path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("is not in state"), "{}", text(&out.stderr));
}

/// A saved plan with nothing to do for the configuration in `dir`: its state is converged.
/// Applying it takes the state lock and needs no cloud.
fn nothing_to_do_plan(dir: &std::path::Path) -> String {
    let sources: Vec<drplan_core::SourceFile> = ["main.hcl", "regions.hcl", "backup.hcl"]
        .iter()
        .map(|f| drplan_core::SourceFile::new(*f, std::fs::read_to_string(dir.join(f)).unwrap()))
        .collect();
    let config = drplan_core::config::load(&sources, &|_| None).config.expect("valid configuration");
    let mut state = drplan_state::StateFile::new(&config.project, "test");
    state.set_content(&drplan_provider_fake::kit::converged_prior(&config));
    drplan_state::LocalBackend::new(dir.join(".drplan/state.json")).write(&state).unwrap();
    let file = dir.join("nothing.plan").display().to_string();
    let out = run(&["plan", dir.to_str().unwrap(), "--refresh=false", "--out", &file]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    file
}

#[test]
fn a_held_lock_names_its_holder_and_lock_timeout_waits() {
    let dir = configured();
    let path = dir.path().to_str().unwrap().to_string();
    let plan = nothing_to_do_plan(dir.path());
    let state = dir.path().join(".drplan/state.json");
    let held =
        drplan_state::lock::acquire(&state, "apply", "ana@laptop", "2026-11-27T10:00:00Z", Duration::ZERO).unwrap();
    // A plan without refresh reads state alone and is not held up (it takes no lock).
    let out = run(&["plan", &path, "--refresh=false"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run(&["apply", &plan, "--config", &path]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("drplan::state::locked")
            && err.contains("ana@laptop")
            && err.contains(&format!("drplan state unlock {}", held.info.id)),
        "{err}"
    );

    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        drop(held);
    });
    let out = run(&["apply", &plan, "--config", &path, "--lock-timeout", "10s"]);
    releaser.join().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("No changes."), "{}", text(&out.stderr));
}

#[test]
fn unlock_breaks_only_a_dead_holders_lock_by_id() {
    let dir = configured();
    let path = dir.path().to_str().unwrap();
    let state = dir.path().join(".drplan/state.json");
    // A run that crashed: its lock information stayed, its OS lock died with it.
    let info = drplan_state::lock::acquire(&state, "apply", "ci@runner", "2026-11-27T09:00:00Z", Duration::ZERO)
        .unwrap()
        .info
        .clone();
    let info_file = dir.path().join(".drplan/state.json.lock.json");
    std::fs::write(&info_file, serde_json::to_string(&info).unwrap()).unwrap();

    let out = run(&["state", "unlock", "not-the-id", path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(info_file.exists());
    let out = run(&["state", "unlock", &info.id, path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!info_file.exists());
}
