//! drplan-core's tests over its public interface: plan cases, the reference configuration,
//! robustness, the formats' schemas, status, the DR plan document. One test binary for the crate (one link instead
//! of one per file, as cargo's own tests are laid out): each module is a theme.

mod document;
mod plans;
mod reference;
mod robustness;
mod schemas;
mod status;
