//! Policy as code: conftest-style Rego rules checked against the plan document, on the
//! emulators (a denial blocks plan and apply in every rendering, a warning only shows, the
//! configuration's `policy { paths }`), and `drplan policy test` on the example policies.

use crate::support;

use std::path::{Path, PathBuf};

use crate::support::bot_core::{self, describe, json, replicas};
use support::{drplan, root, text};

const STANDBY_DENY: &str = "standby eu-west-1 keeps 1 instance(s), less than half of the 3 of active us-east-1";

/// A directory holding only `files` (name, text).
fn policies(parent: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

fn example(name: &str) -> String {
    std::fs::read_to_string(root().join("examples/policies").join(name)).unwrap()
}

#[test]
fn a_denying_policy_blocks_plan_and_apply_until_the_configuration_is_fixed_and_a_warning_only_shows() {
    let w = bot_core::world(|c| c);
    let deny = policies(w.dir.path(), "deny", &[("standby_capacity.rego", &example("standby_capacity.rego"))]);
    let deny = deny.to_str().unwrap();

    // The example's standby keeps a third of the active capacity: denied, in every rendering.
    let out = w.drplan(&["plan", "bot-core", "--policy", deny]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let human = text(&out.stdout);
    assert!(human.contains("Policy:\n  deny main.deny: "), "{human}");
    assert!(human.contains(STANDBY_DENY), "{human}");
    assert!(human.contains("This plan cannot be applied: a policy denies it"), "{human}");
    let out = w.drplan(&["plan", "bot-core", "--policy", deny, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let doc = json(&out);
    assert_eq!(doc["format_version"], drplan_core::plan::doc::FORMAT_VERSION);
    assert_eq!(doc["applyable"], false);
    let denials: Vec<&str> = doc["policy"].as_array().unwrap().iter().map(|r| r["msg"].as_str().unwrap()).collect();
    assert!(denials.contains(&STANDBY_DENY), "{:#}", doc["policy"]);
    assert!(doc["policy"].as_array().unwrap().iter().all(|r| r["level"] == "deny" && r["namespace"] == "main"));
    let out = w.drplan(&["plan", "bot-core", "--policy", deny, "--markdown"]);
    let markdown = text(&out.stdout);
    let at = markdown.find(&format!("> **policy deny** `main.deny`: {STANDBY_DENY}")).expect(&markdown);
    assert!(at < markdown.find("<details>").unwrap_or(usize::MAX), "before the details:\n{markdown}");

    // drift reports the denial as a finding of its own.
    let out = w.drplan(&["drift", "bot-core", "--policy", deny, "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let report = json(&out);
    let policy: Vec<&serde_json::Value> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["kind"] == "policy").collect();
    assert!(policy.iter().any(|f| f["subject"] == "main.deny" && f["detail"] == STANDBY_DENY), "{report:#}");

    // apply refuses it and changes nothing.
    let out = w.drplan(&["apply", "bot-core", "--auto-approve", "--policy", deny]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text(&out.stderr).contains("drplan::policy::denied"), "{}", describe(&out));
    assert!(w.moto.live_instances("us-east-1").unwrap().is_empty());
    assert!(w.moto.live_instances("eu-west-1").unwrap().is_empty());
    assert!(!w.config().join(".drplan/state.json").exists(), "no state written");
    assert_eq!(replicas(&w.use1), vec![0, 0, 0]);

    // The configuration's own `policy { paths }` deny it just the same, without --policy.
    policies(&w.config(), "policies", &[("standby_capacity.rego", &example("standby_capacity.rego"))]);
    w.edit("  project = \"bot-core\"", "  project = \"bot-core\"\n\n  policy {\n    paths = [\"policies\"]\n  }");
    let out = w.drplan(&["plan", "bot-core"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text(&out.stdout).contains(STANDBY_DENY), "{}", describe(&out));

    // Fixed: the standby keeps half the instances and half the replicas.
    w.edit(
        "count         = { active = 3, standby = 1, cold = 0 }",
        "count         = { active = 3, standby = 2, cold = 0 }",
    );
    w.edit("replicas = { active = 3, standby = 1, cold = 0 }", "replicas = { active = 3, standby = 2, cold = 0 }");
    let out = w.drplan(&["plan", "bot-core", "--policy", deny]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(!text(&out.stdout).contains("Policy:"), "{}", describe(&out));

    // A warning shows and blocks nothing: the apply goes ahead.
    let warn = r#"package main

import rego.v1

warn contains {"msg": sprintf("%d changes in one plan: review them together", [n]), "changes": n} if {
	n := count(input.resource_changes)
	n > 5
}
"#;
    let warn = policies(w.dir.path(), "warn", &[("big_plans.rego", warn)]);
    let warn = warn.to_str().unwrap();
    let out = w.drplan(&["plan", "bot-core", "--policy", warn, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let doc = json(&out);
    assert_eq!(doc["applyable"], true);
    assert_eq!(doc["policy"][0]["level"], "warn", "{:#}", doc["policy"]);
    assert!(doc["policy"][0]["details"]["changes"].as_u64().unwrap() > 5);
    let out = w.drplan(&["apply", "bot-core", "--auto-approve", "--policy", warn]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(text(&out.stdout).contains("warn main.warn: "), "{}", describe(&out));
    assert_eq!(w.moto.live_instances("eu-west-1").unwrap().len(), 2);
}

#[test]
fn the_example_policies_pass_their_tests_and_a_broken_rule_fails() {
    let out = drplan().args(["policy", "test", "examples/policies"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stdout = text(&out.stdout);
    for policy in ["standby_capacity", "backup_other_cloud", "cold_failover_restore", "active_deletions"] {
        assert!(stdout.contains(&format!("PASS examples/policies/{policy}_test.rego: data.main.test_")), "{stdout}");
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");

    // The standby rule broken (it never fires on instances): its denial tests fail.
    let dir = tempfile::tempdir().unwrap();
    let broken = example("standby_capacity.rego").replace("c.instances * 2 < a.instances", "c.instances < 0");
    policies(
        dir.path(),
        "p",
        &[("standby_capacity.rego", &broken), ("standby_capacity_test.rego", &example("standby_capacity_test.rego"))],
    );
    let out = drplan().args(["policy", "test"]).arg(dir.path().join("p")).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        text(&out.stdout).contains("FAIL ") && text(&out.stdout).contains("test_too_few_instances_is_denied"),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_rego_syntax_error_is_located_and_an_empty_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = policies(
        dir.path(),
        "bad",
        &[(
            "bad.rego",
            "package main\n\nimport rego.v1\n\ndeny contains msg if {\n\tmsg := sprintf(\"x %s\", [input.project]\n}\n",
        )],
    );
    let out = drplan().args(["plan", "examples/bot-core", "--refresh=false", "--policy"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("drplan::policy::syntax"), "{stderr}");
    assert!(stderr.contains(&format!("{}:6:9]", bad.join("bad.rego").display())), "file, line and column:\n{stderr}");
    assert!(stderr.contains("help: "), "{stderr}");
    // Nothing printed as a plan.
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let out = drplan().args(["policy", "test"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("bad.rego:6:9]"), "{}", describe(&out));

    // A rule that fails on the plan: located too.
    let failing = "package main\n\nimport rego.v1\n\ndeny contains msg if {\n\tn := to_number(input.project)\n\tmsg := sprintf(\"%v\", [n])\n}\n";
    let failing = policies(dir.path(), "failing", &[("failing.rego", failing)]);
    let out =
        drplan().args(["plan", "examples/bot-core", "--refresh=false", "--policy"]).arg(&failing).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("drplan::policy::evaluation"), "{stderr}");
    assert!(stderr.contains("failing.rego:6:"), "{stderr}");

    let empty = policies(dir.path(), "empty", &[("README.md", "no rules here")]);
    for args in [vec!["plan", "examples/bot-core", "--refresh=false", "--policy"], vec!["policy", "test"]] {
        let out = drplan().args(&args).arg(&empty).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", describe(&out));
        assert!(text(&out.stderr).contains("drplan::policy::none"), "{}", describe(&out));
    }
}
