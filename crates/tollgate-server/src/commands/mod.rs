//! The command line's subcommands, one module each.

pub mod admin_client;
pub mod check_config;
pub mod config_cmd;
pub mod dead_letters_cmd;
pub mod explain;
pub mod hash_token;
pub mod help;
pub mod histogram;
pub mod import;
pub mod keys_cmd;
pub mod loadtest;
pub mod serve;
pub mod table;
pub mod tiers_cmd;
