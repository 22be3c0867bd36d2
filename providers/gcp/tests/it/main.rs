//! The gcp provider against its emulator. One test binary for the crate (one link instead of
//! one per file, as cargo's own tests are laid out): each module is a theme.

mod common;

mod emulator_smoke;
mod provider;
mod recovery_points;
