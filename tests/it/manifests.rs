//! The shipped Kubernetes manifests (the watcher, the scheduled drift check) are valid for
//! Kubernetes 1.30 under `kubernetes-validate --strict` (from the emulator virtualenv, with
//! its bundled schemas), and the watcher's liveness probe works with the real binary.

use crate::support;

use support::{drplan, root, text};

#[test]
fn the_shipped_manifests_pass_strict_validation_for_kubernetes_1_30() {
    let files = ["examples/watcher/watcher.yaml", "examples/watcher/drift-cronjob.yaml"];
    let out = drplan_harness::venv_command("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", "1.30.0"])
        .args(files.iter().map(|f| root().join(f)))
        .output()
        .expect("kubernetes-validate from the emulator virtualenv (scripts/emulators-venv installs it)");
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{said}");
    assert_eq!(said.matches("passed for resource").count(), 6, "every resource checked: {said}");
    // What the manifest runs is what the binary takes.
    let watcher = std::fs::read_to_string(root().join("examples/watcher/watcher.yaml")).unwrap();
    assert!(watcher.contains("terminationGracePeriodSeconds: 60"));
    assert!(watcher.contains("\"--heartbeat\", \"/run/drplan/heartbeat\""));
    assert!(watcher.contains(
        "[\"/usr/local/bin/drplan\", \"watch\", \"--alive\", \"/run/drplan/heartbeat\", \"--within\", \"5m\"]"
    ));
}

#[test]
fn the_liveness_probe_passes_on_a_fresh_heartbeat_only() {
    let dir = tempfile::tempdir().unwrap();
    let beat = dir.path().join("heartbeat");
    let probe =
        |within: &str| drplan().args(["watch", "--alive"]).arg(&beat).args(["--within", within]).output().unwrap();
    let out = probe("5m");
    assert_eq!(out.status.code(), Some(1), "no heartbeat yet");
    assert!(text(&out.stderr).contains("No heartbeat"), "{}", text(&out.stderr));
    std::fs::write(&beat, "2026-12-06T00:00:00Z\n").unwrap();
    assert_eq!(probe("5m").status.code(), Some(0));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let out = probe("1s");
    assert_eq!(out.status.code(), Some(1), "a watcher that stopped turning is stuck");
    assert!(text(&out.stderr).contains("it is stuck"), "{}", text(&out.stderr));
}
