//! Executing a plan: the document's action graph run with bounded parallelism, in
//! dependency order, each finished action recorded in state at once, so a crash loses at
//! most the actions in flight (and those are adopted on the next run). The one executor:
//! `drplan apply`, the watcher, drills and the provider test kit's `converge` all run it; what
//! a step waits for after its call is the step table's (`drplan_core::plan::step`).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use drplan_core::plan::doc::PlanDoc;
use drplan_core::plan::{Change, Observed};
use drplan_core::provider::{ApplyRequest, Provider, ProviderError, ReadyRequest, idempotency_token};
use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};

/// Why a step failed, in words for the person reading the run (an action's `Failed` event).
pub type StepError = Box<dyn std::error::Error + Send + Sync>;

/// Why a plan document cannot be executed at all (nothing was started).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecError {
    /// A change in the document cannot be read back.
    Change(String),
    /// An action depends on one the document does not have.
    UnknownDependency { action: String, depends_on: String },
}

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecError::Change(why) => write!(f, "{why}"),
            ExecError::UnknownDependency { action, depends_on } => {
                write!(f, "{action} depends on unknown action {depends_on}")
            }
        }
    }
}

impl std::error::Error for ExecError {}

/// Waits until a region's health check reports healthy (the gate before DNS moves).
pub trait Gate: Sync {
    fn wait(&self, region: &str, health_check: &str) -> impl Future<Output = Result<(), StepError>> + Send;
}

/// Receives every finished change, to write it to state before anything else happens.
pub trait Recorder {
    /// Takes a finished change into the state being kept.
    fn record(&mut self, change: &Change, object: Option<Observed>);
    /// Writes the state with every change recorded so far.
    fn save(&mut self) -> Result<(), StepError>;
}

/// A gate for plans that have none (a drill's teardown): passes at once.
pub struct NoGate;

impl Gate for NoGate {
    async fn wait(&self, _region: &str, _health_check: &str) -> Result<(), StepError> {
        Ok(())
    }
}

pub struct Settings {
    pub project: String,
    /// Identifies the plan for idempotency tokens: the same saved plan applied again after a
    /// crash sends the same tokens, so a create that already happened is not repeated.
    pub plan_id: String,
    pub parallelism: usize,
    pub skip_health_gate: bool,
    /// How long a workload scaled up in the region that will serve may take to become
    /// available before its action fails (and traffic does not move).
    pub rollout_timeout: Duration,
    /// Whether this run may still change anything: the state lock's lease, checked before
    /// every change (`None`: a lock without a lease). Once it fails nothing more starts.
    pub fence: Option<Fence>,
}

/// A check that says why this run may no longer change anything (its state lock's lease
/// was lost).
pub type Fence = std::sync::Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Started {
        id: String,
    },
    Finished {
        id: String,
        elapsed: Duration,
    },
    Failed {
        id: String,
        error: String,
    },
    Skipped {
        id: String,
        why: String,
    },
    /// A running action's progress (a rollout's `2/3 ready`).
    Progress {
        id: String,
        message: String,
    },
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub succeeded: Vec<String>,
    pub failed: Vec<(String, String)>,
    pub skipped: Vec<(String, String)>,
    /// Not started because the run was interrupted.
    pub not_started: Vec<String>,
    pub interrupted: bool,
    /// Why this run stopped changing anything midway: it lost its state lock's lease.
    pub fenced: Option<String>,
    /// Steps undone because a later step of their transition failed (writers scaled back up
    /// when a catch-up timed out), each with the undo's outcome.
    pub undone: Vec<(String, Result<(), String>)>,
    /// Failed steps that let the rest go on (`on_failure = "continue"`): in `failed` too.
    pub failed_reported: Vec<String>,
}

impl Summary {
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && !self.interrupted && self.fenced.is_none()
    }

    /// Whether the plan was carried out: nothing failed but steps that let the rest go on
    /// (reported, and the run exits non-zero for them), nothing interrupted.
    pub fn completed(&self) -> bool {
        self.failed.iter().all(|(id, _)| self.failed_reported.contains(id))
            && !self.interrupted
            && self.fenced.is_none()
            && self.not_started.is_empty()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Waiting,
    Running,
    Done,
    Failed,
    Skipped,
}

/// Runs the plan. Stops scheduling when `stop` is set (Ctrl-C) and lets running actions
/// finish. Returns what happened; never panics on provider errors.
pub async fn execute<P: Provider, G: Gate>(
    doc: &PlanDoc,
    provider: &P,
    gate: &G,
    settings: &Settings,
    recorder: &mut impl Recorder,
    stop: &AtomicBool,
    mut on_event: impl FnMut(&Event),
) -> Result<Summary, ExecError> {
    let changes: std::collections::HashMap<&str, Change> = doc
        .resource_changes
        .iter()
        .map(|rc| rc.to_change().map(|c| (rc.address.as_str(), c)))
        .collect::<Result<_, _>>()
        .map_err(ExecError::Change)?;
    let position: std::collections::HashMap<&str, usize> =
        doc.actions.iter().enumerate().map(|(i, a)| (a.id.as_str(), i)).collect();
    let n = doc.actions.len();
    let mut deps_left = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, a) in doc.actions.iter().enumerate() {
        for d in &a.depends_on {
            let d = *position
                .get(d.as_str())
                .ok_or_else(|| ExecError::UnknownDependency { action: a.id.clone(), depends_on: d.clone() })?;
            deps_left[i] += 1;
            dependents[d].push(i);
        }
    }

    let serving = doc.roles.iter().find(|(_, role)| role.as_str() == "active").map(|(r, _)| r.as_str());
    let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel::<(usize, String)>();

    let mut status = vec![Status::Waiting; n];
    let mut summary = Summary::default();
    let mut emit = |e: Event, summary: &mut Summary| {
        match &e {
            Event::Finished { id, .. } => summary.succeeded.push(id.clone()),
            Event::Failed { id, error } => summary.failed.push((id.clone(), error.clone())),
            Event::Skipped { id, why } => summary.skipped.push((id.clone(), why.clone())),
            Event::Started { .. } | Event::Progress { .. } => {}
        }
        on_event(&e);
    };
    // Actions the plan itself skips (an unreachable region, declared lost) count as settled:
    // the plan already skipped whatever must not run after them.
    let mut settled: Vec<usize> = Vec::new();
    for (i, a) in doc.actions.iter().enumerate() {
        if let Some(why) = &a.skipped {
            status[i] = Status::Skipped;
            emit(Event::Skipped { id: a.id.clone(), why: why.clone() }, &mut summary);
            settled.push(i);
        }
    }
    for i in settled {
        for &d in &dependents[i] {
            deps_left[d] -= 1;
        }
    }

    let mut running = FuturesUnordered::new();
    let parallelism = settings.parallelism.max(1);
    // List scheduling: of the ready actions, start first the one with the longest chain of
    // actions still waiting on it (ties in plan order), so the critical path never queues
    // behind work that can wait. The queue keeps scheduling proportional to the edges.
    let mut height = vec![1usize; n];
    for i in (0..n).rev() {
        let below = dependents[i].iter().map(|d| height[*d]).max().unwrap_or(0);
        height[i] = 1 + below;
    }
    let key = |i: usize| (std::cmp::Reverse(height[i]), i);
    let mut ready: std::collections::BTreeSet<(std::cmp::Reverse<usize>, usize)> =
        (0..n).filter(|i| status[*i] == Status::Waiting && deps_left[*i] == 0).map(key).collect();
    // Once state cannot be written, nothing more is started: every further change would be
    // one more the state does not know of.
    let mut state_lost = false;
    loop {
        if !state_lost {
            // Start what is ready, longest chain first, up to the parallelism; a stop takes
            // effect before the next start, even within one round.
            while running.len() < parallelism && !stop.load(Ordering::SeqCst) && summary.fenced.is_none() {
                let Some((_, i)) = ready.pop_first() else { break };
                if status[i] != Status::Waiting {
                    continue;
                }
                // A run that lost its lease starts nothing more: another run holds the state.
                if let Some(Err(why)) = settings.fence.as_ref().map(|fence| fence()) {
                    summary.fenced = Some(why);
                    ready.insert(key(i));
                    break;
                }
                status[i] = Status::Running;
                let a = &doc.actions[i];
                emit(Event::Started { id: a.id.clone() }, &mut summary);
                let change = changes.get(a.id.as_str());
                // The step table says what is waited for: a rollout where traffic goes, a Job to its end.
                let wait = change.filter(|c| drplan_core::plan::step::awaited(c, serving));
                running.push(run_one(
                    i,
                    a,
                    change,
                    wait.is_some(),
                    provider,
                    gate,
                    settings,
                    stop,
                    progress_tx.clone(),
                ));
            }
        }
        if running.is_empty() {
            break;
        }
        let first = loop {
            tokio::select! {
                biased;
                Some((i, message)) = progress_rx.recv() => {
                    emit(Event::Progress { id: doc.actions[i].id.clone(), message }, &mut summary);
                }
                done = running.next() => break done,
            }
        };
        // Progress sent just before an action ended comes before its end.
        while let Ok((i, message)) = progress_rx.try_recv() {
            emit(Event::Progress { id: doc.actions[i].id.clone(), message }, &mut summary);
        }
        let Some(first) = first else { break };
        // Everything that finished at the same moment is written to state in one go: one
        // write instead of one per action, and still before anything new starts.
        let mut finished = vec![first];
        while let Some(Some(more)) = running.next().now_or_never() {
            finished.push(more);
        }
        let mut recorded = false;
        let mut outcomes: Vec<(usize, Result<bool, String>, Duration)> = Vec::with_capacity(finished.len());
        for Ran { index: i, applied, result, elapsed } in finished {
            let change = changes.get(doc.actions[i].id.as_str());
            // What a change did is recorded even when the action then fails (a workload
            // scaled but never available): state must know what the cloud holds.
            if let (Some(object), Some(change)) = (applied, change) {
                recorder.record(change, object);
                recorded = true;
            }
            let outcome = result.map(|()| change.is_some());
            outcomes.push((i, outcome, elapsed));
        }
        let saved = if recorded { recorder.save() } else { Ok(()) };
        if saved.is_err() {
            state_lost = true;
        }
        for (i, outcome, elapsed) in outcomes {
            let id = doc.actions[i].id.clone();
            let result = match (outcome, &saved) {
                (Ok(true), Err(e)) => Err(format!("the change was made but state could not be written: {e}")),
                (Ok(_), _) => Ok(()),
                (Err(e), _) => Err(e),
            };
            // A step that lets the rest go on when it fails (a hook with `on_failure =
            // "continue"`) is reported, and what waits on it runs: done as far as the graph
            // goes, so nothing after it is skipped and no undo runs for it (writers resumed
            // behind a promotion would be two).
            let soft = result.is_err()
                && changes
                    .get(doc.actions[i].id.as_str())
                    .is_some_and(|c| !drplan_core::plan::step::stops_on_failure(c));
            if result.is_ok() || soft {
                status[i] = Status::Done;
                match result {
                    Ok(()) => emit(Event::Finished { id, elapsed }, &mut summary),
                    Err(error) => {
                        summary.failed_reported.push(id.clone());
                        emit(Event::Failed { id, error }, &mut summary);
                    }
                }
                for &d in &dependents[i] {
                    deps_left[d] -= 1;
                    if deps_left[d] == 0 && status[d] == Status::Waiting {
                        ready.insert(key(d));
                    }
                }
            } else if let Err(error) = result {
                status[i] = Status::Failed;
                emit(Event::Failed { id: id.clone(), error }, &mut summary);
                // Everything that needed it is skipped; independent actions go on.
                let mut stack = dependents[i].clone();
                while let Some(d) = stack.pop() {
                    if status[d] == Status::Waiting {
                        status[d] = Status::Skipped;
                        emit(
                            Event::Skipped { id: doc.actions[d].id.clone(), why: format!("needs {id}, which failed") },
                            &mut summary,
                        );
                        stack.extend(dependents[d].iter().copied());
                    }
                }
            }
        }
    }
    // A step with an undo whose transition failed after it (something that waited on it
    // failed, or was skipped for that) is undone: the writers stopped for a promotion that
    // did not happen are started again. Not after a stop or a lost lease: the next run
    // resumes from the record in state.
    // Never once a promotion happened: the new writer takes writes, and the old one starting
    // again would make two.
    let promoted = (0..n).any(|i| {
        status[i] == Status::Done
            && changes.get(doc.actions[i].id.as_str()).is_some_and(drplan_core::plan::step::is_promotion)
    });
    if !summary.interrupted && summary.fenced.is_none() && !stop.load(Ordering::SeqCst) && !promoted {
        for i in 0..n {
            let Some(change) = changes.get(doc.actions[i].id.as_str()) else { continue };
            let Some(undo) = change.kind.spec().undo else { continue };
            if status[i] != Status::Done || !broken_after(i, &dependents, &status) {
                continue;
            }
            let mut reverse = change.clone();
            reverse.address =
                change.address.replacen(&format!(".{}.", change.kind.as_str()), &format!(".{}.", undo.as_str()), 1);
            reverse.kind = undo;
            reverse.action = drplan_core::plan::Action::Create;
            emit(Event::Started { id: reverse.address.clone() }, &mut summary);
            let start = Instant::now();
            let outcome = apply_change(&reverse, provider, settings).await.map(|_| ());
            match &outcome {
                Ok(()) => emit(Event::Finished { id: reverse.address.clone(), elapsed: start.elapsed() }, &mut summary),
                Err(error) => emit(Event::Failed { id: reverse.address.clone(), error: error.clone() }, &mut summary),
            }
            summary.undone.push((change.address.clone(), outcome));
        }
    }
    // Actions finish in an order that varies from run to run; the summary lists them in plan
    // order so the same outcome reads the same.
    let in_plan = |id: &String| position.get(id.as_str()).copied();
    summary.succeeded.sort_by_key(in_plan);
    summary.failed.sort_by_key(|(id, _)| in_plan(id));
    summary.skipped.sort_by_key(|(id, _)| in_plan(id));
    summary.interrupted = stop.load(Ordering::SeqCst);
    summary.not_started = (0..n).filter(|i| status[*i] == Status::Waiting).map(|i| doc.actions[i].id.clone()).collect();
    Ok(summary)
}

/// Whether something waiting on action `i` (directly or not) failed or was skipped.
fn broken_after(i: usize, dependents: &[Vec<usize>], status: &[Status]) -> bool {
    let mut stack = dependents[i].clone();
    let mut seen = vec![false; status.len()];
    while let Some(d) = stack.pop() {
        if std::mem::replace(&mut seen[d], true) {
            continue;
        }
        if matches!(status[d], Status::Failed | Status::Skipped) {
            return true;
        }
        stack.extend(dependents[d].iter().copied());
    }
    false
}

/// Now, RFC 3339 UTC: when a step waited on to its end finished.
fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    drplan_core::recovery::rfc3339(now as i64)
}

/// One action's outcome: what its change did (to record, even if the action then failed
/// waiting for it to become ready) and whether it succeeded.
struct Ran {
    index: usize,
    applied: Option<Option<Observed>>,
    result: Result<(), String>,
    elapsed: Duration,
}

#[allow(clippy::too_many_arguments, reason = "one call site; the pieces of one run")]
async fn run_one<P: Provider, G: Gate>(
    i: usize,
    action: &drplan_core::plan::doc::ActionNode,
    change: Option<&Change>,
    wait_ready: bool,
    provider: &P,
    gate: &G,
    settings: &Settings,
    stop: &AtomicBool,
    progress: tokio::sync::mpsc::UnboundedSender<(usize, String)>,
) -> Ran {
    let start = Instant::now();
    // Checked again at the last moment: the lease may have run out while this waited.
    if let Some(Err(why)) = settings.fence.as_ref().map(|fence| fence()) {
        return Ran { index: i, applied: None, result: Err(why), elapsed: start.elapsed() };
    }
    let (applied, result) = match (change, &action.region, &action.health_check) {
        (Some(change), _, _) => match apply_change(change, provider, settings).await {
            Ok(mut object) if wait_ready => {
                let report = move |message: String| {
                    let _ = progress.send((i, message));
                };
                let request = ReadyRequest {
                    project: &settings.project,
                    change,
                    timeout: settings.rollout_timeout,
                    progress: &report,
                };
                let waited = tokio::select! {
                    ready = provider.wait_ready(&request) => Some(ready.map_err(|e| cause(&e, change))),
                    () = stopping(stop) => None,
                };
                let finished_step = change.kind.spec().ready == drplan_core::plan::step::Ready::Finished;
                let Some(ready) = waited else {
                    // Stopping: the wait is abandoned. A step waited on to its end is left
                    // unrecorded, so the next run plans it again and adopts it by its name;
                    // what a scale did is recorded.
                    let applied = if finished_step { None } else { Some(object) };
                    let why = "abandoned: stopping; the next run adopts it".to_string();
                    return Ran { index: i, applied, result: Err(why), elapsed: start.elapsed() };
                };
                // A step waited on to its end is recorded done only once its wait saw it
                // finish: a restore recorded while it ran would count as finished after a crash.
                if finished_step && let Some(o) = object.as_mut() {
                    let status = if ready.is_ok() { "complete" } else { "failed" };
                    o.resource.attrs.insert("status".into(), status.into());
                    o.resource.attrs.insert("duration_seconds".into(), (start.elapsed().as_secs() as i64).into());
                    o.resource.attrs.insert("finished".into(), now_rfc3339().into());
                }
                (Some(object), ready)
            }
            Ok(object) => (Some(object), Ok(())),
            Err(e) => (None, Err(e)),
        },
        (None, Some(_), None) if action.kind == "barrier" => (None, Ok(())),
        (None, Some(region), Some(check)) if action.kind == "health_gate" => {
            if settings.skip_health_gate {
                (None, Ok(()))
            } else {
                // Stopping abandons the gate: traffic does not move, the next run waits again.
                tokio::select! {
                    passed = gate.wait(region, check) => (None, passed.map_err(|e| e.to_string())),
                    () = stopping(stop) => (None, Err("abandoned: stopping; the next run waits again".to_string())),
                }
            }
        }
        _ => (None, Err(format!("{} is neither a change nor a health gate of this plan", action.id))),
    };
    Ran { index: i, applied, result, elapsed: start.elapsed() }
}

/// Resolves once `stop` is set (looked at every 100 ms): what a long wait races against.
async fn stopping(stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Carries out one change. Nothing is retried here: each provider retries its own requests
/// under core's one retry policy (`drplan-retry`), in the apply phase, so a failure that
/// reaches this layer is final and retries never stack.
async fn apply_change<P: Provider>(
    change: &Change,
    provider: &P,
    settings: &Settings,
) -> Result<Option<Observed>, String> {
    let token = idempotency_token(&settings.plan_id, &change.address);
    let request = ApplyRequest { project: &settings.project, change, idempotency_token: &token };
    let call = Instant::now();
    let result = provider.apply(&request).await;
    tracing::debug!(
        address = %change.address,
        action = %change.action.as_str(),
        elapsed = ?call.elapsed(),
        outcome = %match &result {
            Ok(_) => "ok",
            Err(e) => e.class.as_str(),
        },
        "provider call"
    );
    result.map_err(|e| cause(&e, change))
}

/// A provider's error as the action's line shows it. The line names the action, which is
/// the change's address, so the error keeps an address only when it is another object's.
fn cause(e: &ProviderError, change: &Change) -> String {
    match &e.address {
        Some(a) if *a != change.address => e.to_string(),
        _ => e.cause(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use drplan_core::SourceFile;
    use drplan_core::config;
    use drplan_core::plan::doc::{Origin, PlanDoc};
    use drplan_core::plan::{self, Options, Prior};
    use drplan_core::provider::ErrorClass;
    use drplan_provider_fake::FakeProvider;

    use super::*;

    struct Healthy;

    impl Gate for Healthy {
        async fn wait(&self, _: &str, _: &str) -> Result<(), StepError> {
            Ok(())
        }
    }

    #[derive(Default)]
    struct Log {
        objects: BTreeMap<String, Observed>,
        records: usize,
        writes: usize,
    }

    impl Recorder for Log {
        fn record(&mut self, change: &Change, object: Option<Observed>) {
            self.records += 1;
            match object {
                Some(o) => self.objects.insert(change.address.clone(), o),
                None => self.objects.remove(&change.address),
            };
        }

        fn save(&mut self) -> Result<(), StepError> {
            self.writes += 1;
            Ok(())
        }
    }

    fn bot_core_doc() -> PlanDoc {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/bot-core/main.hcl")).unwrap();
        let config = config::load(&[SourceFile::new("main.hcl", text)], &|_| None).config.unwrap();
        let plan = plan::plan(&config, &Prior::default(), None, &Options::default()).unwrap();
        PlanDoc::new(
            &plan,
            Origin { drplan_version: "t".into(), configuration_hash: "h".into(), prior_state: None },
            false,
        )
    }

    fn settings(parallelism: usize) -> Settings {
        Settings {
            project: "bot-core".into(),
            plan_id: "p".into(),
            parallelism,
            skip_health_gate: false,
            rollout_timeout: Duration::from_secs(5),
            fence: None,
        }
    }

    /// A state store that breaks after `ok` writes.
    struct Breaks {
        ok: usize,
    }

    impl Recorder for Breaks {
        fn record(&mut self, _: &Change, _: Option<Observed>) {}

        fn save(&mut self) -> Result<(), StepError> {
            if self.ok == 0 {
                return Err("the state at s3://b/k changed since this run read it".into());
            }
            self.ok -= 1;
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_state_that_cannot_be_written_stops_new_work() {
        let doc = bot_core_doc();
        let cloud = FakeProvider::everything();
        let mut started = 0;
        let summary =
            execute(&doc, &cloud, &Healthy, &settings(1), &mut Breaks { ok: 2 }, &AtomicBool::new(false), |e| {
                if let Event::Started { .. } = e {
                    started += 1;
                }
            })
            .await
            .unwrap();
        assert_eq!(summary.failed.len(), 1, "{summary:?}");
        assert!(summary.failed[0].1.contains("state could not be written"), "{:?}", summary.failed);
        assert!(summary.succeeded.len() <= 3, "at most the writes that worked, plus gates: {summary:?}");
        assert_eq!(started, summary.succeeded.len() + 1, "nothing started after the failed write");
        assert!(!summary.not_started.is_empty(), "the rest is reported as not started");
    }

    #[tokio::test]
    async fn runs_every_action_in_dependency_order_and_records_each() {
        let doc = bot_core_doc();
        let cloud = FakeProvider::everything();
        let mut log = Log::default();
        let mut order = Vec::new();
        let summary = execute(&doc, &cloud, &Healthy, &settings(4), &mut log, &AtomicBool::new(false), |e| {
            if let Event::Finished { id, .. } = e {
                order.push(id.clone());
            }
        })
        .await
        .unwrap();
        assert!(summary.ok(), "{summary:?}");
        assert_eq!(summary.succeeded.len(), doc.actions.len());
        assert_eq!(log.records, doc.resource_changes.len(), "every change recorded");
        assert!(log.writes >= 1 && log.writes <= log.records, "written as they finish: {} writes", log.writes);
        assert_eq!(log.objects.len(), doc.resource_changes.len());
        for a in &doc.actions {
            let at = order.iter().position(|o| *o == a.id).unwrap();
            for d in &a.depends_on {
                assert!(
                    order.iter().position(|o| o == d).unwrap() < at,
                    "{} finished before its prerequisite {d}",
                    a.id
                );
            }
        }
    }

    #[tokio::test]
    async fn a_failure_skips_its_dependents_and_the_rest_finishes() {
        let doc = bot_core_doc();
        let cloud = FakeProvider::everything();
        cloud.inject("region.us-east-1.compute.nodes[1]", &[ErrorClass::Invalid]);
        let mut log = Log::default();
        let summary =
            execute(&doc, &cloud, &Healthy, &settings(10), &mut log, &AtomicBool::new(false), |_| {}).await.unwrap();
        assert_eq!(summary.failed.len(), 1, "{summary:?}");
        assert!(summary.failed[0].1.contains("injected fault"));
        let skipped: Vec<&str> = summary.skipped.iter().map(|(id, _)| id.as_str()).collect();
        // The workloads on those machines, the gate, and DNS wait on it; eu-west-1 does not.
        for needs in ["region.us-east-1.workload.ai-service", "gate.health.us-east-1", "dns.api.bot-core.com.primary"] {
            assert!(skipped.contains(&needs), "{needs} should be skipped: {skipped:?}");
        }
        let in_plan: Vec<&str> = doc.actions.iter().map(|a| a.id.as_str()).filter(|id| skipped.contains(id)).collect();
        assert_eq!(skipped, in_plan, "the summary lists in plan order, whatever the order of completion");
        assert!(summary.succeeded.iter().any(|s| s == "region.eu-west-1.compute.nodes[0]"));
        assert!(log.objects.contains_key("region.us-east-1.compute.nodes[0]"), "finished work is recorded");
        assert!(!summary.ok());
    }

    /// A workload scaled up in the serving region that never becomes available fails its
    /// action: the gate and DNS wait on it and are skipped, its scale is still recorded,
    /// and its progress is reported while it waits.
    #[tokio::test]
    async fn a_rollout_that_never_completes_keeps_traffic_where_it_is() {
        let doc = bot_core_doc();
        let cloud = FakeProvider::everything();
        cloud.never_ready("region.us-east-1.workload.ai-service", "ProgressDeadlineExceeded");
        let mut log = Log::default();
        let mut progress = Vec::new();
        let summary = execute(&doc, &cloud, &Healthy, &settings(10), &mut log, &AtomicBool::new(false), |e| {
            if let Event::Progress { id, message } = e {
                progress.push(format!("{id}: {message}"));
            }
        })
        .await
        .unwrap();
        let failed: Vec<&str> = summary.failed.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(failed, vec!["region.us-east-1.workload.ai-service"], "{summary:?}");
        assert!(summary.failed[0].1.contains("ProgressDeadlineExceeded"), "{summary:?}");
        let skipped: Vec<&str> = summary.skipped.iter().map(|(id, _)| id.as_str()).collect();
        for needs in ["gate.health.us-east-1", "dns.api.bot-core.com.primary"] {
            assert!(skipped.contains(&needs), "{needs} should be skipped: {skipped:?}");
        }
        assert!(log.objects.contains_key("region.us-east-1.workload.ai-service"), "the scale-up is recorded");
        assert_eq!(progress, vec!["region.us-east-1.workload.ai-service: 0/1 ready"]);
        // Only workloads scaled up where traffic goes are waited for: us-east-1 serves here.
        let waited: Vec<String> = cloud.calls().into_iter().filter(|c| c.starts_with("wait_ready")).collect();
        assert!(!waited.is_empty() && waited.iter().all(|c| c.contains("region.us-east-1.workload.")), "{waited:?}");
    }

    /// Throttling is retried by the provider's requests, within the policy; apply adds no
    /// retries of its own on top.
    #[tokio::test]
    async fn throttling_is_retried_once_within_the_policy_not_again_by_apply() {
        let doc = bot_core_doc();
        let cloud = FakeProvider::everything();
        cloud.inject("health_check.us-east-1", &[ErrorClass::Throttled, ErrorClass::Throttled]);
        let summary =
            execute(&doc, &cloud, &Healthy, &settings(10), &mut Log::default(), &AtomicBool::new(false), |_| {})
                .await
                .unwrap();
        assert!(summary.ok(), "{summary:?}");
        let tries = cloud.calls().iter().filter(|c| *c == "create health_check.us-east-1").count();
        assert_eq!(tries, 3);

        let cloud = FakeProvider::everything();
        let max = drplan_retry::RetryPolicy::DEFAULT.max_attempts as usize;
        cloud.inject("health_check.us-east-1", &vec![ErrorClass::Throttled; 3 * max]);
        let summary =
            execute(&doc, &cloud, &Healthy, &settings(10), &mut Log::default(), &AtomicBool::new(false), |_| {})
                .await
                .unwrap();
        let tries = cloud.calls().iter().filter(|c| *c == "create health_check.us-east-1").count();
        assert_eq!(tries, max, "one layer of retries");
        let (_, why) = summary.failed.iter().find(|(id, _)| id == "health_check.us-east-1").expect("it fails");
        assert!(why.starts_with(&format!("throttled: injected fault (after {max} attempts in ")), "{why}");
    }

    #[tokio::test]
    async fn stopping_lets_running_actions_finish_and_starts_nothing_new() {
        let doc = bot_core_doc();
        let cloud = FakeProvider::everything();
        let stop = AtomicBool::new(false);
        let mut started = 0;
        let summary = execute(&doc, &cloud, &Healthy, &settings(2), &mut Log::default(), &stop, |e| {
            if let Event::Started { .. } = e {
                started += 1;
                if started == 3 {
                    stop.store(true, Ordering::SeqCst);
                }
            }
        })
        .await
        .unwrap();
        assert!(summary.interrupted);
        assert_eq!(summary.succeeded.len(), 3, "{summary:?}");
        assert_eq!(summary.succeeded.len() + summary.not_started.len(), doc.actions.len());
    }
}
