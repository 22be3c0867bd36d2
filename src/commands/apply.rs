//! `drplan apply [PATH|PLANFILE]`: carry a plan out, recording every finished action in
//! state at once. A saved plan is applied exactly as written, or refused when stale.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use drplan_core::plan::Prior;
use drplan_core::plan::doc::PlanDoc;
use drplan_core::{Code, Diagnostic};

use super::{EXIT_ERROR, EXIT_OK, ThenNone};
use super::{PlanArgs, planned};
use crate::output::Output;
use crate::progress::Progress;
use drplan::apply::{self, Recorder, Settings, StateRecorder};
use drplan::engine::configuration_hash;

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
    if !run.doc.has_changes() {
        out.note("No changes. Nothing to apply.");
        return EXIT_OK;
    }
    if !run.doc.applyable {
        return out.report(&[], Diagnostic::error(Code::PlanFile, "this plan cannot be applied").help(
            "it breaks a safety rule or skips actions in unreachable regions (see the plan); fix the configuration, or pass --allow-unreachable once those regions are known to be lost",
        ));
    }
    if !args.auto_approve && !confirm(&run.doc, out) {
        return EXIT_ERROR;
    }
    execute(&args, &mut run, out)
}

/// What apply carries out, with the lock and state it runs under.
struct Run {
    doc: PlanDoc,
    config: drplan_core::config::Config,
    backend: Box<dyn drplan_state::Backend>,
    state: Option<drplan_state::StateFile>,
    prior: Prior,
    lock: Option<drplan_state::Lock>,
    /// The configuration planned, for the `drplan state unlock ID PATH` a message may name.
    config_path: PathBuf,
}

fn prepare_fresh(args: &Args, out: &mut Output) -> Option<Run> {
    let planned = planned(&args.plan, Some("apply"), None, out)?;
    show_plan(&planned.doc, args.json, out);
    Some(Run {
        doc: planned.doc,
        config: planned.config,
        backend: planned.backend,
        state: planned.state,
        prior: planned.prior,
        lock: planned.lock,
        config_path: args.plan.path.clone(),
    })
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
    let current = planned(&planned_args, Some("apply"), None, &mut Output { quiet: true, ..out.clone() })?;
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
    Some(Run {
        doc,
        config: current.config,
        backend: current.backend,
        state: current.state,
        prior: current.prior,
        lock: current.lock,
        config_path: config,
    })
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
    let file = run
        .state
        .clone()
        .unwrap_or_else(|| drplan_state::StateFile::new(&run.config.project, env!("CARGO_PKG_VERSION")));
    let mut recorder = StateRecorder { backend: run.backend.as_ref(), file, prior: run.prior.clone() };
    let plan_id = format!(
        "{}:{}:{}",
        run.doc.configuration_hash,
        run.doc.prior_state.as_ref().map_or("new", |s| s.lineage.as_str()),
        run.doc.prior_state.as_ref().map_or(0, |s| s.serial)
    );
    let settings = Settings {
        project: run.config.project.clone(),
        plan_id,
        parallelism: args.parallelism,
        skip_health_gate: args.skip_health_gate,
        retry_budget: Duration::from_secs(120),
        rollout_timeout: args.rollout_timeout.unwrap_or_else(|| {
            Duration::from_secs(2 * drplan_core::plan::Estimates::from_config(&run.config).workload)
        }),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(Mutex::new(Progress::new(args.json, run.doc.actions.len())));
    let started = progress.lock().unwrap_or_else(PoisonError::into_inner).started();
    // Shared with the interrupt watcher, which gives it back before a second Ctrl-C exits.
    let lock = Arc::new(Mutex::new(run.lock.take()));
    let unlock = format!("drplan state unlock {{id}}{}", path_arg(&run.config_path));
    let result = runtime.block_on(async {
        watch_interrupts(stop.clone(), progress.clone(), lock.clone(), unlock);
        let clouds = crate::clouds::Clouds::connect(&run.config).await?;
        let policy = run.config.failover.as_ref().map(|f| f.health_check.clone()).unwrap_or_default();
        // A third of the checkers' interval: a fresh observation is seen soon after it is
        // taken, within Route 53's request pacing.
        let gate = crate::clouds::HealthGate {
            clouds: &clouds,
            project: run.config.project.clone(),
            every: Duration::from_secs((policy.interval.as_secs() / 3).clamp(1, 10)),
            timeout: args.health_timeout,
            workloads: crate::clouds::HealthGate::workloads_of(&run.config),
            rollout_timeout: settings.rollout_timeout,
        };
        apply::execute(&run.doc, &clouds, &gate, &settings, &mut recorder, &stop, |e| {
            progress.lock().unwrap_or_else(PoisonError::into_inner).event(e);
        })
        .await
        .map_err(|e| Diagnostic::error(Code::PlanFile, format!("the plan cannot be executed: {e}")))
    });
    progress.lock().unwrap_or_else(PoisonError::into_inner).finish();
    let summary = match result {
        Ok(s) => s,
        Err(d) => return out.report(&[], d),
    };
    let lost_before = recorder.prior.lost.clone();
    // A saved plan made with --allow-unreachable declares the lost regions itself.
    let declared = run.doc.declares_lost || args.plan.allow_unreachable;
    remember_lost(&run.doc, &summary, declared, &mut recorder.prior);
    if summary.ok() && summary.not_started.is_empty() {
        // Everything is done: record the roles and drop what the plan forgets.
        for a in &run.doc.forget {
            recorder.prior.objects.remove(a);
        }
        recorder.prior.roles = run.config.regions.iter().map(|r| (r.name.clone(), r.role)).collect();
        if let Err(e) = recorder.save() {
            return out.report(
                &[],
                Diagnostic::error(
                    Code::StateWrite,
                    format!("the changes were made but the final state could not be written: {e}"),
                )
                .help("the state holds every change but the regions' roles; run `drplan apply` again once the state can be written"),
            );
        }
    } else if recorder.prior.lost != lost_before
        && let Err(e) = recorder.save()
    {
        return out.report(
            &[],
            Diagnostic::error(Code::StateWrite, format!("the regions declared lost could not be recorded: {e}"))
                .help("run `drplan apply --allow-unreachable` again once the state can be written"),
        );
    }
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
        recorder.file.serial,
    );
    if args.json {
        out.raw(&format!("{}\n", serde_json::json!({"type": "summary", "succeeded": summary.succeeded, "failed": summary.failed, "skipped": summary.skipped, "not_started": summary.not_started, "interrupted": summary.interrupted, "serial": recorder.file.serial})));
    }
    out.note(&format!("\n{line}"));
    for (id, e) in &summary.failed {
        out.note(&format!("  failed:  {id}: {e}"));
    }
    for (region, lost) in &recorder.prior.lost {
        let skipped_now: Vec<&str> =
            summary.skipped.iter().map(|(id, _)| id.as_str()).filter(|id| lost.owed.iter().any(|o| o == id)).collect();
        if skipped_now.is_empty() {
            continue;
        }
        out.note(&format!(
            "  skipped in {region}, declared lost: {}\n  The fence of {region} is owed: `drplan plan` shows it, and the first apply after {region} answers again carries it out first.",
            skipped_now.join(", ")
        ));
    }
    for (region, _) in lost_before.iter().filter(|(r, _)| !recorder.prior.lost.contains_key(*r)) {
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

/// Records which regions this apply declared lost and the actions it skipped there (the
/// fence they are owed), and clears the record of a region that answered again once every
/// action of its fence succeeded.
fn remember_lost(doc: &PlanDoc, summary: &apply::Summary, declared: bool, prior: &mut Prior) {
    let region_of = |id: &str| doc.resource_changes.iter().find(|rc| rc.address == id).and_then(|rc| rc.region.clone());
    if declared {
        for region in doc.unreachable.keys() {
            let owed: Vec<String> = summary
                .skipped
                .iter()
                .filter(|(id, _)| region_of(id).as_deref() == Some(region.as_str()))
                .map(|(id, _)| id.clone())
                .collect();
            if owed.is_empty() {
                continue;
            }
            let entry = prior
                .lost
                .entry(region.clone())
                .or_insert_with(|| drplan_core::plan::Lost { since: crate::clock::now_rfc3339(), owed: Vec::new() });
            for id in owed {
                if !entry.owed.contains(&id) {
                    entry.owed.push(id);
                }
            }
            entry.owed.sort_by(|a, b| drplan_core::plan::resource::natural_cmp(a, b));
        }
    }
    // Done only when every change the region needs has succeeded in this run: not when a
    // `--target` left some out, nor when one failed.
    let succeeded: std::collections::BTreeSet<&str> = summary.succeeded.iter().map(String::as_str).collect();
    for fence in doc.fences.iter().filter(|f| f.reachable) {
        if fence.actions.iter().all(|a| succeeded.contains(a.as_str())) {
            prior.lost.remove(&fence.region);
        }
    }
}

/// ` PATH` for a command about the configuration at `path`, nothing for the current directory.
fn path_arg(path: &std::path::Path) -> String {
    if path == std::path::Path::new(".") { String::new() } else { format!(" {}", path.display()) }
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
