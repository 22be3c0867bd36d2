//! apply under stress, through the real binary against moto: two applies at once, and
//! kill -9 at several points of a large apply followed by another apply. The cloud must end
//! with exactly the desired instances: none duplicated, none leaked.

use crate::support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use drplan_harness::{Emulator, Running};

const ACTIVE: usize = 60;
const STANDBY: usize = 2;

fn configuration(moto: &str) -> String {
    support::two_aws_regions(moto, "crash", ACTIVE, STANDBY, None)
}

fn serial(dir: &Path) -> u64 {
    drplan_state::LocalBackend::new(dir.join(".drplan/state.json")).read().ok().flatten().map_or(0, |s| s.serial)
}

fn setup() -> (Running, tempfile::TempDir) {
    let moto = Running::start(Emulator::Moto).expect("moto starts");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.hcl"), configuration(moto.url())).unwrap();
    (moto, dir)
}

#[test]
fn two_applies_at_once_one_proceeds_the_other_is_refused() {
    let (moto, dir) = setup();
    let [a, b] = support::two_applies_at_once(dir.path());
    let codes = [a.status.code(), b.status.code()];
    assert!(codes.contains(&Some(0)) && codes.contains(&Some(1)), "one succeeds, one is refused: {codes:?}");
    let refused = if a.status.success() { &b } else { &a };
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("drplan::state::locked") && err.contains("apply"), "{err}");
    support::assert_converged_on_moto(&moto, dir.path(), &[("us-east-1", ACTIVE), ("us-west-2", STANDBY)]);
}

#[test]
fn kill_9_at_several_points_then_apply_again_converges_exactly() {
    let (moto, dir) = setup();
    let total = ACTIVE + STANDBY;
    let mut last_serial = 0;
    let mut killed_mid_run = 0;
    // Kill after about a tenth, a third and two thirds of the work has been recorded.
    for kill_at in [total as u64 / 10, total as u64 / 3, 2 * total as u64 / 3] {
        let mut child = support::drplan_aws(dir.path())
            .args(["apply", ".", "--auto-approve", "--parallelism", "3"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while serial(dir.path()) < kill_at && Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        let _ = child.kill(); // SIGKILL: no chance to clean up
        let _ = child.wait();
        let now = serial(dir.path());
        assert!(now >= last_serial, "serial went back from {last_serial} to {now}");
        last_serial = now;
        // The state on disk is always whole and readable.
        let state = drplan_state::LocalBackend::new(dir.path().join(".drplan/state.json"))
            .read()
            .unwrap()
            .expect("state exists");
        assert!(state.objects.len() <= total);
        assert!(moto.live_instances("us-east-1").unwrap().len() <= ACTIVE, "never more than desired, even mid-run");
    }
    assert!(killed_mid_run >= 2, "the kills must land while apply runs ({killed_mid_run} did)");
    assert!(moto.live_instances("us-east-1").unwrap().len() < ACTIVE, "the last kill left work undone");
    let out = support::drplan_aws(dir.path()).args(["apply", ".", "--auto-approve"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(serial(dir.path()) > last_serial);
    support::assert_converged_on_moto(&moto, dir.path(), &[("us-east-1", ACTIVE), ("us-west-2", STANDBY)]);
}
