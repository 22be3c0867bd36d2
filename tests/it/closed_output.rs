//! A closed stdout or stderr (`drplan apply --json | head -1`) never stops a command: an
//! apply's running actions finish and are recorded in state, and the exit code says that
//! output was lost. Through the real binary, the apply and drift against moto.

use crate::support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Output, Stdio};

use drplan_harness::{Emulator, Running};
use support::{drplan_aws, text};

fn setup(project: &str) -> (Running, tempfile::TempDir) {
    let moto = Running::start(Emulator::Moto).expect("moto starts");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.hcl"), support::two_aws_regions(moto.url(), project, 6, 3, None)).unwrap();
    (moto, dir)
}

/// Runs drplan in `dir` with stdout a pipe closed after its first line (none when `lines`
/// is 0), as `| head -1` does.
fn with_stdout_closed_after(dir: &Path, args: &[&str], lines: usize) -> Output {
    let mut child = drplan_aws(dir).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    for _ in 0..lines {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "stdout ended before its first line");
    }
    drop(stdout);
    child.wait_with_output().unwrap()
}

fn assert_lost_not_aborted(out: &Output) {
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("stdout was closed before all output was written"), "{err}");
}

#[test]
fn apply_with_stdout_closed_finishes_and_records_every_action() {
    let (moto, dir) = setup("pipe");
    let out = with_stdout_closed_after(dir.path(), &["apply", ".", "--auto-approve", "--json"], 1);
    assert_lost_not_aborted(&out);
    assert!(text(&out.stderr).contains("Apply complete"), "{}", text(&out.stderr));
    // Nothing lost: every instance is live and in state, so a new plan has nothing to do.
    support::assert_converged_on_moto(&moto, dir.path(), &[("us-east-1", 6), ("us-west-2", 3)]);

    // drift, clean here, with its report unread: not "clean" (0) but an error.
    let out = with_stdout_closed_after(dir.path(), &["drift", ".", "--json"], 0);
    assert_lost_not_aborted(&out);
}

#[test]
fn plan_with_stdout_closed_says_so_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(support::root().join("examples/bot-core/main.hcl"), dir.path().join("main.hcl")).unwrap();
    let saved = dir.path().join("saved.plan");
    let out =
        with_stdout_closed_after(dir.path(), &["plan", ".", "--refresh=false", "--out", saved.to_str().unwrap()], 0);
    assert_lost_not_aborted(&out);
    assert!(saved.exists(), "the saved plan is written all the same");
}

#[test]
fn a_closed_stderr_does_not_stop_logging_or_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(support::root().join("examples/bot-core/main.hcl"), dir.path().join("main.hcl")).unwrap();
    let mut child = drplan_aws(dir.path())
        .args(["plan", ".", "--refresh=false"])
        .env("DRPLAN_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "a lost log line is not a failure");
    assert!(text(&out.stdout).contains("Plan:"), "{}", text(&out.stdout));
}
