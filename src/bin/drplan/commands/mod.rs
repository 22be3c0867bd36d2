//! The command line: one module per subcommand, each an `Args` struct and an `exec`.

mod apply;
mod backups;
mod completions;
mod doc;
mod drift;
mod drill;
mod failover;
mod fmt;
mod graph;
mod incident;
mod man;
mod plan;
mod policy;
mod restore;
mod run;
mod show;
mod state;
mod status;
mod validate;
mod watch;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use drplan::engine::{self, Planned};

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
    /// List the recovery points of every backup destination, and the newest usable one.
    Backups(backups::Args),
    /// Watch the regions' health and fail over automatically (or say what it would do).
    Watch(watch::Args),
    /// Rehearse a failover to a standby or cold region: measure the RTO, then tear down.
    Drill(drill::Args),
    /// Restore a backup's recovery point on its own (default: into the active region).
    Restore(restore::Args),
    /// Show DR readiness on one screen: READY, DEGRADED or NOT READY, and why (read-only).
    Status(status::Args),
    /// Write the DR plan document: objectives, backups, architecture, recovery procedures,
    /// drills, the readiness checklist and history, from the configuration, state and clouds.
    Doc(doc::Args),
    /// Test Rego policies: `drplan policy test DIR` runs their `test_*` rules.
    Policy(policy::Args),
    /// Declare a region compromised, list incidents, close one (cyber-attack response).
    Incident(incident::Args),
    /// Print the completion script for a shell: bash, zsh, fish or powershell.
    Completions(completions::Args),
    /// Write the man pages: drplan(1) and one per subcommand.
    Man(man::Args),
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
        Command::Restore(args) => restore::exec(args, out),
        Command::Drill(args) => drill::exec(args, out),
        Command::Watch(args) => watch::exec(args, out),
        Command::Backups(args) => backups::exec(args, out),
        Command::Status(args) => status::exec(args, out),
        Command::Doc(args) => doc::exec(args, out),
        Command::Policy(args) => policy::exec(args, out),
        Command::Incident(args) => incident::exec(args, out),
        Command::Completions(args) => completions::exec(args, out),
        Command::Man(args) => man::exec(args, out),
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

/// Options shared by the commands that plan.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// A configuration directory (its *.hcl files are merged) or a single file.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Read the live clouds first (`--refresh=false`: plan from state alone, no API calls).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub refresh: bool,
    /// Plan only this address and what is under it (repeatable), e.g. `region.us-east-1`.
    #[arg(long, value_name = "ADDR")]
    pub target: Vec<String>,
    /// Proceed although regions are unreachable, declaring them lost: their actions are skipped.
    #[arg(long)]
    pub allow_unreachable: bool,
    /// Wait this long for another drplan holding the state lock (e.g. `30s`, `5m`).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
    /// A promotion restores the newest usable recovery point at or before this time:
    /// RFC 3339 (`2026-12-01T06:30:00Z`) or an age (`2h` ago). Default: now.
    #[arg(long, value_name = "TIME", value_parser = parse_point_time)]
    pub restore_point: Option<PointTime>,
    /// With `--restore-point`, allow a point written during an open incident (suspect):
    /// otherwise restores use the newest point from before the incident.
    #[arg(long, requires = "restore_point")]
    pub allow_suspect: bool,
    /// Allow restoring a recovery point older than `objectives.rpo`.
    #[arg(long)]
    pub accept_data_loss: bool,
    /// After an automatic failover, plan a configuration that still names the old active
    /// region: a deliberate failback, with its health gate.
    #[arg(long)]
    pub fail_back: bool,
    /// Check the plan against the Rego policies (`*.rego`) under DIR (repeatable), besides
    /// those of `drplan { policy { paths } }`: a `deny` or `violation` blocks it, a `warn` shows.
    #[arg(long, value_name = "DIR")]
    pub policy: Vec<PathBuf>,
    /// The Rego package whose `deny`, `violation` and `warn` rules count (repeatable) [default: main].
    #[arg(long, value_name = "PACKAGE")]
    pub namespace: Vec<String>,
}

/// A `--restore-point`, in seconds since the epoch.
#[derive(Debug, Clone, Copy)]
pub struct PointTime(pub i64);

pub fn parse_point_time(s: &str) -> Result<PointTime, String> {
    drplan_core::recovery::parse_point_time(s, drplan::clock::now_seconds()).map(PointTime)
}

pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    if s == "0" || s == "0s" {
        return Ok(std::time::Duration::ZERO);
    }
    drplan_core::config::Duration::parse(s)
        .map(|d| std::time::Duration::from_secs(d.as_secs()))
        .map_err(|e| format!("{e}; write e.g. 30s or 5m"))
}

/// Runs the engine's pipeline for a command, printing what it reports as it goes; `None`
/// once the reason was printed. `sources`, when given, replace the files at `args.path`.
pub(crate) fn planned(
    args: &PlanArgs,
    lock: Option<&str>,
    sources: Option<Vec<drplan_core::SourceFile>>,
    out: &mut Output,
) -> Option<Planned> {
    planned_with(args, lock, sources, None, out)
}

/// [`planned`], for `drplan restore`: the plan of `restore_only` alone.
pub(crate) fn planned_with(
    args: &PlanArgs,
    lock: Option<&str>,
    sources: Option<Vec<drplan_core::SourceFile>>,
    restore_only: Option<drplan_core::plan::restore::Explicit>,
    out: &mut Output,
) -> Option<Planned> {
    let request = engine::Request {
        path: &args.path,
        sources,
        refresh: args.refresh,
        targets: &args.target,
        allow_unreachable: args.allow_unreachable,
        lock,
        lock_timeout: args.lock_timeout,
        restore_point: args.restore_point.map(|t| t.0),
        allow_suspect: args.allow_suspect,
        accept_data_loss: args.accept_data_loss,
        restore_only,
        fail_back: args.fail_back,
        policy: engine::PolicyRequest { dirs: args.policy.clone(), namespaces: args.namespace.clone() },
    };
    match engine::plan(&request, &mut |e| out.pipeline(&e)) {
        Ok(p) => Some(p),
        Err(failed) => {
            out.diagnostics(&failed.sources, &failed.diagnostics);
            None
        }
    }
}

/// ` PATH` for a command suggested about the configuration at `path`, nothing for the
/// current directory.
pub(crate) fn path_arg(path: &std::path::Path) -> String {
    if path == std::path::Path::new(".") { String::new() } else { format!(" {}", path.display()) }
}
