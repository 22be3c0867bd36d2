//! The pull-request rendering: the DR summary first, details collapsible, always under
//! GitHub's comment limit.

use tabled::settings::Style;
use tabled::{Table, builder::Builder};

use super::{attr_lines, duration, per_region, summary_line, verb};
use crate::plan::doc::PlanDoc;

/// GitHub rejects comments over 65,536 characters; stay clear of it.
pub const MARKDOWN_LIMIT: usize = 65_000;

pub fn markdown(doc: &PlanDoc) -> String {
    let mut head = format!("### drplan plan: `{}`\n\n", doc.project);
    let active_after = doc.roles.iter().find(|(_, r)| *r == "active").map(|(n, _)| n.clone()).unwrap_or_default();
    let active_before = doc.role_transitions.iter().find(|t| t.from == "active").map(|t| t.region.clone());
    match active_before {
        Some(before) if before != active_after => {
            head.push_str(&format!("**Active region:** `{before}` → `{active_after}` (failover)\n\n"))
        }
        _ => head.push_str(&format!("**Active region:** `{active_after}` (unchanged)\n\n")),
    }
    for t in &doc.role_transitions {
        head.push_str(&format!("- `{}`: {} → {} ({})\n", t.region, t.from, t.to, t.action));
    }
    if !doc.role_transitions.is_empty() {
        head.push('\n');
    }

    let tick = |ok: bool| if ok { "✅" } else { "❌" };
    let post = &doc.posture;
    let mut posture = Vec::new();
    for r in &post.rpo {
        let rpo = r.rpo_seconds.map_or("no RPO".to_string(), duration);
        let (mark, note) = match (r.no_backup_yet, r.unmeasured && r.ok) {
            (true, _) => ("❌", ": no backup yet"),
            (false, true) => ("❔", ": newest backups not measured"),
            (false, false) => (tick(r.ok), ""),
        };
        posture.push(format!("{mark} RPO `{}` every {} vs {rpo}{note}", r.backup, duration(r.schedule_gap_seconds)));
    }
    if let Some(r) = &post.rto {
        let rto = r.rto_seconds.map_or("no RTO".to_string(), duration);
        let measured = r.measured_by.as_ref().map(|m| format!(" (measured by drill {m})")).unwrap_or_default();
        let thaw = r.thaw.as_ref().map(|t| format!(", waiting for a thaw: {t}")).unwrap_or_default();
        posture.push(format!(
            "{} RTO ~{} to `{}` vs {rto}{measured}{thaw}",
            tick(r.ok),
            duration(r.estimate_seconds),
            r.to_region
        ));
    }
    for c in &post.copies {
        posture.push(format!(
            "{} 3-2-1 `{}`: {} copies in {}",
            tick(c.ok),
            c.backup,
            c.destinations,
            c.sites.join(", ")
        ));
    }
    for s in &post.standby {
        let state = match (s.ready, s.ready_after_plan) {
            (true, _) => "ready",
            (false, true) => "not ready now, ready once applied",
            (false, false) => "not ready",
        };
        posture.push(format!("{} standby `{}` {state}", tick(s.ready), s.region));
    }
    head.push_str(&format!("**DR posture:** {}\n\n", posture.join(" · ")));

    let destructive: Vec<&crate::plan::doc::ResourceChange> =
        doc.resource_changes.iter().filter(|rc| matches!(verb(rc).0, "delete" | "replace")).collect();
    if destructive.is_empty() {
        head.push_str("**Destructive actions:** none\n\n");
    } else {
        // Name the first few; the details below list them all (as far as the limit allows).
        const NAMED: usize = 20;
        let named: Vec<String> =
            destructive.iter().take(NAMED).map(|rc| format!("`{}` ({})", rc.address, verb(rc).0)).collect();
        let more =
            if destructive.len() > NAMED { format!(" and {} more", destructive.len() - NAMED) } else { String::new() };
        head.push_str(&format!("**Destructive actions ({}):** {}{more}\n\n", destructive.len(), named.join(", ")));
    }
    for s in &doc.safety {
        head.push_str(&format!(
            "> **{}** `{}`: {}{}\n",
            s.severity,
            s.code,
            s.message,
            s.help.as_ref().map(|h| format!(" — {h}")).unwrap_or_default()
        ));
    }
    // Before the details: a reviewer reads the team's own rules first.
    for r in &doc.policy {
        let level = match r.level {
            crate::policy::Level::Deny => "policy deny",
            crate::policy::Level::Warn => "policy warn",
        };
        head.push_str(&format!("> **{level}** `{}.{}`: {}\n", r.namespace, r.rule, r.msg));
    }
    if !doc.policy.is_empty() {
        // Its own quote: the lines after would otherwise continue it.
        head.push('\n');
    }
    for i in &doc.incidents {
        head.push_str(&format!(
            "> **incident open** `{}` on `{}` since {}: {} (evidence kept, region isolated, backups since suspect, retention held)\n",
            i.id, i.region, i.since, i.reason
        ));
    }
    for f in &doc.fences {
        let state = if f.reachable { "back: this plan fences it first" } else { "still unreachable" };
        head.push_str(&format!(
            "> **fence pending** `{}` (declared lost {}): {} action(s) owed, {state}\n",
            f.region,
            f.since,
            f.owed.len()
        ));
    }
    for d in &doc.databases {
        head.push_str(&format!("> **database** {}\n", d.summary()));
    }
    for r in &doc.restores {
        head.push_str(&format!("> **restore** {}\n", r.summary));
    }
    for (r, why) in &doc.unreachable {
        head.push_str(&format!("> **unreachable** `{r}`: {why}\n"));
    }
    for (a, why) in &doc.unreachable_objects {
        head.push_str(&format!("> **unreachable** `{a}`: {why}\n"));
    }
    if doc.has_changes() {
        head.push_str(&format!(
            "**{}**{}\n\n",
            summary_line(doc),
            if doc.applyable { "" } else { " — cannot be applied as it is" }
        ));
        let mut table = Builder::default();
        table.push_record(["region", "role", "create", "update", "replace", "delete", "adopt"]);
        for (region, c) in per_region(doc) {
            let role = doc.roles.get(&region).cloned().unwrap_or_else(|| "-".to_string());
            table.push_record([region, role].into_iter().chain(c.iter().map(|n| n.to_string())));
        }
        let mut table: Table = table.build();
        table.with(Style::markdown());
        head.push_str(&format!("{table}\n\n"));
    } else {
        head.push_str("**No changes.** The live topology matches the configuration.\n\n");
    }

    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    if !doc.resource_changes.is_empty() {
        let mut lines = Vec::new();
        for rc in &doc.resource_changes {
            let (_, symbol) = verb(rc);
            let symbol = if symbol == "±" { "!" } else { symbol };
            lines.push(format!("{symbol} {}", rc.address));
            lines.extend(attr_lines(rc).into_iter().map(|l| format!("      {l}")));
        }
        sections.push((format!("Changes ({})", doc.resource_changes.len()), lines));
    }
    if !doc.resource_drift.is_empty() {
        let lines =
            doc.resource_drift.iter().map(|d| format!("! {} ({})", d.address, d.change.actions.join(", "))).collect();
        sections.push((format!("Drift: changed outside drplan ({})", doc.resource_drift.len()), lines));
    }
    if !doc.actions.is_empty() {
        let lines = doc
            .actions
            .iter()
            .enumerate()
            .map(|(i, a)| {
                format!(
                    "{:>3}. {}{}",
                    i + 1,
                    a.id,
                    a.skipped.as_ref().map(|s| format!("  (skipped: {s})")).unwrap_or_default()
                )
            })
            .collect();
        sections.push(("Order of execution".to_string(), lines));
    }

    let mut out = head;
    let footer = "\n<sub>Posted by `drplan plan --markdown`.</sub>\n";
    for (title, lines) in sections {
        let open = format!("<details><summary>{title}</summary>\n\n```diff\n");
        let close = "```\n\n</details>\n\n";
        let budget = MARKDOWN_LIMIT.saturating_sub(out.len() + open.len() + close.len() + footer.len() + 200);
        let mut body = String::new();
        let mut shown = 0;
        for l in &lines {
            if body.len() + l.len() + 1 > budget {
                break;
            }
            body.push_str(l);
            body.push('\n');
            shown += 1;
        }
        if shown < lines.len() {
            body.push_str(&format!(
                "… {} more lines not shown; run `drplan show` on the saved plan for all of it\n",
                lines.len() - shown
            ));
        }
        if shown == 0 && !lines.is_empty() && budget < 100 {
            break;
        }
        out.push_str(&open);
        out.push_str(&body);
        out.push_str(close);
    }
    out.push_str(footer);
    out
}
