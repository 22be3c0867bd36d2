//! `drplan show PLANFILE [--json|--markdown]`: render a saved plan.

use std::path::PathBuf;

use drplan_core::plan::doc::{FORMAT_VERSION, PlanDoc};
use drplan_core::{Code, Diagnostic};

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
    match read_plan(&args.file) {
        Ok(doc) => {
            out.plan(&doc, args.json, args.markdown);
            EXIT_OK
        }
        Err(d) => out.report(&[], d),
    }
}

pub fn read_plan(file: &std::path::Path) -> Result<PlanDoc, Diagnostic> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Diagnostic::error(Code::PlanFile, format!("cannot read the plan file {}: {e}", file.display()))
            .help("pass a file written by `drplan plan --out FILE`")
    })?;
    #[derive(serde::Deserialize)]
    struct Version {
        format_version: String,
    }
    let not_a_plan = |e: serde_json::Error| {
        Diagnostic::error(Code::PlanFile, format!("{} is not a drplan plan file", file.display()))
            .help(format!("it could not be read as one ({e}); save plans with `drplan plan --out FILE`"))
    };
    let version: Version = serde_json::from_str(&text).map_err(not_a_plan)?;
    let major = |v: &str| v.split('.').next().map(str::to_string);
    if major(&version.format_version) != major(FORMAT_VERSION) {
        return Err(Diagnostic::error(
            Code::PlanFile,
            format!(
                "{} has plan format {}, this drplan reads {FORMAT_VERSION}",
                file.display(),
                version.format_version
            ),
        )
        .help("show it with the drplan version that saved it, or make a new plan"));
    }
    serde_json::from_str(&text).map_err(not_a_plan)
}
