//! Remote state on S3 through the real binary, against moto: apply writes the state object
//! (and no local file), the state commands read it, its lock object stops another run and
//! is broken by id, and a missing bucket is a clear error.

use crate::support;

use support::text;

use std::time::Duration;

use drplan_harness::{Emulator, Running};
use drplan_state::{Backend, S3Backend, S3Location, StaticCredentials};

fn configuration(moto: &str, bucket: &str) -> String {
    support::two_aws_regions(moto, "remote", 3, 1, Some(bucket))
}

fn backend(moto: &str) -> S3Backend {
    S3Backend::with_credentials(
        S3Location {
            bucket: "drplan-state".into(),
            key: "remote/state.json".into(),
            region: "us-east-1".into(),
            endpoint: Some(moto.into()),
        },
        Some(StaticCredentials::new("testing", "testing")),
    )
    .unwrap()
}

#[test]
fn apply_plan_and_state_commands_use_the_s3_object() {
    let moto = Running::start(Emulator::Moto).unwrap();
    moto.create_bucket("drplan-state").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.hcl"), configuration(moto.url(), "drplan-state")).unwrap();

    let out = support::drplan_aws(dir.path()).args(["apply", "--auto-approve"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!dir.path().join(".drplan").exists(), "nothing is written locally with the s3 backend");

    let stored = backend(moto.url()).read().unwrap().expect("the state object exists");
    // Written as changes finish (those finishing together share a write), then once more
    // with the roles at the end.
    assert!(stored.serial >= 2, "written during and after the apply: serial {}", stored.serial);
    assert_eq!(stored.objects.len(), 4, "{:?}", stored.objects.iter().map(|o| &o.address).collect::<Vec<_>>());

    let out = support::drplan_aws(dir.path()).args(["plan", "--detailed-exitcode"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "converged: {}{}", text(&out.stdout), text(&out.stderr));

    let out = support::drplan_aws(dir.path()).args(["state", "list"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 4, "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("region.us-east-1.compute.web[2]"), "{}", text(&out.stdout));

    let out = support::drplan_aws(dir.path()).args(["state", "pull"]).output().unwrap();
    let pulled: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pulled["serial"], stored.serial);
    assert_eq!(pulled["lineage"], stored.lineage.as_str());

    let out =
        support::drplan_aws(dir.path()).args(["state", "rm", "region.us-west-2.compute.web[0]"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after = backend(moto.url()).read().unwrap().unwrap();
    assert_eq!((after.serial, after.objects.len()), (stored.serial + 1, 3));
    assert_eq!(after.lineage, stored.lineage);
}

#[test]
fn a_held_s3_lock_stops_another_run_until_broken_by_id() {
    let moto = Running::start(Emulator::Moto).unwrap();
    moto.create_bucket("drplan-state").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.hcl"), configuration(moto.url(), "drplan-state")).unwrap();

    // A run that died while holding the lock leaves its lock object behind.
    let held = backend(moto.url()).lock("apply", "ana@laptop", "2026-11-27T10:00:00Z", Duration::ZERO).unwrap();
    let id = held.info.id.clone();
    std::mem::forget(held);

    let out = support::drplan_aws(dir.path()).args(["apply", "--auto-approve"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("drplan::state::locked") && err.contains("ana@laptop") && err.contains(&id), "{err}");
    assert!(backend(moto.url()).read().unwrap().is_none(), "nothing was written while locked");

    let out = support::drplan_aws(dir.path()).args(["state", "unlock", "not-the-id"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let out = support::drplan_aws(dir.path()).args(["state", "unlock", &id]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Unlocked"), "{}", text(&out.stderr));

    let out = support::drplan_aws(dir.path()).args(["apply", "--auto-approve"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(backend(moto.url()).lock_info().unwrap(), None, "apply gives its lock back");
}

#[test]
fn a_missing_bucket_is_a_clear_error() {
    let moto = Running::start(Emulator::Moto).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.hcl"), configuration(moto.url(), "no-such-bucket")).unwrap();
    let out = support::drplan_aws(dir.path()).args(["plan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("no-such-bucket") && err.contains("does not exist") && err.contains("versioning"), "{err}");
    assert!(!err.contains("SdkError") && !err.contains("ServiceError"), "no SDK debug dump: {err}");
}
