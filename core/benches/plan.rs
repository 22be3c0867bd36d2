//! Plans a synthetic topology of 100,000 instances failing over (about 75,000 changes)
//! and reports wall time and peak heap per phase. Targets: under 1 s, under 500 MB.
//!
//! Run with `cargo bench -p drplan-core --bench plan`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use drplan_core::plan::doc::{Origin, PlanDoc};
use drplan_core::plan::{self, Options, desired};
use drplan_core::render;

/// Counts live heap bytes and remembers the peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

mod topology;

fn main() {
    let (after, prior, live) = topology::failover();
    let resources = prior.objects.len();

    // Phase by phase, once, to see where the time goes.
    let t = Instant::now();
    let want = desired::desired(&after);
    let t_desired = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let d = plan::diff::diff(&want, &prior, Some(&live));
    let t_diff = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let g = plan::graph::build(&d.changes, plan::graph::Context::serving(Some("us-east-2"))).expect("no cycle");
    let t_graph = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let _ = plan::safety::check(&after, &prior, &d.changes, &g, &want, false);
    let t_safety = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let _ = plan::posture::assess(&after, &want, &prior, Some(&live), &d.changes, &g, &Default::default(), None);
    let t_posture = t.elapsed().as_secs_f64();
    println!(
        "phases: desired {t_desired:.3} s, diff {t_diff:.3} s, graph {t_graph:.3} s, safety {t_safety:.3} s, posture {t_posture:.3} s"
    );

    // The default path of `drplan plan`: plan, document, human rendering. The peak covers
    // everything alive at once: inputs, plan, document and the rendered text.
    let mut best: Option<(f64, String)> = None;
    for round in 0..3 {
        PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
        let base = LIVE.load(Ordering::Relaxed);
        let t0 = Instant::now();
        let plan = plan::plan(&after, &prior, Some(&live), &Options::default()).expect("no cycle");
        let t1 = Instant::now();
        let doc = PlanDoc::new(
            &plan,
            Origin { drplan_version: "bench".into(), configuration_hash: "bench".into(), prior_state: None },
            false,
        );
        let t2 = Instant::now();
        let human = render::human(&doc, false);
        let t3 = Instant::now();
        let total = (t3 - t0).as_secs_f64();
        let peak_mb = (PEAK.load(Ordering::Relaxed) - base) as f64 / 1e6;
        let line = format!(
            "{resources} resources, {} changes, {} actions: plan {:.3} s + document {:.3} s + human rendering {:.3} s ({} KB) = {total:.3} s, peak heap {peak_mb:.0} MB",
            doc.resource_changes.len(),
            doc.actions.len(),
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            (t3 - t2).as_secs_f64(),
            human.len() / 1000,
        );
        println!("round {round}: {line}");
        if best.as_ref().is_none_or(|(t, _)| total < *t) {
            best = Some((total, line));
        }
        if round == 0 {
            drop(human);
            let t = Instant::now();
            let json = doc.to_json();
            let t_json = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let markdown = render::markdown(&doc);
            let t_md = t.elapsed().as_secs_f64();
            println!(
                "other renderings: --json {t_json:.3} s ({} KB), --markdown {t_md:.3} s ({} characters)",
                json.len() / 1000,
                markdown.len()
            );
        }
    }
    if let Some((_, line)) = best {
        println!("best: {line}");
    }
}
