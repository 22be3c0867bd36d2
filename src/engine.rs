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
}

impl From<Diagnostic> for Failed {
    fn from(d: Diagnostic) -> Failed {
        let mut diagnostics = Diagnostics::default();
        diagnostics.push(d);
        Failed { diagnostics }
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
    let Some(config) = loaded.config else { return Err(Failed { diagnostics: Diagnostics::default() }) };
    let backend = load::state_backend(&config, &configuration_dir(path), request.allow_unreachable)?;
    // Held for the whole plan, so no apply changes state underneath it.
    let lock = match request.lock {
        None => None,
        Some(operation) => Some(
            backend
                .lock(operation, &crate::clock::who(), &crate::clock::now_rfc3339(), request.lock_timeout)
                .map_err(|e| load::lock_diagnostic(&e))?,
        ),
    };
    let state = backend.read().map_err(|e| load::state_diagnostic(&e, backend.as_ref()))?;
    for line in load::copy_notes(&backend.copies()) {
        observe(Event::Note(line));
    }
    let prior = match state.as_ref().map(|s| s.to_prior()) {
        None => Prior::default(),
        Some(Ok(p)) => p,
        Some(Err(why)) => {
            let e = drplan_state::StateError::Unreadable { location: backend.location(), reason: why };
            return Err(load::state_diagnostic(&e, backend.as_ref()).into());
        }
    };

    let live = if request.refresh { Some(refresh(&config, observe)?) } else { None };

    let unknown = unknown_targets(request.targets, &plan::known_addresses(&config, &prior));
    if !unknown.is_empty() {
        return Err(Failed { diagnostics: unknown });
    }

    let options = Options { targets: request.targets.to_vec(), ..Options::default() };
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
    // Where the configuration is, so the saved plan applies from any directory.
    doc.configuration_path = std::path::absolute(path).ok().map(|p| p.display().to_string());
    Ok(Planned { doc, config, sources: loaded.sources, backend, state, prior, lock })
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

/// Reads the live clouds the configuration uses.
pub fn refresh(config: &Config, observe: &mut dyn FnMut(Event<'_>)) -> Result<Snapshot, Failed> {
    use drplan_core::provider::{Provider, RefreshRequest};
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Diagnostic::error(Code::Refresh, format!("cannot start the async runtime: {e}")))?;
    let regions: Vec<String> = config.regions.iter().map(|r| r.name.clone()).collect();
    let desired = plan::desired::desired(config);
    let started = Instant::now();
    observe(Event::Refreshing);
    let snapshot = runtime.block_on(async {
        let clouds = crate::clouds::Clouds::connect(config).await?;
        clouds
            .refresh(&RefreshRequest { project: &config.project, regions: &regions, desired: &desired })
            .await
            .map_err(|e| {
                Diagnostic::error(Code::Refresh, format!("refresh failed: {e}"))
                    .help("nothing was changed; check connectivity and credentials, then plan again")
            })
    })?;
    observe(Event::Refreshed { objects: snapshot.objects.len(), elapsed: started.elapsed() });
    Ok(snapshot)
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
