//! The log root and everything podlogd knows of a file.
//!
//! [`safe_open`] is the one way to a file: every open, rename, create,
//! truncate and delete beneath a configured root goes through it, and it
//! holds the crate's only `unsafe` code. [`fileset`] names and groups a
//! container's files (`N.log`, `N.log.<ts>`, compressed forms), opens them
//! for reading and fingerprints them. Nothing here parses events or knows
//! about pods: that is for `event`, `read` and `node`.

pub mod fileset;
// The crate's only `unsafe`: `openat2`, `renameat2`, leases and `SIGIO`.
#[allow(unsafe_code)]
pub mod safe_open;
