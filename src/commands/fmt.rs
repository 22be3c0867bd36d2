//! `drplan fmt [--check] [--diff] [PATH]`: rewrite configuration files in the canonical
//! layout, keeping every comment.

use std::path::{Path, PathBuf};

use drplan_core::{Code, Diagnostic, Diagnostics, SourceFile};

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
            && let Err(d) = write_atomically(&path, &formatted)
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

/// Replaces the file through a temporary sibling and a rename, keeping its permissions, so
/// an interrupted run leaves either the old file or the new one, never half of one.
pub(crate) fn write_atomically(path: &Path, text: &str) -> Result<(), Diagnostic> {
    let fail = |e: std::io::Error| {
        Diagnostic::error(Code::Write, format!("cannot write {}: {e}", path.display()))
            .help("check that the directory is writable; the original file is unchanged")
    };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.drplan-fmt.{}", std::process::id()));
    let result = (|| {
        std::fs::write(&tmp, text)?;
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}
