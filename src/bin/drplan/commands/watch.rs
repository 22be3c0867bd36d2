//! `drplan watch [PATH] [--once] [--interval D] [--json] [--notify URL]`: automatic
//! failover. Each round reads the regions' health, and with `failover.mode = "automatic"`
//! fails over to the first healthy standby after `threshold` failed rounds; with `manual`
//! it only says what it would do. `--once` runs one round (for a CronJob), keeping the count
//! of failed rounds in state. Exit 0, or 1 on an error or a failover that failed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use drplan::watch::{self, Acted, RoundReport, Schedule, Tick, WatchRequest};
use drplan_core::watch::{Decision, EventKind, EventLine};

use super::{EXIT_ERROR, EXIT_OK};
use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A configuration directory (its *.hcl files are merged) or a single file.
    #[arg(default_value = ".")]
    path: std::path::PathBuf,
    /// Run one round and exit (the count of failed rounds is kept in state).
    #[arg(long)]
    once: bool,
    /// Time between rounds [default: `failover.automatic.interval`, 30s].
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    interval: Option<Duration>,
    /// One JSON event line per round on stdout.
    #[arg(long)]
    json: bool,
    /// POST a JSON event (with a Slack-compatible `text`) to this URL when the active is
    /// declared failed, when a failover finishes or fails, and when a fence is pending or done.
    #[arg(long, value_name = "URL")]
    notify: Option<String>,
    /// Stop after this many rounds (for tests and bounded runs); default: run until stopped.
    #[arg(long, value_name = "N")]
    rounds: Option<u64>,
    /// Wait this long for another drplan holding the state lock.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = super::parse_duration)]
    lock_timeout: Duration,
    /// How long the new region's health gate may take.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = super::parse_duration)]
    health_timeout: Duration,
    /// After every round, write the time to FILE: the liveness signal a probe reads with
    /// `--alive FILE`.
    #[arg(long, value_name = "FILE")]
    heartbeat: Option<std::path::PathBuf>,
    /// Check a watcher's heartbeat instead of watching: exit 0 when FILE was written within
    /// `--within`, 1 otherwise (a Kubernetes liveness probe).
    #[arg(long, value_name = "FILE")]
    alive: Option<std::path::PathBuf>,
    /// With `--alive`: how recent the heartbeat must be.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = super::parse_duration)]
    within: Duration,
}

pub fn exec(args: Args, out: &mut Output) -> u8 {
    if let Some(file) = &args.alive {
        return alive(file, args.within, out);
    }
    // SIGTERM (a pod evicted, a rollout) or Ctrl-C: no new action and no new round; what
    // runs finishes and is recorded, then the watcher exits 0.
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let mut said = out.clone();
    if let Ok(runtime) = drplan::runtime::shared() {
        use tokio::signal::unix::{SignalKind, signal};
        // Listening from here on: a signal that came before the task first ran is not lost.
        let _entered = runtime.enter();
        let (int, term) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()));
        runtime.spawn(async move {
            let (Ok(mut int), Ok(mut term)) = (int, term) else { return };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            stop.store(true, Ordering::SeqCst);
            // A second signal exits at once, still giving the state lock back.
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            let kept = tokio::task::spawn_blocking(drplan_state::release_all).await.unwrap_or_default();
            for (id, why) in kept {
                said.note(&format!(
                    "The state lock {id} could not be released ({why}): run `drplan state unlock {id}`."
                ));
            }
            std::process::exit(130);
        });
    }
    let request = WatchRequest {
        path: &args.path,
        lock_timeout: args.lock_timeout,
        health_timeout: args.health_timeout,
        rollout_timeout: None,
        by: format!("drplan watch on {}", drplan::clock::who()),
        stop: Some(stop),
    };
    let interval = args.interval.unwrap_or_else(|| {
        drplan::load::configuration(&args.path)
            .config
            .and_then(|c| c.failover.and_then(|f| f.automatic).map(|a| Duration::from_secs(a.interval.as_secs())))
            .unwrap_or(Duration::from_secs(30))
    });
    let schedule = Schedule { interval, once: args.once, rounds: args.rounds };
    let mut quiet = Output { quiet: true, ..out.clone() };
    let notify = args.notify.clone();
    let mut before = |d: &Decision| {
        if let (Some(url), Decision::Failover { target, why, .. }) = (&notify, d) {
            let text = format!("drplan watch: {why}; failing over to {target}");
            let _ = drplan::notify::post(
                url,
                &EventLine::new(EventKind::FailingOver, &drplan::clock::now_rfc3339(), &text, None),
            );
        }
    };
    // A round that cannot run is said once when it starts failing, and posted: a watcher
    // that cannot see (a newer state format, lost credentials) must not fail silently.
    let mut failing = false;
    let heartbeat = args.heartbeat.clone();
    let mut tick = |t: Tick<'_>| match t {
        Tick::Round(report) => {
            beat(heartbeat.as_deref(), out);
            failing = false;
            say(report, &args, out);
        }
        Tick::Failed { failed, retry_in } => {
            // A round that could not run still proves the loop turns; what it could not do
            // is said (and posted) below.
            beat(heartbeat.as_deref(), out);
            out.diagnostics(&[], &failed.diagnostics);
            if !failing {
                let why: Vec<&str> = failed.diagnostics.iter().map(|d| d.message.as_str()).collect();
                let text =
                    format!("a round could not run, the watcher cannot fail over until it can: {}", why.join("; "));
                tell(EventKind::RoundFailed, &text, None, &args, out);
            }
            failing = true;
            if !args.once && args.rounds != Some(1) {
                out.note(&format!("The next round starts in {}s.", retry_in.as_secs()));
            }
        }
    };
    match watch::run(&request, &schedule, &mut |e| quiet.pipeline(&e), &mut before, &mut tick) {
        // Stopped by a signal: what ran finished and is recorded, the lock given back.
        Ok(ended) if ended.ok || ended.stopped => EXIT_OK,
        Ok(_) => EXIT_ERROR,
        Err(f) => {
            out.diagnostics(&[], &f.diagnostics);
            EXIT_ERROR
        }
    }
}

/// Writes the heartbeat: the time, as RFC 3339, atomically (a probe never reads half of it).
fn beat(file: Option<&std::path::Path>, out: &mut Output) {
    if let Some(file) = file
        && let Err(d) = drplan::load::write_atomically(file, &format!("{}\n", drplan::clock::now_rfc3339()))
    {
        out.note(&format!("warning: {}", d.message));
    }
}

/// `--alive FILE`: whether a watcher wrote its heartbeat within `within`.
fn alive(file: &std::path::Path, within: Duration, out: &mut Output) -> u8 {
    let age = std::fs::metadata(file).and_then(|m| m.modified()).map(|t| t.elapsed().unwrap_or_default());
    match age {
        Ok(age) if age <= within => EXIT_OK,
        Ok(age) => {
            out.note(&format!(
                "The watcher's last round was {}s ago, longer than {}s: it is stuck.",
                age.as_secs(),
                within.as_secs()
            ));
            EXIT_ERROR
        }
        Err(e) => {
            out.note(&format!("No heartbeat at {}: {e}", file.display()));
            EXIT_ERROR
        }
    }
}

/// One line per round (or a JSON event), and the notification when something happened.
fn say(report: &RoundReport, args: &Args, out: &mut Output) {
    let (kind, text) = describe(report);
    tell(kind, &text, Some(report.counter.failures), args, out);
}

/// An event as a line (or JSON with `--json`), posted to `--notify` when a person must hear it.
fn tell(kind: EventKind, text: &str, failures: Option<u32>, args: &Args, out: &mut Output) {
    let at = drplan::clock::now_rfc3339();
    if args.json {
        out.raw(&EventLine::new(kind, &at, text, failures).to_line());
    } else {
        out.raw(&format!("{at} {kind}: {text}\n"));
    }
    if let (Some(url), true) = (&args.notify, kind.notifies()) {
        let body = EventLine::new(kind, &at, &format!("drplan watch: {text}"), None);
        if let Err(e) = drplan::notify::post(url, &body) {
            out.note(&format!("warning: the notification to {url} failed: {e}"));
        }
    }
}

fn describe(report: &RoundReport) -> (EventKind, String) {
    match (&report.decision, &report.acted) {
        (_, Some(Acted::FailedOver { target, previous, ok: true, fence_pending, .. })) => (
            if *fence_pending { EventKind::FencePending } else { EventKind::FailedOver },
            format!(
                "failed over from {previous} to {target}{}",
                if *fence_pending {
                    format!("; {previous} cannot be reached: its fence is pending, retried every round")
                } else {
                    String::new()
                }
            ),
        ),
        (_, Some(Acted::FailedOver { target, summary, .. })) => {
            (EventKind::FailoverFailed, format!("the failover to {target} failed: {summary}"))
        }
        (_, Some(Acted::StoodDown { why })) => (EventKind::StoodDown, format!("another actor moved first: {why}")),
        (_, Some(Acted::Refused { target, why })) => (
            EventKind::FailoverRefused,
            format!("the failover to {target} was refused, nothing was changed, still observing: {why}"),
        ),
        (_, Some(Acted::Converged { ok: true, fence_pending: false, summary })) => {
            (EventKind::Fenced, format!("the override's topology is converged ({summary})"))
        }
        (_, Some(Acted::Converged { fence_pending: true, .. })) => {
            (EventKind::FencePending, "the old active still cannot be reached: its fence is pending".into())
        }
        (_, Some(Acted::Converged { summary, .. })) => {
            (EventKind::FailoverFailed, format!("converging the override failed: {summary}"))
        }
        (Decision::Healthy, None) => (EventKind::Healthy, "the active region is healthy".into()),
        (Decision::Suspect { failures, threshold }, None) => {
            (EventKind::Suspect, format!("the active region failed {failures} of {threshold} rounds"))
        }
        (Decision::Overridden(o), None) => (
            EventKind::Overridden,
            format!(
                "{} failed over to {} at {}: observing only until a person accepts it (`drplan failover --to {} --write`)",
                o.by, o.active, o.at, o.active
            ),
        ),
        (Decision::CoolingDown { until }, None) => (
            EventKind::CoolingDown,
            format!("within the cool-down after a failover, until {}", drplan_core::recovery::rfc3339(*until)),
        ),
        (Decision::NoTarget { why }, None) => (EventKind::NoTarget, why.clone()),
        (Decision::Switchover(s), None) => (
            EventKind::Switchover,
            format!(
                "a planned switchover from {} to {} is under way since {} ({}): observing only until it completes",
                s.from, s.to, s.started, s.by
            ),
        ),
        (Decision::Failover { target, why, act: false }, None) => {
            (EventKind::WouldFailOver, format!("{why}: would fail over to {target} (mode = \"manual\": nothing done)"))
        }
        (Decision::Failover { target, .. }, None) => (EventKind::FailingOver, format!("failing over to {target}")),
    }
}
