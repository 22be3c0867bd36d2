//! `drplan show PLANFILE [--json|--markdown]`: render a saved plan.

use std::path::PathBuf;

use super::EXIT_OK;
use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A plan saved with `drplan plan --out FILE`.
    #[arg(value_name = "PLANFILE")]
    file: PathBuf,
    /// Print the plan as JSON.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print the plan as Markdown for a pull-request comment.
    #[arg(long)]
    markdown: bool,
}

pub fn exec(args: Args, out: &mut Output) -> u8 {
    match drplan::engine::read_plan(&args.file) {
        Ok(doc) => {
            out.plan(&doc, args.json, args.markdown);
            EXIT_OK
        }
        Err(d) => out.report(&[], d),
    }
}
