//! `drplan backups [PATH] [--json]`: every backup destination's recovery points, and the
//! newest usable point of each backup against the RPO. Read-only, no lock. Exit 0 when every
//! backup has a usable point within the RPO, 2 when not, 1 on error.

use super::{EXIT_CHANGES, EXIT_ERROR, EXIT_OK};
use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A configuration directory (its *.hcl files are merged) or a single file.
    #[arg(default_value = ".")]
    path: std::path::PathBuf,
    /// The versioned JSON report instead of the listing.
    #[arg(long)]
    json: bool,
}

pub fn exec(args: Args, out: &mut Output) -> u8 {
    let read = match drplan::engine::catalogs(&args.path, &mut |e| out.pipeline(&e)) {
        Ok(r) => r,
        Err(failed) => {
            out.diagnostics(&[], &failed.diagnostics);
            return EXIT_ERROR;
        }
    };
    let report = drplan_core::backups::report(&read.config, &read.catalogs, read.now);
    if args.json {
        out.raw(&report.to_json());
    } else {
        out.raw(&report.human());
    }
    if report.ok { EXIT_OK } else { EXIT_CHANGES }
}
