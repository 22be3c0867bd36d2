//! `drplan man [--out DIR]`: man pages in roff from the clap definition — `drplan.1` and one
//! `drplan-COMMAND.1` per subcommand (nested ones as `drplan-state-list.1`). Without --out,
//! the top-level page goes to stdout, for `drplan man | man -l -`.

use std::path::PathBuf;

use clap::CommandFactory;

use super::{Cli, EXIT_ERROR, EXIT_OK};
use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write every page into this directory (created if missing) instead of printing
    /// the top-level page.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn exec(args: Args, out: &mut Output) -> u8 {
    let pages = pages();
    let Some(dir) = args.out else {
        out.raw(&pages[0].1);
        return EXIT_OK;
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return out.report(
            &[],
            drplan_core::Diagnostic::error(drplan_core::Code::Write, format!("cannot create {}: {e}", dir.display()))
                .help("name a directory you can write to, e.g. `--out ~/.local/share/man/man1`"),
        );
    }
    for (name, text) in &pages {
        if let Err(d) = drplan::load::write_atomically(&dir.join(name), text) {
            out.report(&[], d);
            return EXIT_ERROR;
        }
    }
    out.note(&format!("Wrote {} man pages to {}.", pages.len(), dir.display()));
    EXIT_OK
}

/// Every page, by file name, the top-level one first.
pub(crate) fn pages() -> Vec<(String, String)> {
    let mut cli = Cli::command();
    // Building fills in what the pages show: bin names in usages, propagated versions.
    cli.build();
    let mut pages = Vec::new();
    collect(&cli, "drplan", &mut pages);
    pages
}

fn collect(cmd: &clap::Command, name: &str, pages: &mut Vec<(String, String)>) {
    let page = cmd.clone().name(name.to_string());
    let mut buf = Vec::new();
    // Rendering into a Vec cannot fail.
    let _ = clap_mangen::Man::new(page).render(&mut buf);
    pages.push((format!("{name}.1"), String::from_utf8_lossy(&buf).into_owned()));
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        collect(sub, &format!("{name}-{}", sub.get_name()), pages);
    }
}
