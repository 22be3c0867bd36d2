//! Drift detection's findings: what a plan document says is drifted, unreachable, owed or
//! failing the DR posture, as the versioned report `drplan drift` prints (`--json`), posts to
//! a webhook and renders for people and chat.

use schemars::JsonSchema;
use serde::Serialize;

use crate::plan::doc::PlanDoc;

/// The version of the JSON report and the webhook payload. 1.1 added the `fence` and
/// `state` finding kinds and unreachable objects (addresses) as subjects.
pub const FORMAT_VERSION: &str = "1.1";

/// A copy of the state that is not current, as the state backend sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateCopy {
    pub name: String,
    pub region: String,
    pub status: CopyState,
    pub serial: Option<u64>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyState {
    Behind,
    Unreachable,
}

/// What `drplan drift --json` prints and posts to its webhook.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Report {
    pub format_version: &'static str,
    pub project: String,
    pub clean: bool,
    /// One line a finding, for chat (Slack reads this field).
    pub text: String,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Finding {
    /// `fence`, `incident`, `unreachable`, `changed`, `deleted`, `untracked`, `missing`, `unexpected`,
    /// `posture`, `safety` or `state` (a copy of the state behind or unreachable).
    pub kind: &'static str,
    pub subject: String,
    pub detail: String,
}

/// The findings of a plan made for drift detection, with the state copies that are not current.
pub fn report(doc: &PlanDoc, copies: &[StateCopy]) -> Report {
    let mut findings = Vec::new();
    // First: a region declared lost may still serve or run backups beside the new active.
    for f in &doc.fences {
        let state = if f.reachable {
            "it answers again: `drplan apply` fences it".to_string()
        } else {
            "still unreachable; the first apply after it answers fences it".to_string()
        };
        findings.push(Finding {
            kind: "fence",
            subject: format!("region {}", f.region),
            detail: format!(
                "fence pending for {}: declared lost {}, {} action(s) owed; {state}",
                f.region,
                f.since,
                f.owed.len()
            ),
        });
    }
    // An open incident: the region is compromised until a person closes it.
    for i in &doc.incidents {
        findings.push(Finding {
            kind: "incident",
            subject: format!("region {}", i.region),
            detail: format!("incident {} open since {}: {}", i.id, i.since, i.reason),
        });
    }
    // A region that cannot be read cannot be vouched for: never report it as clean.
    for (region, why) in &doc.unreachable {
        findings.push(Finding { kind: "unreachable", subject: format!("region {region}"), detail: why.clone() });
    }
    for (address, why) in &doc.unreachable_objects {
        findings.push(Finding { kind: "unreachable", subject: address.clone(), detail: why.clone() });
    }
    for d in &doc.resource_drift {
        let (kind, detail) = match d.change.actions.first().map(String::as_str) {
            Some("delete") => ("deleted", "recorded in state, gone from the cloud".to_string()),
            Some("create") => ("untracked", "carries drplan's tags but state does not know it".to_string()),
            _ => ("changed", changed_attrs(d)),
        };
        findings.push(Finding { kind, subject: d.address.clone(), detail });
    }
    let drifted: std::collections::BTreeSet<&str> = doc.resource_drift.iter().map(|d| d.address.as_str()).collect();
    for rc in doc.resource_changes.iter().filter(|rc| !drifted.contains(rc.address.as_str())) {
        let (kind, detail) = match rc.change.actions.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["create"] => ("missing", "declared but not found".to_string()),
            ["delete"] => ("unexpected", "exists but is not declared".to_string()),
            ["no-op"] => continue,
            _ => ("changed", changed_attrs(rc)),
        };
        findings.push(Finding { kind, subject: rc.address.clone(), detail });
    }
    let p = &doc.posture;
    for r in p.rpo.iter().filter(|r| !r.ok) {
        let rpo = r.rpo_seconds.map_or("the RPO".to_string(), secs);
        let stale: Vec<String> = r
            .newest_backup_age_seconds
            .iter()
            .filter_map(|(d, age)| {
                age.filter(|a| r.rpo_seconds.is_some_and(|rpo| *a > rpo)).map(|a| format!("{d} is {} old", secs(a)))
            })
            .collect();
        let detail = if r.no_backup_yet {
            "no backup yet: no destination holds a usable recovery point".to_string()
        } else if stale.is_empty() {
            format!("the schedule runs only every {} (RPO {rpo})", secs(r.schedule_gap_seconds))
        } else {
            format!("{} (RPO {rpo})", stale.join(", "))
        };
        findings.push(Finding { kind: "posture", subject: format!("rpo: backup {}", r.backup), detail });
    }
    if let Some(r) = p.rto.as_ref().filter(|r| !r.ok) {
        findings.push(Finding {
            kind: "posture",
            subject: "rto".into(),
            detail: format!(
                "failing over to {} takes about {} (RTO {})",
                r.to_region,
                secs(r.estimate_seconds),
                r.rto_seconds.map_or("unset".into(), secs)
            ),
        });
    }
    for s in p.standby.iter().filter(|s| !s.ready) {
        let mut missing = Vec::new();
        if s.instances[0] < s.instances[1] {
            missing.push(format!("instances {}/{}", s.instances[0], s.instances[1]));
        }
        if s.replicas[0] < s.replicas[1] {
            missing.push(format!("replicas {}/{}", s.replicas[0], s.replicas[1]));
        }
        if s.dns_secondary == Some(false) {
            missing.push("DNS SECONDARY missing".into());
        }
        if s.health_check == Some(false) {
            missing.push("health check missing".into());
        }
        missing.extend(s.replication.iter().filter(|r| r.problem.is_some()).map(|r| r.text.clone()));
        findings.push(Finding {
            kind: "posture",
            subject: format!("standby {}", s.region),
            detail: format!("not ready: {}", missing.join(", ")),
        });
    }
    for c in p.copies.iter().filter(|c| !c.ok) {
        findings.push(Finding {
            kind: "posture",
            subject: format!("3-2-1: backup {}", c.backup),
            detail: format!("{} destination(s) in {}", c.destinations, c.sites.join(", ")),
        });
    }
    for d in p.drills.iter().filter(|d| !d.ok) {
        let when = d.last.as_ref().map_or("never drilled".to_string(), |t| format!("last passed drill {t}"));
        let every = crate::config::Duration::from_secs(d.every_seconds);
        findings.push(Finding {
            kind: "posture",
            subject: format!("drill: region {}", d.region),
            detail: format!("{when}; `drill_every` is {every}: run `drplan drill --to {}`", d.region),
        });
    }
    for s in doc.safety.iter().filter(|s| s.severity == "error" || s.code == crate::Code::DrillInProgress.as_str()) {
        findings.push(Finding { kind: "safety", subject: s.code.clone(), detail: s.message.clone() });
    }
    // A team's rule denying the live topology is drift from what the team allows; warnings
    // stay in the plan.
    for r in doc.policy.iter().filter(|r| r.level == crate::policy::Level::Deny) {
        findings.push(Finding {
            kind: "policy",
            subject: format!("{}.{}", r.namespace, r.rule),
            detail: r.msg.clone(),
        });
    }
    state_findings(&mut findings, copies);
    let clean = findings.is_empty();
    let text = if clean {
        format!("drplan: {} matches its declared DR topology.", doc.project)
    } else {
        let lines: Vec<String> =
            findings.iter().take(20).map(|f| format!("• {} {}: {}", f.kind, f.subject, f.detail)).collect();
        let more = if findings.len() > 20 { format!("\n… and {} more", findings.len() - 20) } else { String::new() };
        format!(
            "drplan: {} has drifted from its declared DR topology ({} finding(s)):\n{}{more}",
            doc.project,
            findings.len(),
            lines.join("\n")
        )
    };
    Report { format_version: FORMAT_VERSION, project: doc.project.clone(), clean, text, findings }
}

/// A copy of the state that is behind or cannot be reached is a finding: the state does not
/// survive the loss of the other copies' regions until it is current again.
fn state_findings(findings: &mut Vec<Finding>, copies: &[StateCopy]) {
    for c in copies {
        let detail = match c.status {
            CopyState::Behind => format!(
                "behind at {} ({}); the next locked run brings it up to date",
                c.serial.map_or("no state".to_string(), |s| format!("serial {s}")),
                c.detail.as_deref().unwrap_or_default()
            ),
            CopyState::Unreachable => format!("unreachable: {}", c.detail.as_deref().unwrap_or_default()),
        };
        findings.push(Finding { kind: "state", subject: format!("copy {} ({})", c.name, c.region), detail });
    }
}

fn changed_attrs(rc: &crate::plan::doc::ResourceChange) -> String {
    let (Some(before), Some(after)) = (&rc.change.before, &rc.change.after) else { return "changed".into() };
    let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let parts: Vec<String> = keys
        .into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .filter(|k| after.contains_key(*k) || before.contains_key(*k))
        .map(|k| {
            format!(
                "{k}: {} → {}",
                before.get(k).map_or("(unset)".into(), |v| v.to_string()),
                after.get(k).map_or("(unset)".into(), |v| v.to_string())
            )
        })
        .collect();
    parts.join(", ")
}

fn secs(s: u64) -> String {
    crate::config::Duration::from_secs(s.max(1)).to_string()
}

impl Report {
    /// For a terminal: the first line of `text`, then a finding a line.
    pub fn human(&self) -> String {
        let mut s = format!("{}\n", self.text.lines().next().unwrap_or_default());
        for f in &self.findings {
            s.push_str(&format!("  {:<10} {}: {}\n", f.kind, f.subject, f.detail));
        }
        s
    }

    /// For an issue or a chat message.
    pub fn markdown(&self) -> String {
        let mut s = format!("### drplan drift: `{}`\n\n", self.project);
        if self.clean {
            s.push_str("✅ The live topology matches the configuration.\n");
            return s;
        }
        s.push_str(&format!(
            "❌ {} finding(s)\n\n| kind | subject | detail |\n| --- | --- | --- |\n",
            self.findings.len()
        ));
        for f in &self.findings {
            s.push_str(&format!("| {} | `{}` | {} |\n", f.kind, f.subject, f.detail.replace('|', "\\|")));
        }
        s
    }
}
