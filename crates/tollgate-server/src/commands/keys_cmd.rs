//! `tollgate keys …` and `tollgate usage KEY`: API keys over the admin API.

use std::process::ExitCode;

use hyper::Method;
use serde_json::{Map, Value, json};

use super::admin_client::{AdminClient, Remote, segment, with_query};
use super::table::{cell, field, render};

/// What `tollgate keys` does.
#[derive(clap::Subcommand, Debug)]
pub enum KeysCmd {
    /// Create a key; its secret is printed once.
    Create {
        /// A name for people.
        #[arg(long)]
        name: String,
        /// Who it belongs to; keys of one owner can share limits.
        #[arg(long)]
        owner: String,
        /// Its tier (the server's default, `free`, without it).
        #[arg(long)]
        tier: Option<String>,
        /// The environment in its prefix (`live`, `test`).
        #[arg(long)]
        env: Option<String>,
        /// When it stops working, in milliseconds since the Unix epoch.
        #[arg(long, value_name = "MS")]
        expires_at: Option<i64>,
        /// Free-form metadata, a JSON object.
        #[arg(long, value_name = "JSON")]
        metadata: Option<String>,
        /// Its own limits over its tier's, a JSON object.
        #[arg(long, value_name = "JSON")]
        overrides: Option<String>,
    },
    /// List keys, a page at a time.
    List {
        /// Only this owner's keys.
        #[arg(long)]
        owner: Option<String>,
        /// Only keys of this tier.
        #[arg(long)]
        tier: Option<String>,
        /// Only keys in this state (active, disabled, revoked).
        #[arg(long)]
        status: Option<String>,
        /// The page after this key id (the `next` of the page before).
        #[arg(long)]
        after: Option<String>,
        /// At most this many keys.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Show one key.
    Get {
        /// Its id (`key_…`).
        id: String,
    },
    /// Give a key a new secret, printed once; the old one works for the grace period.
    Rotate {
        /// Its id.
        id: String,
        /// How long the old secret keeps working (the server's default is one day).
        #[arg(long, value_name = "SECONDS")]
        grace_seconds: Option<u32>,
        /// The environment in the new secret's prefix.
        #[arg(long)]
        env: Option<String>,
    },
    /// Change a key: its name, tier, expiry, metadata or limits, or disable and enable it.
    Update {
        /// Its id.
        id: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// A new tier.
        #[arg(long)]
        tier: Option<String>,
        /// Stop it working until it is enabled again.
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Let a disabled key work again.
        #[arg(long)]
        enable: bool,
        /// When it stops working, in milliseconds since the Unix epoch.
        #[arg(long, value_name = "MS")]
        expires_at: Option<i64>,
        /// New metadata, a JSON object.
        #[arg(long, value_name = "JSON")]
        metadata: Option<String>,
        /// New limits over its tier's, a JSON object.
        #[arg(long, value_name = "JSON")]
        overrides: Option<String>,
    },
    /// Revoke a key for good.
    Revoke {
        /// Its id.
        id: String,
    },
}

/// A JSON option's text as a value, its option named in the error.
fn json_option(name: &str, text: Option<&str>) -> anyhow::Result<Option<Value>> {
    text.map(|t| serde_json::from_str(t).map_err(|e| anyhow::anyhow!("--{name} is not JSON: {e}")))
        .transpose()
}

/// Runs `tollgate keys …`.
pub fn run(remote: &Remote, cmd: KeysCmd) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(remote)?;
    match cmd {
        KeysCmd::Create {
            name,
            owner,
            tier,
            env,
            expires_at,
            metadata,
            overrides,
        } => {
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            body.insert("owner".into(), json!(owner));
            let optional = [
                ("tier", tier.map(Value::from)),
                ("env", env.map(Value::from)),
                ("expires_at", expires_at.map(Value::from)),
                ("metadata", json_option("metadata", metadata.as_deref())?),
                ("overrides", json_option("overrides", overrides.as_deref())?),
            ];
            for (k, v) in optional {
                if let Some(v) = v {
                    body.insert(k.into(), v);
                }
            }
            let v = client.send_json(Method::POST, "/v1/keys", &Value::Object(body))?;
            print_with_secret(remote, &v);
        }
        KeysCmd::List {
            owner,
            tier,
            status,
            after,
            limit,
        } => {
            let path = with_query(
                "/v1/keys",
                &[
                    ("owner", owner),
                    ("tier", tier),
                    ("status", status),
                    ("after", after),
                    ("limit", limit.map(|l| l.to_string())),
                ],
            );
            let v = client.get(&path)?;
            if remote.json {
                println!("{v}");
            } else {
                let keys = field(&v, "keys")
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                print!("{}", keys_table(keys));
                if let Some(next) = field(&v, "next").as_str() {
                    println!("more: --after {next}");
                }
            }
        }
        KeysCmd::Get { id } => {
            let v = client.get(&format!("/v1/keys/{}", segment(&id)))?;
            if remote.json {
                println!("{v}");
            } else {
                print!("{}", keys_table(std::slice::from_ref(&v)));
            }
        }
        KeysCmd::Rotate {
            id,
            grace_seconds,
            env,
        } => {
            let mut body = Map::new();
            if let Some(g) = grace_seconds {
                body.insert("grace_seconds".into(), json!(g));
            }
            if let Some(e) = env {
                body.insert("env".into(), json!(e));
            }
            let path = format!("/v1/keys/{}/rotate", segment(&id));
            let v = client.send_json(Method::POST, &path, &Value::Object(body))?;
            print_with_secret(remote, &v);
        }
        KeysCmd::Update {
            id,
            name,
            tier,
            disable,
            enable,
            expires_at,
            metadata,
            overrides,
        } => {
            let enabled = match (enable, disable) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            let fields = [
                ("name", name.map(Value::from)),
                ("tier", tier.map(Value::from)),
                ("enabled", enabled.map(Value::from)),
                ("expires_at", expires_at.map(Value::from)),
                ("metadata", json_option("metadata", metadata.as_deref())?),
                ("overrides", json_option("overrides", overrides.as_deref())?),
            ];
            let body: Map<String, Value> = fields
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
                .collect();
            if body.is_empty() {
                anyhow::bail!(
                    "nothing to change: name one of --name, --tier, --disable, --enable, --expires-at, --metadata, --overrides"
                );
            }
            let path = format!("/v1/keys/{}", segment(&id));
            let v = client.send_json(Method::PATCH, &path, &Value::Object(body))?;
            if remote.json {
                println!("{v}");
            } else {
                print!("{}", keys_table(std::slice::from_ref(&v)));
            }
        }
        KeysCmd::Revoke { id } => {
            client.delete(&format!("/v1/keys/{}", segment(&id)))?;
            if remote.json {
                println!("{}", json!({"revoked": id}));
            } else {
                println!("revoked {id}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A created or rotated key: its row, then the secret, which is not shown again.
fn print_with_secret(remote: &Remote, v: &Value) {
    if remote.json {
        println!("{v}");
        return;
    }
    print!("{}", keys_table(std::slice::from_ref(field(v, "key"))));
    println!("secret: {}", cell(field(v, "secret")));
    eprintln!("(the secret is shown only this once)");
}

/// Keys as a table, a row each.
fn keys_table(keys: &[Value]) -> String {
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            [
                "id",
                "name",
                "owner",
                "tier",
                "prefix",
                "status",
                "expires_at",
            ]
            .iter()
            .map(|f| cell(field(k, f)))
            .collect()
        })
        .collect();
    render(
        &[
            "ID",
            "NAME",
            "OWNER",
            "TIER",
            "PREFIX",
            "STATUS",
            "EXPIRES_AT",
        ],
        &rows,
    )
}

/// Runs `tollgate usage KEY`: the key's limits and what is left of each, read without
/// consuming any.
pub fn usage(remote: &Remote, id: &str) -> anyhow::Result<ExitCode> {
    let client = AdminClient::new(remote)?;
    let v = client.get(&format!("/v1/keys/{}/usage", segment(id)))?;
    if remote.json {
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "key {}  tier {}  owner {}",
        cell(field(&v, "key_id")),
        cell(field(&v, "tier")),
        cell(field(&v, "owner"))
    );
    let limits = field(&v, "limits")
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = limits
        .iter()
        .map(|l| {
            [
                "name",
                "algorithm",
                "limit",
                "used",
                "remaining",
                "reset_ms",
            ]
            .iter()
            .map(|f| cell(field(l, f)))
            .collect()
        })
        .collect();
    print!(
        "{}",
        render(
            &["LIMIT", "ALGORITHM", "OF", "USED", "REMAINING", "RESET_MS"],
            &rows
        )
    );
    Ok(ExitCode::SUCCESS)
}
