//! Prometheus text exposition of scheduled runs, for node_exporter's textfile collector:
//! `drift --metrics FILE` and `status --metrics FILE`. Pure: the caller passes the time of
//! the run and writes the text. Names follow Prometheus conventions: the `drplan_` prefix,
//! base units (`_seconds`), 0/1 gauges for checks, and a label per dimension.

use std::fmt::Write;

use crate::drift;
use crate::plan::doc::PlanDoc;
use crate::status;

/// Every kind `drplan drift` reports, always written (0 when absent) so that an alert on
/// `drplan_drift_findings{kind="changed"} > 0` has a series to watch from the first run.
pub const DRIFT_KINDS: &[&str] = &[
    "fence",
    "incident",
    "unreachable",
    "changed",
    "deleted",
    "untracked",
    "missing",
    "unexpected",
    "posture",
    "safety",
    "policy",
    "state",
];

/// One metric family: its samples are written together under one `# HELP` and `# TYPE`.
struct Family {
    name: &'static str,
    help: &'static str,
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Family {
    fn new(name: &'static str, help: &'static str) -> Family {
        Family { name, help, samples: Vec::new() }
    }

    fn sample(&mut self, labels: Vec<(&'static str, String)>, value: f64) {
        self.samples.push((labels, value));
    }
}

fn bit(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// The exposition text of `families`, skipping those without samples.
fn render(families: &[Family]) -> String {
    let mut s = String::new();
    for f in families.iter().filter(|f| !f.samples.is_empty()) {
        let _ = writeln!(s, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(s, "# TYPE {} gauge", f.name);
        for (labels, value) in &f.samples {
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
            let _ = writeln!(s, "{}{{{}}} {}", f.name, labels.join(","), number(*value));
        }
    }
    s
}

/// Label values escape backslash, double quote and newline, as the text format requires.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Whole numbers without a fraction, so that timestamps and ages read exactly.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v}") }
}

fn project(p: &str) -> (&'static str, String) {
    ("project", p.to_string())
}

/// The metrics of one `drplan drift` run: findings by kind, the DR posture checks of the
/// plan it compared, the newest backup age per destination and `now`, the time of the run.
pub fn drift(report: &drift::Report, doc: &PlanDoc, now: i64) -> String {
    let p = || project(&report.project);
    let mut findings = Family::new("drplan_drift_findings", "Findings of the last drift run, by kind.");
    // Kinds a newer core reports that this list does not know yet still get a series.
    let extra: std::collections::BTreeSet<&str> =
        report.findings.iter().map(|f| f.kind).filter(|k| !DRIFT_KINDS.contains(k)).collect();
    let kinds = DRIFT_KINDS.iter().copied().chain(extra);
    for kind in kinds {
        let n = report.findings.iter().filter(|f| f.kind == kind).count();
        findings.sample(vec![p(), ("kind", kind.to_string())], n as f64);
    }
    let mut clean = Family::new("drplan_drift_clean", "1 when the last drift run found nothing, else 0.");
    clean.sample(vec![p()], bit(report.clean));
    let mut families = vec![clean, findings];
    families.extend(posture(&report.project, doc));
    families.push(last_run(&report.project, "drift", now));
    render(&families)
}

/// The posture checks of a plan document as 0/1 gauges, and the newest backup ages.
fn posture(name: &str, doc: &PlanDoc) -> Vec<Family> {
    let p = || project(name);
    let posture = &doc.posture;
    let mut ok = Family::new("drplan_posture_ok", "1 when every DR posture check passes, else 0.");
    ok.sample(vec![p()], bit(posture.ok));
    let mut rpo = Family::new("drplan_posture_rpo_ok", "1 when the backup's newest recovery point is within its RPO.");
    let mut age = Family::new(
        "drplan_backup_newest_age_seconds",
        "Age of the newest usable recovery point of a backup at a destination.",
    );
    for r in &posture.rpo {
        rpo.sample(vec![p(), ("backup", r.backup.clone())], bit(r.ok));
        for (destination, seconds) in &r.newest_backup_age_seconds {
            if let Some(s) = seconds {
                age.sample(vec![p(), ("backup", r.backup.clone()), ("destination", destination.clone())], *s as f64);
            }
        }
    }
    let mut rto = Family::new("drplan_posture_rto_ok", "1 when the estimated failover time is within the RTO.");
    let mut estimate =
        Family::new("drplan_failover_estimate_seconds", "Estimated time of a failover to the region (the RTO check).");
    if let Some(r) = &posture.rto {
        rto.sample(vec![p(), ("region", r.to_region.clone())], bit(r.ok));
        estimate.sample(vec![p(), ("region", r.to_region.clone())], r.estimate_seconds as f64);
    }
    let mut copies = Family::new(
        "drplan_posture_copies_ok",
        "1 when the backup meets 3-2-1: three copies, two sites, one off-site.",
    );
    for c in &posture.copies {
        copies.sample(vec![p(), ("backup", c.backup.clone())], bit(c.ok));
    }
    let mut standby =
        Family::new("drplan_posture_standby_ready", "1 when the standby region is ready to take traffic.");
    for s in &posture.standby {
        standby.sample(vec![p(), ("region", s.region.clone())], bit(s.ready));
    }
    vec![ok, rpo, rto, copies, standby, age, estimate]
}

fn last_run(name: &str, command: &str, now: i64) -> Family {
    let mut f = Family::new(
        "drplan_last_run_timestamp_seconds",
        "When the run these metrics come from started, in seconds since the epoch.",
    );
    f.sample(vec![project(name), ("command", command.to_string())], now as f64);
    f
}

/// The metrics of one `drplan status` run: the verdict as a state set, per-region
/// reachability and health, per-backup RPO and the newest age per destination.
pub fn status(report: &status::Report, now: i64) -> String {
    let p = || project(&report.project);
    let mut verdict =
        Family::new("drplan_status_verdict", "1 for the verdict of the last status run, 0 for the others.");
    use status::Verdict::{Degraded, NotReady, Ready};
    // Label values without spaces, as PromQL matchers are usually typed.
    for (v, label) in [(Ready, "ready"), (Degraded, "degraded"), (NotReady, "not_ready")] {
        verdict.sample(vec![p(), ("verdict", label.to_string())], bit(report.verdict == v));
    }
    let mut incidents = Family::new("drplan_incident_open", "1 for each incident open, by region.");
    for i in &report.incidents {
        incidents.sample(vec![p(), ("region", i.region.clone()), ("incident", i.id.clone())], 1.0);
    }
    let mut reachable = Family::new("drplan_region_reachable", "1 when the region's APIs answered.");
    let mut healthy = Family::new("drplan_region_healthy", "1 when the region's health check passes.");
    for r in &report.regions {
        let labels = vec![p(), ("region", r.name.clone()), ("role", r.role.clone())];
        reachable.sample(labels.clone(), bit(r.reachable));
        if let Some(h) = r.health.as_ref().and_then(|h| h.healthy) {
            healthy.sample(labels, bit(h));
        }
    }
    let mut rpo = Family::new("drplan_posture_rpo_ok", "1 when the backup's newest recovery point is within its RPO.");
    let mut age = Family::new(
        "drplan_backup_newest_age_seconds",
        "Age of the newest usable recovery point of a backup at a destination.",
    );
    let mut thaw = Family::new(
        "drplan_backup_time_to_data_seconds",
        "Seconds before the newest usable recovery point of a backup at a destination can be read: its thaw, else 0.",
    );
    for b in &report.backups {
        if let Some(ok) = b.within_rpo {
            rpo.sample(vec![p(), ("backup", b.backup.clone())], bit(ok));
        }
        for d in &b.destinations {
            let labels = vec![p(), ("backup", b.backup.clone()), ("destination", d.name.clone())];
            if let Some(s) = d.newest_age_seconds {
                age.sample(labels.clone(), s as f64);
                thaw.sample(labels, d.thaw_seconds.unwrap_or(0) as f64);
            }
        }
    }
    let mut budget = Family::new(
        "drplan_uptime_budget_remaining_seconds",
        "Downtime left of the uptime objective over the last 365 days (negative once overspent).",
    );
    let mut allowed =
        Family::new("drplan_uptime_budget_allowed_seconds", "Downtime the uptime objective allows over 365 days.");
    if let Some(b) = &report.uptime_budget {
        budget.sample(vec![p()], b.remaining_seconds as f64);
        allowed.sample(vec![p()], b.allowed_seconds as f64);
    }
    render(&[verdict, reachable, healthy, rpo, age, thaw, budget, allowed, last_run(&report.project, "status", now)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_have_help_and_type_and_escaped_labels() {
        let mut f = Family::new("drplan_x_seconds", "An example.");
        f.sample(vec![("name", "a\"b\\c\nd".to_string())], 12.0);
        f.sample(vec![("name", "e".to_string())], 0.5);
        let text = render(&[f, Family::new("drplan_empty", "Never written.")]);
        assert_eq!(
            text,
            "# HELP drplan_x_seconds An example.\n# TYPE drplan_x_seconds gauge\ndrplan_x_seconds{name=\"a\\\"b\\\\c\\nd\"} 12\ndrplan_x_seconds{name=\"e\"} 0.5\n"
        );
    }

    #[test]
    fn numbers_are_exact() {
        assert_eq!(number(1_796_000_000.0), "1796000000");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(-3.0), "-3");
    }
}
