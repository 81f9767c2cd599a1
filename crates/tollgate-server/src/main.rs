//! `tollgate`: the rate-limiting server.
#![recursion_limit = "256"]

mod alerts;
mod app;
mod auth;
mod background;
mod billing;
mod commands;
mod config;
mod debug;
mod grpc;
mod http;
mod listen;
mod oidc;
mod proxy;
mod reload;
mod slo;
mod store;
mod telemetry;
mod workers;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use commands::serve::LogFormat;

// Decisions allocate small, short-lived buffers; mimalloc keeps that off the profile. It
// is built without its advice for transparent huge pages (`no_thp`), under which each
// thread's first allocation brought in a whole huge page, and a fresh server held
// far more memory. The counter tables, which gain from huge pages, advise their own
// mappings.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tollgate",
    version,
    about = "Rate limiting and API keys, in microseconds"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (on the embedded default without --config).
    Serve {
        /// The configuration file (watched and reloaded on change).
        #[arg(long, short, env = "TOLLGATE_CONFIG")]
        config: Option<PathBuf>,
        /// Log format.
        #[arg(long, value_enum, default_value = "text", env = "TOLLGATE_LOG_FORMAT")]
        log_format: LogFormat,
        /// Dev mode: API keys without a configured secret (one is generated and kept in
        /// `.tollgate-dev-secret`), and a database for the embedded default.
        #[arg(long, env = "TOLLGATE_DEV", value_parser = clap::builder::FalseyValueParser::new())]
        dev: bool,
    },
    /// Validate a configuration file and print every error with its path.
    CheckConfig {
        /// The file.
        file: PathBuf,
    },
    /// Show which rules match a subject, their keys and what a request would get.
    Explain {
        /// The configuration file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// An attribute, as NAME=VALUE (user, ip, method, path, tenant, key, attr.NAME).
        #[arg(long = "subject", short = 's', value_name = "NAME=VALUE")]
        subject: Vec<String>,
        /// Units the request would cost.
        #[arg(long, default_value_t = 1)]
        cost: u64,
        /// As if made with a key of this tier: its limits apply too.
        #[arg(long)]
        tier: Option<String>,
    },
    /// Convert other tools' configurations into Tollgate's.
    #[command(subcommand)]
    Import(Import),
    /// Manage API keys on a running server (admin API).
    Keys {
        #[command(flatten)]
        remote: commands::admin_client::Remote,
        #[command(subcommand)]
        command: commands::keys_cmd::KeysCmd,
    },
    /// Show a key's limits and what is left of each on a running server.
    Usage {
        #[command(flatten)]
        remote: commands::admin_client::Remote,
        /// The key's id (`key_…`).
        key: String,
    },
    /// List or replace tiers on a running server.
    Tiers {
        #[command(flatten)]
        remote: commands::admin_client::Remote,
        #[command(subcommand)]
        command: commands::tiers_cmd::TiersCmd,
    },
    /// List, show, replay or discard the reverse proxy's dead letters on a running server.
    DeadLetters {
        #[command(flatten)]
        remote: commands::admin_client::Remote,
        #[command(subcommand)]
        command: commands::dead_letters_cmd::DeadLettersCmd,
    },
    /// Read or replace the policy of a running server, validate a file, or print the
    /// configuration reference.
    Config {
        #[command(flatten)]
        remote: commands::admin_client::Remote,
        #[command(subcommand)]
        command: commands::config_cmd::ConfigCmd,
    },
    /// Send requests at a fixed rate (open loop) and print the status counts and the
    /// latency percentiles, measured from each request's scheduled send time.
    Loadtest(commands::loadtest::LoadArgs),
    /// Prints the SHA-256 of an admin token read from stdin, for `admin.tokens[].sha256`.
    HashToken,
    /// Prints the OpenAPI 3.1 description of the HTTP API (as `GET /openapi.json` serves
    /// it), e.g. `tollgate openapi > docs/openapi.json`.
    Openapi,
    /// Prints a completion script for a shell (e.g. `tollgate completions bash >
    /// /etc/bash_completion.d/tollgate`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Prints the manual page (roff), e.g. `tollgate man > /usr/share/man/man1/tollgate.1`,
    /// or a subcommand's (`tollgate man serve > …/tollgate-serve.1`).
    Man {
        /// The subcommand.
        command: Option<String>,
    },
}

#[derive(Subcommand)]
enum Import {
    /// envoyproxy/ratelimit configuration files (each a `domain` and its `descriptors`)
    /// into an `envoy:` section, printed on stdout.
    Envoy {
        /// The files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            config,
            log_format,
            dev,
        } => {
            if dev {
                config::set_dev_mode();
            }
            commands::serve::run(config, log_format)
        }
        Command::CheckConfig { file } => commands::check_config::run(&file),
        Command::Explain {
            config,
            subject,
            cost,
            tier,
        } => commands::explain::run(config, &subject, cost, tier.as_deref()),
        Command::Import(Import::Envoy { files }) => commands::import::envoy(&files),
        Command::Keys { remote, command } => commands::keys_cmd::run(&remote, command),
        Command::Usage { remote, key } => commands::keys_cmd::usage(&remote, &key),
        Command::Tiers { remote, command } => commands::tiers_cmd::run(&remote, command),
        Command::DeadLetters { remote, command } => {
            commands::dead_letters_cmd::run(&remote, command)
        }
        Command::Config { remote, command } => commands::config_cmd::run(&remote, command),
        Command::Loadtest(args) => commands::loadtest::run(&args),
        Command::HashToken => commands::hash_token::run(),
        Command::Openapi => {
            print!("{}", http::openapi::json());
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => commands::help::completions(Cli::command(), shell),
        Command::Man { command } => commands::help::man(Cli::command(), command.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tollgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}
