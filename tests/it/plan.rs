//! `drplan plan`, `show` and `graph` through the real binary, with real state files.

use crate::support;

use std::path::Path;

use drplan_core::SourceFile;
use drplan_core::config;
use drplan_core::plan::desired;
use support::{drplan, root, run};

/// A copy of examples/bot-core in a fresh directory.
fn bot_core() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(root().join("examples/bot-core/main.hcl"), dir.path().join("main.hcl")).unwrap();
    dir
}

fn write_converged_state(dir: &Path) -> drplan_state::StateFile {
    support::write_converged_state(dir, "main.hcl")
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn refresh_false_on_empty_state_prints_every_create_of_the_reference() {
    let reference = root().join("examples/bot-core/main.hcl");
    let text = std::fs::read_to_string(&reference).unwrap();
    let config = config::load(&[SourceFile::new("bot-core.hcl", text)], &|_| None).config.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&reference, dir.path().join("bot-core.hcl")).unwrap();
    let out = run(&["plan", dir.path().to_str().unwrap(), "--refresh=false"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let want = desired::desired(&config);
    for r in &want {
        let line = format!("  + {}", r.address);
        let listed = text.lines().any(|l| l == line || l.starts_with(&format!("{line} (")));
        assert!(listed, "no create for {} in:\n{text}", r.address);
    }
    assert!(
        text.contains(&format!("Plan: {} to create, 0 to update, 0 to replace, 0 to delete, 0 to adopt.", want.len())),
        "{text}"
    );
    assert!(want.len() >= 18, "the reference asks for {} resources", want.len());
    assert!(!dir.path().join(".drplan/state.json").exists(), "plan must not write state");
}

#[test]
fn detailed_exitcode_is_0_1_or_2() {
    let dir = bot_core();
    let path = dir.path().to_str().unwrap();
    let out = run(&["plan", path, "--refresh=false", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "changes present:\n{}", stderr(&out));
    write_converged_state(dir.path());
    let out = run(&["plan", path, "--refresh=false", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("No changes."));
    let text = std::fs::read_to_string(dir.path().join("main.hcl")).unwrap();
    std::fs::write(dir.path().join("main.hcl"), text.replace("role     = \"standby\"", "rol      = \"standby\""))
        .unwrap();
    let out = run(&["plan", path, "--refresh=false", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(1), "an invalid configuration is an error");
}

#[test]
fn a_failover_plan_from_state_orders_the_promotion() {
    let dir = bot_core();
    write_converged_state(dir.path());
    let text = std::fs::read_to_string(dir.path().join("main.hcl")).unwrap();
    let failed_over = text
        .replacen("role     = \"active\"", "role     = \"STANDBY-MARK\"", 1)
        .replacen("role     = \"standby\"", "role     = \"active\"", 1)
        .replacen("STANDBY-MARK", "standby", 1);
    std::fs::write(dir.path().join("main.hcl"), failed_over).unwrap();
    let out = run(&["plan", dir.path().to_str().unwrap(), "--refresh=false", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("eu-west-1: standby → active (promote)") && text.contains("us-east-1: active → standby (demote)"),
        "{text}"
    );
    let pos = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("{needle} missing:\n{text}"));
    let order = &text[pos("Order of execution:")..];
    let at = |needle: &str| order.find(needle).unwrap_or_else(|| panic!("{needle} missing in order:\n{order}"));
    assert!(at("gate.health.eu-west-1") < at("dns.api.bot-core.com.primary"));
    assert!(at("dns.api.bot-core.com.primary") < at("region.us-east-1.compute.nodes[1]"));
}

#[test]
fn saved_plans_show_exactly_as_planned() {
    let dir = bot_core();
    write_converged_state(dir.path());
    let text = std::fs::read_to_string(dir.path().join("main.hcl")).unwrap();
    std::fs::write(
        dir.path().join("main.hcl"),
        text.replace(
            "count         = { active = 3, standby = 1, cold = 0 }",
            "count         = { active = 4, standby = 1, cold = 0 }",
        ),
    )
    .unwrap();
    let path = dir.path().to_str().unwrap();
    let file = dir.path().join("scale.plan");
    let planned = run(&["plan", path, "--refresh=false", "--out", file.to_str().unwrap()]);
    assert!(planned.status.success(), "{}", stderr(&planned));
    assert!(stderr(&planned).contains("Saved the plan to"));
    let shown = run(&["show", file.to_str().unwrap()]);
    assert_eq!(stdout(&shown), stdout(&planned));
    let json = run(&["show", file.to_str().unwrap(), "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(doc["format_version"], drplan_core::plan::doc::FORMAT_VERSION);
    assert_eq!(doc["prior_state"]["serial"], 4);
    assert!(doc["configuration_hash"].as_str().unwrap().starts_with("sha256:"));
    // Only the active pool grows: the standby and cold columns did not change.
    let changes = doc["resource_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["address"], "region.us-east-1.compute.nodes[3]");
    assert_eq!(changes[0]["change"]["actions"], serde_json::json!(["create"]));
    assert_eq!(changes[0]["change"]["after"]["image"], "ami-0c55b159cbfafe1f0");
    let markdown = run(&["show", file.to_str().unwrap(), "--markdown"]);
    assert!(stdout(&markdown).starts_with("### drplan plan: `bot-core`"), "{}", stdout(&markdown));

    std::fs::write(dir.path().join("junk.plan"), "{\"not\": \"a plan\"}").unwrap();
    let out = run(&["show", dir.path().join("junk.plan").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("drplan::plan::file") && stderr(&out).contains("is not a drplan plan file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn graph_is_graphviz_dot_of_the_actions() {
    let dir = bot_core();
    let out = run(&["graph", dir.path().to_str().unwrap(), "--refresh=false"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dot = stdout(&out);
    assert!(dot.starts_with("digraph drplan {"), "{dot}");
    assert!(dot.contains("\"gate.health.us-east-1\" -> \"dns.api.bot-core.com.primary\";"), "{dot}");
    assert!(dot.contains("shape = diamond"));
    assert!(dot.trim_end().ends_with('}'));
}

#[test]
fn unreadable_state_is_a_clear_error_and_left_untouched() {
    let dir = bot_core();
    write_converged_state(dir.path());
    let state = dir.path().join(".drplan/state.json");
    let text = std::fs::read_to_string(&state).unwrap();
    let truncated = &text[..text.len() / 3];
    std::fs::write(&state, truncated).unwrap();
    let out = run(&["plan", dir.path().to_str().unwrap(), "--refresh=false"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("drplan::state::unreadable") && err.contains("left untouched"), "{err}");
    assert_eq!(std::fs::read_to_string(&state).unwrap(), truncated);

    std::fs::write(&state, "{\"format_version\": 99}").unwrap();
    let out = run(&["plan", dir.path().to_str().unwrap(), "--refresh=false"]);
    assert!(
        stderr(&out).contains("drplan::state::too_new") && stderr(&out).contains("upgrade drplan"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn clouds_that_cannot_be_reached_fail_the_refresh_clearly() {
    let dir = tempfile::tempdir().unwrap();
    // Every API address points at a closed port.
    let text = std::fs::read_to_string(root().join("examples/bot-core/main.hcl"))
        .unwrap()
        .replace("# endpoint = \"http://127.0.0.1:5000\"", "endpoint = \"http://127.0.0.1:9\"")
        .replace("# endpoint    = \"http://127.0.0.1:8400\"", "endpoint    = \"http://127.0.0.1:9\"")
        .replace("# credentials = \"anonymous\"", "credentials = \"anonymous\"");
    std::fs::write(dir.path().join("main.hcl"), text).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    drplan_harness::write_kubeconfig(
        &kubeconfig,
        &[("use1", "http://127.0.0.1:9"), ("euw1", "http://127.0.0.1:9"), ("apac", "http://127.0.0.1:9")],
    )
    .unwrap();
    let out = drplan()
        .args(["plan", dir.path().to_str().unwrap(), "--detailed-exitcode"])
        .env("KUBECONFIG", &kubeconfig)
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "an error, never 'changes present'");
    let err = stderr(&out);
    // Whichever cloud answers first names the cause: the OS's words or the AWS provider's.
    let refused = err.contains("Connection refused") || err.contains("the connection was refused");
    assert!(err.contains("drplan::refresh::unavailable") && refused && err.contains("nothing was changed"), "{err}");
    assert!(out.stdout.is_empty(), "no plan is printed from a failed refresh");
    assert!(!dir.path().join(".drplan/state.json").exists());
}

#[test]
fn unknown_targets_are_refused_with_a_suggestion() {
    let dir = bot_core();
    let out = run(&["plan", dir.path().to_str().unwrap(), "--refresh=false", "--target", "region.us-east-2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("drplan::plan::unknown_target")
            && stderr(&out).contains("did you mean `region.us-east-1"),
        "{}",
        stderr(&out)
    );
    let out = run(&["plan", dir.path().to_str().unwrap(), "--refresh=false", "--target", "region.us-east-1.compute"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Plan: 3 to create,"), "{text}");
}

#[test]
fn automatic_failover_plans_like_manual_and_warns_of_a_short_watch_interval() {
    let dir = bot_core();
    let main = dir.path().join("main.hcl");
    let text = std::fs::read_to_string(&main).unwrap();
    let text = text
        .replace("mode  = \"manual\"", "mode  = \"automatic\"")
        .replace("  health_check {", "  automatic {\n    interval = \"2s\"\n  }\n\n  health_check {");
    std::fs::write(&main, text).unwrap();
    let out = run(&["plan", dir.path().to_str().unwrap(), "--refresh=false"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("drplan::config::short_watch_interval"), "{err}");
    assert!(!err.contains("not available yet"), "{err}");
    assert!(stdout(&out).contains("Plan:"), "the plan is still made:\n{}", stdout(&out));
}

/// The positions of `needles` in `haystack`, which must all be there.
fn positions(haystack: &str, needles: &[&str]) -> Vec<usize> {
    needles.iter().map(|n| haystack.find(n).unwrap_or_else(|| panic!("no {n:?} in:\n{haystack}"))).collect()
}

#[test]
fn addresses_are_listed_as_people_count() {
    let dir = bot_core();
    let main = dir.path().join("main.hcl");
    let text = std::fs::read_to_string(&main).unwrap();
    let text = text.replacen("count         = { active = 3,", "count         = { active = 12,", 1);
    std::fs::write(&main, text).unwrap();
    let out = run(&["plan", dir.path().to_str().unwrap(), "--refresh=false"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let node = |i: usize| format!("region.us-east-1.compute.nodes[{i}]");
    let (n2, n9, n10, n11) = (node(2), node(9), node(10), node(11));
    // The changes, then the actions: each lists nodes[2] before nodes[9] before nodes[10].
    let changes = positions(&text, &[&format!("+ {n2}\n"), &format!("+ {n9}\n"), &format!("+ {n10}\n")]);
    assert!(changes.windows(2).all(|w| w[0] < w[1]), "changes out of order:\n{text}");
    let actions = positions(&text, &[&format!(". {n2}"), &format!(". {n9}"), &format!(". {n10}"), &format!(". {n11}")]);
    assert!(actions.windows(2).all(|w| w[0] < w[1]), "actions out of order:\n{text}");

    // And `state list`.
    support::write_converged_state(dir.path(), "main.hcl");
    let out = run(&["state", "list", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listed = stdout(&out);
    let at = positions(&listed, &[&format!("{n2}\n"), &format!("{n9}\n"), &format!("{n10}\n")]);
    assert!(at.windows(2).all(|w| w[0] < w[1]), "state list out of order:\n{listed}");
}

#[test]
fn plan_without_refresh_takes_no_lock_and_leaves_no_lock_file() {
    let dir = bot_core();
    // No state at all: nothing is created.
    let out = run(&["plan", dir.path().to_str().unwrap(), "--refresh=false"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!dir.path().join(".drplan").exists(), "plan --refresh=false created .drplan");
    // A state beside it: read, and no lock file appears next to it.
    write_converged_state(dir.path());
    let out = run(&["plan", dir.path().to_str().unwrap(), "--refresh=false"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let files: Vec<String> = std::fs::read_dir(dir.path().join(".drplan"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(files.iter().all(|f| !f.contains(".lock")), "lock files left: {files:?}");
}

#[test]
fn a_saved_plan_applies_from_another_directory_or_names_its_configuration() {
    let dir = bot_core();
    write_converged_state(dir.path());
    let file = dir.path().join("nothing.plan");
    let planned = run(&["plan", dir.path().to_str().unwrap(), "--refresh=false", "--out", file.to_str().unwrap()]);
    assert!(planned.status.success(), "{}", stderr(&planned));
    let elsewhere = tempfile::tempdir().unwrap();
    // Found where the plan recorded it, and checked as usual (here: nothing to do).
    let out = drplan().current_dir(elsewhere.path()).args(["apply", file.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("No changes."), "{}", stderr(&out));

    // The configuration moved away: the error says where it was and what to pass.
    let moved = tempfile::tempdir().unwrap();
    let plan_copy = moved.path().join("nothing.plan");
    std::fs::copy(&file, &plan_copy).unwrap();
    let was = dir.path().to_path_buf();
    let new_home = moved.path().join("config");
    std::fs::create_dir(&new_home).unwrap();
    for f in ["main.hcl", ".drplan"] {
        std::fs::rename(was.join(f), new_home.join(f)).unwrap();
    }
    let out = drplan().current_dir(elsewhere.path()).args(["apply", plan_copy.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&format!("the plan was made from {}", was.display())), "{err}");
    assert!(err.contains("--config DIR"), "{err}");
    let out = drplan()
        .current_dir(elsewhere.path())
        .args(["apply", plan_copy.to_str().unwrap(), "--config", new_home.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
