//! The command line's subcommands, one module each.

pub mod check_config;
pub mod explain;
pub mod hash_token;
pub mod help;
pub mod import;
pub mod serve;
