//! Running a DR drill under the state lock: check it may run, record it as running, carry
//! out the drill's plan (core's [`drplan_core::drill::plan`]) measuring each step, then tear
//! down whatever happened — success, failure or an interrupt — by applying the declared
//! configuration to the drilled region, and record the outcome. A drill killed outright stays
//! recorded as running; [`cleanup`] finishes its teardown.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use drplan_core::config::{Config, Role};
use drplan_core::drill::{self, Drill, DrillStep};
use drplan_core::plan::doc::{Origin, PlanDoc};
use drplan_core::plan::{self, Change, Options, Prior, Snapshot};
use drplan_core::{Code, Diagnostic};

use crate::apply::{Event, Recorder, Settings, StateRecorder};
use crate::clouds::{Clouds, HealthGate};
use crate::engine::{self, Failed, Planned};

/// What to drill.
#[derive(Debug, Clone)]
pub struct DrillRequest<'a> {
    pub path: &'a Path,
    pub region: &'a str,
    /// Run the restore Job too (into scratch: `DRPLAN_DRILL=true`).
    pub restore: bool,
    pub lock_timeout: Duration,
    /// How long the region's health gate may take.
    pub health_timeout: Duration,
    /// How long a workload may take to be available; `None`: twice the `workload` estimate.
    pub rollout_timeout: Option<Duration>,
    pub parallelism: usize,
}

/// How a drill ended, and its record.
#[derive(Debug)]
pub struct Drilled {
    pub project: String,
    pub drill: Drill,
    /// The state could not record the outcome (what to tell).
    pub record_failed: Option<Diagnostic>,
}

/// Runs a drill. `stop` set (the first Ctrl-C) starts nothing more of the drill; teardown
/// runs regardless. `on_event` sees every action of the drill and of its teardown.
pub fn run(
    request: &DrillRequest<'_>,
    stop: &AtomicBool,
    observe: &mut dyn FnMut(engine::Event<'_>),
    on_event: &mut dyn FnMut(&Event),
) -> Result<Drilled, Failed> {
    let mut planned = locked(request.path, request.lock_timeout, observe)?;
    refuse(&planned, request.region)?;
    let config = planned.config.clone();
    let live = planned.live.clone().unwrap_or_default();
    let now = crate::clock::now_seconds();
    let options = Options { now: Some(now), ..Options::default() };
    let posture = plan::plan(&config, &planned.prior, Some(&live), &options).map(|p| p.posture).map_err(cycle)?;
    let drill_plan = drill::plan(&config, &planned.prior, &live, request.region, request.restore, &options, posture)
        .map_err(Failed::from)?;
    let runtime = runtime()?;
    let clouds = runtime.block_on(Clouds::connect(&config))?;
    runtime.block_on(active_is_healthy(&clouds, &config, &live))?;

    let id = drill_id(&config.project, request.region, now);
    let region = config.region(request.region).map(|r| r.role).unwrap_or(Role::Standby);
    let estimate =
        planned.doc.posture.rto.as_ref().filter(|r| r.to_region == request.region).map(|r| r.estimate_seconds);
    let mut record = Drill {
        id: id.clone(),
        region: request.region.to_string(),
        role: region.to_string(),
        restore: request.restore,
        started: crate::clock::now_rfc3339(),
        finished: None,
        result: drill::RUNNING.to_string(),
        steps: Vec::new(),
        measured_rto_seconds: None,
        estimate_seconds: estimate,
        rto_objective_seconds: config.objectives.rto.map(|r| r.as_secs()),
        removed: Vec::new(),
        error: None,
        replicas: drplan_core::plan::data::replica_checks(&config, &live)
            .iter()
            .filter(|c| c.region == request.region)
            .map(drplan_core::drill::DrillReplica::of)
            .collect(),
    };
    let state = planned.state.clone().unwrap_or_else(|| engine::empty_state(&config));
    let mut recorder = StateRecorder { backend: planned.backend.as_ref(), file: state, prior: planned.prior.clone() };
    // Recorded before anything runs: a drill killed outright is then known to be owed its teardown.
    drplan_core::uptime::push_drill(&mut recorder.prior, record.clone());
    recorder.save().map_err(|e| Failed::from(state_write(&e, "nothing was changed; the drill did not start")))?;

    let mut doc = PlanDoc::new(&drill_plan.plan, origin(&planned), false);
    // A drill runs against production: the team's policies judge its plan as any other.
    let results = planned.policy.evaluate(&doc)?;
    drplan_core::policy::attach(&mut doc, results);
    engine::check_policy(&planned.policy, &doc).map_err(engine::Refusal::into_failed)?;
    let mut settings = settings(&config, &id, request);
    settings.fence = planned.lock.as_ref().and_then(drplan_state::Lock::lease);
    let gate = HealthGate {
        clouds: &clouds,
        project: config.project.clone(),
        every: gate_poll(&config),
        timeout: request.health_timeout,
        workloads: HealthGate::workloads_of(&drill_plan.serving)
            .into_iter()
            .filter(|w| w.region.as_deref() == Some(request.region))
            .collect(),
        rollout_timeout: settings.rollout_timeout,
    };
    let started = Instant::now();
    let mut finished: BTreeMap<String, Duration> = BTreeMap::new();
    let mut failures: BTreeMap<String, String> = BTreeMap::new();
    let outcome = runtime.block_on(crate::apply::execute(&doc, &clouds, &gate, &settings, &mut recorder, stop, |e| {
        match e {
            Event::Finished { id, .. } => {
                finished.insert(id.clone(), started.elapsed());
            }
            Event::Failed { id, error } => {
                failures.insert(id.clone(), error.clone());
            }
            _ => {}
        }
        on_event(e)
    }));
    record.steps = measure(&doc, &finished, &failures);
    record.result = match &outcome {
        Ok(s) if s.interrupted => drill::INTERRUPTED,
        Ok(s) if s.ok() && s.not_started.is_empty() => drill::PASSED,
        _ => drill::FAILED,
    }
    .to_string();
    if let Err(e) = &outcome {
        record.error = Some(e.to_string());
    } else if let Some((id, why)) = failures.iter().next() {
        record.error = Some(format!("{id}: {why}"));
    }
    if record.result == drill::PASSED {
        let ttl = config.failover.as_ref().and_then(|f| f.dns.as_ref()).map_or(0, |d| u64::from(d.ttl));
        record.measured_rto_seconds =
            drill::measured_rto(&record.steps, ttl, plan::Estimates::from_config(&config).dns);
    }

    // Teardown, whatever happened: the drilled region back to its declared role.
    let torn = Instant::now();
    let teardown = teardown(
        runtime,
        &clouds,
        &config,
        &mut recorder,
        &record,
        drill_plan.temporary_check.as_deref(),
        &settings,
        on_event,
    );
    match &teardown {
        Ok(removed) => {
            record.removed = removed.clone();
            record.steps.push(DrillStep {
                name: drill::TEARDOWN.into(),
                seconds: torn.elapsed().as_secs_f64(),
                ok: true,
                detail: None,
            });
        }
        Err(why) => {
            record.steps.push(DrillStep {
                name: drill::TEARDOWN.into(),
                seconds: torn.elapsed().as_secs_f64(),
                ok: false,
                detail: Some(why.clone()),
            });
            record.result = drill::FAILED.to_string();
            record.error.get_or_insert_with(|| format!("teardown: {why}"));
        }
    }
    record.finished = Some(crate::clock::now_rfc3339());
    // Still running if teardown did not finish: `drill --cleanup` is then owed.
    let keep_running = teardown.is_err();
    let mut stored = record.clone();
    if keep_running {
        stored.result = drill::RUNNING.to_string();
    }
    replace(&mut recorder.prior, stored);
    let record_failed =
        recorder.save().err().map(|e| state_write(&e, "the drill ran and was torn down; its record is lost"));
    drop(planned.lock.take());
    Ok(Drilled { project: config.project.clone(), drill: record, record_failed })
}

/// Finishes the teardown of a drill that was killed outright. `Ok(None)`: nothing to clean
/// up (idempotent).
pub fn cleanup(
    path: &Path,
    lock_timeout: Duration,
    parallelism: usize,
    observe: &mut dyn FnMut(engine::Event<'_>),
    on_event: &mut dyn FnMut(&Event),
) -> Result<Option<Drilled>, Failed> {
    let mut planned = locked(path, lock_timeout, observe)?;
    let Some(mut record) = drill::in_progress(&planned.prior.drills).cloned() else { return Ok(None) };
    let config = planned.config.clone();
    let runtime = runtime()?;
    let clouds = runtime.block_on(Clouds::connect(&config))?;
    let state = planned.state.clone().unwrap_or_else(|| engine::empty_state(&config));
    let mut recorder = StateRecorder { backend: planned.backend.as_ref(), file: state, prior: planned.prior.clone() };
    let request = DrillRequest {
        path,
        region: &record.region,
        restore: record.restore,
        lock_timeout,
        health_timeout: Duration::from_secs(60),
        rollout_timeout: None,
        parallelism,
    };
    let settings = settings(&config, &record.id, &request);
    // The drill's temporary check is one no configuration wants: the declared plan removes it.
    let check = plan::resource::address::health_check(&record.region);
    let temporary = (!plan::desired::desired(&config).iter().any(|r| r.address == check)).then_some(check.as_str());
    let region = record.region.clone();
    let torn = Instant::now();
    let removed =
        teardown(runtime, &clouds, &config, &mut recorder, &record, temporary, &settings, on_event).map_err(|why| {
            Diagnostic::error(
                Code::DrillInProgress,
                format!("the teardown of drill {} did not finish: {why}", record.id),
            )
            .help(format!(
                "{region} may still run at active capacity; fix the cause and run `drplan drill --cleanup` again"
            ))
        })?;
    record.removed.extend(removed);
    record.steps.push(DrillStep {
        name: drill::TEARDOWN.into(),
        seconds: torn.elapsed().as_secs_f64(),
        ok: true,
        detail: None,
    });
    record.result = drill::ABANDONED.to_string();
    record.finished = Some(crate::clock::now_rfc3339());
    replace(&mut recorder.prior, record.clone());
    let record_failed =
        recorder.save().err().map(|e| state_write(&e, "the region was torn down; the drill's record is not updated"));
    drop(planned.lock.take());
    Ok(Some(Drilled { project: config.project.clone(), drill: record, record_failed }))
}

/// Plans under the drill's lock, with a refresh.
fn locked(path: &Path, lock_timeout: Duration, observe: &mut dyn FnMut(engine::Event<'_>)) -> Result<Planned, Failed> {
    let request = engine::Request {
        path,
        sources: None,
        refresh: true,
        targets: &[],
        allow_unreachable: false,
        lock: Some("drill"),
        lock_timeout,
        restore_point: None,
        allow_suspect: false,
        accept_data_loss: false,
        restore_only: None,
        fail_back: false,
        policy: engine::PolicyRequest::default(),
    };
    engine::plan(&request, observe)
}

/// Why a drill may not start now: a drill still owed its teardown, a safety rule the
/// configured topology breaks, a region that cannot be drilled.
fn refuse(planned: &Planned, region: &str) -> Result<(), Failed> {
    if let Some(d) = drill::in_progress(&planned.prior.drills) {
        return Err(Diagnostic::error(Code::DrillRefused, format!("drill {} of {} did not finish", d.id, d.region))
            .help("run `drplan drill --cleanup` to finish its teardown first")
            .into());
    }
    if let Some(s) = planned.doc.safety.iter().find(|s| s.severity == "error") {
        return Err(Diagnostic::error(Code::DrillRefused, format!("the topology breaks a safety rule: {}", s.message))
            .help(format!("fix it first (`drplan plan` shows it: {}); a drill starts from a safe topology", s.code))
            .into());
    }
    if let Some(why) = planned.doc.unreachable.get(region) {
        return Err(Diagnostic::error(Code::DrillRefused, format!("region {region} cannot be reached: {why}"))
            .help("a drill needs the region it rehearses to answer")
            .into());
    }
    Ok(())
}

/// No drills during an incident: the active region must answer and pass its health check.
async fn active_is_healthy(clouds: &Clouds, config: &Config, live: &Snapshot) -> Result<(), Failed> {
    let Some(active) = config.active_region() else { return Ok(()) };
    let refuse = |why: String| -> Failed {
        Diagnostic::error(Code::DrillRefused, format!("the active region {} is not healthy: {why}", active.name))
            .help("no drills during an incident: fail over for real if it is down (`drplan failover`), or drill once it is healthy")
            .into()
    };
    if let Some(why) = live.unreachable.get(&active.name) {
        return Err(refuse(format!("it cannot be reached ({why})")));
    }
    if config.failover.as_ref().and_then(|f| f.dns.as_ref()).is_none() {
        return Ok(());
    }
    // Read and judged as `status` and the watcher read and judge it.
    match crate::status::region_health(clouds, config, live).await.remove(&active.name) {
        None => Err(refuse("it has no health check".into())),
        Some(Err(why)) => Err(refuse(format!("its health check cannot be read: {why}"))),
        Some(Ok(c)) if !c.healthy() => Err(refuse(format!(
            "{} of {} checkers report success (healthy needs more than {}%){}",
            c.healthy,
            c.checkers,
            drplan_core::status::HEALTHY_PERCENT,
            c.failing.map(|f| format!(": {f}")).unwrap_or_default()
        ))),
        Some(Ok(_)) => Ok(()),
    }
}

/// The declared configuration applied to the drilled region: its capacity back to its role,
/// the temporary check gone, the drill's restore Job removed. What it did, by address.
#[allow(clippy::too_many_arguments, reason = "the pieces of one drill, from its two callers")]
fn teardown(
    runtime: &tokio::runtime::Runtime,
    clouds: &Clouds,
    config: &Config,
    recorder: &mut StateRecorder<'_>,
    record: &Drill,
    temporary_check: Option<&str>,
    settings: &Settings,
    on_event: &mut dyn FnMut(&Event),
) -> Result<Vec<String>, String> {
    let suspect = drplan_core::incident::suspect_windows(&recorder.prior.incidents);
    let live = engine::refresh(config, crate::clock::now_seconds(), None, &suspect, &mut |_| {})
        .map_err(|f| f.diagnostics.iter().map(|d| d.message.clone()).collect::<Vec<_>>().join("; "))?;
    let mut targets = vec![format!("region.{}", record.region)];
    targets.extend(temporary_check.map(str::to_string));
    let options = Options { targets, now: Some(crate::clock::now_seconds()), ..Options::default() };
    let mut back = plan::plan(config, &recorder.prior, Some(&live), &options).map_err(|e| e.to_string())?;
    // The drill's restore Job: restores are not diffed, so its removal is added by hand.
    let jobs: Vec<Change> = recorder
        .prior
        .objects
        .values()
        .filter(|o| drill::is_drill_restore(&o.resource.address, &record.region))
        .map(|o| Change {
            address: o.resource.address.clone(),
            kind: o.resource.kind,
            region: o.resource.region.clone(),
            action: plan::Action::Delete,
            before: Some(o.resource.attrs.clone()),
            after: None,
            id: Some(o.id.clone()),
            replace_paths: Vec::new(),
        })
        .collect();
    back.changes.extend(jobs);
    back.graph = plan::graph::build(
        &back.changes,
        plan::graph::Context::serving(config.active_region().map(|r| r.name.as_str())),
    )
    .map_err(|e| e.to_string())?;
    if back.changes.is_empty() {
        return Ok(Vec::new());
    }
    let doc = PlanDoc::new(
        &back,
        Origin {
            drplan_version: env!("CARGO_PKG_VERSION").into(),
            configuration_hash: String::new(),
            prior_state: None,
        },
        false,
    );
    let never = AtomicBool::new(false);
    let gate = crate::apply::NoGate;
    let summary = runtime
        .block_on(crate::apply::execute(&doc, clouds, &gate, settings, recorder, &never, |e| on_event(e)))
        .map_err(|e| e.to_string())?;
    if !summary.ok() || !summary.not_started.is_empty() {
        let failed: Vec<String> = summary.failed.iter().map(|(id, why)| format!("{id}: {why}")).collect();
        return Err(failed.join("; "));
    }
    Ok(summary.succeeded)
}

/// Each measured step's duration, from when the step before it ended; steps with no action
/// are left out.
fn measure(
    doc: &PlanDoc,
    finished: &BTreeMap<String, Duration>,
    failures: &BTreeMap<String, String>,
) -> Vec<DrillStep> {
    let mut out: Vec<DrillStep> = Vec::new();
    let mut before = 0.0f64;
    let kinds: BTreeMap<&str, drplan_core::plan::Kind> = doc
        .resource_changes
        .iter()
        .filter_map(|rc| drplan_core::plan::Kind::parse(&rc.kind).map(|k| (rc.address.as_str(), k)))
        .collect();
    for name in [drill::CAPACITY, drill::RESTORE, drill::WORKLOADS, drill::GATE] {
        let actions: Vec<&str> = doc
            .actions
            .iter()
            .filter(|a| drill::step_of(&a.kind, kinds.get(a.id.as_str()).copied()) == name)
            .map(|a| a.id.as_str())
            .collect();
        if actions.is_empty() {
            continue;
        }
        let failed = actions.iter().find_map(|a| failures.get(*a).map(|why| format!("{a}: {why}")));
        let all_done = actions.iter().all(|a| finished.contains_key(*a));
        let end = actions.iter().filter_map(|a| finished.get(*a)).map(Duration::as_secs_f64).fold(before, f64::max);
        let ok = failed.is_none() && all_done;
        let detail = failed.or_else(|| (!all_done).then(|| "did not run".to_string()));
        out.push(DrillStep { name: name.to_string(), seconds: (end - before).max(0.0), ok, detail });
        before = end;
    }
    out
}

fn replace(prior: &mut Prior, record: Drill) {
    match prior.drills.iter_mut().find(|d| d.id == record.id) {
        Some(d) => *d = record,
        None => prior.drills.push(record),
    }
}

fn settings(config: &Config, id: &str, request: &DrillRequest<'_>) -> Settings {
    let rollout_timeout = request
        .rollout_timeout
        .unwrap_or_else(|| Duration::from_secs(2 * plan::Estimates::from_config(config).workload));
    Settings {
        project: config.project.clone(),
        plan_id: format!("drill:{id}"),
        parallelism: request.parallelism,
        skip_health_gate: false,
        rollout_timeout,
        fence: None,
    }
}

fn gate_poll(config: &Config) -> Duration {
    let interval = config.failover.as_ref().map_or(30, |f| f.health_check.interval.as_secs());
    Duration::from_secs((interval / 3).clamp(1, 10))
}

/// `drill-REGION-YYYYmmddTHHMMSS`: readable, and distinct for drills a second apart.
fn drill_id(_project: &str, region: &str, now: i64) -> String {
    let name = drplan_core::recovery::PointFormat::parse("%Y%m%dT%H%M%S")
        .ok()
        .and_then(|f| f.name_at(now))
        .unwrap_or_else(|| now.to_string());
    format!("drill-{region}-{}", name.to_ascii_lowercase())
}

fn origin(planned: &Planned) -> Origin {
    Origin {
        drplan_version: env!("CARGO_PKG_VERSION").to_string(),
        configuration_hash: engine::configuration_hash(&planned.sources),
        prior_state: None,
    }
}

fn runtime() -> Result<&'static tokio::runtime::Runtime, Failed> {
    Ok(crate::runtime::shared()?)
}

fn cycle(e: plan::graph::CycleError) -> Failed {
    Diagnostic::error(Code::Cycle, e.to_string())
        .help("this is a bug in drplan's ordering rules; please report it")
        .into()
}

fn state_write(e: &dyn std::fmt::Display, consequence: &str) -> Diagnostic {
    Diagnostic::error(Code::StateWrite, format!("the drill record could not be written: {e}"))
        .help(format!("{consequence}; check that the state backend is writable"))
}
