//! The `debug` section: whether the debugging routes are served.

use serde_json::{Map, Value};
use tollgate_core::policy::parse::{Errors, check_fields, get_bool};
use tollgate_core::policy::settings::Setting;

/// The fields of `debug`.
pub(crate) const FIELDS: &[Setting] = &[Setting::new(
    "enabled",
    "boolean",
    "Serves `/v1/debug/*` (a CPU profile, the runtime, the configuration with secrets hidden) to the admin role.",
)
.default("`false`")];

/// Reads the `debug` section: whether the debugging routes are on.
pub fn parse(m: &Map<String, Value>, errs: &mut Errors) -> bool {
    check_fields(m, "debug", FIELDS, errs);
    get_bool(m, "enabled", "debug", errs).unwrap_or(false)
}
