//! `alga-batch completions SHELL` (clap_complete) and `alga-batch man` (clap_mangen): both
//! write to stdout.

use super::Cli;
use crate::error::{Error, Result, EXIT_OK};
use clap::{Args, CommandFactory};

/// `completions SHELL`.
#[derive(Args, Debug)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    shell: clap_complete::Shell,
}

/// Print the completion script for the shell asked for.
pub(crate) fn completions(a: &CompletionsArgs) -> Result<u8> {
    let mut cmd = Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "alga-batch", &mut std::io::stdout());
    Ok(EXIT_OK)
}

/// Print the man page.
pub(crate) fn man() -> Result<u8> {
    clap_mangen::Man::new(Cli::command())
        .render(&mut std::io::stdout())
        .map_err(|e| Error::Fatal(format!("cannot write the man page: {e}")))?;
    Ok(EXIT_OK)
}
