//! The fake provider: the conformance suite, convergence, recovery points. One test binary for
//! the crate (one link instead of one per file, as cargo's own tests are laid out): each module
//! is a theme.

mod conformance;
mod convergence;
mod points;
