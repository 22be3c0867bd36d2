//! drplan's tests of the binary and the library at their boundary. One test binary for the
//! crate (one link instead of one per file, as cargo's own tests are laid out): each module is
//! a theme.

mod support;

mod apply;
mod apply_crash;
mod apply_faults;
mod apply_interrupt;
mod apply_progress;
mod archive;
mod cli;
mod closed_output;
mod completions;
mod data_tier;
mod disaster;
mod doc;
mod drill;
mod failover;
mod fmt;
mod gates;
mod hooks;
mod incident;
mod logging;
mod manifests;
mod metrics;
mod nas;
mod plan;
mod policy;
mod readiness;
mod restore;
mod state;
mod state_copies;
mod state_s3;
mod status;
mod tidy;
mod validate;
mod watch;
