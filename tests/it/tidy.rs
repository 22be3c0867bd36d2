//! The code-shape checks: invariants of `docs/ARCHITECTURE.md` read off the source tree, so
//! the document cannot quietly stop being true. Each failure names the file and line.
//!
//! - `drplan-core` depends on no I/O crate and its code touches no filesystem, environment,
//!   clock, network or process;
//! - nothing outside the output modules writes to stdout or stderr (the exceptions are listed
//!   in [`MAY_WRITE`], each with its reason);
//! - every Rust module starts with a `//!` line saying what it owns;
//! - no code sets the process environment (`set_var` races with every other thread, and
//!   test binaries are multi-threaded): endpoints and credentials are passed explicitly;
//! - no test reads the design folder beside the repository, which a clone of the
//!   repository alone does not have;
//! - only the retry executor (`retry/`) retries: no SDK is configured to retry on its own,
//!   and every other pause in shipped code is a poll or pacing listed in [`MAY_SLEEP`].

use crate::support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use support::root;

/// Crates that perform I/O (or run it): none may be a dependency of `drplan-core`.
const IO_CRATES: &[&str] =
    &["tokio", "aws-", "aws_", "google-", "kube", "k8s-openapi", "reqwest", "hyper", "tracing", "tempfile", "fs2"];

/// What core's code may not name: the filesystem, the environment, the clock, the network,
/// processes and threads. (`env!` is the compiler's, not the process's environment.)
const IMPURE: &[&str] = &[
    "std::fs",
    "std::env",
    "SystemTime::now",
    "Instant::now",
    "std::net",
    "std::process",
    "std::thread",
    "std::io::stdin",
    "tokio",
];

/// Writing to the terminal: only through the output modules.
const WRITES: &[&str] = &[
    "println!",
    "print!(",
    "eprintln!",
    "eprint!(",
    "dbg!(",
    "io::stdout()",
    "io::stderr()",
    "io::stdout)",
    "io::stderr)",
];

/// The files that may write to stdout or stderr, and why.
const MAY_WRITE: &[(&str, &str)] = &[
    ("src/bin/drplan/output.rs", "the output module: results on stdout, notes and diagnostics on stderr"),
    (
        "src/bin/drplan/progress.rs",
        "apply's progress: a line or JSON event per action and the bar, kept apart from results",
    ),
    ("src/bin/drplan/logging.rs", "the tracing subscriber writes log events to stderr"),
    (
        "state/src/conformance.rs",
        "the conformance suite's second process announces the lock it holds on stdout to the test that spawned it",
    ),
];

/// The files that may pause, and why: none of them retries a failed request.
const MAY_SLEEP: &[(&str, &str)] = &[
    ("retry/src/lib.rs", "the retry executor: the one place a failed request waits to be sent again"),
    ("providers/aws/src/pace.rs", "Route 53's pacing: a request waits for its turn"),
    ("providers/aws/src/route53.rs", "polls: a record change until it is in sync, the checkers for the health gate"),
    ("providers/aws/src/rds.rs", "polls an RDS instance until it is available (created, promoted, renamed)"),
    ("providers/aws/src/databases.rs", "polls a replica's lag until it has caught up"),
    ("providers/aws/src/aurora.rs", "polls an Aurora cluster until it is available (promoted, renamed)"),
    ("providers/aws/src/thaw.rs", "polls an archived point's objects until their thaw finished"),
    ("providers/kubernetes/src/cnpg.rs", "polls a CloudNativePG Cluster's status for its demotion or promotion token"),
    ("providers/gcp/src/instances.rs", "polls a zone operation until it is done"),
    ("providers/kubernetes/src/lib.rs", "polls a Deployment's rollout"),
    ("src/watch.rs", "waits the watcher's interval (or its error backoff) between rounds"),
    ("providers/kubernetes/src/job.rs", "polls a Job step until it finishes, and its name until a delete frees it"),
    ("providers/fake/src/lib.rs", "plays a network round trip's latency"),
    ("state/src/lock.rs", "waits for a file lock another run holds"),
    ("state/src/s3.rs", "waits for an S3 lock object another run holds"),
    ("state/src/conformance.rs", "the suite's second process holds its lock for a while"),
];

/// Pausing, and the SDK settings that would retry beneath the executor.
const SLEEPS: &[&str] = &["sleep(", "sleep_until("];
const SDK_RETRIES: &[&str] = &["RetryConfig::standard", "RetryConfig::adaptive", "retry_classifier("];

/// The shipped code: the binary and every library crate (tests and benches are not
/// scanned for writes; they print what they like).
fn shipped_sources() -> Vec<PathBuf> {
    let mut dirs =
        vec![root().join("src"), root().join("core/src"), root().join("state/src"), root().join("retry/src")];
    dirs.extend(std::fs::read_dir(root().join("providers")).unwrap().map(|e| e.unwrap().path().join("src")));
    dirs.push(root().join("tests/harness/src"));
    dirs.iter().flat_map(|d| rust_files(d)).collect()
}

/// Every `.rs` file under `dir`, in a stable order, build output and hidden folders left out.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    let mut entries: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
    out
}

fn relative(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

/// The lines of non-test code, numbered from 1: up to the first `#[cfg(test)]` (test
/// modules sit at the end of a file), comments left out.
fn code_lines(p: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(p).unwrap();
    text.lines()
        .enumerate()
        .take_while(|(_, l)| l.trim() != "#[cfg(test)]")
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect()
}

/// The lines of `needles` found in `files`, as `file:line: text (needle)`.
fn occurrences(files: &[PathBuf], needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for f in files {
        for (n, line) in code_lines(f) {
            if let Some(needle) = needles.iter().find(|w| line.contains(*w)) {
                found.push(format!("{}:{n}: {} ({needle})", relative(f), line.trim()));
            }
        }
    }
    found
}

#[test]
fn core_depends_on_no_io_crate() {
    let manifest = std::fs::read_to_string(root().join("core/Cargo.toml")).unwrap();
    let mut section = String::new();
    let mut bad = Vec::new();
    for (i, line) in manifest.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.to_string();
            continue;
        }
        // Dev-dependencies serve core's tests, which may do what they like.
        if !(section.starts_with("[dependencies") || section.starts_with("[target")) || section.contains("dev-") {
            continue;
        }
        let name = line.split(['=', '.', ' ']).next().unwrap_or_default();
        if let Some(io) = IO_CRATES.iter().find(|c| name.starts_with(*c)) {
            bad.push(format!("core/Cargo.toml:{}: {line} ({io} performs I/O)", i + 1));
        }
        if line.contains("path =") {
            bad.push(format!("core/Cargo.toml:{}: {line} (core depends on no workspace crate)", i + 1));
        }
    }
    assert!(bad.is_empty(), "drplan-core must stay pure (docs/ARCHITECTURE.md, Invariants):\n{}", bad.join("\n"));
}

#[test]
fn core_code_touches_no_file_environment_or_clock() {
    let found = occurrences(&rust_files(&root().join("core/src")), IMPURE);
    assert!(
        found.is_empty(),
        "drplan-core performs no I/O: pass the data in instead (docs/ARCHITECTURE.md, Invariants):\n{}",
        found.join("\n")
    );
}

#[test]
fn only_the_output_modules_write_to_the_terminal() {
    let files: Vec<PathBuf> = shipped_sources()
        .into_iter()
        .filter(|f| !MAY_WRITE.iter().any(|(allowed, _)| relative(f) == *allowed))
        .collect();
    assert!(files.len() > 40, "the scan found only {} files: is the tree where it is expected?", files.len());
    let found = occurrences(&files, WRITES);
    assert!(
        found.is_empty(),
        "output goes through src/bin/drplan/output.rs (or its progress.rs for apply's progress); \
         a file that must write itself goes in MAY_WRITE in tests/it/tidy.rs with its reason:\n{}",
        found.join("\n")
    );
    for (allowed, _) in MAY_WRITE {
        assert!(root().join(allowed).exists(), "MAY_WRITE names {allowed}, which does not exist");
    }
}

#[test]
fn the_library_knows_nothing_of_the_command_line() {
    // The engine is `src/` outside `src/bin/`: a library that parses no arguments, renders no
    // diagnostics and never exits the process; the binary in `src/bin/drplan/` does those.
    let files: Vec<PathBuf> =
        rust_files(&root().join("src")).into_iter().filter(|f| !relative(f).starts_with("src/bin/")).collect();
    assert!(files.len() > 10, "the scan found only {} library files", files.len());
    let found = occurrences(&files, &["clap::", "use clap", "miette::", "use miette", "process::exit("]);
    assert!(
        found.is_empty(),
        "the library (src/ outside src/bin/) leaves the command line to src/bin/drplan:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_module_starts_with_a_doc_line() {
    let mut files = every_rust_file();
    files.push(root().join("tests/it/tidy.rs"));
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//!"))
        .map(|f| format!("{}:1: does not start with a `//!` line saying what it owns", relative(f)))
        .collect();
    assert!(missing.is_empty(), "every module starts with a `//!` line:\n{}", missing.join("\n"));
}

/// Every Rust file of the workspace, tests and benches included, but not this one (which
/// names what it looks for).
fn every_rust_file() -> Vec<PathBuf> {
    let mut files = shipped_sources();
    for dir in ["tests", "benches", "core/tests", "core/benches", "state/tests"] {
        files.extend(rust_files(&root().join(dir)));
    }
    for p in std::fs::read_dir(root().join("providers")).unwrap() {
        files.extend(rust_files(&p.unwrap().path().join("tests")));
    }
    files.sort();
    files.dedup();
    files.retain(|f| !f.ends_with("tests/it/tidy.rs"));
    files
}

#[test]
fn nothing_sets_the_process_environment() {
    let found = occurrences(&every_rust_file(), &["set_var(", "remove_var("]);
    assert!(
        found.is_empty(),
        "pass endpoints and credentials explicitly (or to a child process with Command::env):\n{}",
        found.join("\n")
    );
}

#[test]
fn no_test_reads_outside_the_repository() {
    // Spelt in pieces, so this file does not itself name the path it forbids.
    let outside = concat!("..", "/", "shared");
    let found = occurrences(&every_rust_file(), &[outside]);
    assert!(found.is_empty(), "a clone of the repository alone has no {outside}:\n{}", found.join("\n"));
}

#[test]
fn only_the_retry_executor_retries() {
    let files: Vec<PathBuf> = shipped_sources().into_iter().filter(|f| !relative(f).starts_with("tests/")).collect();
    let sdk = occurrences(&files, SDK_RETRIES);
    assert!(
        sdk.is_empty(),
        "SDK retries stay off (`RetryConfig::disabled()`): requests are retried by drplan-retry under core's \
         one RetryPolicy (docs/ARCHITECTURE.md, Retries):\n{}",
        sdk.join("\n")
    );
    let pausing: Vec<PathBuf> =
        files.into_iter().filter(|f| !MAY_SLEEP.iter().any(|(allowed, _)| relative(f) == *allowed)).collect();
    let found = occurrences(&pausing, SLEEPS);
    assert!(
        found.is_empty(),
        "retry through drplan_retry::run, not a loop of your own; a file that polls goes in MAY_SLEEP in \
         tests/it/tidy.rs with its reason:\n{}",
        found.join("\n")
    );
    for (allowed, _) in MAY_SLEEP {
        assert!(root().join(allowed).exists(), "MAY_SLEEP names {allowed}, which does not exist");
    }
}

/// The names in backticks of the sentence of `doc` that starts with `lead`, up to its period.
fn listed(doc: &str, lead: &str) -> BTreeSet<String> {
    let at = doc.find(lead).unwrap_or_else(|| panic!("docs/ARCHITECTURE.md lists no `{lead}`"));
    let sentence = &doc[at + lead.len()..];
    let sentence = &sentence[..sentence.find(".\n").or_else(|| sentence.find(". ")).unwrap_or(sentence.len())];
    sentence.split('`').skip(1).step_by(2).map(String::from).collect()
}

/// The stems of the `.rs` files directly in `dir`, but `skip`.
fn stems(dir: &Path, skip: &[&str]) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|s| !skip.contains(&s.as_str()))
        .collect()
}

#[test]
fn the_architecture_page_lists_what_the_code_has() {
    let doc = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap();
    assert_eq!(listed(&doc, "Library modules: "), stems(&root().join("src"), &["lib"]), "library modules");
    assert_eq!(
        listed(&doc, "Subcommands: "),
        stems(&root().join("src/bin/drplan/commands"), &["mod", "run"]),
        "subcommands"
    );
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let members: Vec<&str> = manifest
        .split("members = [")
        .nth(1)
        .and_then(|m| m.split(']').next())
        .map(|m| m.split('"').skip(1).step_by(2).collect())
        .unwrap_or_default();
    let mut crates: BTreeSet<String> = members
        .iter()
        .map(|m| {
            let text = std::fs::read_to_string(root().join(m).join("Cargo.toml")).unwrap();
            text.lines().find_map(|l| l.strip_prefix("name = \"")).unwrap().trim_end_matches('"').to_string()
        })
        .collect();
    crates.insert("drplan".into());
    assert_eq!(listed(&doc, "Workspace crates: "), crates, "workspace crates");
}
