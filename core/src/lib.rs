//! drplan-core: the pure heart of drplan — configuration language, model and diagnostics.
//!
//! Nothing in this crate performs I/O, reads the environment or the clock, or knows about
//! tokio and cloud SDKs: the binary reads files and passes their text in, passes environment
//! lookups in as a function, and renders the diagnostics this crate returns as data.

pub mod backups;
pub mod config;
pub mod diagnostics;
pub mod document;
pub mod drift;
pub mod drill;
pub mod fmt;
pub mod formats;
pub mod incident;
pub mod metrics;
pub mod plan;
pub mod policy;
pub mod provider;
pub mod recovery;
pub mod render;
pub mod retry;
pub mod source;
pub mod status;
pub mod suggest;
pub mod uptime;
pub mod watch;

pub use diagnostics::{Code, Diagnostic, Diagnostics, Label, Severity};
pub use source::{FileId, SourceFile, Span};
