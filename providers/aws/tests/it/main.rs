//! The aws provider against its emulator. One test binary for the crate (one link instead of
//! one per file, as cargo's own tests are laid out): each module is a theme.

mod common;

mod backup_age;
mod conformance;
mod constructor;
mod convergence;
mod emulator_smoke;
mod pacing;
mod rds;
mod recovery_points;
mod refresh_cost;
mod throttle_budget;
