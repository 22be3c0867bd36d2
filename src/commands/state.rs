//! `drplan state list | show ADDR | pull | rm ADDR | unlock ID`: inspect and repair state.

use std::path::{Path, PathBuf};
use std::time::Duration;

use drplan_core::{Code, Diagnostic};

use super::EXIT_OK;
use crate::load;
use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: StateCommand,
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
        #[arg(default_value = ".")]
        path: PathBuf,
    },
    /// Print the raw state file.
    Pull {
        #[arg(default_value = ".")]
        path: PathBuf,
    },
    /// Forget an object: remove it from state without touching the cloud.
    Rm {
        address: String,
        #[arg(default_value = ".")]
        path: PathBuf,
    },
    /// Break a lock left behind by a crashed run, given its id.
    Unlock {
        id: String,
        #[arg(default_value = ".")]
        path: PathBuf,
    },
}

pub fn exec(args: Args, out: &mut Output) -> u8 {
    match run(args.command, out) {
        Ok(()) => EXIT_OK,
        Err(d) => out.report(&[], d),
    }
}

fn backend_for(path: &Path, out: &mut Output) -> Result<drplan_state::LocalBackend, Diagnostic> {
    let loaded = load::configuration(path);
    out.diagnostics(&loaded.sources, &loaded.diagnostics);
    let config = loaded.config.ok_or_else(|| {
        Diagnostic::error(Code::State, "the configuration is invalid").help("fix the problems above first")
    })?;
    let dir = if path.is_dir() { path.to_path_buf() } else { path.parent().map(Path::to_path_buf).unwrap_or_default() };
    load::state_backend(&config, &dir)
}

fn read(backend: &drplan_state::LocalBackend) -> Result<drplan_state::StateFile, Diagnostic> {
    match backend.read() {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(Diagnostic::error(Code::NoState, format!("there is no state at {}", backend.path().display()))
            .help("state is written by `drplan apply`; nothing has been applied from this configuration yet")),
        Err(e) => Err(load::state_diagnostic(&e, backend.path())),
    }
}

fn run(command: StateCommand, out: &mut Output) -> Result<(), Diagnostic> {
    match command {
        StateCommand::List { path } => {
            let state = read(&backend_for(&path, out)?)?;
            for o in &state.objects {
                out.line(&o.address);
            }
        }
        StateCommand::Show { address, path } => {
            let state = read(&backend_for(&path, out)?)?;
            let o = state.objects.iter().find(|o| o.address == address).ok_or_else(|| unknown(&address, &state))?;
            out.raw(&(serde_json::to_string_pretty(o).unwrap_or_default() + "\n"));
        }
        StateCommand::Pull { path } => {
            let backend = backend_for(&path, out)?;
            read(&backend)?;
            let text = std::fs::read_to_string(backend.path()).map_err(|e| {
                Diagnostic::error(Code::State, format!("cannot read {}: {e}", backend.path().display()))
            })?;
            out.raw(&text);
        }
        StateCommand::Rm { address, path } => {
            let backend = backend_for(&path, out)?;
            let _lock = drplan_state::lock::acquire(
                backend.path(),
                "state rm",
                &crate::clock::who(),
                &crate::clock::now_rfc3339(),
                Duration::ZERO,
            )
            .map_err(|e| lock_diagnostic(&e))?;
            let mut state = read(&backend)?;
            let before = state.objects.len();
            state.objects.retain(|o| o.address != address);
            if state.objects.len() == before {
                return Err(unknown(&address, &state));
            }
            state.serial += 1;
            backend.write(&state).map_err(|e| Diagnostic::error(Code::State, e.to_string()))?;
            out.note(&format!(
                "Removed {address} from state (serial {}). The object itself was not touched.",
                state.serial
            ));
        }
        StateCommand::Unlock { id, path } => {
            let backend = backend_for(&path, out)?;
            let info = drplan_state::lock::force_unlock(backend.path(), &id).map_err(|e| lock_diagnostic(&e))?;
            out.note(&format!(
                "Unlocked: the lock {} of {} ({}, since {}) is gone.",
                info.id, info.who, info.operation, info.created
            ));
        }
    }
    Ok(())
}

fn unknown(address: &str, state: &drplan_state::StateFile) -> Diagnostic {
    let known: std::collections::BTreeSet<String> = state.objects.iter().map(|o| o.address.clone()).collect();
    let hint = load::closest_address(address, &known).map(|s| format!("did you mean `{s}`? ")).unwrap_or_default();
    Diagnostic::error(Code::UnknownTarget, format!("`{address}` is not in state"))
        .help(format!("{hint}`drplan state list` shows every address"))
}

/// A lock problem as a diagnostic that says what to do.
pub fn lock_diagnostic(e: &drplan_state::lock::LockError) -> Diagnostic {
    use drplan_state::lock::LockError;
    let help = match e {
        LockError::Held(info) => format!(
            "wait for it to finish (retry with --lock-timeout 5m), or, if that run died, break the lock with `drplan state unlock {}`",
            info.id
        ),
        LockError::HeldUnknown => "wait for the other drplan to finish, or retry with --lock-timeout".to_string(),
        LockError::NoSuchLock(_) => {
            "`drplan state unlock` takes the id printed by the run that holds the lock".to_string()
        }
        LockError::Io { .. } => "check that the state directory is writable".to_string(),
    };
    Diagnostic::error(Code::Locked, e.to_string()).help(help)
}
