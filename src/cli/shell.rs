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

/// `man [SUBCOMMAND]`.
#[derive(Args, Debug)]
pub(crate) struct ManArgs {
    /// Print the page of this subcommand (alga-batch-SUBCOMMAND(1)) instead of the main one.
    subcommand: Option<String>,
}

/// Print the man page asked for.
pub(crate) fn man(a: &ManArgs) -> Result<u8> {
    let main = Cli::command();
    let page = match &a.subcommand {
        None => clap_mangen::Man::new(main),
        Some(name) => {
            let sub = main.find_subcommand(name).cloned().ok_or_else(|| {
                Error::Usage(format!("no subcommand {name:?}: see alga-batch --help"))
            })?;
            // The page is named alga-batch-NAME; a command's name is 'static (printed once,
            // then the process ends).
            let full: &'static str = Box::leak(format!("alga-batch-{name}").into_boxed_str());
            clap_mangen::Man::new(sub.name(full).bin_name(format!("alga-batch {name}")))
        }
    };
    page.render(&mut std::io::stdout())
        .map_err(|e| Error::Fatal(format!("cannot write the man page: {e}")))?;
    Ok(EXIT_OK)
}
