//! Apply's scheduler against the fake provider with a fixed latency per call: wall time
//! compared with the critical-path bound — the longest dependency chain's latency, or the
//! work divided by the parallelism when that is larger. Target: within 1.2×.
//!
//! Run with `cargo bench --bench apply`.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use drplan::apply::{Gate, Recorder, Settings, StateRecorder, execute};
use drplan_core::plan::doc::{Origin, PlanDoc};
use drplan_core::plan::{self, Change, Observed, Options, Prior};
use drplan_core::{SourceFile, config};
use drplan_provider_fake::FakeProvider;

const LATENCY: Duration = Duration::from_millis(20);

struct SlowGate;

impl Gate for SlowGate {
    async fn wait(&self, _: &str, _: &str) -> Result<(), drplan::apply::StepError> {
        tokio::time::sleep(LATENCY).await;
        Ok(())
    }
}

struct Discard;

impl Recorder for Discard {
    fn record(&mut self, _: &Change, _: Option<Observed>) {}

    fn save(&mut self) -> Result<(), drplan::apply::StepError> {
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

/// The least time any schedule with `parallelism` slots could take, in latencies. The plain
/// critical path (the longest chain) and the work spread over the slots are both lower
/// bounds; so is, for every action, the time its prerequisites need at best (their own
/// longest chain, or their work spread over the slots) plus the chain from it to the end.
/// The last is the critical path given the parallelism: 200 launches at parallelism 50 take
/// four rounds before the health gate can start, whatever the order.
struct Bound {
    chain: u32,
    spread: u32,
    given_parallelism: u32,
}

fn bound(doc: &PlanDoc, parallelism: usize) -> Bound {
    let n = doc.actions.len();
    let position: std::collections::HashMap<&str, usize> =
        doc.actions.iter().enumerate().map(|(i, a)| (a.id.as_str(), i)).collect();
    let weight: Vec<u32> = doc.actions.iter().map(|a| if a.kind == "barrier" { 0 } else { 1 }).collect();
    let p = parallelism as u32;
    // Actions come in dependency order, so one pass forward gives depths and ancestor sets.
    let mut depth = vec![0u32; n];
    let mut ancestors: Vec<Vec<u64>> = vec![vec![0u64; n.div_ceil(64)]; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, a) in doc.actions.iter().enumerate() {
        for d in &a.depends_on {
            let d = position[d.as_str()];
            dependents[d].push(i);
            depth[i] = depth[i].max(depth[d]);
            let (before, after) = ancestors.split_at_mut(i);
            for (mine, theirs) in after[0].iter_mut().zip(&before[d]) {
                *mine |= theirs;
            }
            after[0][d / 64] |= 1 << (d % 64);
        }
        depth[i] += weight[i];
    }
    let mut height = vec![0u32; n];
    for i in (0..n).rev() {
        height[i] = weight[i] + dependents[i].iter().map(|&d| height[d]).max().unwrap_or(0);
    }
    let chain = depth.iter().copied().max().unwrap_or(0);
    let work: u32 = weight.iter().sum();
    let spread = work.div_ceil(p);
    let given_parallelism = (0..n)
        .map(|i| {
            let before_work: u32 =
                (0..n).filter(|&j| ancestors[i][j / 64] >> (j % 64) & 1 == 1).map(|j| weight[j]).sum();
            let before = (depth[i] - weight[i]).max(before_work.div_ceil(p));
            before + height[i]
        })
        .max()
        .unwrap_or(0)
        .max(chain)
        .max(spread);
    Bound { chain, spread, given_parallelism }
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (instances, parallelism, to_file) in
        [(200, 10, false), (200, 50, false), (1_000, 100, false), (1_000, 100, true)]
    {
        let doc = doc(instances);
        let b = bound(&doc, parallelism);
        let floor = LATENCY * b.given_parallelism;
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let cloud = FakeProvider::everything().with_latency(LATENCY);
            let settings = Settings {
                project: "bot-core".into(),
                plan_id: "bench".into(),
                parallelism,
                skip_health_gate: false,
                rollout_timeout: Duration::from_secs(5),
                fence: None,
            };
            // Written as `drplan apply` writes it: the whole state, temp file, fsync, rename.
            let backend = drplan_state::LocalBackend::new(dir.path().join(format!("{instances}-{parallelism}.json")));
            let mut file = StateRecorder {
                backend: &backend,
                file: drplan_state::StateFile::new("bot-core", "bench"),
                prior: Prior::default(),
            };
            let stop = AtomicBool::new(false);
            let start = Instant::now();
            let summary = if to_file {
                runtime.block_on(execute(&doc, &cloud, &SlowGate, &settings, &mut file, &stop, |_| {}))
            } else {
                runtime.block_on(execute(&doc, &cloud, &SlowGate, &settings, &mut Discard, &stop, |_| {}))
            }
            .expect("runs");
            assert!(summary.ok(), "{summary:?}");
            best = best.min(start.elapsed());
        }
        println!(
            "{} actions, parallelism {parallelism}, {} ms per call, {}: wall {:.3} s; bound {:.3} s ({} latencies: chain {}, work/parallelism {}, critical path given the parallelism {}); ratio {:.2} (over the plain chain or spread: {:.2})",
            doc.actions.len(),
            LATENCY.as_millis(),
            if to_file { "state written to a file after each change" } else { "state discarded" },
            best.as_secs_f64(),
            floor.as_secs_f64(),
            b.given_parallelism,
            b.chain,
            b.spread,
            b.given_parallelism,
            best.as_secs_f64() / floor.as_secs_f64(),
            best.as_secs_f64() / (LATENCY * b.chain.max(b.spread)).as_secs_f64(),
        );
    }
}
