//! `drplan state list | show ADDR | pull | rm ADDR | unlock ID`: inspect and repair state.

use std::path::{Path, PathBuf};
use std::time::Duration;

use drplan_core::{Code, Diagnostic};
use drplan_state::Backend;

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
        /// The configuration directory or file whose state to read.
        #[arg(default_value = ".")]
        path: PathBuf,
    },
    /// Print the raw state, from the local file or the S3 object.
    Pull {
        /// The configuration directory or file whose state to read.
        #[arg(default_value = ".")]
        path: PathBuf,
    },
    /// Forget an object: remove it from state without touching the cloud.
    Rm {
        /// The object's address, as `drplan state list` prints it.
        address: String,
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
    match run(args.command, out) {
        Ok(()) => EXIT_OK,
        Err(d) => out.report(&[], d),
    }
}

fn backend_for(path: &Path, out: &mut Output) -> Result<Box<dyn Backend>, Diagnostic> {
    let loaded = load::configuration(path);
    out.diagnostics(&loaded.sources, &loaded.diagnostics);
    let config = loaded.config.ok_or_else(|| {
        Diagnostic::error(Code::State, "the configuration is invalid").help("fix the problems above first")
    })?;
    let dir = if path.is_dir() { path.to_path_buf() } else { path.parent().map(Path::to_path_buf).unwrap_or_default() };
    load::state_backend(&config, &dir)
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

fn run(command: StateCommand, out: &mut Output) -> Result<(), Diagnostic> {
    match command {
        StateCommand::List { path } => {
            let state = read(backend_for(&path, out)?.as_ref())?;
            for o in &state.objects {
                out.line(&o.address);
            }
        }
        StateCommand::Show { address, path } => {
            let state = read(backend_for(&path, out)?.as_ref())?;
            let o = state.objects.iter().find(|o| o.address == address).ok_or_else(|| unknown(&address, &state))?;
            out.raw(&(serde_json::to_string_pretty(o).unwrap_or_default() + "\n"));
        }
        StateCommand::Pull { path } => {
            let backend = backend_for(&path, out)?;
            let bytes = backend.read_bytes().map_err(|e| load::state_diagnostic(&e, backend.as_ref()))?;
            let bytes = bytes.ok_or_else(|| no_state(backend.as_ref()))?;
            // Checked before printing, so a damaged state is reported as such rather than shown.
            drplan_state::parse(&bytes, &backend.location())
                .map_err(|e| load::state_diagnostic(&e, backend.as_ref()))?;
            out.raw(&String::from_utf8_lossy(&bytes));
        }
        StateCommand::Rm { address, path } => {
            let backend = backend_for(&path, out)?;
            let _lock = backend
                .lock("state rm", &crate::clock::who(), &crate::clock::now_rfc3339(), Duration::ZERO)
                .map_err(|e| lock_diagnostic(&e))?;
            let mut state = read(backend.as_ref())?;
            let before = state.objects.len();
            state.objects.retain(|o| o.address != address);
            if state.objects.len() == before {
                return Err(unknown(&address, &state));
            }
            state.serial += 1;
            backend.write(&state).map_err(|e| load::state_diagnostic(&e, backend.as_ref()))?;
            out.note(&format!(
                "Removed {address} from state (serial {}). The object itself was not touched.",
                state.serial
            ));
        }
        StateCommand::Unlock { id, path } => {
            let backend = backend_for(&path, out)?;
            let info = backend.force_unlock(&id).map_err(|e| lock_diagnostic(&e))?;
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
pub fn lock_diagnostic(e: &drplan_state::LockError) -> Diagnostic {
    use drplan_state::LockError;
    let help = match e {
        LockError::Held(info) => format!(
            "wait for it to finish (retry with --lock-timeout 5m), or, if that run died, break the lock with `drplan state unlock {}`",
            info.id
        ),
        LockError::HeldUnknown => "wait for the other drplan to finish, or retry with --lock-timeout".to_string(),
        LockError::NoSuchLock(_) => {
            "`drplan state unlock` takes the id printed by the run that holds the lock".to_string()
        }
        LockError::Io { .. } => "check that the state's location is reachable and writable".to_string(),
    };
    // Not reaching the lock is not the same as someone holding it.
    let code = if matches!(e, LockError::Io { .. }) { Code::BackendUnavailable } else { Code::Locked };
    Diagnostic::error(code, e.to_string()).help(help)
}
