//! `tollgate config …`: the policy in force on a running server, and the reference of
//! every setting.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use hyper::Method;

use super::admin_client::{AdminClient, Remote, read_input};

/// What `tollgate config` does.
#[derive(clap::Subcommand, Debug)]
pub enum ConfigCmd {
    /// Print the policy in force (YAML; JSON with --json).
    Get,
    /// Replace the policy with a YAML or JSON file; a bad policy changes nothing and every
    /// error is printed with its path.
    Put {
        /// The file, or `-` for stdin.
        #[arg(default_value = "-")]
        file: PathBuf,
    },
    /// Validate a configuration file here, as `serve` would load it, without sending it
    /// (the server has no route that validates without applying).
    Check {
        /// The file.
        file: PathBuf,
    },
    /// Print the configuration reference (Markdown): every section and setting the file
    /// accepts, with its type, default, accepted values and meaning.
    Reference,
}

/// Runs `tollgate config …`.
pub fn run(remote: &Remote, cmd: ConfigCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ConfigCmd::Get => {
            let v = AdminClient::new(remote)?.get("/v1/config")?;
            if remote.json {
                println!("{v}");
            } else {
                print!(
                    "{}",
                    serde_saphyr::to_string(&v).context("writing the policy as YAML")?
                );
            }
        }
        ConfigCmd::Put { file } => {
            let doc = read_input(&file)?;
            let v = AdminClient::new(remote)?.send_document(Method::PUT, "/v1/config", doc)?;
            if remote.json {
                println!("{v}");
            } else {
                println!("policy replaced");
            }
        }
        ConfigCmd::Check { file } => return super::check_config::run(&file),
        ConfigCmd::Reference => print!("{}", crate::config::reference::markdown()),
    }
    Ok(ExitCode::SUCCESS)
}
