//! The engine owns every gate: a plan that a policy denies, or whose safety a hand edit
//! removed, is not carried out by `drplan::engine::apply`, whatever the document's own
//! `applyable` flag says. Library-level, against `examples/bot-core` converged on the
//! emulators: the failover is planned through the library from state, the document is then
//! tampered with as a hand-edited saved plan would be, and `engine::apply` must refuse it
//! before touching any cloud (the Deployments the failover would scale keep their replicas,
//! the PRIMARY record and the state stay as they were).

use crate::support;

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use drplan::engine::{self, ApplyOptions, PolicyRequest, Request};
use drplan_core::SourceFile;
use drplan_core::config::edit;
use support::bot_core::{self, World, replicas};

fn failover_planned(w: &World, policy: Option<&std::path::Path>) -> engine::Planned {
    let path = w.config();
    let files = drplan::load::files(&path).expect("the configuration's files");
    let sources: Vec<SourceFile> =
        files.iter().map(|f| SourceFile::new(f.display().to_string(), std::fs::read_to_string(f).unwrap())).collect();
    let edited = edit::edit_roles(&sources, "eu-west-1", "us-east-1").expect("the role edit").sources;
    let request = Request {
        path: &path,
        sources: Some(edited),
        // From state alone: the test process holds no cloud credentials, and the gates
        // must refuse before any cloud is asked anything.
        refresh: false,
        targets: &[],
        allow_unreachable: false,
        lock: Some("apply"),
        lock_timeout: Duration::from_secs(5),
        restore_point: None,
        allow_suspect: false,
        accept_data_loss: false,
        restore_only: None,
        fail_back: false,
        policy: PolicyRequest { dirs: policy.map(|p| vec![p.to_path_buf()]).unwrap_or_default(), namespaces: vec![] },
    };
    engine::plan(&request, &mut |_| {}).unwrap_or_else(|f| panic!("the failover plans: {:?}", f.diagnostics))
}

fn options() -> ApplyOptions {
    ApplyOptions {
        parallelism: 4,
        skip_health_gate: true,
        health_timeout: Duration::from_secs(5),
        rollout_timeout: Some(Duration::from_secs(5)),
        allow_unreachable: false,
        keep_override: false,
        down_since: None,
    }
}

fn apply(planned: &mut engine::Planned) -> Result<engine::Applied, engine::Failed> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(engine::apply(planned, &options(), &AtomicBool::new(false), |_| {}))
}

fn codes(f: &engine::Failed) -> Vec<String> {
    f.diagnostics.iter().map(|d| d.code.as_str().to_string()).collect()
}

fn assert_untouched(w: &World, serial: u64) {
    assert_eq!(replicas(&w.euw1), vec![1, 1, 0], "the standby was not scaled up");
    assert_eq!(replicas(&w.use1), vec![3, 3, 2], "the active was not scaled down");
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("use1.bot-core.com"));
    assert_eq!(w.state()["serial"].as_u64(), Some(serial), "no state was written");
}

#[test]
fn a_denied_or_reordered_plan_is_not_applied_through_the_library_whatever_its_flags_say() {
    let w = bot_core::world(|c| c);
    w.converge();
    let serial = w.state()["serial"].as_u64().unwrap();
    let policies = w.dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(policies.join("promotions.rego"), support::DENY_PROMOTIONS).unwrap();

    // The policy speaks on the library's plan: no command evaluated it.
    let mut planned = failover_planned(&w, Some(&policies));
    assert!(drplan_core::policy::denied(&planned.doc), "{:#?}", planned.doc.policy);
    assert!(!planned.doc.applyable);
    assert!(matches!(engine::check(&planned, false), Err(engine::Refusal::Denied(_))));
    // A hand-edited document that drops the denial and claims to be applyable.
    planned.doc.policy.clear();
    planned.doc.applyable = true;
    let refused = apply(&mut planned).expect_err("a denied plan is refused");
    assert!(codes(&refused).contains(&"drplan::policy::denied".to_string()), "{:?}", refused.diagnostics);
    let help = refused.diagnostics.iter().filter_map(|d| d.help.clone()).collect::<Vec<_>>().join("\n");
    assert!(help.contains("no automatic promotion of eu-west-1"), "the rule is named: {help}");
    drop(planned);
    assert_untouched(&w, serial);

    // A policy that fails to evaluate on the plan counts as a denial (here it was added
    // after the plan was made, as a saved plan meets a policy added since).
    let broken = w.dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    let failing = "package main\n\nimport rego.v1\n\ndeny contains msg if {\n\tn := to_number(input.project)\n\tmsg := sprintf(\"%v\", [n])\n}\n";
    std::fs::write(broken.join("failing.rego"), failing).unwrap();
    let mut broken_planned = failover_planned(&w, None);
    broken_planned.policy = engine::Policy { dirs: vec![broken], namespaces: vec![] };
    let refused = apply(&mut broken_planned).expect_err("an unevaluable policy refuses");
    let codes = codes(&refused);
    assert!(codes.contains(&"drplan::policy::evaluation".to_string()), "{:?}", refused.diagnostics);
    assert!(codes.contains(&"drplan::policy::denied".to_string()), "{:?}", refused.diagnostics);
    drop(broken_planned);
    assert_untouched(&w, serial);

    // No policy, but the health gate removed from the order by hand: traffic would move
    // before the new region proved healthy. The engine rebuilds the order and refuses.
    let mut planned = failover_planned(&w, None);
    assert!(engine::check(&planned, false).is_ok(), "the untouched failover passes the gates");
    let gate = planned.doc.actions.iter().position(|a| a.kind == "health_gate").expect("a health gate");
    let gate_id = planned.doc.actions.remove(gate).id;
    for a in &mut planned.doc.actions {
        a.depends_on.retain(|d| *d != gate_id);
    }
    let refused = apply(&mut planned).expect_err("a reordered plan is refused");
    let help = refused.diagnostics.iter().filter_map(|d| d.help.clone()).collect::<Vec<_>>().join("\n");
    assert!(help.contains("order differ"), "{help}");
    drop(planned);
    assert_untouched(&w, serial);
}
