//! `drplan plan [PATH]`: configuration + state (+ live clouds) → a reviewed plan.

use std::path::{Path, PathBuf};

use drplan_core::plan::doc::{Origin, PlanDoc, StateRef};
use drplan_core::plan::{self, Options, Prior};
use drplan_core::{Code, Diagnostic, Diagnostics};
use sha2::{Digest, Sha256};

use super::{EXIT_CHANGES, EXIT_ERROR, EXIT_OK, ThenNone};
use crate::load;
use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    plan: PlanArgs,
    /// Save the plan to FILE for `drplan show` and `drplan apply FILE`.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Print the plan as JSON (a versioned schema) instead of text.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print the plan as Markdown for a pull-request comment.
    #[arg(long)]
    markdown: bool,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    detailed_exitcode: bool,
}

/// Options shared by the commands that plan.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// A configuration directory (its *.hcl files are merged) or a single file.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Read the live clouds first (`--refresh=false`: plan from state alone, no API calls).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub refresh: bool,
    /// Plan only this address and what is under it (repeatable), e.g. `region.us-east-1`.
    #[arg(long, value_name = "ADDR")]
    pub target: Vec<String>,
    /// Proceed although regions are unreachable, declaring them lost: their actions are skipped.
    #[arg(long)]
    pub allow_unreachable: bool,
    /// Wait this long for another drplan holding the state lock (e.g. `30s`, `5m`).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
}

pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    if s == "0" || s == "0s" {
        return Ok(std::time::Duration::ZERO);
    }
    drplan_core::config::Duration::parse(s)
        .map(|d| std::time::Duration::from_secs(d.as_secs()))
        .map_err(|e| format!("{e}; write e.g. 30s or 5m"))
}

pub fn exec(args: Args, out: &mut Output) -> u8 {
    let Some(doc) = make(&args.plan, out) else { return EXIT_ERROR };
    if let Some(file) = &args.out
        && let Err(d) = write_plan(file, &doc)
    {
        out.report(&[], d);
        return EXIT_ERROR;
    }
    out.plan(&doc, args.json, args.markdown);
    if let Some(file) = &args.out
        && !args.json
        && !args.markdown
    {
        // A saved plan is applied from anywhere: name the configuration unless it is here.
        let config = if args.plan.path == std::path::Path::new(".") {
            String::new()
        } else {
            format!(" --config {}", args.plan.path.display())
        };
        out.note(&format!(
            "Saved the plan to {}. Apply exactly these actions with: drplan apply {}{config}",
            file.display(),
            file.display()
        ));
    }
    if doc.safety.iter().any(|s| s.severity == "error") {
        return EXIT_ERROR;
    }
    if args.detailed_exitcode && doc.has_changes() { EXIT_CHANGES } else { EXIT_OK }
}

/// Loads, reads state, refreshes (or not) and plans. Diagnostics are printed; `None` on error.
/// A plan with everything apply needs to carry it out under the same lock.
pub struct Planned {
    pub doc: PlanDoc,
    pub config: drplan_core::config::Config,
    pub sources: Vec<drplan_core::SourceFile>,
    pub backend: Box<dyn drplan_state::Backend>,
    pub state: Option<drplan_state::StateFile>,
    pub prior: Prior,
    /// Held until dropped; `None` for read-only work (drift detection).
    pub lock: Option<drplan_state::Lock>,
}

pub fn make(args: &PlanArgs, out: &mut Output) -> Option<PlanDoc> {
    // Without refresh the plan reads state alone and is never applied from here: it needs
    // no lock (and creates no lock file), like a read of `state list`.
    let operation = if args.refresh { Some("plan") } else { None };
    make_planned(args, operation, None, out).map(|p| p.doc)
}

/// Loads, locks state (held until the result is dropped), refreshes (or not) and plans.
/// Diagnostics are printed; `None` on error.
/// `sources`, when given, replace the files at `args.path` (an edit shown before it is written).
/// `operation` names the state lock taken for the duration; `None` takes none (read-only).
pub fn make_planned(
    args: &PlanArgs,
    operation: Option<&str>,
    sources: Option<Vec<drplan_core::SourceFile>>,
    out: &mut Output,
) -> Option<Planned> {
    let path = args.path.as_path();
    let loaded = match sources {
        Some(s) => load::from_sources(s),
        None => load::configuration(path),
    };
    out.diagnostics(&loaded.sources, &loaded.diagnostics);
    let config = loaded.config?;
    let dir = if path.is_dir() { path.to_path_buf() } else { path.parent().map(Path::to_path_buf).unwrap_or_default() };

    let backend = match load::state_backend(&config, &dir, args.allow_unreachable) {
        Ok(b) => b,
        Err(d) => return out.report(&[], d).then_none(),
    };
    // Held for the whole plan, so no apply changes state underneath it.
    let lock = match operation {
        None => None,
        Some(operation) => {
            match backend.lock(operation, &crate::clock::who(), &crate::clock::now_rfc3339(), args.lock_timeout) {
                Ok(l) => Some(l),
                Err(e) => return out.report(&[], super::state::lock_diagnostic(&e)).then_none(),
            }
        }
    };
    let state = match backend.read() {
        Ok(s) => s,
        Err(e) => return out.report(&[], load::state_diagnostic(&e, backend.as_ref())).then_none(),
    };
    for line in copy_notes(&backend.copies()) {
        out.note(&line);
    }
    let prior = match state.as_ref().map(|s| s.to_prior()) {
        None => Prior::default(),
        Some(Ok(p)) => p,
        Some(Err(why)) => {
            let e = drplan_state::StateError::Unreadable { location: backend.location(), reason: why };
            return out.report(&[], load::state_diagnostic(&e, backend.as_ref())).then_none();
        }
    };

    let live = if args.refresh {
        match refresh(&config, out) {
            Some(s) => Some(s),
            None => return None,
        }
    } else {
        None
    };

    let known = plan::known_addresses(&config, &prior);
    let mut unknown = Diagnostics::default();
    for t in &args.target {
        let matches =
            known.iter().any(|a| a == t || a.starts_with(&format!("{t}.")) || a.starts_with(&format!("{t}[")));
        if !matches {
            let hint = load::closest_address(t, &known).map(|s| format!("did you mean `{s}`? ")).unwrap_or_default();
            unknown.push(
                Diagnostic::error(Code::UnknownTarget, format!("`{t}` matches nothing in this configuration"))
                    .help(format!("{hint}addresses look like `region.us-east-1`, `region.us-east-1.compute.nodes[2]`, `dns.api.example.com.primary`")),
            );
        }
    }
    if !unknown.is_empty() {
        out.diagnostics(&[], &unknown);
        return None;
    }

    let options = Options { targets: args.target.clone(), ..Options::default() };
    let plan = match plan::plan(&config, &prior, live.as_ref(), &options) {
        Ok(p) => p,
        Err(e) => {
            return out
                .report(
                    &[],
                    Diagnostic::error(Code::Cycle, e.to_string())
                        .help("this is a bug in drplan's ordering rules; please report it with the configuration"),
                )
                .then_none();
        }
    };
    let origin = Origin {
        drplan_version: env!("CARGO_PKG_VERSION").to_string(),
        configuration_hash: configuration_hash(&loaded.sources),
        prior_state: state.as_ref().map(|s| StateRef { lineage: s.lineage.clone(), serial: s.serial }),
    };
    let mut doc = PlanDoc::new(&plan, origin, args.allow_unreachable);
    doc.configuration_path = std::path::absolute(path).ok().map(|p| p.display().to_string());
    Some(Planned { doc, config, sources: loaded.sources, backend, state, prior, lock })
}

/// A line for each copy of the state that is not current: behind, caught up, or unreachable.
pub fn copy_notes(copies: &[drplan_state::CopyView]) -> Vec<String> {
    use drplan_state::CopyStatus;
    copies
        .iter()
        .filter_map(|c| {
            let at = format!("state copy `{}` ({}, {})", c.name, c.location, c.region);
            let serial = c.serial.map_or("no state".to_string(), |s| format!("serial {s}"));
            let detail = c.detail.as_deref().unwrap_or_default();
            match c.status {
                CopyStatus::Current | CopyStatus::Diverged => None,
                CopyStatus::Behind => {
                    Some(format!("Note: {at} is behind ({serial}; {detail}); the next write brings it up to date."))
                }
                CopyStatus::CaughtUp => Some(format!("Note: {at} was behind and was brought up to date: {detail}.")),
                CopyStatus::Unreachable => Some(format!(
                    "Note: {at} cannot be reached and its region was declared lost (--allow-unreachable): {detail}. It is left behind and caught up by the first locked run once it is back."
                )),
            }
        })
        .collect()
}

/// Reads the live clouds the configuration uses, with progress on stderr.
fn refresh(config: &drplan_core::config::Config, out: &mut Output) -> Option<drplan_core::plan::Snapshot> {
    use drplan_core::provider::{Provider, RefreshRequest};
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            return out
                .report(&[], Diagnostic::error(Code::Refresh, format!("cannot start the async runtime: {e}")))
                .then_none();
        }
    };
    let regions: Vec<String> = config.regions.iter().map(|r| r.name.clone()).collect();
    let desired = plan::desired::desired(config);
    let started = std::time::Instant::now();
    out.note("Reading the live state of the clouds...");
    let result = runtime.block_on(async {
        let clouds = crate::clouds::Clouds::connect(config).await?;
        clouds
            .refresh(&RefreshRequest { project: &config.project, regions: &regions, desired: &desired })
            .await
            .map_err(|e| {
                Diagnostic::error(Code::Refresh, format!("refresh failed: {e}"))
                    .help("nothing was changed; check connectivity and credentials, then plan again")
            })
    });
    match result {
        Ok(snapshot) => {
            out.note(&format!("Read {} objects in {:.1}s.", snapshot.objects.len(), started.elapsed().as_secs_f64()));
            Some(snapshot)
        }
        Err(d) => out.report(&[], d).then_none(),
    }
}

/// A hash of every configuration file's name and text, so a saved plan knows what it was made from.
pub fn configuration_hash(sources: &[drplan_core::SourceFile]) -> String {
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

fn write_plan(file: &Path, doc: &PlanDoc) -> Result<(), Diagnostic> {
    crate::commands::fmt::write_atomically(file, &doc.to_json())
        .map_err(|d| d.help("the plan was not saved; choose a writable path for --out"))
}
