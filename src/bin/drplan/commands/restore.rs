//! `drplan restore [PATH] --point TIME [--backup NAME] [--to REGION]`: restore a backup's
//! recovery point on its own, outside any promotion (the cyber-attack path: back to a clean
//! point taken before the incident). A plan of just the restore Job, shown with its
//! data-loss window, confirmed like apply, run under the state lock and recorded in state.

use super::run::{Run, RunArgs, confirm, execute, show_plan};
use super::{EXIT_ERROR, EXIT_OK, PlanArgs, PointTime, planned_with};
use crate::output::Output;
use drplan_core::plan::restore::Explicit;
use drplan_core::{Code, Diagnostic};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A configuration directory (its *.hcl files are merged) or a single file.
    #[arg(default_value = ".")]
    path: std::path::PathBuf,
    /// Restore the newest usable recovery point at or before this time: RFC 3339
    /// (`2026-12-01T06:30:00Z`) or an age (`2h` ago).
    #[arg(long, value_name = "TIME", value_parser = super::parse_point_time)]
    point: PointTime,
    /// The backup to restore (default: the only one with a `restore` block).
    #[arg(long, value_name = "NAME")]
    backup: Option<String>,
    /// The region whose cluster runs the restore (default: the active one).
    #[arg(long = "to", value_name = "REGION")]
    to: Option<String>,
    /// Allow the point to be one written during an open incident (suspect).
    #[arg(long)]
    allow_suspect: bool,
    /// Wait this long for another drplan holding the state lock (e.g. `30s`, `5m`).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = super::parse_duration)]
    lock_timeout: std::time::Duration,
    #[command(flatten)]
    run: RunArgs,
}

pub fn exec(args: Args, out: &mut Output) -> u8 {
    let plan_args = PlanArgs {
        path: args.path.clone(),
        refresh: true,
        target: Vec::new(),
        allow_unreachable: false,
        lock_timeout: args.lock_timeout,
        restore_point: Some(args.point),
        allow_suspect: args.allow_suspect,
        accept_data_loss: false,
        fail_back: false,
        // The configuration's `policy { paths }` still apply: the restore's plan is checked too.
        policy: Vec::new(),
        namespace: Vec::new(),
    };
    let explicit = Explicit { region: args.to.clone(), backup: args.backup.clone() };
    let Some(planned) = planned_with(&plan_args, Some("restore"), None, Some(explicit), out) else {
        return EXIT_ERROR;
    };
    show_plan(&planned.doc, args.run.json, out);
    if planned.doc.restores.is_empty() || !planned.doc.applyable {
        return out.report(&[], Diagnostic::error(Code::NoRecoveryPoint, "nothing can be restored").help(
            "see the safety findings above: the backup, the region or the recovery point could not be used; `drplan backups` lists every point",
        ));
    }
    if !planned.doc.has_changes() {
        out.note("The Job restoring this point already finished: nothing to do.");
        return EXIT_OK;
    }
    if !args.run.auto_approve && !confirm(&planned.doc, out) {
        return EXIT_ERROR;
    }
    let mut run = Run { planned, config_path: args.path.clone() };
    execute(&args.run, false, &mut run, out)
}
