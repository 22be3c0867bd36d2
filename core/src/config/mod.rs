//! The configuration language: HCL text in, a typed [`Config`] and every diagnostic out.

mod build;
pub mod cron;
mod databases;
pub mod duration;
pub mod edit;
mod hooks;
pub mod model;
pub mod schema;
mod tree;

pub use cron::Cron;
pub use duration::Duration;
pub use model::*;
pub use tree::EnvLookup;

use crate::diagnostics::Diagnostics;
use crate::source::SourceFile;

/// The result of loading a configuration: the model when there were no errors, and every
/// diagnostic (warnings too) in source order.
#[derive(Debug)]
pub struct Loaded {
    pub config: Option<Config>,
    pub diagnostics: Diagnostics,
}

/// Lowers the files of one configuration (their blocks merged) into the model.
///
/// `env` answers `env("NAME")` calls; pass `&|_| None` where the environment must not leak in.
pub fn load(files: &[SourceFile], env: EnvLookup<'_>) -> Loaded {
    let mut diagnostics = Diagnostics::default();
    let mut checker = tree::Checker { diags: &mut diagnostics, env, complete: false };
    let root = checker.check_files(files);
    let complete = checker.complete;
    let config = build::Builder { diags: &mut diagnostics, complete }.build(&root);
    diagnostics.sort();
    Loaded { config: if diagnostics.has_errors() { None } else { config }, diagnostics }
}
