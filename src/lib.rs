//! drplan as a library: the engine that every command of the `drplan` binary runs, and that
//! long-running programs (a watcher, drills) and benchmarks drive directly. It prints
//! nothing: results and diagnostics come back as values, progress through callbacks.

pub mod apply;
pub mod clock;
pub mod clouds;
pub mod drill;
pub mod engine;
pub mod incident;
pub mod load;
pub mod nas;
pub mod notify;
pub mod policy;
pub mod recovery;
pub mod runtime;
pub mod status;
pub mod watch;
