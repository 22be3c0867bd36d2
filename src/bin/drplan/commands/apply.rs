//! `drplan apply [PATH|PLANFILE]`: carry a plan out, recording every finished action in
//! state at once. A saved plan is applied exactly as written, or refused when stale.

use std::path::PathBuf;

use drplan_core::plan::doc::PlanDoc;
use drplan_core::{Code, Diagnostic};

use super::run::{Run, RunArgs, confirm, execute, show_plan};
use super::{EXIT_ERROR, EXIT_OK, ThenNone};
use super::{PlanArgs, planned};
use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    plan: PlanArgs,
    /// With a saved plan: the configuration it was made from (default: where the plan
    /// recorded it, else the current directory).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

pub fn exec(args: Args, out: &mut Output) -> u8 {
    let saved = args.plan.path.is_file() && args.plan.path.extension().is_none_or(|e| e != "hcl");
    let prepared = if saved { prepare_saved(&args, out) } else { prepare_fresh(&args, out) };
    let Some(mut run) = prepared else { return EXIT_ERROR };
    if !run.planned.doc.has_changes() {
        out.note("No changes. Nothing to apply.");
        return EXIT_OK;
    }
    // Refused before asking for confirmation; `engine::apply` checks the same gates again.
    if let Err(refusal) = drplan::engine::check(&run.planned, args.plan.allow_unreachable) {
        let failed = refusal.into_failed();
        out.diagnostics(&failed.sources, &failed.diagnostics);
        return EXIT_ERROR;
    }
    if !args.run.auto_approve && !confirm(&run.planned.doc, out) {
        return EXIT_ERROR;
    }
    execute(&args.run, args.plan.allow_unreachable, &mut run, out)
}

fn prepare_fresh(args: &Args, out: &mut Output) -> Option<Run> {
    let planned = planned(&args.plan, Some("apply"), None, out)?;
    show_plan(&planned.doc, args.run.json, out);
    Some(Run { planned, config_path: args.plan.path.clone() })
}

fn prepare_saved(args: &Args, out: &mut Output) -> Option<Run> {
    let doc = match drplan::engine::read_plan(&args.plan.path) {
        Ok(d) => d,
        Err(d) => return out.report(&[], d).then_none(),
    };
    let config = match saved_configuration(args.config.as_ref(), &doc) {
        Ok(c) => c,
        Err(d) => return out.report(&[], d).then_none(),
    };
    let planned_args = PlanArgs { path: config.clone(), refresh: false, ..args.plan.clone() };
    // Plan again from state alone: only to load, lock and compare; the saved plan is what runs.
    let mut current = planned(&planned_args, Some("apply"), None, &mut Output { quiet: true, ..out.clone() })?;
    if let Err(d) = drplan::engine::adopt_saved(&mut current, doc) {
        return out.report(&[], d).then_none();
    }
    show_plan(&current.doc, args.run.json, out);
    Some(Run { planned: current, config_path: config })
}

/// The configuration a saved plan is checked against and applied with: `--config`, else the
/// one the plan recorded (when it is still there), else the current directory's. The
/// staleness checks that follow prove it is the configuration the plan was made from.
fn saved_configuration(given: Option<&PathBuf>, doc: &PlanDoc) -> Result<PathBuf, Diagnostic> {
    if let Some(path) = given {
        return Ok(path.clone());
    }
    let has_configuration = |p: &std::path::Path| crate::load::files(p).is_ok_and(|f| !f.is_empty());
    let recorded = doc.configuration_path.as_deref().map(PathBuf::from);
    if let Some(path) = recorded.as_ref().filter(|p| has_configuration(p)) {
        return Ok(path.clone());
    }
    if has_configuration(std::path::Path::new(".")) {
        return Ok(PathBuf::from("."));
    }
    let (message, help) = match &recorded {
        Some(path) => (
            format!("the configuration of this plan is not in {} nor here", path.display()),
            format!(
                "the plan was made from {}; pass the directory that configuration is in now with `--config DIR`",
                path.display()
            ),
        ),
        None => (
            "no configuration here for this plan".to_string(),
            "the plan does not record where its configuration was; pass it with `--config DIR`".to_string(),
        ),
    };
    Err(Diagnostic::error(Code::NoConfiguration, message).help(help))
}
