//! `drplan apply [PATH|PLANFILE]`: carry a plan out, recording every finished action in
//! state at once. A saved plan is applied exactly as written, or refused when stale.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use drplan_core::plan::doc::PlanDoc;
use drplan_core::{Code, Diagnostic};

use super::{EXIT_ERROR, EXIT_OK, ThenNone};
use super::{PlanArgs, planned};
use crate::output::Output;
use crate::progress::Progress;
use drplan::engine::{self, ApplyOptions, Planned, configuration_hash};

/// Exit code after an interrupt, as shells report SIGINT.
const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    plan: PlanArgs,
    /// With a saved plan: the configuration it was made from (default: where the plan
    /// recorded it, else the current directory).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Apply without asking for confirmation.
    #[arg(long)]
    auto_approve: bool,
    /// Report progress as JSON lines on stdout.
    #[arg(long)]
    json: bool,
    /// How many actions may run at once.
    #[arg(long, default_value_t = 10, value_name = "N")]
    parallelism: usize,
    /// Move DNS without waiting for the new region's health check (a declared emergency).
    #[arg(long)]
    skip_health_gate: bool,
    /// How long the health gate waits for the new serving region to be healthy.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = super::parse_duration)]
    health_timeout: Duration,
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = parse_positive_duration,
        help = "How long a Deployment scaled up in the region taking traffic may take to become available [default: twice `objectives.estimates.workload`, 3m without it]"
    )]
    rollout_timeout: Option<Duration>,
}

/// A duration that must be longer than zero: waiting zero seconds for a rollout would fail
/// every failover.
fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match super::parse_duration(s)? {
        d if d.is_zero() => Err("must be longer than zero, e.g. 2m".to_string()),
        d => Ok(d),
    }
}

pub fn exec(args: Args, out: &mut Output) -> u8 {
    let saved = args.plan.path.is_file() && args.plan.path.extension().is_none_or(|e| e != "hcl");
    let prepared = if saved { prepare_saved(&args, out) } else { prepare_fresh(&args, out) };
    let Some(mut run) = prepared else { return EXIT_ERROR };
    if !run.planned.doc.has_changes() {
        out.note("No changes. Nothing to apply.");
        return EXIT_OK;
    }
    if !run.planned.doc.applyable {
        return out.report(&[], Diagnostic::error(Code::PlanFile, "this plan cannot be applied").help(
            "it breaks a safety rule or skips actions in unreachable regions (see the plan); fix the configuration, or pass --allow-unreachable once those regions are known to be lost",
        ));
    }
    if !args.auto_approve && !confirm(&run.planned.doc, out) {
        return EXIT_ERROR;
    }
    execute(&args, &mut run, out)
}

/// What apply carries out, with the lock and state it runs under.
struct Run {
    /// The plan (for a saved one, its document in place of the fresh plan's).
    planned: Planned,
    /// The configuration planned, for the `drplan state unlock ID PATH` a message may name.
    config_path: PathBuf,
}

fn prepare_fresh(args: &Args, out: &mut Output) -> Option<Run> {
    let planned = planned(&args.plan, Some("apply"), None, out)?;
    show_plan(&planned.doc, args.json, out);
    Some(Run { planned, config_path: args.plan.path.clone() })
}

fn prepare_saved(args: &Args, out: &mut Output) -> Option<Run> {
    let doc = match drplan::engine::read_plan(&args.plan.path) {
        Ok(d) => d,
        Err(d) => return out.report(&[], d).then_none(),
    };
    let config = match saved_configuration(args.config.as_ref(), &doc) {
        Ok(c) => c,
        Err(d) => return out.report(&[], d).then_none(),
    };
    let planned_args = PlanArgs { path: config.clone(), refresh: false, ..args.plan.clone() };
    // Plan again from state alone: only to load, lock and compare; the saved plan is what runs.
    let mut current = planned(&planned_args, Some("apply"), None, &mut Output { quiet: true, ..out.clone() })?;
    let stale = |why: String| {
        Diagnostic::error(Code::StalePlan, "saved plan is stale")
            .help(format!("{why}; nothing was changed. Make a new plan with `drplan plan --out FILE` and review it"))
    };
    let now_ref = current.state.as_ref().map(|s| (s.lineage.as_str(), s.serial));
    let then_ref = doc.prior_state.as_ref().map(|s| (s.lineage.as_str(), s.serial));
    let problem = if doc.configuration_hash != configuration_hash(&current.sources) {
        Some("the configuration changed since the plan was made".to_string())
    } else if now_ref.map(|r| r.0) != then_ref.map(|r| r.0) {
        Some("the state belongs to another lineage than the plan's".to_string())
    } else if now_ref.map(|r| r.1) != then_ref.map(|r| r.1) {
        Some(format!(
            "the state changed since the plan was made (serial {} then, {} now)",
            then_ref.map_or(0, |r| r.1),
            now_ref.map_or(0, |r| r.1)
        ))
    } else {
        None
    };
    if let Some(why) = problem {
        return out.report(&[], stale(why)).then_none();
    }
    show_plan(&doc, args.json, out);
    current.doc = doc;
    Some(Run { planned: current, config_path: config })
}

/// The configuration a saved plan is checked against and applied with: `--config`, else the
/// one the plan recorded (when it is still there), else the current directory's. The
/// staleness checks that follow prove it is the configuration the plan was made from.
fn saved_configuration(given: Option<&PathBuf>, doc: &PlanDoc) -> Result<PathBuf, Diagnostic> {
    if let Some(path) = given {
        return Ok(path.clone());
    }
    let has_configuration = |p: &std::path::Path| crate::load::files(p).is_ok_and(|f| !f.is_empty());
    let recorded = doc.configuration_path.as_deref().map(PathBuf::from);
    if let Some(path) = recorded.as_ref().filter(|p| has_configuration(p)) {
        return Ok(path.clone());
    }
    if has_configuration(std::path::Path::new(".")) {
        return Ok(PathBuf::from("."));
    }
    let (message, help) = match &recorded {
        Some(path) => (
            format!("the configuration of this plan is not in {} nor here", path.display()),
            format!(
                "the plan was made from {}; pass the directory that configuration is in now with `--config DIR`",
                path.display()
            ),
        ),
        None => (
            "no configuration here for this plan".to_string(),
            "the plan does not record where its configuration was; pass it with `--config DIR`".to_string(),
        ),
    };
    Err(Diagnostic::error(Code::NoConfiguration, message).help(help))
}

/// The plan about to run: for people, the usual rendering; with --json, a first event line
/// (stdout then carries JSON lines only).
fn show_plan(doc: &PlanDoc, json: bool, out: &mut Output) {
    if json {
        let c = drplan_core::render::counts(doc);
        let counts: serde_json::Map<String, serde_json::Value> =
            c.iter().map(|(k, n)| (k.to_string(), (*n).into())).collect();
        out.raw(&format!("{}\n", serde_json::json!({"type": "plan", "project": doc.project, "changes": counts, "actions": doc.actions.len(), "applyable": doc.applyable})));
    } else {
        out.plan(doc, false, false);
    }
}

fn confirm(doc: &PlanDoc, out: &mut Output) -> bool {
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

fn execute(args: &Args, run: &mut Run, out: &mut Output) -> u8 {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            return out.report(&[], Diagnostic::error(Code::Refresh, format!("cannot start the async runtime: {e}")));
        }
    };
    let options = ApplyOptions {
        parallelism: args.parallelism,
        skip_health_gate: args.skip_health_gate,
        health_timeout: args.health_timeout,
        rollout_timeout: args.rollout_timeout,
        allow_unreachable: args.plan.allow_unreachable,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(Mutex::new(Progress::new(args.json, run.planned.doc.actions.len())));
    let started = progress.lock().unwrap_or_else(PoisonError::into_inner).started();
    // Shared with the interrupt watcher, which gives it back before a second Ctrl-C exits.
    let lock = Arc::new(Mutex::new(run.planned.lock.take()));
    let unlock = format!("drplan state unlock {{id}}{}", super::path_arg(&run.config_path));
    let result = runtime.block_on(async {
        watch_interrupts(stop.clone(), progress.clone(), lock.clone(), unlock);
        engine::apply(&mut run.planned, &options, &stop, |e| {
            progress.lock().unwrap_or_else(PoisonError::into_inner).event(e);
        })
        .await
    });
    progress.lock().unwrap_or_else(PoisonError::into_inner).finish();
    let applied = match result {
        Ok(a) => a,
        Err(d) => return out.report(&[], d),
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
) {
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
            "\nStopping: no new actions start; waiting for the running ones to finish and be recorded. Interrupt again to exit at once.",
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
    });
}
