//! drplan-state's tests: the conformance suite on every backend, replicated state, the
//! state's format and schema. One test binary for the crate (one link instead of one per
//! file, as cargo's own tests are laid out): each module is a theme.

mod conformance;
mod replicated;
mod schemas;
