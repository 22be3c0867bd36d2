//! The `drplan` binary: command-line parsing and dispatch. Everything it does is in the
//! command modules; everything they compute comes from the workspace crates.

mod commands;
mod logging;
mod output;
mod progress;
mod render;

use std::process::ExitCode;

// The engine's modules, under the names the command modules use.
use drplan::{clock, clouds, load};

use clap::Parser;

fn main() -> ExitCode {
    let cli = match commands::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap exits 2 on usage errors, but 2 means "changes present" under
            // --detailed-exitcode: a typo in a CI job must not read as drift.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { commands::EXIT_ERROR } else { commands::EXIT_OK });
        }
    };
    let mut out = output::Output::from_env();
    // Logs are coloured exactly when diagnostics are: both go to stderr.
    logging::init(out.fancy);
    let code = commands::exec(cli, &mut out);
    ExitCode::from(code)
}
