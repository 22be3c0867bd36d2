//! The command line: one module per subcommand, each an `Args` struct and an `exec`.

mod apply;
mod drift;
mod failover;
pub(crate) mod fmt;
mod graph;
mod plan;
mod show;
mod state;
mod validate;

use clap::{Parser, Subcommand};

use crate::output::Output;

/// Exit codes, as documented: 0 success, 1 error, 2 changes or drift present.
pub const EXIT_OK: u8 = 0;
pub const EXIT_ERROR: u8 = 1;
pub const EXIT_CHANGES: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "drplan",
    version,
    about = "Declarative disaster recovery: plan and apply failover topologies across AWS, GCP and Kubernetes",
    long_about = None,
    propagate_version = true,
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a configuration and report every problem in it.
    Validate(validate::Args),
    /// Rewrite configuration files in the canonical layout, keeping comments.
    Fmt(fmt::Args),
    /// Show what apply would change: roles, ordered actions, drift, safety and DR posture.
    Plan(plan::Args),
    /// Carry out a plan: the configuration's, or a plan file saved with `plan --out`.
    ///
    /// PATH is a configuration (a directory or a file) or a plan file; with a plan file,
    /// --config names the configuration it was made from.
    Apply(apply::Args),
    /// Report drift and DR posture violations (read-only): exit 0 clean, 2 drift, 1 error.
    Drift(drift::Args),
    /// Make another region active by editing the HCL; show the diff and the plan that follows.
    Failover(failover::Args),
    /// Render a plan saved with `drplan plan --out FILE`.
    Show(show::Args),
    /// Print the plan's action graph in Graphviz dot.
    Graph(graph::Args),
    /// Inspect and repair state: list, show, pull, push, copies, rm, unlock.
    State(state::Args),
}

pub fn exec(cli: Cli, out: &mut Output) -> u8 {
    match cli.command {
        Command::Validate(args) => validate::exec(args, out),
        Command::Fmt(args) => fmt::exec(args, out),
        Command::Plan(args) => plan::exec(args, out),
        Command::Apply(args) => apply::exec(args, out),
        Command::Failover(args) => failover::exec(args, out),
        Command::Drift(args) => drift::exec(args, out),
        Command::Show(args) => show::exec(args, out),
        Command::Graph(args) => graph::exec(args, out),
        Command::State(args) => state::exec(args, out),
    }
}

/// Turns an exit code from reporting a diagnostic into "no result", for loaders that
/// return `Option` after telling the user why.
pub(crate) trait ThenNone {
    fn then_none<T>(self) -> Option<T>;
}

impl ThenNone for u8 {
    fn then_none<T>(self) -> Option<T> {
        None
    }
}
