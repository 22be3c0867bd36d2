//! Apply's scheduler against the fake provider with a fixed latency per call: wall time
//! compared with the critical-path bound — the longest dependency chain's latency, or the
//! work divided by the parallelism when that is larger. Target: within 1.2×.
//!
//! Run with `cargo bench --bench apply`.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use drplan::apply::{Gate, Recorder, Settings, execute};
use drplan_core::plan::doc::{Origin, PlanDoc};
use drplan_core::plan::{self, Change, Observed, Options, Prior};
use drplan_core::{SourceFile, config};
use drplan_provider_fake::FakeProvider;

const LATENCY: Duration = Duration::from_millis(20);

struct SlowGate;

impl Gate for SlowGate {
    async fn wait(&self, _: &str, _: &str) -> Result<(), String> {
        tokio::time::sleep(LATENCY).await;
        Ok(())
    }
}

struct Discard;

impl Recorder for Discard {
    fn record(&mut self, _: &Change, _: Option<Observed>) -> Result<(), String> {
        Ok(())
    }
}

fn doc(active_instances: u32) -> PlanDoc {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/bot-core/main.hcl"))
        .unwrap()
        .replace("count         = { active = 3,", &format!("count         = {{ active = {active_instances},"));
    let config = config::load(&[SourceFile::new("main.hcl", text)], &|_| None).config.expect("valid");
    let plan = plan::plan(&config, &Prior::default(), None, &Options::default()).expect("no cycle");
    PlanDoc::new(
        &plan,
        Origin { drplan_version: "bench".into(), configuration_hash: "bench".into(), prior_state: None },
        false,
    )
}

/// The least time any schedule could take: the longest chain of latencies, or all the work
/// spread evenly over the parallelism.
fn bound(doc: &PlanDoc, parallelism: usize) -> (Duration, Duration) {
    let position: std::collections::HashMap<&str, usize> =
        doc.actions.iter().enumerate().map(|(i, a)| (a.id.as_str(), i)).collect();
    let weight = |kind: &str| if kind == "barrier" { 0 } else { 1 };
    let mut depth = vec![0u32; doc.actions.len()];
    for (i, a) in doc.actions.iter().enumerate() {
        let before = a.depends_on.iter().map(|d| depth[position[d.as_str()]]).max().unwrap_or(0);
        depth[i] = before + weight(&a.kind);
    }
    let chain = LATENCY * depth.iter().copied().max().unwrap_or(0);
    let work: u32 = doc.actions.iter().map(|a| weight(&a.kind)).sum();
    let spread = LATENCY * work.div_ceil(parallelism as u32);
    (chain, spread)
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for (instances, parallelism) in [(200, 10), (200, 50), (1_000, 100)] {
        let doc = doc(instances);
        let (chain, spread) = bound(&doc, parallelism);
        let floor = chain.max(spread);
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let cloud = FakeProvider::everything().with_latency(LATENCY);
            let settings = Settings {
                project: "bot-core".into(),
                plan_id: "bench".into(),
                parallelism,
                skip_health_gate: false,
                retry_budget: Duration::from_secs(5),
            };
            let start = Instant::now();
            let summary = runtime
                .block_on(execute(&doc, &cloud, &SlowGate, &settings, &mut Discard, &AtomicBool::new(false), |_| {}))
                .expect("runs");
            assert!(summary.ok(), "{summary:?}");
            best = best.min(start.elapsed());
        }
        println!(
            "{} actions, parallelism {parallelism}, {} ms per call: wall {:.3} s, bound {:.3} s (chain {:.3} s, work/parallelism {:.3} s), ratio {:.2}",
            doc.actions.len(),
            LATENCY.as_millis(),
            best.as_secs_f64(),
            floor.as_secs_f64(),
            chain.as_secs_f64(),
            spread.as_secs_f64(),
            best.as_secs_f64() / floor.as_secs_f64()
        );
    }
}
