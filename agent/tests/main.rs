//! podlogd's integration tests, one binary (one link on small machines).
//!
//! Most modules start `podlogd` on a temporary log tree and speak HTTP or
//! gRPC to it (see `common`); `common::fake_cri` stands in for the
//! container runtime.

mod common;

mod access;
mod cli;
mod compressed;
mod connections;
mod cursor;
mod cursor_compat;
mod delimiter;
mod errors;
mod follow;
mod grpc;
mod inventory;
mod lifecycle;
mod lifecycle_kill;
mod lifecycle_writer;
mod merged;
mod metrics;
mod notify;
mod params;
mod reads_stop;
mod runtime_fake;
mod safe_write;
mod security;
mod signals;
mod supervision;
mod watch;
