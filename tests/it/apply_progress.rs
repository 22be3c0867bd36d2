//! Apply's progress through the real binary on moto: on a terminal, a line per action and an
//! overall bar redrawn at the bottom and cleared before the summary; without a terminal, and
//! with `--json`, no bar and no terminal control codes.

use crate::support;

use std::path::Path;
use std::process::Command;

use drplan_harness::{Emulator, Running};
use support::text;

fn configuration(moto: &str) -> String {
    support::two_aws_regions(moto, "progress", 4, 1, None)
}

/// Runs `drplan ARGS` in `dir` under a pseudo-terminal (util-linux `script`); everything
/// the terminal received.
fn in_terminal(dir: &Path, args: &str) -> String {
    let out = Command::new("script")
        .args(["-qec", &format!("{} {args}", env!("CARGO_BIN_EXE_drplan")), "/dev/null"])
        .current_dir(dir)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("NO_COLOR", "1")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("script(1) from util-linux runs");
    text(&out.stdout)
}

#[test]
fn a_bar_on_a_terminal_and_plain_lines_elsewhere() {
    let moto = Running::start(Emulator::Moto).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.hcl"), configuration(moto.url())).unwrap();

    let shown = in_terminal(dir.path(), "apply --auto-approve");
    assert!(shown.contains("Apply complete: 5 succeeded"), "{shown}");
    // The bar is drawn after each line and erased (carriage return, clear line) before the
    // next line is printed over it, so every line arrives whole.
    let clear = "\r\u{1b}[2K";
    let segments: Vec<&str> = shown.split('\n').filter(|l| l.starts_with('[')).collect();
    assert!(segments.len() >= 10, "a bar after every started and done line: {shown:?}");
    for segment in &segments {
        assert!(segment.contains(clear), "the bar is erased before anything else is printed: {segment:?}");
    }
    let bars: Vec<&str> = segments.iter().map(|s| &s[..s.find('\r').unwrap()]).collect();
    assert!(bars.iter().any(|b| b.starts_with("[------------------------------] 0/5 done, 1 running, ")), "{bars:?}");
    assert!(bars.iter().any(|b| b.starts_with("[##############################] 5/5 done, 0 running, ")), "{bars:?}");
    let summary = shown.find("Apply complete").unwrap();
    assert!(
        shown[..summary].trim_end_matches(['\r', '\n']).ends_with(clear),
        "the bar is erased before the summary: {:?}",
        &shown[summary.saturating_sub(80)..summary]
    );

    // Scale down, without a terminal: the same lines, no bar, no control codes.
    let scaled = configuration(moto.url()).replace("active = 4,", "active = 2,");
    std::fs::write(dir.path().join("main.hcl"), scaled).unwrap();
    let out = support::drplan_aws(dir.path()).args(["apply", "--auto-approve"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plain = text(&out.stderr);
    assert!(plain.contains("  done     region.us-east-1.compute.web[3]"), "{plain}");
    assert!(!plain.contains('\u{1b}') && !plain.contains("running,"), "{plain}");

    // --json on a terminal: JSON lines on stdout, still no bar.
    std::fs::write(dir.path().join("main.hcl"), configuration(moto.url())).unwrap();
    let json = in_terminal(dir.path(), "apply --auto-approve --json");
    assert!(json.contains(r#""type":"done""#), "{json}");
    assert!(!json.contains("running,"), "{json}");
}
