//! drplan-state: the versioned state file and the backends that keep it: a local file with
//! an OS lock, or an S3 object written with conditional requests.
//!
//! The file format is a contract of its own ([`StateFile`]), converted to and from core's
//! in-memory view ([`drplan_core::plan::Prior`]) at the edge. Every backend passes the one
//! [`conformance`] suite.

pub mod conformance;
mod local;
pub mod lock;
mod s3;
mod schema;

pub use local::LocalBackend;
pub use lock::{Lock, LockError, LockInfo};
pub use s3::{S3Backend, S3Location};
pub use schema::{FORMAT_VERSION, LostRegion, StateFile, StateObject};

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read the state at {location}: {reason}")]
    Unreadable { location: String, reason: String },
    #[error("the state at {location} has format version {found}, newer than this drplan understands ({supported})")]
    TooNew { location: String, found: u32, supported: u32 },
    #[error("cannot write the state at {location}: {reason}")]
    Write { location: String, reason: String },
    /// The stored state is no longer the one this run read: someone else wrote it meanwhile.
    /// Writing anyway would lose their update.
    #[error("the state at {location} changed since this run read it ({reason}); it was not overwritten")]
    Conflict { location: String, reason: String },
}

/// Where state lives and how it is locked. Writes are compare-and-swap against what this
/// backend last read or wrote, so two writers can never silently lose each other's update,
/// even past the lock (a lock broken by hand, a clock that lied).
pub trait Backend: Send + Sync {
    /// Where the state is, for messages: a path or `s3://bucket/key`.
    fn location(&self) -> String;

    /// How to get an earlier copy back, for messages about a damaged state.
    fn restore_hint(&self) -> String;

    /// The stored bytes, or `None` when there is no state yet.
    fn read_bytes(&self) -> Result<Option<Vec<u8>>, StateError>;

    /// The state, or `None` when there is none yet, remembered as what the next write
    /// compares against. Content that cannot be understood is an error ([`parse`]), never
    /// treated as empty: planning against nothing would recreate everything.
    fn read(&self) -> Result<Option<StateFile>, StateError>;

    /// Replaces the state, refusing with [`StateError::Conflict`] when the stored state is
    /// not the one this backend last read or wrote.
    fn write(&self, state: &StateFile) -> Result<(), StateError>;

    /// Takes the state's lock for `operation`, waiting up to `timeout` for another holder.
    /// `now` is the caller's clock in RFC 3339, recorded for whoever waits next.
    fn lock(&self, operation: &str, who: &str, now: &str, timeout: Duration) -> Result<Lock, LockError>;

    /// Who holds the lock, if anyone is known to.
    fn lock_info(&self) -> Result<Option<LockInfo>, LockError>;

    /// Breaks a lock left behind by a run that died, only with its id.
    fn force_unlock(&self, id: &str) -> Result<LockInfo, LockError>;
}

/// State bytes as a [`StateFile`], naming a newer format as such rather than as garbage.
pub fn parse(bytes: &[u8], location: &str) -> Result<StateFile, StateError> {
    let unreadable = |e: serde_json::Error| StateError::Unreadable {
        location: location.to_string(),
        reason: format!("not a drplan state file ({e})"),
    };
    #[derive(serde::Deserialize)]
    struct Version {
        format_version: u32,
    }
    let version: Version = serde_json::from_slice(bytes).map_err(unreadable)?;
    if version.format_version > FORMAT_VERSION {
        return Err(StateError::TooNew {
            location: location.to_string(),
            found: version.format_version,
            supported: FORMAT_VERSION,
        });
    }
    serde_json::from_slice(bytes).map_err(unreadable)
}

/// The text a state is stored as: pretty JSON, one trailing newline, so it diffs well.
pub fn to_text(state: &StateFile, location: &str) -> Result<String, StateError> {
    serde_json::to_string_pretty(state)
        .map(|t| t + "\n")
        .map_err(|e| StateError::Write { location: location.to_string(), reason: e.to_string() })
}
