//! `drift --metrics` and `status --metrics` on the emulators: the Prometheus textfile parses
//! with the reference parser (`prometheus_client.parser`, in the emulators' virtualenv) and
//! says what the JSON report of the same run says.

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::bot_core::{self, Damage, describe, json, scale, write_point};

/// `(name, labels) -> value` for every sample, as `prometheus_client` parses the file; also
/// checks every family has HELP and TYPE and the `drplan_` prefix.
fn parse(file: &Path) -> BTreeMap<(String, BTreeMap<String, String>), f64> {
    let venv = std::env::var("DRPLAN_VENV").unwrap_or_else(|_| ".venv".into());
    let python = support::root().join(venv).join("bin/python");
    let script = r##"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
out = []
for f in text_string_to_metric_families(text):
    assert f.name.startswith("drplan_"), f.name
    assert f.type == "gauge" and f.documentation, f.name
    assert f"# HELP {f.name} " in text and f"# TYPE {f.name} gauge" in text, f.name
    for s in f.samples:
        out.append([s.name, s.labels, s.value])
print(json.dumps(out))
"##;
    let out = std::process::Command::new(python).arg("-c").arg(script).arg(file).output().expect("python runs");
    assert!(
        out.status.success(),
        "the parser rejects the file: {}\n{}",
        support::text(&out.stderr),
        std::fs::read_to_string(file).unwrap()
    );
    let samples: Vec<(String, BTreeMap<String, String>, f64)> = serde_json::from_slice(&out.stdout).unwrap();
    samples.into_iter().map(|(n, l, v)| ((n, l), v)).collect()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn the_metrics_of_a_drift_run_parse_and_match_its_json_report() {
    let w = bot_core::world(|c| c);
    w.converge();
    write_point(&w, 10 * 60, Damage::None);
    scale(&w.euw1, "trading-engine", 3);
    let file = w.dir.path().join("textfile/drplan.prom");
    std::fs::create_dir(file.parent().unwrap()).unwrap();
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as f64;
    let out = w.drplan(&["drift", "bot-core", "--json", "--metrics", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let report = json(&out);
    let m = parse(&file);
    let get = |name: &str, l: &[(&str, &str)]| {
        *m.get(&(name.to_string(), labels(l))).unwrap_or_else(|| panic!("no {name}{l:?} in {m:#?}"))
    };
    let p = ("project", "bot-core");
    assert_eq!(get("drplan_drift_clean", &[p]), 0.0);
    let findings = report["findings"].as_array().unwrap();
    for kind in drplan_core::metrics::DRIFT_KINDS {
        let n = findings.iter().filter(|f| f["kind"] == *kind).count() as f64;
        assert_eq!(get("drplan_drift_findings", &[p, ("kind", kind)]), n, "{kind}: {report:#}");
    }
    assert!(get("drplan_drift_findings", &[p, ("kind", "changed")]) >= 1.0);
    // Posture gauges: 0 exactly where the report has a posture finding about it.
    let posture = |subject: &str| {
        findings.iter().any(|f| f["kind"] == "posture" && f["subject"].as_str().unwrap().contains(subject))
    };
    assert_eq!(get("drplan_posture_rpo_ok", &[p, ("backup", "database")]) == 0.0, posture("rpo: backup database"));
    assert_eq!(get("drplan_posture_copies_ok", &[p, ("backup", "database")]), 1.0);
    assert_eq!(get("drplan_posture_standby_ready", &[p, ("region", "eu-west-1")]), 1.0);
    assert_eq!(get("drplan_posture_rto_ok", &[p, ("region", "eu-west-1")]), 1.0);
    // The point written ten minutes ago, in both destinations it was written to.
    for destination in ["primary", "secondary"] {
        let age = get("drplan_backup_newest_age_seconds", &[p, ("backup", "database"), ("destination", destination)]);
        assert!((600.0..900.0).contains(&age), "{destination}: {age}");
    }
    let at = get("drplan_last_run_timestamp_seconds", &[p, ("command", "drift")]);
    assert!((before - 1.0..before + 120.0).contains(&at), "{at} vs {before}");
    // Nothing but the file itself is left in its directory (the write is a rename).
    assert_eq!(std::fs::read_dir(file.parent().unwrap()).unwrap().count(), 1);

    // status --metrics: the verdict and backup ages of its JSON report.
    let status_file = w.dir.path().join("textfile/status.prom");
    let out = w.drplan(&["status", "bot-core", "--json", "--metrics", status_file.to_str().unwrap()]);
    let report = json(&out);
    let m = parse(&status_file);
    let verdict = report["verdict"].as_str().unwrap().to_lowercase().replace(' ', "_");
    for v in ["ready", "degraded", "not_ready"] {
        let value = m[&("drplan_status_verdict".to_string(), labels(&[p, ("verdict", v)]))];
        assert_eq!(value, if v == verdict { 1.0 } else { 0.0 }, "{v}: {report:#}");
    }
    for d in report["backups"][0]["destinations"].as_array().unwrap() {
        let key = (
            "drplan_backup_newest_age_seconds".to_string(),
            labels(&[p, ("backup", "database"), ("destination", d["name"].as_str().unwrap())]),
        );
        assert_eq!(m.get(&key).copied(), d["newest_age_seconds"].as_f64(), "{d}");
    }
    // The uptime budget: 99.9% allows 8h 45m 36s, nothing spent without a failover.
    let budget = &report["uptime_budget"];
    for (name, field) in [
        ("drplan_uptime_budget_remaining_seconds", "remaining_seconds"),
        ("drplan_uptime_budget_allowed_seconds", "allowed_seconds"),
    ] {
        assert_eq!(m.get(&(name.to_string(), labels(&[p]))).copied(), budget[field].as_f64(), "{budget}");
    }
    assert_eq!(budget["remaining_seconds"], 31_536, "{budget}");
}
