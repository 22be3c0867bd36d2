//! `drplan doc` on `examples/bot-core` after a planned switchover, a drill and a restore on
//! the emulators: every section is there, every command in it parses, its checklist is
//! `status`'s, and the switchover is recorded with its downtime, which the uptime budget
//! lost. The HTML rendering is written too (a browser is never needed by the tests).

use crate::support;

use drplan_harness::JobOutcome;
use support::bot_core::{self, Damage, describe, json, write_point};
use support::text;

/// The words of a command line as the document quotes it: spaces split, single quotes group.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut any) = (false, false);
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut word));
                }
                any = false;
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(word);
    }
    out
}

/// The command lines of the Markdown document's `sh` blocks.
fn commands(markdown: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in markdown.lines() {
        match line {
            "```sh" => inside = true,
            "```" => inside = false,
            l if inside => out.push(words(l)),
            _ => {}
        }
    }
    out
}

#[test]
fn the_document_after_a_switchover_a_drill_and_a_restore() {
    let w = bot_core::world(|c| c.replacen("  uptime = 99.9", "  uptime = 99.9\n\n  drill_every = \"30d\"", 1));
    w.converge();
    write_point(&w, 10 * 60, Damage::None);

    // The planned switchover, as the demo makes it.
    let out = w.drplan(&["failover", "--to", "eu-west-1", "bot-core", "--write"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = w.drplan(&["apply", "bot-core", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let state = w.state();
    assert_eq!(state["format_minor"], 4, "{state:#}");
    let failover = &state["history"]["failovers"][0];
    assert_eq!((failover["from"].as_str(), failover["to"].as_str()), (Some("us-east-1"), Some("eu-west-1")));
    assert_eq!(failover["counted_from"], "writers stopped", "{failover:#}");
    let downtime = failover["downtime_seconds"].as_u64().expect("a downtime");
    assert!(downtime >= 60, "the TTL at least: {failover:#}");
    let status = json(&w.drplan(&["status", "bot-core", "--json"]));
    let budget = &status["uptime_budget"];
    assert_eq!(budget["allowed_seconds"], 31_536, "{budget:#}");
    assert_eq!(budget["remaining_seconds"].as_i64(), Some(31_536 - downtime as i64), "{budget:#}");

    // A drill of the old active, now the standby, and a restore into the new active.
    let out = w.drplan(&["drill", "--to", "us-east-1", "bot-core"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    w.euw1.play_jobs(JobOutcome::Complete).unwrap();
    let out = w.drplan(&["restore", "bot-core", "--point", "1m", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(w.state()["history"]["failovers"].as_array().unwrap().len(), 1, "drills and restores cost nothing");

    let out = w.drplan(&["doc", "bot-core"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let md = text(&out.stdout);
    for (i, title) in drplan_core::document::SECTIONS.iter().enumerate() {
        assert!(md.contains(&format!("\n## {}. {title}\n", i + 1)), "no section {title}:\n{md}");
    }
    for needle in [
        "| us-east-1 | eu-west-1 |",
        "writers stopped",
        "| passed |",
        "### Failback: eu-west-1 → us-east-1",
        "drplan restore --backup database --point",
        "spent)",
    ] {
        assert!(md.contains(needle), "missing {needle:?} in\n{md}");
    }

    // Every command pasted as it is written parses: run with `--help` at its end, the
    // command line checks every word before it.
    let commands = commands(&md);
    assert!(commands.len() >= 15, "{commands:?}");
    for c in &commands {
        assert_eq!(c[0], "drplan");
        let mut args: Vec<&str> = c[1..].iter().map(String::as_str).collect();
        args.push("--help");
        let out = w.drplan(&args);
        assert_eq!(out.status.code(), Some(0), "`{}` does not parse: {}", c.join(" "), describe(&out));
    }

    // The checklist is status's, item for item.
    let status = json(&w.drplan(&["status", "bot-core", "--json"]));
    for c in status["checklist"].as_array().unwrap() {
        let mark = match c["mark"].as_str().unwrap() {
            "yes" => "✓",
            "no" => "✗",
            _ => "unknown",
        };
        let row = format!("| {} | {mark} |", c["item"].as_str().unwrap());
        assert!(md.contains(&row), "{row} not in the document's checklist:\n{md}");
    }

    // A reviewer of a topology change sees the same checklist under the plan.
    let plan = w.drplan(&["plan", "bot-core", "--markdown"]);
    assert_eq!(plan.status.code(), Some(0), "{}", describe(&plan));
    let plan = text(&plan.stdout);
    assert!(plan.contains("#### Readiness checklist") && plan.contains("| standbys ready | ✓ |"), "{plan}");

    // The HTML page, for a browser.
    let page = w.dir.path().join("dr-plan.html");
    let out = w.drplan(&["doc", "bot-core", "--format", "html", "--out", page.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<h2 id=\"s7\">7. Checklist</h2>"), "{html}");
    if let Some(keep) = std::env::var_os("DRPLAN_KEEP_DOC") {
        std::fs::copy(&page, keep).unwrap();
    }
}
