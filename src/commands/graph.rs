//! `drplan graph [PATH]`: the plan's action graph as Graphviz dot.

use super::plan::{PlanArgs, make};
use super::{EXIT_ERROR, EXIT_OK};
use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    plan: PlanArgs,
}

pub fn exec(args: Args, out: &mut Output) -> u8 {
    match make(&args.plan, out) {
        Some(doc) => {
            out.raw(&drplan_core::render::dot(&doc));
            EXIT_OK
        }
        None => EXIT_ERROR,
    }
}
