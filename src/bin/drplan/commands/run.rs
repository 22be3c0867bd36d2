//! Carrying a plan out, for the commands that change the clouds (`apply`, `restore`): the
//! options they share, the confirmation, the run under the state lock with progress, the
//! interrupt handling and the summary.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use drplan_core::plan::doc::PlanDoc;
use drplan_core::{Code, Diagnostic};

use super::{EXIT_ERROR, EXIT_OK};
use crate::output::Output;
use crate::progress::Progress;
use drplan::engine::{self, ApplyOptions, Planned};

/// Exit code after an interrupt, as shells report SIGINT.
const EXIT_INTERRUPTED: u8 = 130;

/// How a plan is carried out.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Apply without asking for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// Report progress as JSON lines on stdout.
    #[arg(long)]
    pub json: bool,
    /// How many actions may run at once.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub parallelism: usize,
    /// Move DNS without waiting for the new region's health check (a declared emergency).
    #[arg(long)]
    pub skip_health_gate: bool,
    /// How long the health gate waits for the new serving region to be healthy.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = super::parse_duration)]
    pub health_timeout: Duration,
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = parse_positive_duration,
        help = "How long a Deployment scaled up in the region taking traffic may take to become available [default: twice `objectives.estimates.workload`, 3m without it]"
    )]
    pub rollout_timeout: Option<Duration>,
}

/// What is carried out, with the lock and state it runs under.
pub struct Run {
    /// The plan (for a saved one, its document in place of the fresh plan's).
    pub planned: Planned,
    /// The configuration planned, for the `drplan state unlock ID PATH` a message may name.
    pub config_path: PathBuf,
}

/// A duration that must be longer than zero: waiting zero seconds for a rollout would fail
/// every failover.
fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match super::parse_duration(s)? {
        d if d.is_zero() => Err("must be longer than zero, e.g. 2m".to_string()),
        d => Ok(d),
    }
}

/// The plan about to run: for people, the usual rendering; with --json, a first event line
/// (stdout then carries JSON lines only).
pub fn show_plan(doc: &PlanDoc, json: bool, out: &mut Output) {
    if json {
        let c = drplan_core::render::counts(doc);
        let counts: serde_json::Map<String, serde_json::Value> =
            c.iter().map(|(k, n)| (k.to_string(), (*n).into())).collect();
        out.raw(&format!("{}\n", serde_json::json!({"type": "plan", "project": doc.project, "changes": counts, "actions": doc.actions.len(), "applyable": doc.applyable})));
    } else {
        out.plan(doc, false, false);
    }
}

pub fn confirm(doc: &PlanDoc, out: &mut Output) -> bool {
    if !std::io::stdin().is_terminal() {
        out.report(&[], Diagnostic::error(Code::PlanFile, "apply needs confirmation").help(
            "no terminal to ask on: review the plan and pass --auto-approve (for CI, apply a saved plan: `drplan plan --out FILE`, then `drplan apply FILE --auto-approve`)",
        ));
        return false;
    }
    let n = doc.resource_changes.len();
    out.prompt(&format!("\nApply these {n} changes? Only 'yes' continues: "));
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim() == "yes" {
        return true;
    }
    out.note("Apply cancelled; nothing was changed.");
    false
}

pub fn execute(args: &RunArgs, allow_unreachable: bool, run: &mut Run, out: &mut Output) -> u8 {
    let runtime = match drplan::runtime::shared() {
        Ok(r) => r,
        Err(d) => return out.report(&[], d),
    };
    let options = ApplyOptions {
        parallelism: args.parallelism,
        skip_health_gate: args.skip_health_gate,
        health_timeout: args.health_timeout,
        rollout_timeout: args.rollout_timeout,
        allow_unreachable,
        keep_override: false,
        down_since: None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(Mutex::new(Progress::new(args.json, run.planned.doc.actions.len())));
    let started = progress.lock().unwrap_or_else(PoisonError::into_inner).started();
    // Shared with the interrupt watcher, which gives it back before a second Ctrl-C exits.
    let lock = Arc::new(Mutex::new(run.planned.lock.take()));
    let unlock = format!("drplan state unlock {{id}}{}", super::path_arg(&run.config_path));
    let (result, interrupts) = runtime.block_on(async {
        let interrupts = watch_interrupts(stop.clone(), progress.clone(), lock.clone(), unlock);
        let result = engine::apply(&mut run.planned, &options, &stop, |e| {
            progress.lock().unwrap_or_else(PoisonError::into_inner).event(e);
        })
        .await;
        (result, interrupts)
    });
    // The apply is over: the lock is given back now (the process's runtime outlives this
    // command), and a signal from here on is no longer the apply's to handle.
    interrupts.abort();
    drop(lock.lock().unwrap_or_else(PoisonError::into_inner).take());
    progress.lock().unwrap_or_else(PoisonError::into_inner).finish();
    let applied = match result {
        Ok(a) => a,
        Err(failed) => {
            out.diagnostics(&failed.sources, &failed.diagnostics);
            return super::EXIT_ERROR;
        }
    };
    if let Some(d) = applied.record_failed {
        return out.report(&[], d);
    }
    let summary = &applied.summary;
    let line = format!(
        "Apply {}: {} succeeded, {} failed, {} skipped, {} not started, in {:.1}s. State serial {}.",
        if summary.interrupted {
            "interrupted"
        } else if summary.ok() {
            "complete"
        } else {
            "failed"
        },
        summary.succeeded.len(),
        summary.failed.len(),
        summary.skipped.len(),
        summary.not_started.len(),
        started.elapsed().as_secs_f64(),
        applied.serial,
    );
    if args.json {
        out.raw(&format!("{}\n", serde_json::json!({"type": "summary", "succeeded": summary.succeeded, "failed": summary.failed, "skipped": summary.skipped, "not_started": summary.not_started, "interrupted": summary.interrupted, "serial": applied.serial})));
    }
    out.note(&format!("\n{line}"));
    for (id, e) in &summary.failed {
        out.note(&format!("  failed:  {id}: {e}"));
    }
    if let Some(why) = &summary.fenced {
        out.note(&format!("  stopped: {why}; nothing more was changed. `drplan plan` shows where things stand."));
    }
    for (region, skipped) in &applied.owed {
        out.note(&format!(
            "  skipped in {region}, declared lost: {}\n  The fence of {region} is owed: `drplan plan` shows it, and the first apply after {region} answers again carries it out first.",
            skipped.join(", ")
        ));
    }
    for region in &applied.fenced {
        out.note(&format!("  {region} is fenced: it answers again and holds its new role."));
    }
    if !summary.not_started.is_empty() {
        out.note("Run `drplan apply` again to finish: what was done is in state, and anything created but not recorded is adopted.");
    }
    if summary.interrupted {
        EXIT_INTERRUPTED
    } else if summary.ok() {
        EXIT_OK
    } else {
        EXIT_ERROR
    }
}

/// Gives the state lock back, waiting a few seconds at most for a store that does not
/// answer; `Err` names the exact unlock command (`unlock` with `{id}` in it) to run instead.
fn release_now(lock: &Mutex<Option<drplan_state::Lock>>, unlock: &str) -> Result<(), String> {
    let Some(lock) = lock.lock().unwrap_or_else(PoisonError::into_inner).take() else { return Ok(()) };
    let command = unlock.replace("{id}", &lock.info.id);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(lock.release());
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(why)) => {
            Err(format!("The state lock could not be released ({why}): run `{command}` before anything else."))
        }
        Err(_) => Err(format!("The state lock could not be released in time: run `{command}` before anything else.")),
    }
}

/// First Ctrl-C (or SIGTERM): stop scheduling, let running actions finish. Second: give the
/// state lock back and exit now, naming the actions that were still running (started, not
/// yet recorded), and the unlock command if the lock could not be given back.
fn watch_interrupts(
    stop: Arc<AtomicBool>,
    progress: Arc<Mutex<Progress>>,
    lock: Arc<Mutex<Option<drplan_state::Lock>>>,
    unlock: String,
) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    // Listening from here on, across both rounds: a listener created only after the first
    // signal would miss a second one sent right behind it.
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    let mut terminate = signal(SignalKind::terminate()).ok();
    async fn next(s: &mut Option<Signal>) {
        match s {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    tokio::spawn(async move {
        tokio::select! { () = next(&mut interrupt) => {}, () = next(&mut terminate) => {} }
        stop.store(true, Ordering::SeqCst);
        progress.lock().unwrap_or_else(PoisonError::into_inner).message(
            "\nStopping: no new actions start; calls under way finish and are recorded, long waits (a health gate, a rollout, a restore Job) are abandoned for the next run. Interrupt again to exit at once.",
        );
        tokio::select! { () = next(&mut interrupt) => {}, () = next(&mut terminate) => {} }
        let released = release_now(&lock, &unlock);
        let mut progress = progress.lock().unwrap_or_else(PoisonError::into_inner);
        let running = progress.running();
        if let Err(unlock) = &released {
            progress.message(unlock);
        }
        if running.is_empty() {
            progress.message("Interrupted again: exiting at once. No action was running; what finished is in state.");
        } else {
            // Only a command that will work: with the lock still held, its unlock comes first.
            let next = if released.is_ok() { "Run" } else { "Then run" };
            progress.message(&format!(
                "Interrupted again: exiting at once. These actions were still running and may be incomplete, or complete but not recorded in state:\n  {}\n{next} `drplan plan` to see where things stand; the next apply adopts what they created.",
                running.join("\n  ")
            ));
        }
        progress.finish();
        std::process::exit(i32::from(EXIT_INTERRUPTED));
    })
}
