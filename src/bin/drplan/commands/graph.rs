//! `drplan graph [PATH]`: the plan's action graph as Graphviz dot.

use super::{EXIT_ERROR, EXIT_OK};
use super::{PlanArgs, planned};
use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    plan: PlanArgs,
}

pub fn exec(args: Args, out: &mut Output) -> u8 {
    match planned(&args.plan, args.plan.refresh.then_some("plan"), None, out).map(|p| p.doc) {
        Some(doc) => {
            out.raw(&drplan_core::render::dot(&doc));
            EXIT_OK
        }
        None => EXIT_ERROR,
    }
}
