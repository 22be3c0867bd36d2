//! `drplan drift [PATH] [--json|--markdown] [--notify URL] [--metrics FILE]`: read-only drift and posture
//! detection for cron jobs and Kubernetes CronJobs. Exit 0 clean, 2 drift, 1 error.

use drplan_core::drift::{CopyState, Report, StateCopy};

use super::{EXIT_CHANGES, EXIT_ERROR, EXIT_OK};
use super::{PlanArgs, planned};
use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    plan: PlanArgs,
    /// Print the report as JSON.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print the report as Markdown (for an issue or a chat message).
    #[arg(long)]
    markdown: bool,
    /// POST a JSON summary (with a Slack-compatible `text`) to this URL when drift is found.
    #[arg(long, value_name = "URL")]
    notify: Option<String>,
    /// Also write the findings and the DR posture as Prometheus metrics to FILE (for
    /// node_exporter's textfile collector), replacing it atomically.
    #[arg(long, value_name = "FILE")]
    metrics: Option<std::path::PathBuf>,
}

pub fn exec(args: Args, out: &mut Output) -> u8 {
    let started = drplan::clock::now_seconds();
    // Read-only: no lock, nothing written but the metrics; a plan is computed only to compare.
    let Some(planned) = planned(&args.plan, None, None, out) else { return EXIT_ERROR };
    let report = drplan_core::drift::report(&planned.doc, &state_copies(&planned.backend.copies()));
    if args.json {
        out.raw(&(serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"));
    } else if args.markdown {
        out.raw(&report.markdown());
    } else {
        out.raw(&report.human());
    }
    if let Some(file) = &args.metrics
        && let Err(d) =
            drplan::load::write_atomically(file, &drplan_core::metrics::drift(&report, &planned.doc, started))
    {
        return out.report(&[], d);
    }
    if let (Some(url), false) = (&args.notify, report.clean) {
        match notify(url, &report) {
            Ok(()) => out.note(&format!("Notified {url}.")),
            // The exit code keeps meaning "drift found"; the failed notification is said.
            Err(e) => out.note(&format!("warning: the notification to {url} failed: {e}")),
        }
    }
    if report.clean { EXIT_OK } else { EXIT_CHANGES }
}

/// The copies of the state that are not current, in core's terms.
fn state_copies(copies: &[drplan_state::CopyView]) -> Vec<StateCopy> {
    use drplan_state::CopyStatus;
    copies
        .iter()
        .filter_map(|c| {
            let status = match c.status {
                CopyStatus::Behind => CopyState::Behind,
                CopyStatus::Unreachable => CopyState::Unreachable,
                CopyStatus::Current | CopyStatus::CaughtUp | CopyStatus::Diverged => return None,
            };
            Some(StateCopy {
                name: c.name.clone(),
                region: c.region.clone(),
                status,
                serial: c.serial,
                detail: c.detail.clone(),
            })
        })
        .collect()
}

/// One POST with a short timeout; scheduled jobs must not hang on a slow webhook.
fn notify(url: &str, report: &Report) -> Result<(), drplan::notify::NotifyError> {
    drplan::notify::post(url, report)
}
