//! `drplan fmt` on real files: idempotent, comment-preserving, `--check` exit codes.

use crate::support;

use std::path::Path;

use support::{root, run};

/// Every comment of an HCL text, trimmed, in order.
fn comments(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let hash = l.find('#').or_else(|| l.find("//"))?;
            // A `#` inside a string is not a comment: count quotes before it.
            (l[..hash].matches('"').count() % 2 == 0).then(|| l[hash..].trim().to_string())
        })
        .collect()
}

fn copy_examples(to: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for example in std::fs::read_dir(root().join("examples")).unwrap() {
        let example = example.unwrap().path();
        if !example.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&example).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "hcl") {
                let dest = to.join(format!(
                    "{}-{}",
                    example.file_name().unwrap().to_string_lossy(),
                    f.file_name().unwrap().to_string_lossy()
                ));
                std::fs::copy(&f, &dest).unwrap();
                files.push(dest);
            }
        }
    }
    let reference = to.join("reference.hcl");
    std::fs::copy(root().join("examples/bot-core/main.hcl"), &reference).unwrap();
    files.push(reference);
    files
}

#[test]
fn fmt_is_idempotent_and_keeps_every_comment() {
    let dir = tempfile::tempdir().unwrap();
    // Messy copies: indentation and alignment stripped, blank lines doubled.
    let files = copy_examples(dir.path());
    let originals: Vec<String> = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
    for (f, text) in files.iter().zip(&originals) {
        let messy: String = text
            .lines()
            .map(|l| {
                let l = l.trim_start();
                // Squeeze the code's alignment, never the comment's text.
                let (code, comment) = l.split_at(l.find(" #").unwrap_or(l.len()));
                let code = if code.starts_with('#') {
                    code.to_string()
                } else {
                    code.split_whitespace().collect::<Vec<_>>().join(" ")
                };
                format!("{code}{comment}\n\n")
            })
            .collect();
        std::fs::write(f, messy).unwrap();
    }
    let out = run(&["fmt", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(listed.lines().count(), files.len(), "every messy file is rewritten and listed:\n{listed}");

    for (f, original) in files.iter().zip(&originals) {
        let formatted = std::fs::read_to_string(f).unwrap();
        assert_eq!(comments(&formatted), comments(original), "{} lost or changed comments", f.display());
        // Formatting the canonical form again changes nothing.
        let again = drplan_core::fmt::format(&formatted).unwrap();
        assert_eq!(again, formatted, "{} is not stable under fmt", f.display());
    }
    let out = run(&["fmt", "--check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(out.stdout.is_empty());
    // And the configuration still means the same: it validates.
    for f in &files {
        if f.file_name().unwrap().to_string_lossy().starts_with("bot-core") || f.ends_with("reference.hcl") {
            let out = run(&["validate", f.to_str().unwrap()]);
            assert!(out.status.success(), "{}: {}", f.display(), String::from_utf8_lossy(&out.stderr));
        }
    }
}

#[test]
fn the_examples_are_formatted() {
    let out = run(&["fmt", "--check", "examples/bot-core"]);
    let mut all = out.status.success();
    let mut listed = String::from_utf8(out.stdout).unwrap();
    for e in ["examples/aws-pair", "examples/kubernetes-heavy"] {
        let out = run(&["fmt", "--check", e]);
        all &= out.status.success();
        listed.push_str(&String::from_utf8(out.stdout).unwrap());
    }
    assert!(all, "run `drplan fmt` on these example files:\n{listed}");
}

#[test]
fn check_lists_unformatted_files_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("main.hcl");
    let messy = "drplan {\nproject=\"x\"\n}\n";
    std::fs::write(&path, messy).unwrap();
    let out = run(&["fmt", "--check", "--diff", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("main.hcl") && stdout.contains("+  project = \"x\""), "{stdout}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), messy, "--check must not write");
}

#[test]
fn fmt_refuses_files_that_do_not_parse() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("main.hcl");
    std::fs::write(&path, "drplan {\n  project = \"x\n}\n").unwrap();
    let out = run(&["fmt", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains("drplan::config::syntax"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "drplan {\n  project = \"x\n}\n");
}
