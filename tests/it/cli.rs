//! The command line itself: version, help on every command, usage errors and exit codes.

use crate::support;

use support::run;

#[test]
fn version_names_the_program() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("drplan {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn every_command_has_help() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // Wrapped descriptions continue on deeper-indented lines.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    for c in ["validate", "fmt", "plan", "show", "graph"] {
        assert!(commands.contains(&c), "{c} missing from:\n{help}");
    }
    for c in commands {
        let out = run(&[c, "--help"]);
        assert!(out.status.success(), "{c} --help failed");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(&format!("Usage: drplan {c} ")), "{c} --help:\n{text}");
        assert!(text.lines().count() > 5, "{c} --help explains its options:\n{text}");
    }
}

#[test]
fn usage_errors_exit_1_not_2() {
    // 2 is reserved for "changes present" and "drift found".
    for args in [&["no-such-command"][..], &["validate", "--no-such-flag"], &[]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!out.stderr.is_empty());
    }
}

/// Runs drplan under a pseudo-terminal (util-linux `script`), as a person at a shell would.
fn run_in_terminal(args: &str, no_color: bool) -> String {
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &format!("{} {args}", env!("CARGO_BIN_EXE_drplan")), "/dev/null"])
        .current_dir(support::root())
        .env("COLUMNS", "100")
        .env_remove("NO_COLOR");
    if no_color {
        c.env("NO_COLOR", "1");
    }
    let out = c.output().expect("script(1) from util-linux runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn colour_on_a_terminal_and_never_under_no_color() {
    let case = "validate tests/data/invalid/03-three-unrelated-errors.hcl";
    let coloured = run_in_terminal(case, false);
    assert!(coloured.contains("\u{1b}["), "expected ANSI colour on a terminal:\n{coloured}");
    assert!(coloured.contains("priorty"));
    let plain = run_in_terminal(case, true);
    assert!(!plain.contains("\u{1b}["), "NO_COLOR must disable colour:\n{plain}");
    assert!(
        plain.contains("drplan::config::unknown_attribute") && plain.contains("did you mean `priority`?"),
        "{plain}"
    );
}

#[test]
fn a_rollout_timeout_must_be_longer_than_zero() {
    for value in ["0s", "0", "-5s", "soon"] {
        let out = run(&["apply", &format!("--rollout-timeout={value}")]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{value}: {err}");
        assert!(err.contains("--rollout-timeout"), "{value}: {err}");
    }
    let err = String::from_utf8_lossy(&run(&["apply", "--rollout-timeout", "0s"]).stderr).into_owned();
    assert!(err.contains("must be longer than zero"), "{err}");
}
