//! `drplan failover --to REGION`: the HCL edit keeps every comment, the diff and the plan
//! that follows are shown, `--write` saves it, and mistakes are refused clearly.

use crate::support;

use support::{root, run, write_converged_state};

fn bot_core() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(root().join("examples/bot-core/main.hcl"), dir.path().join("main.hcl")).unwrap();
    write_converged_state(dir.path(), "main.hcl");
    dir
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Lines holding a comment, trimmed, in order.
fn comments(s: &str) -> Vec<String> {
    s.lines()
        .filter(|l| l.contains('#') || l.contains("//"))
        .map(|l| l[l.find('#').or_else(|| l.find("//")).unwrap()..].trim().to_string())
        .collect()
}

#[test]
fn to_the_standby_shows_the_edit_and_the_plan_and_writes_only_when_asked() {
    let dir = bot_core();
    let file = dir.path().join("main.hcl");
    let original = std::fs::read_to_string(&file).unwrap();
    let path = dir.path().to_str().unwrap();

    let out = run(&["failover", "--to", "eu-west-1", path, "--refresh=false"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("-  role     = \"standby\"") && stdout.contains("+  role     = \"active\""), "{stdout}");
    assert!(stdout.contains("-  role     = \"active\"") && stdout.contains("+  role     = \"standby\""), "{stdout}");
    assert!(
        stdout.contains("eu-west-1: standby → active (promote)")
            && stdout.contains("us-east-1: active → standby (demote)"),
        "{stdout}"
    );
    let order = &stdout[stdout.find("Order of execution:").unwrap()..];
    assert!(order.find("gate.health.eu-west-1").unwrap() < order.find("dns.api.bot-core.com.primary").unwrap());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), original, "without --write nothing is saved");
    assert!(text(&out.stderr).contains("pass --write"));

    let out = run(&["failover", "--to", "eu-west-1", path, "--refresh=false", "--write"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let edited = std::fs::read_to_string(&file).unwrap();
    assert_eq!(comments(&edited), comments(&original), "every comment kept, in order");
    let changed: Vec<(&str, &str)> = original.lines().zip(edited.lines()).filter(|(a, b)| a != b).collect();
    assert_eq!(changed.len(), 2, "exactly the two role lines change: {changed:?}");
    assert_eq!(original.lines().count(), edited.lines().count());
    let out = run(&["validate", path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("eu-west-1        aws  active"), "{}", text(&out.stdout));
}

#[test]
fn to_the_cold_region_provisions_it() {
    let dir = bot_core();
    let out = run(&["failover", "--to", "asia-pacific-1", dir.path().to_str().unwrap(), "--refresh=false"]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("asia-pacific-1: cold → active (promote)"), "{stdout}");
    for i in 0..3 {
        assert!(stdout.contains(&format!("+ region.asia-pacific-1.compute.full-stack[{i}]")), "{stdout}");
    }
    // Promoting the cold site restores its database, from a recovery point only a refresh
    // can find: the plan is shown, and refused until it is made with one.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(stdout.contains("drplan::plan::no_recovery_point") && stdout.contains("plan with a refresh"), "{stdout}");
}

#[test]
fn unknown_or_already_active_regions_are_refused() {
    let dir = bot_core();
    let path = dir.path().to_str().unwrap();
    let out = run(&["failover", "--to", "us-east-1", path, "--refresh=false"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("`us-east-1` is already the active region") && text(&out.stderr).contains("╭─["),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["failover", "--to", "eu-west-2", path, "--refresh=false"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("did you mean `eu-west-1`?"), "{}", text(&out.stderr));
}
