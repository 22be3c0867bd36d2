//! `drplan drill --to REGION [PATH] [--restore] [--json|--markdown]`: a non-disruptive
//! rehearsal of a failover to REGION that measures the real RTO and always tears down;
//! `drplan drill --cleanup` finishes the teardown of a drill killed outright. Exit 0 when the
//! drill passed (or there was nothing to clean up), 1 when it failed, 130 when interrupted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use drplan::apply::Event;
use drplan::drill::{self, DrillRequest, Drilled};
use drplan_core::drill::{INTERRUPTED, PASSED, Report};

use super::{EXIT_ERROR, EXIT_OK};
use crate::output::Output;

/// Exit code after an interrupt, as shells report SIGINT.
const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A configuration directory (its *.hcl files are merged) or a single file.
    #[arg(default_value = ".")]
    path: std::path::PathBuf,
    /// The standby or cold region to rehearse a failover to.
    #[arg(long = "to", value_name = "REGION", required_unless_present = "cleanup")]
    to: Option<String>,
    /// Also run the restore Job, into scratch (`DRPLAN_DRILL=true` in its environment).
    #[arg(long, conflicts_with = "cleanup")]
    restore: bool,
    /// Finish the teardown of a drill that was killed outright (idempotent).
    #[arg(long)]
    cleanup: bool,
    /// Print the report as JSON.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print the report as Markdown (for a ticket or a pull request).
    #[arg(long)]
    markdown: bool,
    /// Wait this long for another drplan holding the state lock (e.g. `30s`, `5m`).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = super::parse_duration)]
    lock_timeout: Duration,
    /// How long the region's health gate may take.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = super::parse_duration)]
    health_timeout: Duration,
    /// How long a Deployment scaled up in the region may take to become available [default: twice `objectives.estimates.workload`].
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    rollout_timeout: Option<Duration>,
    /// How many actions may run at once.
    #[arg(long, default_value_t = 10, value_name = "N")]
    parallelism: usize,
}

pub fn exec(args: Args, out: &mut Output) -> u8 {
    let stop = Arc::new(AtomicBool::new(false));
    watch_interrupts(stop.clone(), out.clone());
    let mut lines = Output { quiet: false, ..out.clone() };
    let mut on_event = |e: &Event| match e {
        Event::Started { id } => lines.note(&format!("  started  {id}")),
        Event::Finished { id, elapsed } => lines.note(&format!("  done     {id} ({:.1}s)", elapsed.as_secs_f64())),
        Event::Failed { id, error } => lines.note(&format!("  FAILED   {id}: {error}")),
        Event::Skipped { id, why } => lines.note(&format!("  skipped  {id}: {why}")),
        Event::Progress { id, message } => lines.note(&format!("  waiting  {id}: {message}")),
    };
    let result = if args.cleanup {
        let mut observe = |e: drplan::engine::Event<'_>| out.pipeline(&e);
        match drill::cleanup(&args.path, args.lock_timeout, args.parallelism, &mut observe, &mut on_event) {
            Ok(None) => {
                out.note("No drill to clean up: every drill recorded in state finished its teardown.");
                return EXIT_OK;
            }
            Ok(Some(d)) => Ok(d),
            Err(f) => Err(f),
        }
    } else {
        let request = DrillRequest {
            path: &args.path,
            region: args.to.as_deref().unwrap_or_default(),
            restore: args.restore,
            lock_timeout: args.lock_timeout,
            health_timeout: args.health_timeout,
            rollout_timeout: args.rollout_timeout,
            parallelism: args.parallelism,
        };
        let mut observe = |e: drplan::engine::Event<'_>| out.pipeline(&e);
        drill::run(&request, &stop, &mut observe, &mut on_event)
    };
    let drilled: Drilled = match result {
        Ok(d) => d,
        Err(failed) => {
            out.diagnostics(&[], &failed.diagnostics);
            return EXIT_ERROR;
        }
    };
    let report =
        Report { format_version: drplan_core::drill::FORMAT_VERSION, project: &drilled.project, drill: &drilled.drill };
    if args.json {
        out.raw(&report.to_json());
    } else if args.markdown {
        out.raw(&report.markdown());
    } else {
        out.raw(&report.human());
    }
    if let Some(d) = drilled.record_failed {
        return out.report(&[], d);
    }
    match drilled.drill.result.as_str() {
        PASSED | drplan_core::drill::ABANDONED => EXIT_OK,
        INTERRUPTED => EXIT_INTERRUPTED,
        _ => EXIT_ERROR,
    }
}

/// First Ctrl-C (or SIGTERM): the drill starts nothing more and tears down. Second: exit at
/// once; the drill stays recorded as running and `drplan drill --cleanup` finishes it.
fn watch_interrupts(stop: Arc<AtomicBool>, mut out: Output) {
    // On the process's one runtime, whose workers run it while the drill blocks on its own
    // work (the signal listeners are registered before this returns).
    let Ok(runtime) = drplan::runtime::shared() else { return };
    use tokio::signal::unix::{SignalKind, signal};
    let _entered = runtime.enter();
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return;
    };
    runtime.spawn(async move {
        tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
        stop.store(true, Ordering::SeqCst);
        out.note("\nStopping the drill: nothing more starts; its teardown runs now. Interrupt again to exit at once (then run `drplan drill --cleanup`).");
        tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
        out.note("Interrupted again: exiting; the drill's teardown is owed: run `drplan drill --cleanup`.");
        let _ = drplan_state::release_all();
        std::process::exit(i32::from(EXIT_INTERRUPTED));
    });
}
