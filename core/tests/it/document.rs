//! Goldens of the DR plan document (`drplan doc`) for a fixed snapshot of `examples/bot-core`
//! with a drill, a failover and contacts recorded, the clock injected; and the uptime budget
//! spent by a recorded failover. `UPDATE_EXPECT=1` rewrites the files under `tests/document/`.

use std::path::PathBuf;

use drplan_core::config::Contact;
use drplan_core::document::{self, Mark, SECTIONS};
use drplan_core::drill::{Drill, DrillStep};
use drplan_core::recovery::rfc3339;
use drplan_core::render::document::{html, markdown};
use drplan_core::uptime::{self, FROM_HEALTH, FROM_WRITERS};

use crate::status::{NOW, World, converged};

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/document").join(name);
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&expected, actual);
        panic!("{} differs (UPDATE_EXPECT=1 accepts):\n{}", path.display(), diff.unified_diff().context_radius(2));
    }
}

/// bot-core a day after a drill to eu-west-1 and an hour after a switchover that took 95 s
/// of downtime (35 s to the PRIMARY change in sync, plus the 60 s TTL).
fn world() -> World {
    let mut w = converged(30 * 60);
    w.prior.drills.push(Drill {
        id: "d-20261130".into(),
        region: "eu-west-1".into(),
        role: "standby".into(),
        restore: false,
        started: rfc3339(NOW - 86_400),
        finished: Some(rfc3339(NOW - 86_400 + 300)),
        result: "passed".into(),
        steps: vec![DrillStep { name: "gate passed".into(), seconds: 180.0, ok: true, detail: None }],
        measured_rto_seconds: Some(262),
        estimate_seconds: Some(600),
        rto_objective_seconds: Some(900),
        removed: Vec::new(),
        error: None,
        replicas: Vec::new(),
    });
    let started = NOW - 3_600;
    w.prior.history.push(uptime::record(
        Some("f-1".into()),
        Some("eu-west-1".into()),
        "us-east-1".into(),
        "ops@laptop".into(),
        started,
        (Some(started + 20), FROM_WRITERS),
        Some(started + 55),
        60,
    ));
    w.config.contacts.push(Contact {
        name: "Dana Ops".into(),
        role: Some("incident commander".into()),
        phone: Some("+1 555 0100".into()),
        email: Some("dana@bot-core.com".into()),
    });
    w
}

fn make(w: &World) -> document::Document {
    let inputs = document::Inputs {
        status: drplan_core::status::Inputs {
            config: &w.config,
            prior: &w.prior,
            snapshot: &w.live,
            health: &w.health,
            now: NOW,
        },
        path: "examples/bot-core",
    };
    document::document(&inputs, Some(&[]))
}

#[test]
fn the_document_of_a_fixed_snapshot_is_its_golden_and_has_every_section() {
    let w = world();
    let doc = make(&w);
    let titles: Vec<&str> = doc.sections.iter().map(|s| s.title).collect();
    assert_eq!(titles, SECTIONS);
    assert!(doc.sections.iter().all(|s| !s.blocks.is_empty()));
    let md = markdown(&doc);
    assert!(!md.contains('{'), "no raw JSON:\n{md}");
    for needle in [
        "drplan failover --to eu-west-1 --write examples/bot-core",
        "drplan incident declare --region us-east-1",
        "| 2026-12-01T11:00:00Z | eu-west-1 | us-east-1 | ops@laptop | 1m 35s | writers stopped |",
        "Dana Ops",
        "d-20261130",
    ] {
        assert!(md.contains(needle), "missing {needle:?} in\n{md}");
    }
    golden("bot-core.md", &md);
    golden("bot-core.html", &html(&doc));
    assert_eq!(md, markdown(&make(&w)), "the same inputs give the same bytes");
}

#[test]
fn the_checklist_is_the_status_reports() {
    let w = world();
    let doc = make(&w);
    let status = drplan_core::status::report(&drplan_core::status::Inputs {
        config: &w.config,
        prior: &w.prior,
        snapshot: &w.live,
        health: &w.health,
        now: NOW,
    });
    let marks = |c: &[document::Check]| c.iter().map(|c| (c.item.clone(), c.mark)).collect::<Vec<_>>();
    // Status evaluates no policies in core; the rest is the same.
    let (a, b) = (marks(&doc.checklist), marks(&status.checklist));
    assert_eq!(a.len(), document::ITEMS.len());
    for (x, y) in a.iter().zip(&b) {
        if x.0 != "policies passing" {
            assert_eq!(x, y);
        }
    }
    assert_eq!(doc.checklist[5].mark, Mark::Yes, "no incident recorded");
    // An open incident turns it ✗, with the incident as evidence, in both.
    let mut prior = w.prior.clone();
    prior.incidents.push(drplan_core::incident::Incident {
        id: "inc-1".into(),
        region: "us-east-1".into(),
        since: "2026-12-01T08:00:00Z".into(),
        reason: "ransomware".into(),
        declared_by: "oncall".into(),
        declared_at: "2026-12-01T09:00:00Z".into(),
        isolate_serving: false,
        closed_at: None,
        closed_by: None,
        keep_instances: false,
        evidence: Vec::new(),
    });
    let status = drplan_core::status::report(&drplan_core::status::Inputs {
        config: &w.config,
        prior: &prior,
        snapshot: &w.live,
        health: &w.health,
        now: NOW,
    });
    assert_eq!(status.checklist[5].mark, Mark::No);
    assert!(status.checklist[5].evidence.contains("inc-1 open on us-east-1"), "{:?}", status.checklist[5]);
}

#[test]
fn a_recorded_failover_spends_its_downtime_of_the_budget() {
    let w = world();
    let f = &w.prior.history.failovers[0];
    assert_eq!(f.downtime_seconds, Some(95));
    let before = uptime::budget(99.9, &Default::default(), NOW);
    let after = uptime::budget(99.9, &w.prior.history, NOW);
    assert_eq!(before.remaining_seconds - after.remaining_seconds, 95);
    let status = drplan_core::status::report(&drplan_core::status::Inputs {
        config: &w.config,
        prior: &w.prior,
        snapshot: &w.live,
        health: &w.health,
        now: NOW,
    });
    assert_eq!(status.uptime_budget.unwrap().remaining_seconds, 31_536 - 95);
}

#[test]
fn a_failover_estimated_longer_than_the_budget_left_is_warned_in_its_plan() {
    let mut w = world();
    for r in &mut w.config.regions {
        r.role = match r.name.as_str() {
            "eu-west-1" => drplan_core::config::Role::Active,
            "us-east-1" => drplan_core::config::Role::Standby,
            _ => r.role,
        };
    }
    let options = drplan_core::plan::Options { now: Some(NOW), ..Default::default() };
    let warned = |w: &World| {
        let p = drplan_core::plan::plan(&w.config, &w.prior, Some(&w.live), &options).unwrap();
        assert!(p.posture.rto.as_ref().is_some_and(|r| !r.hypothetical), "the plan fails over");
        p.safety.iter().any(|d| d.code == drplan_core::Code::UptimeBudget)
    };
    assert!(!warned(&w), "8h 44m left");
    // A watcher's failover two hours ago that took 8h 40m of the 8h 45m 36s.
    w.prior.history.push(uptime::record(
        None,
        Some("us-east-1".into()),
        "eu-west-1".into(),
        "drplan watch on ops".into(),
        NOW - 7_200,
        (Some(NOW - 7_200 - 31_140), FROM_HEALTH),
        Some(NOW - 7_200),
        60,
    ));
    assert!(warned(&w), "less left than the failover's estimate");
}
