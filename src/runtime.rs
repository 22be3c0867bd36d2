//! The one async runtime of the process, made on first use and kept: the engine's sync entry
//! points (a refresh, a status read, a watcher's round) block on it instead of making a
//! runtime per call, so the clients they build and the connections those pool stay on one set
//! of worker threads. The S3 state backend keeps a small runtime of its own (see
//! `drplan_state::s3`): it must work from sync code called inside this one.

use std::sync::OnceLock;

use drplan_core::{Code, Diagnostic};

static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();

/// The process's runtime; an error only when the operating system refuses its threads.
pub fn shared() -> Result<&'static tokio::runtime::Runtime, Diagnostic> {
    RUNTIME
        .get_or_init(|| tokio::runtime::Runtime::new().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| Diagnostic::error(Code::Refresh, format!("cannot start the async runtime: {e}")))
}
