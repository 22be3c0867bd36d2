//! `drplan completions SHELL`: the shell's completion script on stdout, made from the same
//! clap definition that parses the command line, so it never falls behind a new option.

use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, EXIT_OK};
use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    shell: CompletionShell,
}

/// The shells `clap_complete` writes for; elvish is left out as nobody asked for it.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

pub fn exec(args: Args, out: &mut Output) -> u8 {
    out.raw(&script(args.shell));
    EXIT_OK
}

fn script(shell: CompletionShell) -> String {
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
        CompletionShell::Powershell => Shell::PowerShell,
    };
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "drplan", &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}
