//! `drplan plan [PATH]`: configuration + state (+ live clouds) → a reviewed plan.

use std::path::PathBuf;

use super::{EXIT_CHANGES, EXIT_ERROR, EXIT_OK, PlanArgs};
use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    plan: PlanArgs,
    /// Save the plan to FILE for `drplan show` and `drplan apply FILE`.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Print the plan as JSON (a versioned schema) instead of text.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print the plan as Markdown for a pull-request comment.
    #[arg(long)]
    markdown: bool,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    detailed_exitcode: bool,
}

pub fn exec(args: Args, out: &mut Output) -> u8 {
    // Without refresh the plan reads state alone and is never applied from here: it needs
    // no lock, like a read of `state list`.
    let lock = args.plan.refresh.then_some("plan");
    let Some(planned) = super::planned(&args.plan, lock, None, out) else { return EXIT_ERROR };
    // For a reviewer: the readiness checklist of this configuration against the clouds now.
    let checklist = if args.markdown {
        match drplan::status::of_plan(&planned, drplan::clock::now_seconds()) {
            Ok(Some(read)) => {
                let report = drplan_core::status::report(&read.inputs());
                Some(drplan::status::checklist(&read, &report, &args.plan.path))
            }
            Ok(None) => None,
            Err(failed) => {
                out.diagnostics(&[], &failed.diagnostics);
                return EXIT_ERROR;
            }
        }
    } else {
        None
    };
    let doc = planned.doc;
    if let Some(file) = &args.out
        && let Err(d) = drplan::engine::write_plan(file, &doc)
    {
        out.report(&[], d);
        return EXIT_ERROR;
    }
    out.plan(&doc, args.json, args.markdown);
    if let Some(checklist) = checklist {
        out.raw(&format!(
            "\n#### Readiness checklist\n\nThis configuration against the clouds as they are now (`drplan status`, `drplan doc`).\n{}",
            drplan_core::status::checklist_markdown(&checklist)
        ));
    }
    if let Some(file) = &args.out
        && !args.json
        && !args.markdown
    {
        // A saved plan is applied from anywhere: name the configuration unless it is here.
        let config = if args.plan.path == std::path::Path::new(".") {
            String::new()
        } else {
            format!(" --config {}", args.plan.path.display())
        };
        out.note(&format!(
            "Saved the plan to {}. Apply exactly these actions with: drplan apply {}{config}",
            file.display(),
            file.display()
        ));
    }
    // A safety error waived by --allow-unreachable (split brain, the region declared lost)
    // leaves the plan applyable, and planning it is no error.
    // So is a policy's denial: a pull request's check fails on it.
    if !doc.applyable && (doc.safety.iter().any(|s| s.severity == "error") || drplan_core::policy::denied(&doc)) {
        return EXIT_ERROR;
    }
    if args.detailed_exitcode && doc.has_changes() { EXIT_CHANGES } else { EXIT_OK }
}
