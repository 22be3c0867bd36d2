//! Automatic failover: one round of `drplan watch` reads the state and the clouds (as
//! `drplan status` does: no lock, one refresh, one health read per region), decides with
//! core's [`drplan_core::watch::decide`], and acts through the same pipeline as
//! `drplan failover --to TARGET` then `apply --allow-unreachable`, under the state lock and
//! after re-reading state under it, so that several watchers fail over once.
//!
//! After a failover the state holds the override: later rounds converge the topology it
//! names (the old active fenced as soon as it answers) and never fail back.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use drplan_core::config::{Config, Role, edit};
use drplan_core::watch::{self, Counter, Decision, Health, Override, Round};
use drplan_core::{Code, Diagnostic, SourceFile};

use crate::engine::{self, ApplyOptions, Failed};

/// How rounds act.
#[derive(Debug, Clone)]
pub struct WatchRequest<'a> {
    pub path: &'a Path,
    pub lock_timeout: Duration,
    pub health_timeout: Duration,
    pub rollout_timeout: Option<Duration>,
    /// Who acts, for the override's record (`drplan watch on HOST`).
    pub by: String,
    /// Set to stop: an apply under way starts nothing more (what runs finishes, and what
    /// finished is recorded), and [`run`] starts no new round.
    pub stop: Option<&'a AtomicBool>,
}

/// What one round did.
#[derive(Debug)]
pub struct RoundReport {
    pub decision: Decision,
    /// The failover or convergence this round carried out, and how it went.
    pub acted: Option<Acted>,
    pub counter: Counter,
}

#[derive(Debug)]
pub enum Acted {
    /// Failed over to `target`; `ok` when every action succeeded.
    FailedOver { target: String, previous: String, ok: bool, summary: String, fence_pending: bool },
    /// Another watcher (or a person) changed the roles first: nothing done.
    StoodDown { why: String },
    /// The override's topology was converged (a fence completed, a killed failover finished).
    Converged { ok: bool, summary: String, fence_pending: bool },
    /// The engine's gates refused the plan (a policy denies it, or it cannot be applied):
    /// nothing was changed, and the watcher keeps observing.
    Refused { target: String, why: String },
}

/// One round. `counter` is what the previous round left (the loop keeps it in memory;
/// `--once` keeps it in state, see [`load_counter`] and [`save_counter`]).
pub fn round(
    request: &WatchRequest<'_>,
    counter: &Counter,
    observe: &mut dyn FnMut(engine::Event<'_>),
    before_acting: &mut dyn FnMut(&Decision),
) -> Result<RoundReport, Failed> {
    let now = crate::clock::now_seconds();
    let input = crate::status::status(request.path, now, observe)?;
    let settings = watch::Settings::of(&input.config);
    // After a failover, the override names who serves: the watcher keeps that topology,
    // fencing the old active as soon as it answers; it never decides again.
    if let Some(o) = input.prior.override_.clone() {
        let sources = with_roles(&input.sources, &input.config, &o.active, &o.previous)?;
        let converged = converge(request, sources, &o)?;
        return Ok(RoundReport { decision: Decision::Overridden(o), acted: converged, counter: counter.clone() });
    }
    // A planned switchover under way stops writers and moves traffic on purpose: nothing
    // here may be read as a failure until the apply carrying it out completes.
    if let Some(s) = input.prior.switchover.clone() {
        return Ok(RoundReport { decision: Decision::Switchover(s), acted: None, counter: counter.clone() });
    }
    let Some(active) = input.config.active_region().map(|r| r.name.clone()) else {
        return Err(Diagnostic::error(Code::ZeroActive, "no region is active")
            .help("declare one region `active`")
            .into());
    };
    let health_of = |region: &str| health(&input, region);
    let round = Round {
        active: active.clone(),
        active_health: health_of(&active),
        // A region under an open incident is compromised: never a target, and said so.
        candidates: watch::candidates(&input.config)
            .into_iter()
            .map(|(r, role)| {
                let health = match drplan_core::incident::open_in(&input.prior.incidents, &r) {
                    Some(i) => watch::Health::Unknown(format!("compromised: incident {} open since {}", i.id, i.since)),
                    None => health_of(&r),
                };
                (r, role, health)
            })
            .collect(),
    };
    let (decision, mut next) = watch::decide(&settings, None, counter, &round, now);
    let acted = match &decision {
        Decision::Failover { target, why, act: true } => {
            // Said before anything changes (once the gates passed): the active is declared
            // failed, the target chosen.
            let mut tell = || before_acting(&decision);
            let failing = Failing { active: &active, why, since: next.first_failure };
            let acted = fail_over(request, &input.sources, &input.config, target, &failing, &mut tell)?;
            if matches!(acted, Acted::FailedOver { .. }) {
                next.last_failover = Some(now);
                next.failures = 0;
                next.first_failure = None;
            }
            Some(acted)
        }
        _ => None,
    };
    Ok(RoundReport { decision, acted, counter: next })
}

/// How a round judges `region`: by its Route 53 health check as Route 53 counts it, or, for
/// a cold site (which runs nothing to check), by its cloud answering and a usable recovery
/// point existing in some destination.
pub fn health(input: &crate::status::StatusInput, region: &str) -> Health {
    if let Some(why) = input.snapshot.unreachable.get(region) {
        return Health::Unknown(format!("unreachable: {why}"));
    }
    let cold = input.config.region(region).is_some_and(|r| r.role == Role::Cold);
    match input.health.get(region) {
        Some(Ok(c)) => c.health(),
        Some(Err(why)) => Health::Unknown(format!("its health check cannot be read: {why}")),
        None if cold => {
            let usable = input.snapshot.points.values().find_map(|c| c.newest_usable().map(|p| (c, p)));
            match usable {
                Some((catalog, point)) => Health::Ready(format!(
                    "a cold site: its cloud answers and {} holds usable point {}",
                    catalog.destination, point.name
                )),
                None => Health::Unknown("a cold site with no usable recovery point".to_string()),
            }
        }
        None => Health::Unknown("it has no health check".to_string()),
    }
}

/// The configuration's files with `active` active and `previous` standby, in memory.
fn with_roles(
    sources: &[SourceFile],
    config: &Config,
    active: &str,
    previous: &str,
) -> Result<Vec<SourceFile>, Failed> {
    if config.active_region().is_some_and(|r| r.name == active) {
        return Ok(sources.to_vec());
    }
    edit::edit_roles(sources, active, previous)
        .map(|e| e.sources)
        .map_err(|e| Failed::from(Diagnostic::error(Code::InvalidValue, format!("the roles cannot be set: {e}"))))
}

/// The active region a round found failed: why, and since its first failed observation
/// (where the failover's downtime starts).
struct Failing<'a> {
    active: &'a str,
    why: &'a str,
    since: Option<i64>,
}

fn fail_over(
    request: &WatchRequest<'_>,
    sources: &[SourceFile],
    config: &Config,
    target: &str,
    failing: &Failing<'_>,
    before_acting: &mut dyn FnMut(),
) -> Result<Acted, Failed> {
    let (active, why) = (failing.active, failing.why);
    let edited = with_roles(sources, config, target, active)?;
    let mut planned = plan_locked(request, edited, true)?;
    // Under the lock, state is read again: if another watcher (or a person) acted since this
    // round read it, stand down.
    if let Some(o) = &planned.prior.override_ {
        return Ok(Acted::StoodDown { why: format!("{} already failed over to {} at {}", o.by, o.active, o.at) });
    }
    if planned.prior.roles.get(active).is_some_and(|r| *r != Role::Active) {
        return Ok(Acted::StoodDown { why: format!("{active} is no longer active in state") });
    }
    let record = Override {
        active: target.to_string(),
        previous: active.to_string(),
        at: crate::clock::now_rfc3339(),
        why: why.to_string(),
        by: request.by.clone(),
    };
    // Recorded with the first write of the apply: a watcher killed mid-failover leaves the
    // override, and the next round (of any watcher) converges to it.
    planned.prior.override_ = Some(record);
    // The gates of every apply: a policy that denies the failover, or a plan that cannot be
    // applied, stops the watcher as it stops a person.
    if let Err(refusal) = engine::check(&planned, true) {
        return Ok(Acted::Refused { target: target.to_string(), why: refusal.summary() });
    }
    before_acting();
    let applied = apply(request, &mut planned, failing.since)?;
    Ok(Acted::FailedOver {
        target: target.to_string(),
        previous: active.to_string(),
        ok: applied.0,
        summary: applied.1,
        fence_pending: applied.2,
    })
}

/// Converges the override's topology when it has anything left to do.
fn converge(request: &WatchRequest<'_>, sources: Vec<SourceFile>, o: &Override) -> Result<Option<Acted>, Failed> {
    let mut planned = plan_locked(request, sources, true)?;
    if !planned.doc.has_changes() {
        return Ok(None);
    }
    if planned.prior.override_.as_ref() != Some(o) {
        return Ok(Some(Acted::StoodDown { why: "the override changed since this round read it".into() }));
    }
    if let Err(refusal) = engine::check(&planned, true) {
        return Ok(Some(Acted::Refused { target: o.active.clone(), why: refusal.summary() }));
    }
    let (ok, summary, fence_pending) = apply(request, &mut planned, None)?;
    Ok(Some(Acted::Converged { ok, summary, fence_pending }))
}

fn plan_locked(
    request: &WatchRequest<'_>,
    sources: Vec<SourceFile>,
    allow_unreachable: bool,
) -> Result<engine::Planned, Failed> {
    let r = engine::Request {
        path: request.path,
        sources: Some(sources),
        refresh: true,
        targets: &[],
        allow_unreachable,
        lock: Some("watch"),
        lock_timeout: request.lock_timeout,
        restore_point: None,
        allow_suspect: false,
        accept_data_loss: false,
        restore_only: None,
        fail_back: false,
        policy: engine::PolicyRequest::default(),
    };
    engine::plan(&r, &mut |_| {})
}

/// Applies the planned failover (or convergence); `(ok, summary, fence pending)`.
fn apply(
    request: &WatchRequest<'_>,
    planned: &mut engine::Planned,
    down_since: Option<i64>,
) -> Result<(bool, String, bool), Failed> {
    let options = ApplyOptions {
        down_since,
        parallelism: 10,
        skip_health_gate: false,
        health_timeout: request.health_timeout,
        rollout_timeout: request.rollout_timeout,
        allow_unreachable: true,
        keep_override: true,
    };
    let runtime = crate::runtime::shared()?;
    let never = AtomicBool::new(false);
    let stop = request.stop.unwrap_or(&never);
    let applied = runtime.block_on(engine::apply(planned, &options, stop, |_| {}))?;
    let s = &applied.summary;
    // A lock taken over is said: the run it was taken from died or stalled past its lease.
    let took_over = planned.lock.as_ref().and_then(|l| l.took_over.as_ref()).map(|held| {
        format!(
            "the state lock of {} ({}, since {}) was taken over, its lease having run out; ",
            held.who, held.operation, held.created
        )
    });
    let summary = format!(
        "{}{} succeeded, {} failed, {} skipped{}{}",
        took_over.unwrap_or_default(),
        s.succeeded.len(),
        s.failed.len(),
        s.skipped.len(),
        s.failed.first().map(|(id, why)| format!(" ({id}: {why})")).unwrap_or_default(),
        s.fenced.as_ref().map(|why| format!("; nothing more was changed: {why}")).unwrap_or_default()
    );
    Ok((s.ok(), summary, !applied.owed.is_empty()))
}

/// How [`run`] runs rounds.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Time between rounds.
    pub interval: Duration,
    /// One round, its count of failed rounds kept in state between runs (a CronJob).
    pub once: bool,
    /// Stop after this many rounds; `None`: until stopped.
    pub rounds: Option<u64>,
}

/// What [`run`] tells its caller after each round.
pub enum Tick<'a> {
    /// A round ran.
    Round(&'a RoundReport),
    /// A round could not run (the configuration, the state or the clouds could not be read);
    /// the next one starts after `retry_in`, the error policy's backoff.
    Failed { failed: &'a Failed, retry_in: Duration },
}

/// How a [`run`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub rounds: u64,
    /// Every round ran, and nothing it did failed or was refused.
    pub ok: bool,
    /// It ended because `stop` was set.
    pub stopped: bool,
}

/// The error policy of the loop: after `errors` failed rounds in a row the next waits the
/// interval doubled for each, at most eight times the interval and five minutes, and never
/// less than the interval: a watcher that cannot read the world never spins on it.
pub fn backoff(interval: Duration, errors: u32) -> Duration {
    let doubled = interval.saturating_mul(1 << errors.saturating_sub(1).min(3));
    doubled.min(Duration::from_secs(300)).max(interval)
}

/// The watcher's loop, as a library function: rounds every `schedule.interval` until `stop`
/// is set (looked at between rounds and every 100 ms of a wait) or the rounds are done; a
/// round that fails waits the [`backoff`]. With `once`, one round, its counter read from and
/// saved to state. `on_tick` sees every round; the command only renders them.
pub fn run(
    request: &WatchRequest<'_>,
    schedule: &Schedule,
    observe: &mut dyn FnMut(engine::Event<'_>),
    before_acting: &mut dyn FnMut(&Decision),
    on_tick: &mut dyn FnMut(Tick<'_>),
) -> Result<Ended, Failed> {
    let never = AtomicBool::new(false);
    let stop = request.stop.unwrap_or(&never);
    let mut counter = if schedule.once { load_counter(request.path)? } else { Counter::default() };
    let mut ended = Ended { rounds: 0, ok: true, stopped: false };
    let mut errors = 0u32;
    loop {
        if stop.load(Ordering::SeqCst) {
            ended.stopped = true;
            return Ok(ended);
        }
        ended.rounds += 1;
        let wait = match round(request, &counter, observe, before_acting) {
            Ok(report) => {
                errors = 0;
                let failed = matches!(
                    report.acted,
                    Some(
                        Acted::FailedOver { ok: false, .. }
                            | Acted::Converged { ok: false, .. }
                            | Acted::Refused { .. }
                    )
                );
                ended.ok &= !failed;
                on_tick(Tick::Round(&report));
                counter = report.counter;
                schedule.interval
            }
            Err(failed) => {
                errors += 1;
                ended.ok = false;
                let retry_in = backoff(schedule.interval, errors);
                on_tick(Tick::Failed { failed: &failed, retry_in });
                retry_in
            }
        };
        ended.stopped |= stop.load(Ordering::SeqCst);
        if schedule.once {
            save_counter(request.path, &counter, request.lock_timeout)?;
            return Ok(ended);
        }
        if schedule.rounds.is_some_and(|n| ended.rounds >= n) {
            return Ok(ended);
        }
        let until = std::time::Instant::now() + wait;
        while std::time::Instant::now() < until && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100).min(until - std::time::Instant::now()));
        }
    }
}

/// The counter `watch --once` keeps in state between runs.
pub fn load_counter(path: &Path) -> Result<Counter, Failed> {
    let loaded = crate::load::configuration(path);
    let Some(config) = loaded.config else { return Err(Failed::new(loaded.diagnostics)) };
    let backend = crate::load::state_backend(&config, &engine::configuration_dir(path), false)?;
    let (state, _) = engine::read_state(backend.as_ref(), &mut |_| {})?;
    Ok(state.map(|s| s.watch).unwrap_or_default())
}

/// Saves the counter for the next `watch --once`, under the state lock.
pub fn save_counter(path: &Path, counter: &Counter, lock_timeout: Duration) -> Result<(), Failed> {
    let loaded = crate::load::configuration(path);
    let Some(config) = loaded.config else { return Err(Failed::new(loaded.diagnostics)) };
    let backend = crate::load::state_backend(&config, &engine::configuration_dir(path), false)?;
    // Most rounds change nothing: then nothing is locked (an apply may hold the lock).
    let (state, _) = engine::read_state(backend.as_ref(), &mut |_| {})?;
    if state.as_ref().map(|s| &s.watch) == Some(counter) || (state.is_none() && *counter == Counter::default()) {
        return Ok(());
    }
    engine::edit_state(backend.as_ref(), "watch", lock_timeout, "the watcher's count", |state| {
        let state = state.get_or_insert_with(|| engine::empty_state(&config));
        if state.watch == *counter {
            return Ok(engine::Edit::Unchanged(()));
        }
        state.watch = counter.clone();
        Ok(engine::Edit::Changed(()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_policy_backs_off_within_bounds_and_never_below_the_interval() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(30), 0), s(30));
        assert_eq!(backoff(s(30), 1), s(30));
        assert_eq!(backoff(s(30), 2), s(60));
        assert_eq!(backoff(s(30), 4), s(240));
        assert_eq!(backoff(s(30), 40), s(240), "at most eight times the interval");
        assert_eq!(backoff(s(60), 9), s(300), "and five minutes");
        assert_eq!(backoff(s(600), 3), s(600), "never below the interval");
    }
}
