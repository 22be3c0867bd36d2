//! `drplan state list | show ADDR | pull [--copy NAME] | push [--force] FILE | rm ADDR |
//! unlock ID | copies`: inspect and repair state, and its copies.

use std::path::{Path, PathBuf};
use std::time::Duration;

use drplan_core::plan::resource::natural_cmp;
use drplan_core::{Code, Diagnostic};
use drplan_state::Backend;

use super::EXIT_OK;
use crate::load;
use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: StateCommand,
    /// Work on the state copies that can be reached, declaring the others' regions lost.
    #[arg(long, global = true)]
    allow_unreachable: bool,
}

#[derive(Debug, clap::Subcommand)]
enum StateCommand {
    /// List the addresses of every object in state.
    List {
        /// The configuration directory or file whose state to read.
        #[arg(default_value = ".")]
        path: PathBuf,
    },
    /// Show one object as state recorded it.
    Show {
        /// The object's address, e.g. `region.us-east-1.compute.nodes[0]`.
        address: String,
        /// The configuration directory or file whose state to read.
        #[arg(default_value = ".")]
        path: PathBuf,
    },
    /// Print the raw state, from the local file or the S3 object.
    Pull {
        /// The configuration directory or file whose state to read.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// One copy of the state alone (its bucket, as `drplan state copies` names it), as
        /// stored, even when the copies disagree.
        #[arg(long, value_name = "NAME")]
        copy: Option<String>,
    },
    /// Replace the state with FILE (a state as `drplan state pull` prints it), on every copy.
    Push {
        /// The state file to write.
        file: PathBuf,
        /// The configuration directory or file whose state to replace.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Replace a state of another lineage, a newer one, or one with other content at the
        /// same serial (diverged copies are repaired this way).
        #[arg(long)]
        force: bool,
    },
    /// Show each copy of the state: location, reachability, serial and lineage.
    Copies {
        /// The configuration directory or file whose state to read.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Print the copies as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Forget an object: remove it from state without touching the cloud.
    Rm {
        /// The object's address, as `drplan state list` prints it.
        address: String,
        /// The configuration directory or file whose state to change.
        #[arg(default_value = ".")]
        path: PathBuf,
    },
    /// Stop listing a database instance drplan renamed and kept (an old writer, a replaced
    /// replica) once a person has dealt with it. drplan never deletes it; this only forgets it.
    ForgetKept {
        /// Its name now, as `drplan status` lists it (`bot-core-ledger-use1-kept-1a2b3c4d`).
        identifier: String,
        /// The configuration directory or file whose state to change.
        #[arg(default_value = ".")]
        path: PathBuf,
    },
    /// Break a lock left behind by a crashed run, given its id.
    Unlock {
        /// The lock id, as the lock error names it.
        id: String,
        /// The configuration directory or file whose state is locked.
        #[arg(default_value = ".")]
        path: PathBuf,
    },
}

pub fn exec(args: Args, out: &mut Output) -> u8 {
    match run(args.command, args.allow_unreachable, out) {
        Ok(()) => EXIT_OK,
        Err(d) => out.report(&[], d),
    }
}

fn backend_for(path: &Path, allow_unreachable: bool, out: &mut Output) -> Result<Box<dyn Backend>, Diagnostic> {
    let loaded = load::configuration(path);
    out.diagnostics(&loaded.sources, &loaded.diagnostics);
    let config = loaded.config.ok_or_else(|| {
        Diagnostic::error(Code::State, "the configuration is invalid").help("fix the problems above first")
    })?;
    let dir = if path.is_dir() { path.to_path_buf() } else { path.parent().map(Path::to_path_buf).unwrap_or_default() };
    load::state_backend(&config, &dir, allow_unreachable)
}

fn read(backend: &dyn Backend) -> Result<drplan_state::StateFile, Diagnostic> {
    match backend.read() {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(no_state(backend)),
        Err(e) => Err(load::state_diagnostic(&e, backend)),
    }
}

fn no_state(backend: &dyn Backend) -> Diagnostic {
    Diagnostic::error(Code::NoState, format!("there is no state at {}", backend.location()))
        .help("state is written by `drplan apply`; nothing has been applied from this configuration yet")
}

fn run(command: StateCommand, allow_unreachable: bool, out: &mut Output) -> Result<(), Diagnostic> {
    let backend_for = |path: &Path, out: &mut Output| backend_for(path, allow_unreachable, out);
    match command {
        StateCommand::List { path } => {
            let state = read(backend_for(&path, out)?.as_ref())?;
            let mut addresses: Vec<&str> = state.objects.iter().map(|o| o.address.as_str()).collect();
            addresses.sort_by(|a, b| natural_cmp(a, b));
            for a in addresses {
                out.line(a);
            }
        }
        StateCommand::Show { address, path } => {
            let state = read(backend_for(&path, out)?.as_ref())?;
            let o = state.objects.iter().find(|o| o.address == address).ok_or_else(|| unknown(&address, &state))?;
            out.raw(&(serde_json::to_string_pretty(o).unwrap_or_default() + "\n"));
        }
        StateCommand::Pull { path, copy } => {
            let backend = backend_for(&path, out)?;
            let bytes = match &copy {
                None => backend.read_bytes(),
                Some(name) => {
                    known_copy(backend.as_ref(), name)?;
                    backend.read_copy(name)
                }
            };
            let bytes = bytes.map_err(|e| load::state_diagnostic(&e, backend.as_ref()))?;
            let bytes = bytes.ok_or_else(|| no_state(backend.as_ref()))?;
            // Checked before printing, so a damaged state is reported as such rather than shown.
            drplan_state::parse(&bytes, &backend.location())
                .map_err(|e| load::state_diagnostic(&e, backend.as_ref()))?;
            out.raw(&String::from_utf8_lossy(&bytes));
        }
        StateCommand::Rm { address, path } => {
            let backend = backend_for(&path, out)?;
            let serial =
                drplan::engine::edit_state(backend.as_ref(), "state rm", Duration::ZERO, "the state", |state| {
                    let Some(state) = state.as_mut() else { return Err(no_state(backend.as_ref()).into()) };
                    let before = state.objects.len();
                    state.objects.retain(|o| o.address != address);
                    if state.objects.len() == before {
                        return Err(unknown(&address, state).into());
                    }
                    Ok(drplan::engine::Edit::Changed(state.serial + 1))
                })
                .map_err(|f| f.diagnostics.into_iter().next().unwrap_or_else(|| no_state(backend.as_ref())))?;
            out.note(&format!("Removed {address} from state (serial {serial}). The object itself was not touched."));
        }
        StateCommand::ForgetKept { identifier, path } => {
            let backend = backend_for(&path, out)?;
            let serial = drplan::engine::edit_state(
                backend.as_ref(),
                "state forget-kept",
                Duration::ZERO,
                "the state",
                |state| {
                    let Some(state) = state.as_mut() else { return Err(no_state(backend.as_ref()).into()) };
                    let mut found = false;
                    for record in state.databases.values_mut() {
                        let before = record.kept.len();
                        record.kept.retain(|k| k.identifier != identifier);
                        found |= record.kept.len() != before;
                    }
                    if !found {
                        let kept: Vec<String> = state
                            .databases
                            .values()
                            .flat_map(|r| r.kept.iter().map(|k| k.identifier.clone()))
                            .collect();
                        let help = match kept.is_empty() {
                            true => "state lists no kept instance".to_string(),
                            false => format!("kept instances: {}", kept.join(", ")),
                        };
                        return Err(Diagnostic::error(
                            Code::UnknownTarget,
                            format!("no kept instance is named `{identifier}`"),
                        )
                        .help(help)
                        .into());
                    }
                    Ok(drplan::engine::Edit::Changed(state.serial + 1))
                },
            )
            .map_err(|f| f.diagnostics.into_iter().next().unwrap_or_else(|| no_state(backend.as_ref())))?;
            out.note(&format!(
                "{identifier} is no longer listed (serial {serial}). The instance itself was not touched: drplan never deletes a database."
            ));
        }
        StateCommand::Push { file, path, force } => {
            let text = std::fs::read(&file).map_err(|e| {
                Diagnostic::error(Code::Read, format!("cannot read {}: {e}", file.display()))
                    .help("push takes a state file, as `drplan state pull` prints it")
            })?;
            let location = file.display().to_string();
            let pushed = drplan_state::parse(&text, &location).map_err(|e| {
                Diagnostic::error(Code::State, e.to_string())
                    .help("push takes a state file, as `drplan state pull` prints it; nothing was written")
            })?;
            let backend = backend_for(&path, out)?;
            let _lock = backend
                .lock("state push", &crate::clock::who(), &crate::clock::now_rfc3339(), Duration::ZERO)
                .map_err(|e| load::lock_diagnostic(&e))?;
            let written = backend.push(&pushed, force).map_err(|e| load::state_diagnostic(&e, backend.as_ref()))?;
            out.note(&format!(
                "Pushed {} to {} (lineage {}, serial {}).",
                file.display(),
                backend.location(),
                written.lineage,
                written.serial
            ));
        }
        StateCommand::Copies { path, json } => {
            let backend = backend_for(&path, out)?;
            let copies = backend.survey();
            if json {
                out.raw(&(serde_json::to_string_pretty(&copies).unwrap_or_default() + "\n"));
            } else {
                out.raw(&copies_table(&copies));
            }
        }
        StateCommand::Unlock { id, path } => {
            let backend = backend_for(&path, out)?;
            let info = backend.force_unlock(&id).map_err(|e| load::lock_diagnostic(&e))?;
            out.note(&format!(
                "Unlocked: the lock {} of {} ({}, since {}) is gone.",
                info.id, info.who, info.operation, info.created
            ));
        }
    }
    Ok(())
}

/// Refuses a `--copy` that names no copy of this backend.
fn known_copy(backend: &dyn Backend, name: &str) -> Result<(), Diagnostic> {
    let names = backend.copy_names();
    if names.iter().any(|n| n == name) {
        return Ok(());
    }
    let help = if names.is_empty() {
        "this state has one copy: `--copy` names a bucket of an S3 backend's `replica` blocks or its primary"
            .to_string()
    } else {
        let hint = drplan_core::suggest::closest(name, names.iter().map(String::as_str))
            .map(|s| format!("did you mean `{s}`? "))
            .unwrap_or_default();
        format!("{hint}copies: {}", names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))
    };
    Err(Diagnostic::error(Code::UnknownCopy, format!("no copy of the state is named `{name}`")).help(help))
}

/// Copies as a table: name, role, location, region, reachability, serial, lineage, status.
fn copies_table(copies: &[drplan_state::CopyView]) -> String {
    let rows: Vec<[String; 8]> = copies
        .iter()
        .map(|c| {
            [
                c.name.clone(),
                if c.primary { "primary" } else { "replica" }.to_string(),
                c.location.clone(),
                c.region.clone(),
                if c.status == drplan_state::CopyStatus::Unreachable { "no" } else { "yes" }.to_string(),
                c.serial.map_or("-".to_string(), |s| s.to_string()),
                c.lineage.clone().unwrap_or_else(|| "-".to_string()),
                match &c.detail {
                    Some(d) => format!("{} ({d})", c.status),
                    None => c.status.to_string(),
                },
            ]
        })
        .collect();
    let header = ["COPY", "ROLE", "LOCATION", "REGION", "REACHABLE", "SERIAL", "LINEAGE", "STATUS"].map(str::to_string);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut text = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

fn unknown(address: &str, state: &drplan_state::StateFile) -> Diagnostic {
    let known: std::collections::BTreeSet<String> = state.objects.iter().map(|o| o.address.clone()).collect();
    let hint = load::closest_address(address, &known).map(|s| format!("did you mean `{s}`? ")).unwrap_or_default();
    Diagnostic::error(Code::UnknownTarget, format!("`{address}` is not in state"))
        .help(format!("{hint}`drplan state list` shows every address"))
}
