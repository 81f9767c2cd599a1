//! Why a layer could not be built.

use thiserror::Error;
use tollgate_core::policy::matcher::CidrError;

/// Why [`Builder::build`](crate::Builder::build) refused its configuration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BuildError {
    /// An attribute name that subjects do not have.
    #[error("unknown attribute `{0}` (expected user, ip, method, path, tenant, key or attr.NAME)")]
    UnknownAttribute(String),
    /// A trusted proxy that is not an address or CIDR block.
    #[error("trusted proxy: {0}")]
    TrustedProxy(#[from] CidrError),
    /// A header name that is not one.
    #[error("`{0}` is not a header name")]
    HeaderName(String),
}
