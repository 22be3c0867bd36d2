//! drplan-state: the versioned state file and its backends (a local file now, an S3 object
//! with conditional writes next).
//!
//! The file format is a contract of its own ([`StateFile`]), converted to and from core's
//! in-memory view ([`drplan_core::plan::Prior`]) at the edge.

mod local;
pub mod lock;
mod schema;

pub use local::LocalBackend;
pub use schema::{FORMAT_VERSION, StateFile, StateObject};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read the state file {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("the state file {path} has format version {found}, newer than this drplan understands ({supported})")]
    TooNew { path: PathBuf, found: u32, supported: u32 },
    #[error("cannot write the state file {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}
