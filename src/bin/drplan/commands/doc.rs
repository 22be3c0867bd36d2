//! `drplan doc [PATH] [--out FILE] [--format markdown|html]`: the DR plan document, read-only
//! and without the state lock: the configuration, the state and one refresh, as `status`
//! reads them, made into core's document and rendered.

use super::{EXIT_ERROR, EXIT_OK};
use crate::output::Output;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Markdown,
    Html,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A configuration directory (its *.hcl files are merged) or a single file.
    #[arg(default_value = ".")]
    path: std::path::PathBuf,
    /// Write the document to FILE (replaced atomically) instead of printing it.
    #[arg(long, value_name = "FILE")]
    out: Option<std::path::PathBuf>,
    /// Markdown (for a repository or a wiki) or a standalone HTML page (for a browser or a
    /// PDF printer).
    #[arg(long, value_enum, default_value = "markdown")]
    format: Format,
}

pub fn exec(args: Args, out: &mut Output) -> u8 {
    let now = drplan::clock::now_seconds();
    let read = match drplan::engine::status(&args.path, now, &mut |e| out.pipeline(&e)) {
        Ok(r) => r,
        Err(failed) => {
            out.diagnostics(&[], &failed.diagnostics);
            return EXIT_ERROR;
        }
    };
    let policies = drplan::status::policies(&read, &args.path);
    let path = args.path.display().to_string();
    let inputs = drplan_core::document::Inputs { status: read.inputs(), path: &path };
    let doc = drplan_core::document::document(&inputs, policies.as_deref());
    let text = match args.format {
        Format::Markdown => drplan_core::render::document::markdown(&doc),
        Format::Html => drplan_core::render::document::html(&doc),
    };
    match &args.out {
        Some(file) => match drplan::load::write_atomically(file, &text) {
            Ok(()) => EXIT_OK,
            Err(d) => out.report(&[], d),
        },
        None => {
            out.raw(&text);
            EXIT_OK
        }
    }
}
