//! The pipeline every command runs, as plain functions: load the configuration → open the
//! state backend → lock → read state → refresh → plan, and reading a saved plan back.
//! Applying the result is [`crate::apply`]. Nothing here prints: diagnostics come back as
//! values, and what a person waits on (the configuration's warnings as soon as it is read,
//! the refresh starting and ending, a state copy behind) goes to the caller's observer.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use drplan_core::config::Config;
use drplan_core::plan::doc::{Origin, PlanDoc, StateRef};
use drplan_core::plan::{self, Options, Prior, Snapshot};
use drplan_core::{Code, Diagnostic, Diagnostics, SourceFile};
use sha2::{Digest, Sha256};

use crate::load;

/// What to plan, and under which lock.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// A configuration directory (its `*.hcl` files are merged) or a single file.
    pub path: &'a Path,
    /// When given, these replace the files at `path`: an edit planned before it is written.
    pub sources: Option<Vec<SourceFile>>,
    /// Read the live clouds; `false` plans from state alone, without an API call.
    pub refresh: bool,
    /// Plan only these addresses and what is under them.
    pub targets: &'a [String],
    /// Regions (and state copies) that cannot be reached are declared lost.
    pub allow_unreachable: bool,
    /// The operation the state lock is taken for, held as long as the result lives; `None`
    /// takes none (read-only work).
    pub lock: Option<&'a str>,
    /// How long to wait for another holder of the lock.
    pub lock_timeout: Duration,
    /// `--restore-point`: a promotion restores the newest usable point at or before it
    /// (seconds since the epoch).
    pub restore_point: Option<i64>,
    /// `--allow-suspect`: with `restore_point`, a point written during an open incident.
    pub allow_suspect: bool,
    /// `--accept-data-loss`: restoring a point older than the RPO is allowed.
    pub accept_data_loss: bool,
    /// `drplan restore`: plan this restore alone.
    pub restore_only: Option<drplan_core::plan::restore::Explicit>,
    /// `--fail-back`: plan a configuration that names the region a watcher failed over from.
    pub fail_back: bool,
    /// Policies besides the configuration's own (`--policy`), and the packages that count.
    pub policy: PolicyRequest,
}

/// The Rego policies a plan is checked against, besides the configuration's own
/// `drplan { policy { paths } }` (which are relative to the configuration).
#[derive(Debug, Clone, Default)]
pub struct PolicyRequest {
    /// More directories of `*.rego` files (`--policy DIR`), relative to the current directory.
    pub dirs: Vec<PathBuf>,
    /// The packages whose `deny`, `violation` and `warn` rules count; empty: `main`.
    pub namespaces: Vec<String>,
}

/// The policies a planned configuration is held to, resolved: every gate evaluates these.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub dirs: Vec<PathBuf>,
    pub namespaces: Vec<String>,
}

impl Policy {
    /// The configuration's policy directories (relative to it) and the request's.
    pub fn resolve(config: &Config, path: &Path, request: &PolicyRequest) -> Policy {
        let dir = configuration_dir(path);
        let mut dirs: Vec<PathBuf> = config.policy.iter().map(|p| dir.join(p)).collect();
        dirs.extend(request.dirs.iter().cloned());
        Policy { dirs, namespaces: request.namespaces.clone() }
    }

    /// What the rules say about `doc`; none when no policy is configured.
    pub fn evaluate(&self, doc: &PlanDoc) -> Result<Vec<drplan_core::policy::PolicyResult>, Failed> {
        if self.dirs.is_empty() {
            return Ok(Vec::new());
        }
        crate::policy::load(&self.dirs)
            .and_then(|mut p| p.evaluate(doc, &self.namespaces))
            .map_err(|f| Failed { sources: f.sources, diagnostics: f.diagnostics })
    }
}

/// What the pipeline tells its observer while it works.
#[derive(Debug)]
pub enum Event<'a> {
    /// The configuration was read: its warnings (or errors), with the files they point into.
    Loaded { sources: &'a [SourceFile], diagnostics: &'a Diagnostics },
    /// A note for the person waiting (a state copy behind or caught up).
    Note(String),
    /// The refresh of the clouds starts.
    Refreshing,
    /// The refresh is done.
    Refreshed { objects: usize, elapsed: Duration },
}

/// Why the pipeline stopped: the diagnostics to show (configuration problems were already
/// given to the observer with [`Event::Loaded`]; `diagnostics` is then empty).
#[derive(Debug)]
pub struct Failed {
    pub diagnostics: Diagnostics,
    /// Files the diagnostics point into besides the configuration's (policy files).
    pub sources: Vec<SourceFile>,
}

impl Failed {
    pub fn new(diagnostics: Diagnostics) -> Failed {
        Failed { diagnostics, sources: Vec::new() }
    }
}

impl From<Diagnostic> for Failed {
    fn from(d: Diagnostic) -> Failed {
        let mut diagnostics = Diagnostics::default();
        diagnostics.push(d);
        Failed::new(diagnostics)
    }
}

/// A plan with everything apply needs to carry it out under the same lock.
pub struct Planned {
    pub doc: PlanDoc,
    pub config: Config,
    pub sources: Vec<SourceFile>,
    pub backend: Box<dyn drplan_state::Backend>,
    pub state: Option<drplan_state::StateFile>,
    pub prior: Prior,
    /// Held until dropped; `None` for read-only work.
    pub lock: Option<drplan_state::Lock>,
    /// What the refresh saw (`None` without one).
    pub live: Option<Snapshot>,
    /// The policies the plan was checked against; [`apply`] evaluates them again.
    pub policy: Policy,
}

/// Loads, locks state (held until the result is dropped), reads it, refreshes (or not) and
/// plans.
pub fn plan(request: &Request<'_>, observe: &mut dyn FnMut(Event<'_>)) -> Result<Planned, Failed> {
    let path = request.path;
    let loaded = match request.sources.clone() {
        Some(s) => load::from_sources(s),
        None => load::configuration(path),
    };
    observe(Event::Loaded { sources: &loaded.sources, diagnostics: &loaded.diagnostics });
    let Some(config) = loaded.config else { return Err(Failed::new(Diagnostics::default())) };
    let backend = load::state_backend(&config, &configuration_dir(path), request.allow_unreachable)?;
    // Held for the whole plan, so no apply changes state underneath it.
    let lock = match request.lock {
        None => None,
        Some(operation) => Some(lock(backend.as_ref(), operation, request.lock_timeout, observe)?),
    };
    let (state, prior) = read_state(backend.as_ref(), observe)?;

    let now = crate::clock::now_seconds();
    let suspect = drplan_core::incident::suspect_windows(&prior.incidents);
    let live =
        if request.refresh { Some(refresh(&config, now, request.restore_point, &suspect, observe)?) } else { None };

    let unknown = unknown_targets(request.targets, &plan::known_addresses(&config, &prior));
    if !unknown.is_empty() {
        return Err(Failed::new(unknown));
    }

    let options = Options {
        targets: request.targets.to_vec(),
        now: Some(now),
        restore_point: request.restore_point,
        allow_suspect: request.allow_suspect,
        accept_data_loss: request.accept_data_loss,
        restore_only: request.restore_only.clone(),
        fail_back: request.fail_back,
        ..Options::default()
    };
    let plan = plan::plan(&config, &prior, live.as_ref(), &options).map_err(|e| {
        Diagnostic::error(Code::Cycle, e.to_string())
            .help("this is a bug in drplan's ordering rules; please report it with the configuration")
    })?;
    let origin = Origin {
        drplan_version: env!("CARGO_PKG_VERSION").to_string(),
        configuration_hash: configuration_hash(&loaded.sources),
        prior_state: state.as_ref().map(|s| StateRef { lineage: s.lineage.clone(), serial: s.serial }),
    };
    let mut doc = PlanDoc::new(&plan, origin, request.allow_unreachable);
    doc.capacity = drplan_core::plan::doc::capacity(&config);
    // Where the configuration is, so the saved plan applies from any directory.
    doc.configuration_path = std::path::absolute(path).ok().map(|p| p.display().to_string());
    // The policies speak on every plan, whoever asked for it: a command, a watcher, a drill.
    let policy = Policy::resolve(&config, path, &request.policy);
    let results = policy.evaluate(&doc)?;
    drplan_core::policy::attach(&mut doc, results);
    Ok(Planned { doc, config, sources: loaded.sources, backend, state, prior, lock, live, policy })
}

/// Takes the state lock for `operation`. A lock taken over from a holder whose lease expired
/// is followed at once by a write of the state as it is (the next serial): the old holder,
/// should it resume, then finds every conditional write of its own refused.
pub fn lock(
    backend: &dyn drplan_state::Backend,
    operation: &str,
    timeout: Duration,
    observe: &mut dyn FnMut(Event<'_>),
) -> Result<drplan_state::Lock, Failed> {
    let lock = backend
        .lock(operation, &crate::clock::who(), &crate::clock::now_rfc3339(), timeout)
        .map_err(|e| load::lock_diagnostic(&e))?;
    if let Some(held) = &lock.took_over {
        observe(Event::Note(format!(
            "The state lock of {} ({}, taken {}) was taken over: its lease of {}s ran out unrenewed.",
            held.who,
            held.operation,
            held.created,
            held.lease_seconds.unwrap_or_default()
        )));
        if let (Some(mut state), _) = read_state(backend, &mut |_| {})? {
            state.serial += 1;
            backend.write(&state).map_err(|e| load::state_diagnostic(&e, backend))?;
        }
    }
    Ok(lock)
}

/// Reads the state and what planning needs of it, telling `observe` about copies behind.
pub fn read_state(
    backend: &dyn drplan_state::Backend,
    observe: &mut dyn FnMut(Event<'_>),
) -> Result<(Option<drplan_state::StateFile>, Prior), Failed> {
    let state = backend.read().map_err(|e| load::state_diagnostic(&e, backend))?;
    for line in load::copy_notes(&backend.copies()) {
        observe(Event::Note(line));
    }
    let prior = match state.as_ref().map(|s| s.to_prior()) {
        None => Prior::default(),
        Some(Ok(p)) => p,
        Some(Err(why)) => {
            let e = drplan_state::StateError::Unreadable { location: backend.location(), reason: why };
            return Err(load::state_diagnostic(&e, backend).into());
        }
    };
    Ok((state, prior))
}

/// A diagnostic for each `--target` that matches no address of the configuration or state.
fn unknown_targets(targets: &[String], known: &std::collections::BTreeSet<String>) -> Diagnostics {
    let mut out = Diagnostics::default();
    let found = targets
        .iter()
        .filter(|t| !known.iter().any(|a| plan::target_matches(t, a)))
        .map(|t| {
            let hint = load::closest_address(t, known).map(|s| format!("did you mean `{s}`? ")).unwrap_or_default();
            Diagnostic::error(Code::UnknownTarget, format!("`{t}` matches nothing in this configuration")).help(format!(
                "{hint}addresses look like `region.us-east-1`, `region.us-east-1.compute.nodes[2]`, `dns.api.example.com.primary`"
            ))
        });
    for d in found {
        out.push(d);
    }
    out
}

/// Reads the live clouds the configuration uses, and the backup destinations' recovery
/// points (newest usable at `now`, and at or before `restore_point` when given; with
/// `suspect`, the incidents' windows, points written during one are suspect and the newest
/// clean one is looked for too).
pub fn refresh(
    config: &Config,
    now: i64,
    restore_point: Option<i64>,
    suspect: &[(i64, i64)],
    observe: &mut dyn FnMut(Event<'_>),
) -> Result<Snapshot, Failed> {
    let runtime = crate::runtime::shared()?;
    let started = Instant::now();
    observe(Event::Refreshing);
    let snapshot = runtime.block_on(async {
        let clouds = crate::clouds::Clouds::connect(config).await?;
        refresh_with(&clouds, config, now, restore_point, suspect).await
    })?;
    observe(Event::Refreshed { objects: snapshot.objects.len(), elapsed: started.elapsed() });
    Ok(snapshot)
}

/// [`refresh`] on clouds already connected, for a caller that reads more from them after.
pub async fn refresh_with(
    clouds: &crate::clouds::Clouds,
    config: &Config,
    now: i64,
    restore_point: Option<i64>,
    suspect: &[(i64, i64)],
) -> Result<Snapshot, Diagnostic> {
    use drplan_core::provider::{Provider, RefreshRequest};
    let regions: Vec<String> = config.regions.iter().map(|r| r.name.clone()).collect();
    let desired = plan::desired::desired(config);
    let mut snapshot = clouds
        .refresh(&RefreshRequest { project: &config.project, regions: &regions, desired: &desired })
        .await
        .map_err(|e| {
            Diagnostic::error(Code::Refresh, format!("refresh failed: {e}"))
                .help("nothing was changed; check connectivity and credentials, then plan again")
        })?;
    let wanted = crate::recovery::Wanted { at: restore_point, suspect: suspect.to_vec() };
    snapshot.points =
        crate::recovery::discover(clouds, config, &desired, &snapshot.unreachable_objects, now, wanted).await;
    Ok(snapshot)
}

pub use crate::status::{StatusInput, status};

/// What `drplan backups` reads: every destination's recovery points, without state or lock.
pub struct Catalogs {
    pub config: Config,
    pub catalogs: std::collections::BTreeMap<String, drplan_core::recovery::Catalog>,
    pub now: i64,
    /// The incidents state records (open ones make newer points suspect).
    pub incidents: Vec<drplan_core::incident::Incident>,
}

/// Loads the configuration and discovers its backup destinations' recovery points.
pub fn catalogs(path: &Path, observe: &mut dyn FnMut(Event<'_>)) -> Result<Catalogs, Failed> {
    let loaded = load::configuration(path);
    observe(Event::Loaded { sources: &loaded.sources, diagnostics: &loaded.diagnostics });
    let Some(config) = loaded.config else { return Err(Failed::new(Diagnostics::default())) };
    // The incidents open: the points written since they began are suspect.
    let backend = load::state_backend(&config, &configuration_dir(path), false)?;
    let (_, prior) = read_state(backend.as_ref(), &mut |_| {})?;
    let suspect = drplan_core::incident::suspect_windows(&prior.incidents);
    let runtime = crate::runtime::shared()?;
    let now = crate::clock::now_seconds();
    let desired = plan::desired::desired(&config);
    let started = Instant::now();
    observe(Event::Refreshing);
    let catalogs = runtime.block_on(async {
        let clouds = crate::clouds::Clouds::connect(&config).await?;
        let none = std::collections::BTreeMap::new();
        let wanted = crate::recovery::Wanted { at: None, suspect: suspect.clone() };
        Ok::<_, Diagnostic>(crate::recovery::discover(&clouds, &config, &desired, &none, now, wanted).await)
    })?;
    let points = catalogs.values().map(|c| c.points.len()).sum();
    observe(Event::Refreshed { objects: points, elapsed: started.elapsed() });
    Ok(Catalogs { config, catalogs, now, incidents: prior.incidents })
}

/// The state file to start from when there is none yet (the first apply, a first drill).
pub fn empty_state(config: &Config) -> drplan_state::StateFile {
    drplan_state::StateFile::new(&config.project, env!("CARGO_PKG_VERSION"))
}

/// What an [`edit_state`] did to the state.
pub enum Edit<T> {
    /// Nothing to write: the state stays as it was.
    Unchanged(T),
    /// The state was changed: it is written back with the next serial.
    Changed(T),
}

/// The one state edit outside an apply: lock → read → modify → write, the lock released at
/// the end (`drplan state rm`, a watcher's counter, an accepted override). `edit` gets the
/// state as it is under the lock (`None` when there is none yet) and says whether it changed
/// it; a changed state is written with the next serial. `what` names the edit in errors.
pub fn edit_state<T>(
    backend: &dyn drplan_state::Backend,
    operation: &str,
    lock_timeout: Duration,
    what: &str,
    edit: impl FnOnce(&mut Option<drplan_state::StateFile>) -> Result<Edit<T>, Failed>,
) -> Result<T, Failed> {
    let lock = lock(backend, operation, lock_timeout, &mut |_| {})?;
    let (mut state, _) = read_state(backend, &mut |_| {})?;
    let out = match edit(&mut state)? {
        Edit::Unchanged(t) => t,
        Edit::Changed(t) => {
            if let Some(state) = state.as_mut() {
                state.serial += 1;
                backend.write(state).map_err(|e| {
                    Failed::from(
                        Diagnostic::error(Code::StateWrite, format!("{what} could not be written: {e}"))
                            .help("nothing was changed in state; run the command again once the state can be written"),
                    )
                })?;
            }
            t
        }
    };
    drop(lock);
    Ok(out)
}

/// Clears a watcher's override once the configuration names its region active: a person
/// accepted the failover (`drplan failover --to REGION --write`). The cleared override, or
/// `None` when there was none for `active`.
pub fn accept_override(
    path: &Path,
    active: &str,
    lock_timeout: Duration,
    allow_unreachable: bool,
) -> Result<Option<drplan_core::watch::Override>, Failed> {
    let loaded = load::configuration(path);
    let Some(config) = loaded.config else { return Err(Failed::new(loaded.diagnostics)) };
    let backend = load::state_backend(&config, &configuration_dir(path), allow_unreachable)?;
    // Most failovers follow no watcher's: then nothing is locked or written.
    let (state, _) = read_state(backend.as_ref(), &mut |_| {})?;
    if state.as_ref().and_then(|s| s.override_.as_ref()).is_none_or(|o| o.active != active) {
        return Ok(None);
    }
    edit_state(backend.as_ref(), "failover", lock_timeout, "the cleared override", |state| {
        match state.as_mut().and_then(|s| s.override_.take_if(|o| o.active == active)) {
            Some(o) => Ok(Edit::Changed(Some(o))),
            None => Ok(Edit::Unchanged(None)),
        }
    })
}

/// Why a plan may not be applied: what [`check`] found.
#[derive(Debug)]
pub enum Refusal {
    /// A policy denies it: each denial as `package.rule: message`.
    Denied(Vec<String>),
    /// The policies could not be evaluated, which counts as a denial.
    PolicyFailed(Failed),
    /// A safety rule fails, its order is not the rules' order, or it skips what it may not.
    NotApplyable(Vec<String>),
}

impl Refusal {
    /// One line: what refused it.
    pub fn summary(&self) -> String {
        match self {
            Refusal::Denied(rules) => format!("a policy denies the plan: {}", rules.join("; ")),
            Refusal::PolicyFailed(f) => format!(
                "the policies could not be evaluated, which counts as a denial: {}",
                f.diagnostics.iter().map(|d| d.message.clone()).collect::<Vec<_>>().join("; ")
            ),
            Refusal::NotApplyable(why) => format!("the plan cannot be applied: {}", why.join("; ")),
        }
    }

    /// The refusal as diagnostics, with the policy files they point into.
    pub fn into_failed(self) -> Failed {
        match self {
            Refusal::Denied(rules) => Diagnostic::error(Code::PolicyDenied, "a policy denies this plan")
                .help(format!(
                    "{}; change the configuration (or the policy, in review) and plan again; nothing was changed",
                    rules.join("; ")
                ))
                .into(),
            Refusal::PolicyFailed(mut f) => {
                f.diagnostics.push(
                    Diagnostic::error(Code::PolicyDenied, "the policies could not be evaluated, which counts as a denial")
                        .help("fix the policy error above and plan again; nothing was changed"),
                );
                f
            }
            Refusal::NotApplyable(why) => Diagnostic::error(Code::PlanFile, "this plan cannot be applied")
                .help(format!(
                    "{}; fix the configuration, or pass --allow-unreachable once unreachable regions are known to be lost; nothing was changed",
                    why.join("; ")
                ))
                .into(),
        }
    }
}

/// The gates every path that applies passes (a command, the watcher, a drill, a library
/// caller), and [`apply`] itself before anything runs: the policies evaluated anew against
/// the document that will run (an evaluation that fails counts as a denial), then what keeps
/// the document from being applied, judged from its changes rather than from its
/// `applyable` flag (`plan::recheck`).
pub fn check(planned: &Planned, allow_unreachable: bool) -> Result<(), Refusal> {
    check_policy(&planned.policy, &planned.doc)?;
    let mut why = plan::recheck(&planned.config, &planned.prior, &planned.doc, allow_unreachable);
    if why.is_empty() && !planned.doc.applyable {
        why.push("the plan records that it cannot be applied".into());
    }
    if why.is_empty() { Ok(()) } else { Err(Refusal::NotApplyable(why)) }
}

/// The policy gate alone, for a plan made outside [`plan`] (a drill's).
pub fn check_policy(policy: &Policy, doc: &PlanDoc) -> Result<(), Refusal> {
    let results = policy.evaluate(doc).map_err(Refusal::PolicyFailed)?;
    let denied: Vec<String> = results
        .iter()
        .filter(|r| r.level == drplan_core::policy::Level::Deny)
        .map(|r| format!("{}.{}: {}", r.namespace, r.rule, r.msg))
        .collect();
    if denied.is_empty() { Ok(()) } else { Err(Refusal::Denied(denied)) }
}

/// Takes a saved plan in place of `current`'s (planned from state alone, under the apply's
/// lock), or says why it is stale: made from another configuration, or over another state.
pub fn adopt_saved(current: &mut Planned, saved: PlanDoc) -> Result<(), Diagnostic> {
    let stale = |why: String| {
        Diagnostic::error(Code::StalePlan, "saved plan is stale")
            .help(format!("{why}; nothing was changed. Make a new plan with `drplan plan --out FILE` and review it"))
    };
    let now_ref = current.state.as_ref().map(|s| (s.lineage.as_str(), s.serial));
    let then_ref = saved.prior_state.as_ref().map(|s| (s.lineage.as_str(), s.serial));
    if saved.configuration_hash != configuration_hash(&current.sources) {
        return Err(stale("the configuration changed since the plan was made".to_string()));
    }
    if now_ref.map(|r| r.0) != then_ref.map(|r| r.0) {
        return Err(stale("the state belongs to another lineage than the plan's".to_string()));
    }
    if now_ref.map(|r| r.1) != then_ref.map(|r| r.1) {
        return Err(stale(format!(
            "the state changed since the plan was made (serial {} then, {} now)",
            then_ref.map_or(0, |r| r.1),
            now_ref.map_or(0, |r| r.1)
        )));
    }
    current.doc = saved;
    Ok(())
}

/// A hash of every configuration file's name and text, so a saved plan knows what it was made from.
pub fn configuration_hash(sources: &[SourceFile]) -> String {
    let mut h = Sha256::new();
    for s in sources {
        let name = Path::new(&s.name).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((s.text.len() as u64).to_le_bytes());
        h.update(s.text.as_bytes());
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// Saves `doc` for `drplan show` and `drplan apply FILE`.
pub fn write_plan(file: &Path, doc: &PlanDoc) -> Result<(), Diagnostic> {
    load::write_atomically(file, &doc.to_json())
        .map_err(|d| d.help("the plan was not saved; choose a writable path for --out"))
}

/// A plan saved with `drplan plan --out FILE`, refused with a diagnostic when it cannot be
/// read, is no plan, or has another major format version.
pub fn read_plan(file: &Path) -> Result<PlanDoc, Diagnostic> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Diagnostic::error(Code::PlanFile, format!("cannot read the plan file {}: {e}", file.display()))
            .help("pass a file written by `drplan plan --out FILE`")
    })?;
    PlanDoc::parse(&text).map_err(|e| {
        use drplan_core::plan::doc::ParseError;
        match e {
            ParseError::NotAPlan(why) => {
                Diagnostic::error(Code::PlanFile, format!("{} is not a drplan plan file", file.display()))
                    .help(format!("it could not be read as one ({why}); save plans with `drplan plan --out FILE`"))
            }
            ParseError::Version { found } => Diagnostic::error(
                Code::PlanFile,
                format!(
                    "{} has plan format {found}, this drplan reads {}",
                    file.display(),
                    drplan_core::plan::doc::FORMAT_VERSION
                ),
            )
            .help("show it with the drplan version that saved it, or make a new plan"),
        }
    })
}

/// The configuration directory a path names: itself, or a file's directory.
pub fn configuration_dir(path: &Path) -> PathBuf {
    if path.is_dir() { path.to_path_buf() } else { path.parent().map(Path::to_path_buf).unwrap_or_default() }
}

/// How to carry a plan out.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// How many actions may run at once.
    pub parallelism: usize,
    /// Move DNS without waiting for the new region's health check (a declared emergency).
    pub skip_health_gate: bool,
    /// How long the health gate waits for the new serving region to be healthy.
    pub health_timeout: Duration,
    /// How long a Deployment scaled up where traffic goes may take to be available;
    /// `None`: twice `objectives.estimates.workload`.
    pub rollout_timeout: Option<Duration>,
    /// The unreachable regions are declared lost (besides a plan made with the flag).
    pub allow_unreachable: bool,
    /// Keep a watcher's override although the configuration applied names its region
    /// active: the watcher's own applies (a person's clear it).
    pub keep_override: bool,
    /// The first failed health observation of the region failed over from (a watcher's
    /// failover; seconds since the epoch): where the failover's downtime starts.
    pub down_since: Option<i64>,
}

/// What an apply did.
#[derive(Debug)]
pub struct Applied {
    pub summary: crate::apply::Summary,
    /// The state's serial once recorded.
    pub serial: u64,
    /// Each region declared lost after this apply, with the actions skipped there now.
    pub owed: Vec<(String, Vec<String>)>,
    /// Regions whose fence this apply completed.
    pub fenced: Vec<String>,
    /// The last state write failed although the changes were made: what to tell.
    pub record_failed: Option<Diagnostic>,
}

/// Carries `planned.doc` out against the clouds of `planned.config`, recording each
/// finished action in state at once, then the regions' roles and the regions declared lost
/// (with the fence each is owed) or fenced. `stop` set (Ctrl-C) starts nothing more.
pub async fn apply(
    planned: &mut Planned,
    options: &ApplyOptions,
    stop: &std::sync::atomic::AtomicBool,
    on_event: impl FnMut(&crate::apply::Event),
) -> Result<Applied, Failed> {
    use crate::apply::{Recorder, Settings, StateRecorder};
    // Whatever the caller checked, the gates are passed here, on the document that runs.
    check(planned, options.allow_unreachable).map_err(Refusal::into_failed)?;
    let started = crate::clock::now_seconds();
    let (doc, config) = (&planned.doc, &planned.config);
    let file = planned.state.clone().unwrap_or_else(|| empty_state(config));
    let mut recorder = StateRecorder { backend: planned.backend.as_ref(), file, prior: planned.prior.clone() };
    let plan_id = format!(
        "{}:{}:{}",
        doc.configuration_hash,
        doc.prior_state.as_ref().map_or("new", |s| s.lineage.as_str()),
        doc.prior_state.as_ref().map_or(0, |s| s.serial)
    );
    let rollout_timeout = options
        .rollout_timeout
        .unwrap_or_else(|| Duration::from_secs(2 * plan::Estimates::from_config(config).workload));
    let settings = Settings {
        project: config.project.clone(),
        plan_id,
        parallelism: options.parallelism,
        skip_health_gate: options.skip_health_gate,
        rollout_timeout,
        // Every change waits on the state lock's lease: a run paused past it, whose lock
        // another run took over, changes nothing more.
        fence: planned.lock.as_ref().and_then(drplan_state::Lock::lease),
    };
    let clouds = crate::clouds::Clouds::connect(config).await?;
    // Boxed: the refresh it may run would otherwise nest deep in every caller's future.
    Box::pin(window_holds(&clouds, planned)).await?;
    let (doc, config) = (&planned.doc, &planned.config);
    let policy = config.failover.as_ref().map(|f| f.health_check.clone()).unwrap_or_default();
    // A third of the checkers' interval: a fresh observation is seen soon after it is
    // taken, within Route 53's request pacing.
    let gate = crate::clouds::HealthGate {
        clouds: &clouds,
        project: config.project.clone(),
        every: Duration::from_secs((policy.interval.as_secs() / 3).clamp(1, 10)),
        timeout: options.health_timeout,
        workloads: crate::clouds::HealthGate::workloads_of(config),
        rollout_timeout,
    };
    // Declared lost before anything runs: a run killed during its gate or a rollout wait
    // must not leave the lost region's fence unrecorded. What is owed is what the plan
    // skips there, known before it runs.
    let lost_at_start = recorder.prior.lost.clone();
    if doc.declares_lost || options.allow_unreachable {
        declare_lost(doc, &mut recorder.prior);
        if recorder.prior.lost != lost_at_start {
            recorder.save().map_err(|e| {
                Diagnostic::error(Code::StateWrite, format!("the regions declared lost could not be recorded: {e}"))
                    .help("nothing was changed; run `drplan apply --allow-unreachable` again once the state can be written")
            })?;
        }
    }
    // A person's planned failover is recorded before anything runs, and cleared once it
    // completes: watchers observe only meanwhile (a watcher's own failover records its
    // override instead).
    let promoted = doc.role_transitions.iter().find(|t| t.to == "active");
    if let (Some(t), false) = (promoted, options.keep_override) {
        let from = doc.role_transitions.iter().find(|o| o.from == "active").map(|o| o.region.clone());
        // Resumed (a run killed mid-way): the same failover, its id and start kept.
        let resumed = recorder.prior.switchover.take().filter(|s| s.to == t.region && Some(&s.from) == from.as_ref());
        recorder.prior.switchover = Some(drplan_core::watch::Switchover {
            to: t.region.clone(),
            from: from.unwrap_or_default(),
            started: resumed.as_ref().map_or_else(crate::clock::now_rfc3339, |s| s.started.clone()),
            by: crate::clock::who(),
            id: resumed.and_then(|s| s.id).or_else(|| doc.failover_id.clone()),
            // The writers' counts before the stop: a run killed after it resumes, or rolls
            // back, to these.
            writers: doc
                .databases
                .iter()
                .filter_map(|d| d.from.as_ref().map(|from| (from, &d.writers)))
                .flat_map(|(from, ws)| ws.iter().map(move |(w, n)| (plan::resource::address::workload(from, w), *n)))
                .collect(),
        });
        recorder.save().map_err(|e| {
            Diagnostic::error(Code::StateWrite, format!("the switchover could not be recorded: {e}"))
                .help("nothing was changed; run the apply again once the state can be written")
        })?;
    }
    // Each writer this plan's refresh saw alive: the end of the data-loss window should its
    // region go dark later.
    if let Some(live) = &planned.live {
        let now = crate::clock::now_rfc3339();
        for o in live.objects.values().filter(|o| o.resource.kind == plan::Kind::Database) {
            let (Some(region), Some(db)) = (o.resource.region.as_deref(), o.resource.address.rsplit('.').next()) else {
                continue;
            };
            if o.resource.str("role") == Some("writer") && !live.unreachable.contains_key(region) {
                recorder.prior.databases.entry(db.to_string()).or_default().writer_seen = Some(now.clone());
            }
        }
    }
    let lost_recorded = recorder.prior.lost.clone();
    let data_recorded = recorder.prior.databases.clone();
    let mut seen = Downtime::of(doc);
    let mut on_event = on_event;
    let observe = |e: &crate::apply::Event| {
        seen.see(e);
        on_event(e)
    };
    let summary = crate::apply::execute(doc, &clouds, &gate, &settings, &mut recorder, stop, observe)
        .await
        .map_err(|e| Diagnostic::error(Code::PlanFile, format!("the plan cannot be executed: {e}")))?;

    record_data(doc, &settings.plan_id, &summary, &mut recorder.prior);
    let history_recorded = recorder.prior.history.clone();
    seen.record(doc, config, options, started, &summary, &mut recorder.prior);
    clear_fenced(doc, &summary, &mut recorder.prior);
    let mut record_failed = None;
    // Carried out, failed hooks that let the rest go on aside (reported; the run exits 1).
    if summary.completed() {
        // Everything is done: record the roles and drop what the plan forgets.
        for a in &doc.forget {
            recorder.prior.objects.remove(a);
        }
        recorder.prior.roles = config.regions.iter().map(|r| (r.name.clone(), r.role)).collect();
        // A step planned once (a restore) belongs to the promotion that ran it: once its
        // region is no longer active, the next promotion runs it afresh.
        let active = |r: &Option<String>| {
            r.as_deref().and_then(|r| config.region(r)).is_some_and(|r| r.role == drplan_core::config::Role::Active)
        };
        let once = |o: &plan::Observed| o.resource.kind.spec().planned == plan::step::Planned::Once;
        recorder.prior.objects.retain(|_, o| !once(o) || active(&o.resource.region));
        // A person applied the watcher's failover as their own configuration (or failed
        // back on purpose): the override has done its work.
        if !options.keep_override && recorder.prior.override_.is_some() {
            recorder.prior.override_ = None;
        }
        recorder.prior.switchover = None;
        if let Err(e) = recorder.save() {
            record_failed = Some(
                Diagnostic::error(Code::StateWrite, format!("the changes were made but the final state could not be written: {e}"))
                    .help("the state holds every change but the regions' roles; run `drplan apply` again once the state can be written"),
            );
        }
    } else if (recorder.prior.lost != lost_recorded
        || recorder.prior.databases != data_recorded
        || recorder.prior.history != history_recorded)
        && let Err(e) = recorder.save()
    {
        record_failed = Some(
            Diagnostic::error(Code::StateWrite, format!("the regions declared lost could not be recorded: {e}"))
                .help("run `drplan apply --allow-unreachable` again once the state can be written"),
        );
    }
    let owed = recorder
        .prior
        .lost
        .iter()
        .map(|(region, lost)| {
            let now: Vec<String> =
                summary.skipped.iter().map(|(id, _)| id.clone()).filter(|id| lost.owed.contains(id)).collect();
            (region.clone(), now)
        })
        .filter(|(_, now)| !now.is_empty())
        .collect();
    let fenced = lost_at_start.keys().filter(|r| !recorder.prior.lost.contains_key(*r)).cloned().collect();
    Ok(Applied { serial: recorder.file.serial, summary, owed, fenced, record_failed })
}

/// A promotion without its old writer (ungraceful) may lose what its plan showed, no more:
/// the replicas' lag is read again, and a window larger than the plan's (what a person
/// accepted, or judged within the budget) is refused before anything runs.
async fn window_holds(clouds: &crate::clouds::Clouds, planned: &Planned) -> Result<(), Failed> {
    let shown: Vec<&plan::doc::SwitchDoc> = planned.doc.databases.iter().filter(|s| s.how == "ungraceful").collect();
    if shown.is_empty() {
        return Ok(());
    }
    let now = crate::clock::now_seconds();
    // Boxed, like the refresh's own reads: the future would otherwise nest too deep.
    let suspect = drplan_core::incident::suspect_windows(&planned.prior.incidents);
    let live = Box::pin(refresh_with(clouds, &planned.config, now, None, &suspect)).await?;
    let options = plan::Options { accept_data_loss: true, now: Some(now), ..plan::Options::default() };
    let again = plan::data::plan(&planned.config, &planned.prior, Some(&live), &options);
    let dur =
        |w: Option<u64>| w.map_or("unknown".to_string(), |w| drplan_core::config::Duration::from_secs(w).to_string());
    for s in shown {
        let Some(now_switch) = again.switches.iter().find(|n| n.database == s.database && n.to == s.to) else {
            continue;
        };
        let grew = match (s.window_seconds, now_switch.window) {
            (Some(then), Some(now)) => now > then,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if grew {
            return Err(Failed::from(
                Diagnostic::error(
                    Code::DataLoss,
                    format!(
                        "promoting {} may now lose {} of writes to `{}`, more than the {} its plan showed",
                        s.to,
                        dur(now_switch.window),
                        s.database,
                        dur(s.window_seconds)
                    ),
                )
                .help("the replica fell further behind since the plan was made; nothing was changed: plan again, and accept the new window with `--accept-data-loss` if it is still wanted"),
            ));
        }
    }
    Ok(())
}

/// Records in state each promotion this run made, with the data-loss window it took, and
/// each instance it renamed and kept instead of deleting it.
fn record_data(doc: &PlanDoc, plan_id: &str, summary: &crate::apply::Summary, prior: &mut Prior) {
    let succeeded: std::collections::BTreeSet<&str> = summary.succeeded.iter().map(String::as_str).collect();
    let now = crate::clock::now_rfc3339();
    for rc in doc.resource_changes.iter().filter(|rc| rc.kind == "database" && succeeded.contains(rc.address.as_str()))
    {
        let Ok(change) = rc.to_change() else { continue };
        let (Some(region), Some(db)) = (change.region.clone(), change.address.rsplit('.').next()) else { continue };
        let record = prior.databases.entry(db.to_string()).or_default();
        let attr = |a: &Option<plan::Attrs>, k: &str| {
            a.as_ref().and_then(|a| a.get(k)).and_then(plan::Value::text).map(str::to_string)
        };
        if plan::step::is_promotion(&change) {
            let switch = doc.databases.iter().find(|s| s.database == db && s.to == region);
            record.promotions.push(plan::data::Promotion {
                region: region.clone(),
                from: switch.and_then(|s| s.from.clone()),
                at: now.clone(),
                how: switch.map_or("graceful".to_string(), |s| s.how.clone()),
                window_seconds: switch.map_or(Some(0), |s| s.window_seconds),
                accepted: switch.is_some_and(|s| s.accepted),
            });
        }
        if change.action == plan::Action::Replace
            && let Some(was) = attr(&change.before, "identifier")
        {
            let token = drplan_core::provider::idempotency_token(plan_id, &change.address);
            let identifier = plan::data::kept_name(&was, &token);
            if !record.kept.iter().any(|k| k.identifier == identifier && k.region == region) {
                record.kept.push(plan::data::Kept {
                    region: region.clone(),
                    identifier,
                    was,
                    writer: attr(&change.before, "role").as_deref() == Some("writer"),
                    since: now.clone(),
                });
            }
        }
    }
}

/// Clears the record of each region that answered again once every change it needs has
/// succeeded in this run: not when a `--target` left some out, nor when one failed.
fn clear_fenced(doc: &PlanDoc, summary: &crate::apply::Summary, prior: &mut Prior) {
    let succeeded: std::collections::BTreeSet<&str> = summary.succeeded.iter().map(String::as_str).collect();
    for fence in doc.fences.iter().filter(|f| f.reachable) {
        if fence.actions.iter().all(|a| succeeded.contains(a.as_str())) {
            prior.lost.remove(&fence.region);
        }
    }
}

/// Records each unreachable region as lost, with the actions the plan skips there: the
/// fence it is owed (scale down to its new role, suspend its backup schedule).
fn declare_lost(doc: &PlanDoc, prior: &mut Prior) {
    let region_of: std::collections::HashMap<&str, &str> =
        doc.resource_changes.iter().filter_map(|rc| rc.region.as_deref().map(|r| (rc.address.as_str(), r))).collect();
    for region in doc.unreachable.keys() {
        let mut owed = doc
            .actions
            .iter()
            .filter(|a| a.skipped.is_some() && region_of.get(a.id.as_str()) == Some(&region.as_str()))
            .map(|a| a.id.clone())
            .peekable();
        if owed.peek().is_none() {
            continue;
        }
        let entry = prior
            .lost
            .entry(region.clone())
            .or_insert_with(|| plan::Lost { since: crate::clock::now_rfc3339(), owed: Vec::new() });
        for id in owed {
            if !entry.owed.contains(&id) {
                entry.owed.push(id);
            }
        }
        entry.owed.sort();
    }
}

/// What an apply saw of a failover's downtime: when the old writers began to stop and when
/// the PRIMARY record's change was in sync (Route 53's apply waits for it).
struct Downtime {
    primary: Option<String>,
    stops: std::collections::BTreeSet<String>,
    writers_stopped: Option<i64>,
    in_sync: Option<i64>,
}

impl Downtime {
    fn of(doc: &PlanDoc) -> Downtime {
        let primary = doc.resource_changes.iter().find(|rc| {
            rc.kind == plan::Kind::DnsRecord.as_str()
                && rc.change.after.as_ref().and_then(|a| a.get("failover")).and_then(|v| v.as_str()) == Some("PRIMARY")
        });
        Downtime {
            primary: primary.map(|rc| rc.address.clone()),
            stops: doc
                .resource_changes
                .iter()
                .filter(|rc| rc.kind == plan::Kind::StopWrites.as_str())
                .map(|rc| rc.address.clone())
                .collect(),
            writers_stopped: None,
            in_sync: None,
        }
    }

    fn see(&mut self, e: &crate::apply::Event) {
        match e {
            crate::apply::Event::Started { id } if self.stops.contains(id) && self.writers_stopped.is_none() => {
                self.writers_stopped = Some(crate::clock::now_seconds())
            }
            crate::apply::Event::Finished { id, .. } if self.primary.as_ref() == Some(id) => {
                self.in_sync = Some(crate::clock::now_seconds())
            }
            _ => {}
        }
    }

    /// Records a failover this run carried out (a region promoted, its traffic moved or
    /// the plan completed) in the history, with its downtime.
    fn record(
        &self,
        doc: &PlanDoc,
        config: &Config,
        options: &ApplyOptions,
        started: i64,
        summary: &crate::apply::Summary,
        prior: &mut Prior,
    ) {
        let Some(to) = doc.role_transitions.iter().find(|t| t.to == "active") else { return };
        if self.in_sync.is_none() && !summary.completed() {
            return;
        }
        let from = doc.role_transitions.iter().find(|t| t.from == "active").map(|t| t.region.clone());
        let (down_from, counted_from) = match (options.down_since, self.writers_stopped) {
            (Some(t), _) => (Some(t), drplan_core::uptime::FROM_HEALTH),
            (None, Some(t)) => (Some(t), drplan_core::uptime::FROM_WRITERS),
            (None, None) => (Some(started), drplan_core::uptime::FROM_APPLY),
        };
        let ttl = config.failover.as_ref().and_then(|f| f.dns.as_ref()).map_or(0, |d| d.ttl);
        let by =
            prior.override_.as_ref().filter(|_| options.keep_override).map_or_else(crate::clock::who, |o| o.by.clone());
        prior.history.push(drplan_core::uptime::record(
            doc.failover_id.clone(),
            from,
            to.region.clone(),
            by,
            started,
            (down_from, counted_from),
            self.in_sync,
            ttl,
        ));
    }
}
