//! Policy evaluation on the plan benchmark's document: the 100,000-resource failover of
//! `drplan-core`'s `plan` bench, checked against the four example policies
//! (`examples/policies`), as `drplan plan --policy examples/policies` does. Reports the
//! time on top of the plan: loading the policies, passing the document and evaluating.
//! Target: under 1 s.
//!
//! Run with `cargo bench --bench policy`.

#[path = "../core/benches/topology/mod.rs"]
mod topology;

use std::time::Instant;

use drplan_core::plan::doc::{Origin, PlanDoc};
use drplan_core::plan::{self, Options};

fn main() {
    let (after, prior, live) = topology::failover();
    let plan = plan::plan(&after, &prior, Some(&live), &Options::default()).expect("no cycle");
    let doc = PlanDoc::new(
        &plan,
        Origin { drplan_version: "bench".into(), configuration_hash: "bench".into(), prior_state: None },
        false,
    );
    let mut doc = doc;
    doc.capacity = drplan_core::plan::doc::capacity(&after);
    let dir = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policies"));
    let mut best: Option<f64> = None;
    for round in 0..3 {
        let t0 = Instant::now();
        let mut policies =
            drplan::policy::load(std::slice::from_ref(&dir)).unwrap_or_else(|f| panic!("{:?}", f.diagnostics));
        let t1 = Instant::now();
        let results = policies.evaluate(&doc, &[]).unwrap_or_else(|f| panic!("{:?}", f.diagnostics));
        let t2 = Instant::now();
        let total = (t2 - t0).as_secs_f64();
        println!(
            "round {round}: {} resource changes, {} actions: load {:.3} s + input and evaluation {:.3} s = {total:.3} s; {} result(s): {:?}",
            doc.resource_changes.len(),
            doc.actions.len(),
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            results.len(),
            results.iter().map(|r| r.msg.as_str()).collect::<Vec<_>>(),
        );
        best = Some(best.map_or(total, |b: f64| b.min(total)));
    }
    if let Some(b) = best {
        println!("best: policy evaluation {b:.3} s on top of the plan");
    }
}
