//! Renderings of a plan document: human (terminal) and Markdown (pull-request comment).
//! JSON is the document itself. All are deterministic: the same plan, the same bytes.

pub mod document;
mod human;
mod markdown;

pub use human::human;
pub use markdown::{MARKDOWN_LIMIT, markdown};

use std::collections::BTreeMap;

use crate::plan::doc::{PlanDoc, ResourceChange};

/// The short action word and symbol of a resource change.
fn verb(rc: &ResourceChange) -> (&'static str, &'static str) {
    match rc.change.actions.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["create"] => ("create", "+"),
        ["update"] => ("update", "~"),
        ["create", "delete"] | ["delete", "create"] => ("replace", "±"),
        ["delete"] => ("delete", "-"),
        _ => ("adopt", "="),
    }
}

/// Counts per verb, in a fixed order.
pub fn counts(doc: &PlanDoc) -> [(&'static str, usize); 5] {
    let mut c = [("create", 0), ("update", 0), ("replace", 0), ("delete", 0), ("adopt", 0)];
    for rc in &doc.resource_changes {
        let v = verb(rc).0;
        if let Some(slot) = c.iter_mut().find(|(n, _)| *n == v) {
            slot.1 += 1;
        }
    }
    c
}

fn summary_line(doc: &PlanDoc) -> String {
    let c = counts(doc);
    format!(
        "Plan: {} to create, {} to update, {} to replace, {} to delete, {} to adopt.",
        c[0].1, c[1].1, c[2].1, c[3].1, c[4].1
    )
}

/// Attribute lines of a change: every attribute of a create, the differing ones otherwise.
fn attr_lines(rc: &ResourceChange) -> Vec<String> {
    let show = |v: &serde_json::Value| v.to_string();
    match (&rc.change.before, &rc.change.after) {
        (None, Some(after)) => {
            let width = after.keys().map(|k| k.len()).max().unwrap_or(0);
            after.iter().map(|(k, v)| format!("{k:<width$} = {}", show(v))).collect()
        }
        (Some(before), Some(after)) => after
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(*v))
            .map(|(k, v)| {
                let forces = rc.change.replace_paths.iter().any(|p| p.first() == Some(k));
                let old = before.get(k).map_or("(unset)".to_string(), show);
                format!("{k}: {old} → {}{}", show(v), if forces { "  (forces replacement)" } else { "" })
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The region an address belongs to in summaries; Route 53 and buckets are "global".
fn region_of(rc: &ResourceChange) -> String {
    rc.region.clone().unwrap_or_else(|| "global".to_string())
}

fn per_region(doc: &PlanDoc) -> BTreeMap<String, [usize; 5]> {
    let mut out: BTreeMap<String, [usize; 5]> = doc.roles.keys().map(|r| (r.clone(), [0; 5])).collect();
    for rc in &doc.resource_changes {
        let i = ["create", "update", "replace", "delete", "adopt"].iter().position(|v| *v == verb(rc).0).unwrap_or(4);
        out.entry(region_of(rc)).or_default()[i] += 1;
    }
    out
}

fn duration(secs: u64) -> String {
    crate::config::Duration::from_secs(secs).to_string()
}

/// The action graph as Graphviz dot: one node per action, an edge from each prerequisite.
pub fn dot(doc: &PlanDoc) -> String {
    let mut out = String::from("digraph drplan {\n  rankdir = LR;\n  node [shape = box, fontname = \"monospace\"];\n");
    let label = |id: &str| {
        let rc = doc.resource_changes.iter().find(|rc| rc.address == id);
        match rc {
            Some(rc) => format!("{} {}", verb(rc).1, id),
            None => id.to_string(),
        }
    };
    for a in &doc.actions {
        let shape = match a.kind.as_str() {
            "health_gate" => ", shape = diamond",
            "barrier" => ", shape = point",
            _ => "",
        };
        let style = if a.skipped.is_some() { ", style = dashed" } else { "" };
        out.push_str(&format!("  {:?} [label = {:?}{shape}{style}];\n", a.id, label(&a.id)));
    }
    for a in &doc.actions {
        for d in &a.depends_on {
            out.push_str(&format!("  {d:?} -> {:?};\n", a.id));
        }
    }
    out.push_str("}\n");
    out
}
