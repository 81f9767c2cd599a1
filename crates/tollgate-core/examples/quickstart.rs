//! Five requests against a limit of three per minute, on the memory store.
fn main() {}
