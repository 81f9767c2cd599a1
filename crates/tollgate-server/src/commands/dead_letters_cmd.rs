//! `tollgate dead-letters …`: the reverse proxy's dead letters over the admin API.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::admin_client::{AdminClient, Remote, with_query};
use super::table::{cell, field, render};

/// What `tollgate dead-letters` does.
#[derive(clap::Subcommand, Debug)]
pub enum DeadLettersCmd {
    /// List dead letters, newest first, a page at a time.
    List {
        /// Only those of this route (`/v1`, `api.example.com/v1`).
        #[arg(long)]
        route: Option<String>,
        /// The page after this id (the `next` of the page before).
        #[arg(long)]
        before: Option<i64>,
        /// At most this many.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Show one, with its headers and body.
    Get {
        /// Its id.
        id: i64,
    },
    /// Send one again through the proxy now: removed when delivered, kept (and the
    /// command exits with 3) when the upstream fails again.
    Replay {
        /// Its id.
        id: i64,
    },
    /// Remove one without sending it.
    Discard {
        /// Its id.
        id: i64,
    },
}

/// Runs `tollgate dead-letters …`.
pub fn run(remote: &Remote, cmd: DeadLettersCmd) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(remote)?;
    match cmd {
        DeadLettersCmd::List {
            route,
            before,
            limit,
        } => {
            let path = with_query(
                "/v1/dead-letters",
                &[
                    ("route", route),
                    ("before", before.map(|b| b.to_string())),
                    ("limit", limit.map(|l| l.to_string())),
                ],
            );
            let v = client.get(&path)?;
            if remote.json {
                println!("{v}");
                return Ok(ExitCode::SUCCESS);
            }
            let letters = field(&v, "dead_letters")
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            print!("{}", table(letters));
            if let Some(next) = field(&v, "next").as_i64() {
                println!("more: --before {next}");
            }
        }
        DeadLettersCmd::Get { id } => {
            let v = client.get(&format!("/v1/dead-letters/{id}"))?;
            if remote.json {
                println!("{v}");
                return Ok(ExitCode::SUCCESS);
            }
            print!("{}", table(std::slice::from_ref(&v)));
            println!("last failure: {}", cell(field(&v, "last_failure")));
            for h in field(&v, "headers").as_array().into_iter().flatten() {
                println!("{}: {}", cell(field(h, "name")), cell(field(h, "value")));
            }
            match field(&v, "body_text").as_str() {
                Some(text) => println!("\n{text}"),
                None => println!(
                    "\n(body not text; base64) {}",
                    cell(field(&v, "body_base64"))
                ),
            }
        }
        DeadLettersCmd::Replay { id } => {
            let v = client.send_json(
                hyper::Method::POST,
                &format!("/v1/dead-letters/{id}/replay"),
                &json!({}),
            )?;
            let delivered = field(&v, "delivered").as_bool() == Some(true);
            if remote.json {
                println!("{v}");
            } else if delivered {
                println!(
                    "delivered: {} from {}",
                    cell(field(&v, "status")),
                    cell(field(&v, "upstream"))
                );
            } else {
                println!(
                    "not delivered ({}): {}; kept",
                    cell(field(&v, "status")),
                    cell(field(&v, "failure"))
                );
            }
            if !delivered {
                // The replay was made and answered, but the request is still undelivered,
                // which scripts want to tell from both success and a refused command.
                return Ok(ExitCode::from(3));
            }
        }
        DeadLettersCmd::Discard { id } => {
            client.delete(&format!("/v1/dead-letters/{id}"))?;
            if remote.json {
                println!("{}", json!({"discarded": id}));
            } else {
                println!("discarded {id}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Dead letters as a table, a row each.
fn table(letters: &[Value]) -> String {
    let rows: Vec<Vec<String>> = letters
        .iter()
        .map(|d| {
            [
                "id",
                "method",
                "url",
                "route",
                "upstream",
                "tries",
                "replays",
                "body_size",
            ]
            .iter()
            .map(|f| cell(field(d, f)))
            .collect()
        })
        .collect();
    render(
        &[
            "ID", "METHOD", "URL", "ROUTE", "UPSTREAM", "TRIES", "REPLAYS", "BYTES",
        ],
        &rows,
    )
}
