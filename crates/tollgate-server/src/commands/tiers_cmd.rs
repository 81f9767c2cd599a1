//! `tollgate tiers …`: the policy's tiers over the admin API.

use std::path::PathBuf;
use std::process::ExitCode;

use hyper::Method;

use super::admin_client::{AdminClient, Remote, read_input, segment};
use super::table::{cell, field, render};

/// What `tollgate tiers` does.
#[derive(clap::Subcommand, Debug)]
pub enum TiersCmd {
    /// List the tiers and their limits.
    List,
    /// Create or replace a tier from a YAML or JSON file (`{limits: [...]}`).
    Put {
        /// The tier's name.
        name: String,
        /// The file, or `-` for stdin.
        #[arg(default_value = "-")]
        file: PathBuf,
    },
}

/// Runs `tollgate tiers …`.
pub fn run(remote: &Remote, cmd: TiersCmd) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(remote)?;
    match cmd {
        TiersCmd::List => {
            let v = client.get("/v1/tiers")?;
            if remote.json {
                println!("{v}");
                return Ok(ExitCode::SUCCESS);
            }
            let mut rows = Vec::new();
            for (name, spec) in field(&v, "tiers").as_object().into_iter().flatten() {
                let limits = field(spec, "limits")
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let names: Vec<String> = limits.iter().map(|l| cell(field(l, "name"))).collect();
                rows.push(vec![
                    name.clone(),
                    limits.len().to_string(),
                    if names.is_empty() {
                        "-".into()
                    } else {
                        names.join(", ")
                    },
                ]);
            }
            print!("{}", render(&["TIER", "LIMITS", "NAMES"], &rows));
        }
        TiersCmd::Put { name, file } => {
            let doc = read_input(&file)?;
            let path = format!("/v1/tiers/{}", segment(&name));
            let v = client.send_document(Method::PUT, &path, doc)?;
            if remote.json {
                println!("{v}");
            } else {
                println!("tier {name} saved");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
