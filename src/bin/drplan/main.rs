//! The `drplan` binary: command-line parsing and dispatch. Everything it does is in the
//! command modules; everything they compute comes from the workspace crates.

mod commands;
mod logging;
mod output;
mod progress;
mod render;

use std::process::ExitCode;

// The engine's modules, under the names the command modules use.
use drplan::{clock, load};

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
    logging::init(&mut out);
    let code = commands::exec(cli, &mut out);
    if output::stdout_lost() {
        out.note("drplan: stdout was closed before all output was written; the command ran to its end (what an apply did is recorded in state)");
        if code == commands::EXIT_OK || code == commands::EXIT_CHANGES {
            return ExitCode::from(commands::EXIT_ERROR);
        }
    }
    ExitCode::from(code)
}
