//! Policies: rules parsed from YAML, validated with every error's path, compiled into an
//! index.

pub mod matcher;
pub mod rule;
pub mod template;

pub use rule::{FailPolicy, Rule};
