//! `drplan fmt [--check] [--diff] [PATH]`: rewrite configuration files in the canonical
//! layout, keeping every comment.

use std::path::PathBuf;

use drplan_core::{Diagnostic, Diagnostics, SourceFile};

use super::{EXIT_ERROR, EXIT_OK};
use crate::load;
use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A configuration directory (its *.hcl files) or a single file.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// Change nothing; list the files that are not formatted and exit 1 if there are any.
    #[arg(long)]
    check: bool,
    /// Print the changes as a unified diff.
    #[arg(long)]
    diff: bool,
}

pub fn exec(args: Args, out: &mut Output) -> u8 {
    let files = match load::files(&args.path) {
        Ok(files) => files,
        Err(d) => return report(out, &[], d),
    };
    let mut failed = false;
    let mut unformatted = false;
    for path in files {
        let source = match load::read(&path) {
            Ok(s) => s,
            Err(d) => {
                report(out, &[], d);
                failed = true;
                continue;
            }
        };
        let formatted = match drplan_core::fmt::format(&source.text) {
            Ok(f) => f,
            Err(diags) => {
                let mut all = Diagnostics::default();
                diags.into_iter().for_each(|d| all.push(d));
                out.diagnostics(std::slice::from_ref(&source), &all);
                failed = true;
                continue;
            }
        };
        if formatted == source.text {
            continue;
        }
        unformatted = true;
        out.line(&source.name);
        if args.diff {
            let diff = similar::TextDiff::from_lines(&source.text, &formatted);
            let name = source.name.as_str();
            out.line(diff.unified_diff().context_radius(3).header(name, name).to_string().trim_end());
        }
        if !args.check
            && let Err(d) = crate::load::write_atomically(&path, &formatted)
        {
            report(out, &[], d);
            failed = true;
        }
    }
    if failed || (args.check && unformatted) { EXIT_ERROR } else { EXIT_OK }
}

fn report(out: &mut Output, sources: &[SourceFile], d: Diagnostic) -> u8 {
    out.report(sources, d)
}
