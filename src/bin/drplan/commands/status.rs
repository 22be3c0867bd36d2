//! `drplan status [PATH] [--json|--markdown] [--metrics FILE]`: DR readiness on one screen, read-only and
//! without the state lock. Exit 0 READY, 2 DEGRADED or NOT READY, 1 error.

use super::{EXIT_CHANGES, EXIT_ERROR, EXIT_OK};
use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A configuration directory (its *.hcl files are merged) or a single file.
    #[arg(default_value = ".")]
    path: std::path::PathBuf,
    /// Print the versioned JSON report.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print the report as Markdown (for a ticket or a chat message).
    #[arg(long)]
    markdown: bool,
    /// Also write the verdict, region health and backup ages as Prometheus metrics to FILE
    /// (for node_exporter's textfile collector), replacing it atomically.
    #[arg(long, value_name = "FILE")]
    metrics: Option<std::path::PathBuf>,
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
    let mut report = drplan_core::status::report(&read.inputs());
    report.checklist = drplan::status::checklist(&read, &report, &args.path);
    if let Some(file) = &args.metrics
        && let Err(d) = drplan::load::write_atomically(file, &drplan_core::metrics::status(&report, now))
    {
        return out.report(&[], d);
    }
    if args.json {
        out.raw(&report.to_json());
    } else if args.markdown {
        out.raw(&report.markdown());
    } else {
        out.raw(&report.human());
    }
    match report.verdict {
        drplan_core::status::Verdict::Ready => EXIT_OK,
        _ => EXIT_CHANGES,
    }
}
