//! `tollgate completions SHELL` and `tollgate man`: what the shell and `man` know of the
//! command line, generated from its definition so they never drift from it.

use std::process::ExitCode;

use anyhow::Context;
use clap_complete::Shell;

/// Prints the completion script of `cli` for `shell`.
pub fn completions(mut cli: clap::Command, shell: Shell) -> anyhow::Result<ExitCode> {
    let name = cli.get_name().to_owned();
    clap_complete::generate(shell, &mut cli, name, &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// Prints the manual page of `cli`, or of its subcommand `name` (titled `tollgate-NAME`).
pub fn man(cli: clap::Command, name: Option<&str>) -> anyhow::Result<ExitCode> {
    let page = match name {
        None => cli,
        Some(name) => {
            let Some(sub) = cli.find_subcommand(name) else {
                let names: Vec<&str> = cli.get_subcommands().map(clap::Command::get_name).collect();
                anyhow::bail!("no subcommand {name:?} (subcommands: {})", names.join(", "));
            };
            sub.clone().name(format!("{}-{name}", cli.get_name()))
        }
    };
    clap_mangen::Man::new(page)
        .render(&mut std::io::stdout().lock())
        .context("writing the manual page")?;
    Ok(ExitCode::SUCCESS)
}
