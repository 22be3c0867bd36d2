//! Shell completions and man pages: generated for every shell and every subcommand, and
//! loadable by the tools that read them.

use crate::support;

use support::{drplan, run, text};

/// The subcommands `drplan --help` lists, without `help`.
fn listed_commands() -> Vec<String> {
    let help = text(&run(&["--help"]).stdout);
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // Wrapped descriptions continue on deeper-indented lines.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn completions_for_each_shell_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = run(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.len() > 1000, "{shell}: a short script:\n{script}");
        for c in ["drill", "plan", "completions", "failover"] {
            assert!(script.contains(c), "{shell}: no mention of {c}");
        }
    }
    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn bash_completions_load_and_complete_a_subcommand() {
    let exe = env!("CARGO_BIN_EXE_drplan");
    // Sourcing defines the function; calling it as bash would completes `drplan dri`.
    let script = format!(
        "set -e; source <({exe} completions bash); COMP_WORDS=(drplan dri); COMP_CWORD=1; _drplan drplan dri drplan; printf '%s\\n' \"${{COMPREPLY[@]}}\""
    );
    let out = std::process::Command::new("bash").arg("-c").arg(&script).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).split_whitespace().collect::<Vec<_>>(), ["drift", "drill"]);
}

#[test]
fn a_man_page_for_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = drplan().args(["man", "--out"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let man = std::process::Command::new("man").arg("--version").output().is_ok_and(|o| o.status.success());
    let mut names = listed_commands();
    assert!(names.iter().any(|c| c == "drill") && names.iter().any(|c| c == "man"), "{names:?}");
    names.insert(0, String::new());
    for c in names {
        let page = if c.is_empty() { "drplan".to_string() } else { format!("drplan-{c}") };
        let path = dir.path().join(format!("{page}.1"));
        let roff = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let th = roff.lines().find(|l| !l.starts_with(".ie") && !l.starts_with(".el")).unwrap_or_default();
        assert!(th.starts_with(&format!(".TH {page} 1 ")), "{page}: the page starts with {th:?}");
        assert!(roff.contains(".SH NAME") && roff.contains(".SH SYNOPSIS"), "{page}");
        if man {
            let out = std::process::Command::new("man").arg("-l").arg(&path).env("MANPAGER", "cat").output().unwrap();
            assert!(out.status.success(), "man -l {page}: {}", text(&out.stderr));
            assert!(text(&out.stdout).contains("SYNOPSIS"), "{page}");
        }
    }
    // Nested subcommands get their own pages too.
    assert!(dir.path().join("drplan-state-unlock.1").is_file());
    // Without --out, the top-level page goes to stdout.
    assert!(text(&run(&["man"]).stdout).contains(".TH drplan 1 "));
}
