//! drplan-state: the versioned state file and the backends that keep it: a local file with
//! an OS lock, an S3 object written with conditional requests, or copies of that object in
//! buckets of several regions, each written and locked by drplan itself.
//!
//! The file format is a contract of its own ([`StateFile`]), converted to and from core's
//! in-memory view ([`drplan_core::plan::Prior`]) at the edge. Every backend passes the one
//! conformance suite (`conformance`, behind the feature of that name: tests enable it, the
//! shipped library does not contain it).

pub mod atomic;
#[cfg(feature = "conformance")]
pub mod conformance;
mod local;
pub mod lock;
mod replicated;
mod s3;
mod schema;

pub use local::LocalBackend;
pub use lock::{LeaseCheck, Lock, LockError, LockInfo, release_all};
pub use replicated::ReplicatedBackend;
pub use s3::{DEFAULT_LEASE, S3Backend, S3Location, StaticCredentials};
pub use schema::{FORMAT_MINOR, FORMAT_VERSION, LostRegion, StateFile, StateObject, Unknown, format};

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read the state at {location}: {reason}")]
    Unreadable { location: String, reason: String },
    /// Written by a newer drplan in a major format version this one does not read: refused
    /// rather than misread. (A newer minor version reads.)
    #[error(
        "the state at {location} has format version {found}, newer than this drplan reads ({supported}): {}",
        upgrade(written_by.as_deref())
    )]
    TooNew { location: String, found: u32, supported: u32, written_by: Option<String> },
    #[error("cannot write the state at {location}: {reason}")]
    Write { location: String, reason: String },
    /// The stored state is no longer the one this run read: someone else wrote it meanwhile.
    /// Writing anyway would lose their update.
    #[error("the state at {location} changed since this run read it ({reason}); it was not overwritten")]
    Conflict { location: String, reason: String },
    /// The store could not be reached at all (no answer, a timeout), as opposed to answering
    /// with an error: what a copy in a lost region does.
    #[error("cannot read the state at {location}: {reason}")]
    Unreachable { location: String, reason: String },
    /// A copy of a replicated state cannot be reached and its region was not declared lost.
    #[error("the state copy `{copy}` ({location}, in {region}) cannot be reached: {reason}")]
    CopyUnreachable { copy: String, location: String, region: String, reason: String },
    /// Two copies of a replicated state hold different histories: no copy can be chosen.
    #[error("the state copies `{first}` and `{second}` have diverged: {reason}")]
    Diverged { first: String, second: String, reason: String },
    /// `state push` of a state that would replace a newer or different one.
    #[error("the state at {location} was not replaced: {reason}")]
    PushRefused { location: String, reason: String },
}

/// One copy of the state as a run found it, for `drplan state copies`, plan notes and drift.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CopyView {
    /// The copy's name: its bucket.
    pub name: String,
    pub primary: bool,
    /// `s3://bucket/key`.
    pub location: String,
    pub region: String,
    pub status: CopyStatus,
    pub lineage: Option<String>,
    pub serial: Option<u64>,
    /// Why it is unreachable or diverged, or what it was caught up from.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyStatus {
    /// Holds the newest state.
    Current,
    /// Holds an older state of the same lineage, or none while others have one.
    Behind,
    /// Was behind and this run brought it up to date.
    CaughtUp,
    /// Could not be reached; declared lost with `--allow-unreachable`, or refused.
    Unreachable,
    /// Holds the same serial with other content, or another lineage.
    Diverged,
}

impl std::fmt::Display for CopyStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CopyStatus::Current => "current",
            CopyStatus::Behind => "behind",
            CopyStatus::CaughtUp => "caught up",
            CopyStatus::Unreachable => "unreachable",
            CopyStatus::Diverged => "diverged",
        })
    }
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

    /// The copies as the last [`read`](Backend::read) found them: empty for a backend that
    /// keeps one copy.
    fn copies(&self) -> Vec<CopyView> {
        Vec::new()
    }

    /// Every copy read afresh and reported as found, diverged or unreachable ones included;
    /// nothing is refused or written. A backend of one copy reports that one.
    fn survey(&self) -> Vec<CopyView> {
        let found = self.read();
        let (status, lineage, serial, detail) = match &found {
            Ok(s) => (CopyStatus::Current, s.as_ref().map(|s| s.lineage.clone()), s.as_ref().map(|s| s.serial), None),
            Err(e) => (CopyStatus::Unreachable, None, None, Some(e.to_string())),
        };
        vec![CopyView {
            name: self.location(),
            primary: true,
            location: self.location(),
            region: String::new(),
            status,
            lineage,
            serial,
            detail,
        }]
    }

    /// The stored bytes of the copy named `name` alone, or `None` when it has no state.
    /// `Ok(None)` too for a name that is not a copy: check [`copy_names`](Backend::copy_names).
    fn read_copy(&self, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        let _ = name;
        self.read_bytes()
    }

    /// The names `--copy` accepts: empty for a backend that keeps one copy.
    fn copy_names(&self) -> Vec<String> {
        Vec::new()
    }

    /// Replaces the state with `state` (`drplan state push`), on every copy, refusing
    /// another lineage, a newer serial or the same serial with other content unless
    /// `force`. The state is written at a serial above every copy's, so plans saved before
    /// are stale; what was written is returned. Call it under the lock.
    fn push(&self, state: &StateFile, force: bool) -> Result<StateFile, StateError> {
        let current = self.read()?;
        if let Some(reason) = push_refusal(current.as_ref(), state).filter(|_| !force) {
            return Err(StateError::PushRefused { location: self.location(), reason });
        }
        let mut out = state.clone();
        out.serial = out.serial.max(current.map_or(0, |c| c.serial + 1));
        self.write(&out)?;
        Ok(out)
    }
}

/// Why `pushed` must not replace `current` without `--force`, if it must not.
pub fn push_refusal(current: Option<&StateFile>, pushed: &StateFile) -> Option<String> {
    let current = current?;
    if current.lineage != pushed.lineage {
        Some(format!(
            "it has lineage {}, the pushed state {}; pass --force to replace it",
            current.lineage, pushed.lineage
        ))
    } else if current.serial > pushed.serial {
        Some(format!(
            "it is newer (serial {}) than the pushed state (serial {}); pass --force to replace it",
            current.serial, pushed.serial
        ))
    } else if current.serial == pushed.serial && current != pushed {
        Some(format!("it has other content at the same serial {}; pass --force to replace it", current.serial))
    } else {
        None
    }
}

fn upgrade(written_by: Option<&str>) -> String {
    match written_by {
        Some(v) => format!("it was written by drplan {v}; upgrade drplan to {v} or later to read it"),
        None => "it was written by a newer drplan; upgrade drplan to read it".to_string(),
    }
}

/// State bytes as a [`StateFile`], naming a newer format as such rather than as garbage. A
/// newer minor version of this major reads, its unknown fields kept for the write back.
pub fn parse(bytes: &[u8], location: &str) -> Result<StateFile, StateError> {
    let unreadable = |e: serde_json::Error| StateError::Unreadable {
        location: location.to_string(),
        reason: format!("not a drplan state file ({e})"),
    };
    #[derive(serde::Deserialize)]
    struct Version {
        format_version: u32,
        /// Any JSON: a version that is no string only goes unnamed in the message.
        #[serde(default)]
        drplan_version: serde_json::Value,
    }
    let version: Version = serde_json::from_slice(bytes).map_err(unreadable)?;
    if version.format_version > FORMAT_VERSION {
        return Err(StateError::TooNew {
            location: location.to_string(),
            found: version.format_version,
            supported: FORMAT_VERSION,
            written_by: version.drplan_version.as_str().map(str::to_string),
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
