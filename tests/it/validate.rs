//! `drplan validate` at the boundary: every example is valid, every invalid configuration
//! in `tests/data` fails with exactly the codes it declares and a labelled snippet.

use crate::support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use support::{check_golden, root, run};

/// The `# expect: a, b` line of a case: codes without their `drplan::config::` prefix.
fn expected_codes(case: &Path) -> BTreeSet<String> {
    let file = if case.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(case).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        files.into_iter().next().expect("case directory has files")
    } else {
        case.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("# expect:"))
        .unwrap_or_else(|| panic!("{} has no `# expect:` line", file.display()));
    line.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect()
}

fn rendered_codes(stderr: &str) -> BTreeSet<String> {
    stderr.lines().filter_map(|l| l.trim().strip_prefix("drplan::config::")).map(|c| c.trim().to_string()).collect()
}

fn cases() -> Vec<PathBuf> {
    let mut cases = Vec::new();
    for dir in ["tests/data/invalid", "tests/data/invalid-dirs"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() || p.extension().is_some_and(|e| e == "hcl") {
                cases.push(p.strip_prefix(root()).unwrap().to_path_buf());
            }
        }
    }
    cases.sort();
    cases
}

#[test]
fn invalid_configurations_report_their_diagnostics() {
    let cases = cases();
    assert!(cases.len() >= 25, "the corpus shrank to {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let out = run(&["validate", case.to_str().unwrap()]);
        let stderr = String::from_utf8(out.stderr).unwrap();
        let expected = expected_codes(&root().join(case));
        let warnings = [
            "single_cloud_backups",
            "standby_without_capacity",
            "dns_without_health_check",
            "short_watch_interval",
            "needless_restore_tier",
            "hook_blocks_disaster",
            "secret_in_env",
        ];
        let only_warnings = expected.iter().all(|c| warnings.contains(&c.as_str()));
        let want_exit = if only_warnings { 0 } else { 1 };
        if out.status.code() != Some(want_exit) {
            failures.push(format!("{}: exit {:?}, expected {want_exit}\n{stderr}", case.display(), out.status.code()));
        }
        let found = rendered_codes(&stderr);
        if found != expected {
            failures.push(format!("{}: codes {found:?}, expected {expected:?}\n{stderr}", case.display()));
        }
        // Every diagnostic about the file shows where: a labelled source snippet.
        let reports = stderr.matches("drplan::config::").count();
        let snippets = stderr.matches("╭─[").count();
        if snippets < reports {
            failures
                .push(format!("{}: {reports} diagnostics but {snippets} source snippets\n{stderr}", case.display()));
        }
        let golden = root().join(case).with_extension("stderr");
        let golden = if case.is_dir() { root().join(case).join("expected.stderr") } else { golden };
        failures.extend(check_golden(&golden, &stderr));
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}

#[test]
fn the_corpus_covers_every_configuration_code() {
    let covered: BTreeSet<String> = cases().iter().flat_map(|c| expected_codes(&root().join(c))).collect();
    let missing: Vec<&str> = drplan_core::Code::ALL
        .iter()
        .filter_map(|c| c.as_str().strip_prefix("drplan::config::"))
        .filter(|c| !covered.contains(*c))
        .collect();
    assert!(missing.is_empty(), "no invalid configuration exercises: {missing:?}");
}

#[test]
fn three_unrelated_errors_are_all_reported() {
    let out = run(&["validate", "tests/data/invalid/03-three-unrelated-errors.hcl"]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.ends_with("3 errors\n"), "{stderr}");
    for needle in ["`priorty` is not an attribute", "`2 hours`", "no region is named `eu-west-3`"] {
        assert!(stderr.contains(needle), "missing {needle:?} in\n{stderr}");
    }
}

#[test]
fn the_reference_configuration_is_valid_unchanged() {
    let reference = root().join("examples/bot-core/main.hcl");
    let out = run(&["validate", reference.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "no warnings expected:\n{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("`bot-core` is valid"), "{stdout}");
    assert!(stdout.contains("asia-pacific-1   gcp  cold"), "{stdout}");
}

#[test]
fn every_example_is_valid_without_warnings() {
    let mut examples = Vec::new();
    for entry in std::fs::read_dir(root().join("examples")).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir()
            && std::fs::read_dir(&p).unwrap().any(|f| f.unwrap().path().extension().is_some_and(|e| e == "hcl"))
        {
            examples.push(p);
        }
    }
    assert!(examples.len() >= 3, "expected at least three examples, found {examples:?}");
    for example in examples {
        let out = run(&["validate", example.to_str().unwrap()]);
        assert!(out.status.success(), "{}:\n{}", example.display(), String::from_utf8_lossy(&out.stderr));
        assert!(out.stderr.is_empty(), "{}:\n{}", example.display(), String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn file_problems_are_diagnostics() {
    let out = run(&["validate", "tests/data/no-such-dir"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("drplan::io::read") && stderr.contains("No such file or directory"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let out = run(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains("drplan::io::no_configuration"));

    let binary = dir.path().join("main.hcl");
    std::fs::write(&binary, b"drplan {\n  project = \"\xff\xfe\"\n}\n").unwrap();
    let out = run(&["validate", binary.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("drplan::io::not_utf8") && stderr.contains("offset 22"), "{stderr}");
}

#[test]
fn env_function_reads_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("examples/aws-pair/main.hcl"))
        .unwrap()
        .replace("project = \"", "project = env(\"DRPLAN_TEST_PROJECT\")\n  # was: \"");
    std::fs::write(dir.path().join("main.hcl"), text).unwrap();
    for f in ["regions.hcl", "backup.hcl"] {
        std::fs::copy(root().join("examples/aws-pair").join(f), dir.path().join(f)).unwrap();
    }
    let path = dir.path().to_str().unwrap();
    let out = support::drplan().args(["validate", path]).env("DRPLAN_TEST_PROJECT", "from-env").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8(out.stdout).unwrap().contains("`from-env` is valid"));
    let out = support::drplan().args(["validate", path]).env_remove("DRPLAN_TEST_PROJECT").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains("`DRPLAN_TEST_PROJECT` is not set"));
}
