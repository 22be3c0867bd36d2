//! `DRPLAN_LOG` through the real binary: off by default (stderr unchanged), a bare level
//! logs drplan's own story to stderr without touching stdout, a value it cannot read is a
//! warning and not a failure, and an apply against moto logs its calls and state writes
//! but never the credentials it ran with.

use crate::support;

use std::path::Path;

use drplan_harness::{Emulator, Running};
use support::{drplan, root, text};

/// A copy of examples/bot-core, so the state lock a plan takes lands outside the tree.
fn bot_core() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(root().join("examples/bot-core/main.hcl"), dir.path().join("main.hcl")).unwrap();
    dir
}

fn plan(dir: &Path, log: Option<&str>) -> std::process::Output {
    let mut c = drplan();
    c.args(["plan", "--refresh=false"]).arg(dir);
    match log {
        Some(v) => c.env("DRPLAN_LOG", v),
        None => c.env_remove("DRPLAN_LOG"),
    };
    c.output().unwrap()
}

#[test]
fn without_drplan_log_stderr_is_unchanged() {
    let out = drplan().args(["validate", "examples/bot-core"]).env_remove("DRPLAN_LOG").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");

    let dir = bot_core();
    let out = plan(dir.path(), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    for quiet in ["", "off"] {
        let again = plan(dir.path(), Some(quiet));
        assert_eq!(text(&again.stderr), "", "DRPLAN_LOG={quiet:?}");
        assert_eq!(again.stdout, out.stdout, "DRPLAN_LOG={quiet:?}");
    }
}

#[test]
fn debug_logs_go_to_stderr_and_leave_stdout_alone() {
    let dir = bot_core();
    let quiet = plan(dir.path(), None);
    let logged = plan(dir.path(), Some("debug"));
    assert_eq!(logged.status.code(), Some(0), "{}", text(&logged.stderr));
    assert_eq!(text(&logged.stdout), text(&quiet.stdout), "the plan is the same with logs on");
    let log = text(&logged.stderr);
    for want in ["DEBUG drplan::load: configuration loaded", "drplan_state::local: no state yet"] {
        assert!(log.contains(want), "{want:?} in:\n{log}");
    }
    assert!(!log.contains("state lock taken"), "a plan without refresh takes no lock:\n{log}");
    assert!(log.contains("regions=[\"us-east-1/aws/active\""), "{log}");
    assert!(!log.contains('\u{1b}'), "no colour off a terminal:\n{log}");
    // Timestamps count from the start of the run, not the calendar.
    assert!(
        log.lines().all(|l| l.trim_start().split_once("s ").is_some_and(|(t, _)| t.parse::<f64>().is_ok())),
        "{log}"
    );
}

#[test]
fn an_unreadable_drplan_log_is_a_warning_and_the_command_still_runs() {
    let dir = bot_core();
    let quiet = plan(dir.path(), None);
    for bad in ["loud", "drplan=loud"] {
        let out = plan(dir.path(), Some(bad));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(out.stdout, quiet.stdout);
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with(&format!("warning: DRPLAN_LOG={bad} is not understood")), "{err}");
        assert!(err.contains("logging is off"), "{err}");
    }
}

fn configuration(moto: &str) -> String {
    support::two_aws_regions(moto, "logged", 2, 1, Some("drplan-state"))
}

#[test]
fn an_apply_against_moto_logs_calls_and_state_writes_but_no_secret() {
    const SECRET: &str = "s3cr3t-n0t-in-logs";
    let moto = Running::start(Emulator::Moto).unwrap();
    moto.create_bucket("drplan-state").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.hcl"), configuration(moto.url())).unwrap();

    let out = support::drplan_aws(dir.path())
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("DRPLAN_LOG", "debug")
        .args(["apply", "--auto-approve"])
        .output()
        .unwrap();
    let (stdout, log) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{log}");
    for want in [
        "drplan_state::s3: no state yet",
        "drplan::clouds: refresh done provider=aws",
        "drplan_provider_aws::ec2: ec2 region refreshed region=us-west-2",
        "drplan_exec: provider call address=region.us-east-1.compute.web[0] action=create",
        "drplan_state::s3: state written location=s3://drplan-state/logged/state.json serial=1",
        "drplan_state::lock: state lock released operation=apply",
    ] {
        assert!(log.contains(want), "{want:?} in:\n{log}");
    }
    assert!(!log.contains(" DEBUG aws_"), "the SDKs stay at warn for a bare level:\n{log}");
    for output in [&stdout, &log] {
        assert!(!output.contains(SECRET), "the secret key reached the output:\n{output}");
    }

    // Full SDK tracing is a choice the user makes by name; even then the key stays out.
    let out = support::drplan_aws(dir.path())
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("DRPLAN_LOG", "trace,aws_smithy_runtime=trace,aws_sigv4=trace,aws_config=trace")
        .args(["plan"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("TRACE"), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains(SECRET), "the secret key reached the trace log");
    assert!(!text(&out.stdout).contains(SECRET));
}
