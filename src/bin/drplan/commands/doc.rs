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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clap::Parser;
    use drplan_core::config::Role;
    use drplan_core::document::{Inputs, document};
    use drplan_core::plan::{Prior, Snapshot};

    use crate::commands::Cli;

    /// The commands `drplan doc` writes for `examples/bot-core`, with either AWS region
    /// active (before and after a failover), each parsed by this command line, as a person
    /// pasting it would run it.
    #[test]
    fn every_command_of_the_document_parses_with_this_command_line() {
        let main = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bot-core/main.hcl");
        let text = std::fs::read_to_string(main).unwrap();
        let loaded = drplan_core::config::load(&[drplan_core::SourceFile::new("main.hcl", text)], &|_| None);
        let config = loaded.config.expect("bot-core is valid");
        let mut failed_over = config.clone();
        for r in &mut failed_over.regions {
            r.role = match r.name.as_str() {
                "eu-west-1" => Role::Active,
                "us-east-1" => Role::Standby,
                _ => r.role,
            };
        }
        let (prior, snapshot, health) = (Prior::default(), Snapshot::default(), BTreeMap::new());
        let mut parsed = 0;
        for config in [&config, &failed_over] {
            let status = drplan_core::status::Inputs {
                config,
                prior: &prior,
                snapshot: &snapshot,
                health: &health,
                now: 1_796_126_400,
            };
            let doc = document(&Inputs { status, path: "examples/bot-core" }, None);
            let commands = doc.commands();
            assert!(commands.len() >= 15, "{commands:?}");
            for words in commands {
                match Cli::try_parse_from(&words) {
                    Ok(_) => parsed += 1,
                    Err(e) => panic!("`{}` does not parse:\n{e}", words.join(" ")),
                }
            }
        }
        assert!(parsed >= 26, "{parsed}");
    }
}
