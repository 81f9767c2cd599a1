//! Debugging a running server: a CPU profile, the process's memory and runtime, and the
//! configuration in force with its secrets hidden. Off unless the `debug` section turns
//! it on; the routes need the admin role.

pub mod allocator;
pub mod pprof_proto;
pub mod profile;
pub mod redact;
pub mod runtime;
