//! The terminal rendering of a plan.

use std::fmt::Write as _;

use tabled::settings::Style;
use tabled::{Table, builder::Builder};

use super::{attr_lines, duration, per_region, summary_line, verb};
use crate::plan::doc::PlanDoc;

struct Paint {
    color: bool,
}

impl Paint {
    fn code(&self, code: &str, s: &str) -> String {
        if self.color { format!("\u{1b}[{code}m{s}\u{1b}[0m") } else { s.to_string() }
    }

    fn symbol(&self, symbol: &str) -> String {
        let code = match symbol {
            "+" => "32",
            "~" => "33",
            "±" => "35",
            "-" => "31",
            _ => "36",
        };
        self.code(code, symbol)
    }

    fn bold(&self, s: &str) -> String {
        self.code("1", s)
    }

    fn check(&self, ok: bool) -> String {
        if ok { self.code("32", "✓") } else { self.code("31", "✗") }
    }
}

pub fn human(doc: &PlanDoc, color: bool) -> String {
    let p = Paint { color };
    let mut out = String::new();
    let source = if doc.refreshed { "refreshed from the clouds" } else { "from state only, without refresh" };
    out.push_str(&format!("{} ({source})\n", p.bold(&format!("drplan plan for {}", doc.project))));

    // First: a compromised region, isolated and kept as evidence.
    for i in &doc.incidents {
        out.push_str(&format!(
            "\n{}\n  {} since {} (declared by {} at {}): its evidence is taken and kept, it is isolated once it no longer serves, backups written since are suspect, and retention is held\n",
            p.bold(&format!("Incident {} open on {}:", i.id, i.region)),
            i.reason,
            i.since,
            i.declared_by,
            i.declared_at
        ));
    }
    // First: a region declared lost may still serve or run backups beside the new active.
    for f in &doc.fences {
        out.push_str(&format!(
            "\n{}\n",
            p.bold(&format!("Fence pending for {} (declared lost {}):", f.region, f.since))
        ));
        if f.reachable && f.actions.is_empty() {
            out.push_str("  it answers again and nothing is left to do there: this apply records the fence done\n");
        } else if f.reachable {
            out.push_str(&format!(
                "  it answers again: this plan fences it ({} action(s) there; its scale-downs and suspensions run before the rest)\n",
                f.actions.len()
            ));
        } else {
            out.push_str(&format!(
                "  still unreachable; owed: {}. The first apply after it answers again fences it, with no flag needed\n",
                f.owed.join(", ")
            ));
        }
    }

    if !doc.unreachable.is_empty() {
        out.push_str(&format!("\n{}\n", p.bold("Unreachable regions (their actions are skipped):")));
        for (r, why) in &doc.unreachable {
            out.push_str(&format!("  {r}: {why}\n"));
        }
    }
    if !doc.unreachable_objects.is_empty() {
        out.push_str(&format!("\n{}\n", p.bold("Unreachable objects (read from state; their actions are skipped):")));
        for (a, why) in &doc.unreachable_objects {
            out.push_str(&format!("  {a}: {why}\n"));
        }
    }

    if !doc.resource_drift.is_empty() {
        out.push_str(&format!("\n{}\n", p.bold("Objects have changed outside of drplan:")));
        for d in &doc.resource_drift {
            let (what, symbol) = match d.change.actions.first().map(String::as_str) {
                Some("delete") => ("deleted outside drplan", "-"),
                Some("create") => ("untracked, carries drplan's tags", "+"),
                _ => ("changed outside drplan", "~"),
            };
            out.push_str(&format!("  {} {} ({what})\n", p.symbol(symbol), d.address));
            if what.starts_with("changed") {
                for line in attr_lines(d) {
                    out.push_str(&format!("      {line}\n"));
                }
            }
        }
    }

    if !doc.role_transitions.is_empty() {
        out.push_str(&format!("\n{}\n", p.bold("Role transitions:")));
        for t in &doc.role_transitions {
            out.push_str(&format!("  {}: {} → {} ({})\n", t.region, t.from, t.to, t.action));
        }
    }

    if !doc.databases.is_empty() {
        out.push_str(&format!("\n{}\n", p.bold("Databases (the writer moves before traffic does):")));
        for d in &doc.databases {
            out.push_str(&format!("  {}\n", d.summary()));
        }
    }

    if !doc.restores.is_empty() {
        out.push_str(&format!("\n{}\n", p.bold("Restores (before the region's workloads and traffic):")));
        for r in &doc.restores {
            out.push_str(&format!("  {}\n", r.summary));
            if let Some(at) = &r.requested {
                out.push_str(&format!("      newest usable point at or before {at}\n"));
            }
            for o in &r.passed_over {
                out.push_str(&format!("      not from {}: {}\n", o.destination, o.reason));
            }
        }
    }

    if doc.has_changes() {
        out.push_str(&format!("\n{}\n", p.bold("drplan will make these changes:")));
        for rc in &doc.resource_changes {
            let (v, symbol) = verb(rc);
            let after =
                |k: &str| rc.change.after.as_ref().and_then(|a| a.get(k)).and_then(|v| v.as_str()).unwrap_or("");
            let note = match (rc.kind.as_str(), v) {
                ("database", "replace") => format!(
                    " (fence: rename {} and keep it, never delete it; then a new replica under its name)",
                    rc.id.as_deref().unwrap_or("the old one")
                ),
                ("database", "update") if after("role") == "writer" => " (promote to writer)".to_string(),
                ("database", "create") if after("role") == "writer" => {
                    " (the writer must exist: drplan never creates one)".to_string()
                }
                ("database", "create") => " (create a read replica of the writer)".to_string(),
                ("stop_writes", _) => format!(" (scale to 0: {})", after("workloads")),
                ("catch_up", _) => " (wait until the replica has every write)".to_string(),
                (_, "adopt") => format!(" (adopt existing {})", rc.id.as_deref().unwrap_or("object")),
                (_, "replace") => " (create the new one, then delete the old)".to_string(),
                (_, "delete") => rc.id.as_ref().map(|id| format!(" ({id})")).unwrap_or_default(),
                _ => String::new(),
            };
            let _ = writeln!(out, "  {} {}{note}", p.symbol(symbol), rc.address);
            for line in attr_lines(rc) {
                let _ = writeln!(out, "      {line}");
            }
        }
        for f in &doc.forget {
            out.push_str(&format!("  {} {} (gone; removed from state)\n", p.symbol("-"), f));
        }
        for f in doc.fences.iter().filter(|f| f.reachable) {
            out.push_str(&format!(
                "  {} fence of {} (recorded done once its actions succeed)\n",
                p.symbol("~"),
                f.region
            ));
        }

        out.push_str(&format!("\n{}\n", p.bold("Order of execution:")));
        // A hash map: a large failover has millions of dependencies to number.
        let index: std::collections::HashMap<&str, usize> =
            doc.actions.iter().enumerate().map(|(i, a)| (a.id.as_str(), i + 1)).collect();
        let width = doc.actions.len().to_string().len();
        for (i, a) in doc.actions.iter().enumerate() {
            let what = match (&a.kind[..], &a.health_check) {
                ("health_gate", Some(check)) => format!("{} (wait until {check} is healthy)", a.id),
                ("barrier", _) => format!("{} (the serving region has scaled up)", a.id),
                _ => a.id.clone(),
            };
            let mut after: Vec<usize> = a.depends_on.iter().filter_map(|d| index.get(d.as_str()).copied()).collect();
            after.sort_unstable();
            let _ = write!(out, "  {:>width$}. {what}", i + 1);
            for (k, n) in after.iter().enumerate() {
                let _ = write!(out, "{}{n}", if k == 0 { "  after " } else { ", " });
            }
            out.push('\n');
            if let Some(why) = &a.skipped {
                out.push_str(&format!("  {:>width$}  skipped: {why}\n", ""));
            }
        }

        let mut table = Builder::default();
        table.push_record(["region", "role", "create", "update", "replace", "delete", "adopt"]);
        for (region, c) in per_region(doc) {
            let role = doc.roles.get(&region).cloned().unwrap_or_else(|| "-".to_string());
            let cells: Vec<String> = [region, role].into_iter().chain(c.iter().map(|n| n.to_string())).collect();
            table.push_record(cells);
        }
        let mut table: Table = table.build();
        table.with(Style::sharp());
        out.push_str(&format!("\n{table}\n"));
    } else {
        out.push_str("\nNo changes. The live topology matches the configuration.\n");
    }

    out.push_str(&posture(doc, &p));

    if !doc.safety.is_empty() {
        out.push_str(&format!("\n{}\n", p.bold("Safety:")));
        for s in &doc.safety {
            // An applyable plan with a split-brain error had it waived: its region is declared lost.
            let waived = doc.applyable && s.severity == "error" && s.code == crate::Code::SplitBrain.as_str();
            let severity = if waived { "waived" } else { s.severity.as_str() };
            out.push_str(&format!("  {severity} {}: {}\n", s.code, s.message));
            if waived {
                out.push_str("    (the region that may still run it is declared lost with --allow-unreachable)\n");
            }
            if let Some(h) = &s.help {
                out.push_str(&format!("    help: {h}\n"));
            }
        }
    }

    if !doc.policy.is_empty() {
        out.push_str(&format!("\n{}\n", p.bold("Policy:")));
        for r in &doc.policy {
            out.push_str(&format!("  {} {}.{}: {}\n", r.level.as_str(), r.namespace, r.rule, r.msg));
        }
    }

    out.push('\n');
    if doc.has_changes() {
        out.push_str(&summary_line(doc));
        out.push('\n');
    }
    let skipped = doc.actions.iter().filter(|a| a.skipped.is_some()).count();
    if !doc.applyable {
        let why = if doc.safety.iter().any(|s| s.severity == "error") {
            "it breaks a safety rule above".to_string()
        } else if crate::policy::denied(doc) {
            "a policy denies it (see Policy above)".to_string()
        } else {
            format!(
                "{skipped} action(s) are skipped because {} unreachable; once that is known to be lost, apply with `drplan apply --allow-unreachable` (for a failover: `drplan failover --to REGION --write --allow-unreachable`, then that apply)",
                unreachable_subject(doc)
            )
        };
        out.push_str(&format!("This plan cannot be applied: {why}.\n"));
    }
    out
}

/// What is unreachable, in a few words: "region us-east-1 is", "2 regions are".
fn unreachable_subject(doc: &PlanDoc) -> String {
    let mut names: Vec<String> = doc.unreachable.keys().map(|r| format!("region {r}")).collect();
    names.extend(doc.unreachable_objects.keys().cloned());
    match names.as_slice() {
        [one] => format!("{one} is"),
        [] => "something is".to_string(),
        more => format!("{} are", more.join(" and ")),
    }
}

fn posture(doc: &PlanDoc, p: &Paint) -> String {
    let post = &doc.posture;
    let mut out = format!("\n{}\n", p.bold("DR posture:"));
    for f in &doc.fences {
        let state = if f.reachable { "carried out by this plan" } else { "region still unreachable" };
        out.push_str(&format!(
            "  {} fence pending for {}: declared lost {}, {} action(s) owed ({state})\n",
            p.check(false),
            f.region,
            f.since,
            f.owed.len()
        ));
    }
    for r in &post.rpo {
        let rpo = r.rpo_seconds.map_or("no RPO set".to_string(), |s| format!("RPO {}", duration(s)));
        let ages: Vec<String> = r
            .newest_backup_age_seconds
            .iter()
            .map(|(d, a)| {
                let age = match a {
                    _ if r.unreachable.contains(d) => "unreachable".to_string(),
                    _ if r.not_listed.contains(d) => "not listed".to_string(),
                    Some(s) => match r.thaw.get(d) {
                        Some(thaw) => format!("{} old ({thaw})", duration(*s)),
                        None => format!("{} old", duration(*s)),
                    },
                    None => "not measured".to_string(),
                };
                format!("{d} {age}")
            })
            .collect();
        let (mark, newest) = match (r.no_backup_yet, r.unmeasured && r.ok) {
            (true, _) => {
                let unlisted = match r.not_listed.as_slice() {
                    [] => String::new(),
                    names => format!(" ({} not listed)", names.join(", ")),
                };
                (p.check(false), format!("no backup yet: no destination holds a usable recovery point{unlisted}"))
            }
            (false, true) => (p.code("33", "?"), format!("newest backups unknown: {}", ages.join(", "))),
            (false, false) => (p.check(r.ok), format!("newest backups: {}", ages.join(", "))),
        };
        out.push_str(&format!(
            "  {mark} RPO   {}: runs at least every {} ({rpo}); {newest}\n",
            r.backup,
            duration(r.schedule_gap_seconds),
        ));
    }
    if let Some(r) = &post.rto {
        let rto = r.rto_seconds.map_or("no RTO set".to_string(), |s| format!("RTO {}", duration(s)));
        let what = if r.hypothetical {
            format!("a failover to {} would take about", r.to_region)
        } else if doc.role_transitions.is_empty() {
            format!("{} starts serving after about", r.to_region)
        } else {
            format!("this failover to {} takes about", r.to_region)
        };
        let measured = r.measured_by.as_ref().map(|m| format!(", measured by drill {m}")).unwrap_or_default();
        out.push_str(&format!(
            "  {} RTO   {what} {} ({rto}{measured}); critical path: {}\n",
            p.check(r.ok),
            duration(r.estimate_seconds),
            r.critical_path.join(" → ")
        ));
        if let Some(thaw) = &r.thaw {
            out.push_str(&format!("          the restore waits for a thaw: {thaw}\n"));
        }
    }
    for d in &post.drills {
        let last = match &d.last {
            Some(t) => format!("last passed drill {t}"),
            None => "never drilled".to_string(),
        };
        out.push_str(&format!(
            "  {} drill {}: {last} (every {})\n",
            p.check(d.ok),
            d.region,
            duration(d.every_seconds)
        ));
    }
    for c in &post.copies {
        out.push_str(&format!(
            "  {} 3-2-1 {}: {} destination(s) in {}\n",
            p.check(c.ok),
            c.backup,
            c.destinations,
            c.sites.join(", ")
        ));
    }
    for s in &post.standby {
        let mut parts = vec![
            format!("instances {}/{}", s.instances[0], s.instances[1]),
            format!("replicas {}/{}", s.replicas[0], s.replicas[1]),
        ];
        if let Some(ok) = s.dns_secondary {
            parts.push(format!("DNS SECONDARY {}", if ok { "in place" } else { "missing" }));
        }
        if let Some(ok) = s.health_check {
            parts.push(format!("health check {}", if ok { "in place" } else { "missing" }));
        }
        parts.extend(s.replication.iter().map(|r| r.text.clone()));
        let state = match (s.ready, s.ready_after_plan) {
            (true, _) => "ready",
            (false, true) => "not ready now; ready once this plan is applied",
            (false, false) => "not ready",
        };
        out.push_str(&format!("  {} standby {}: {} — {state}\n", p.check(s.ready), s.region, parts.join(", ")));
    }
    out
}
