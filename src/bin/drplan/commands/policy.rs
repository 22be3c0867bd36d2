//! `drplan policy test DIR...`: runs the `test_*` rules of the Rego policies under each DIR
//! (OPA's convention), so a team can unit-test its rules in CI. Exit 0 when every test
//! passes, 1 when one fails, none is found, or a policy does not compile.

use std::path::PathBuf;

use drplan_core::{Code, Diagnostic};

use super::{EXIT_ERROR, EXIT_OK};
use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Run the `test_*` rules of the policies under DIR (repeatable): PASS or FAIL each.
    Test {
        /// Directories of `*.rego` files (policies and their tests), searched recursively.
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
    },
}

pub fn exec(args: Args, out: &mut Output) -> u8 {
    let Sub::Test { dirs } = args.command;
    let mut policies = match drplan::policy::load(&dirs) {
        Ok(p) => p,
        Err(failed) => {
            out.diagnostics(&failed.sources, &failed.diagnostics);
            return EXIT_ERROR;
        }
    };
    let results = policies.test();
    if results.is_empty() {
        return out.report(
            &[],
            Diagnostic::error(Code::PolicyTestFailed, "no tests found").help(
                "name test rules `test_*` (e.g. `test_denies_a_small_standby if { ... }`), at the start of a line",
            ),
        );
    }
    let failed = results.iter().filter(|r| r.outcome.is_err()).count();
    for r in &results {
        match &r.outcome {
            Ok(()) => out.line(&format!("PASS {}: {}", r.file, r.rule)),
            Err(why) => out.line(&format!("FAIL {}: {}: {why}", r.file, r.rule)),
        }
    }
    out.line(&format!("{} test(s): {} passed, {failed} failed.", results.len(), results.len() - failed));
    if failed == 0 { EXIT_OK } else { EXIT_ERROR }
}
