//! The kubernetes provider against its emulator. One test binary for the crate (one link
//! instead of one per file, as cargo's own tests are laid out): each module is a theme.

mod common;

mod conformance;
mod convergence;
mod emulator_smoke;
mod job_step;
mod workload;
