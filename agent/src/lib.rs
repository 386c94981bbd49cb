//! podlogd: the podlog node logging agent.
//!
//! It reads the container runtime's CRI log files beneath a log root,
//! assembles whole events, and serves them over HTTP and gRPC (see
//! `docs/api.md`); with a runtime and a state directory it also rotates,
//! compresses and retains those files by policy. `docs/ARCHITECTURE.md`
//! maps the modules.
//!
//! The binary needs [`app`] and [`config`]; the CRI line format ([`cri`])
//! is public for the end-to-end suite; [`testing`] re-exports the few inner
//! types the integration tests and benchmarks drive directly. Everything
//! else is private to the crate.

// The safe-open layer (`fs::safe_open`) is the one place allowed `unsafe`.
#![deny(unsafe_code)]
// The few public items document how they relate to the private modules
// behind them; those links are for the crate's developers
// (`cargo doc --document-private-items`).
#![allow(rustdoc::private_intra_doc_links)]

pub mod app;
pub mod auth;
pub mod config;
pub mod cri;
pub mod fuzzing;
pub mod notify;
#[doc(hidden)]
pub mod testing;

mod cursor;
mod event;
mod fs;
mod grpc;
mod http;
mod lifecycle;
mod node;
mod read;
mod render;
mod serve;
mod telemetry;

pub use app::{init_logging, run, run_reloadable, Listening};
pub use config::Config;
