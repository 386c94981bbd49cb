//! podlogd: the podlog node logging agent.
//!
//! It reads the container runtime's CRI log files beneath a log root,
//! assembles whole events, and serves them over HTTP and gRPC (see
//! `docs/api.md`). `docs/ARCHITECTURE.md` maps the modules.

pub mod app;
pub mod config;
pub mod cri;
pub mod cursor;
pub mod event;
pub mod fs;
pub mod grpc;
pub mod lifecycle;
pub mod node;
pub mod read;
pub mod render;
pub mod serve;
pub mod telemetry;

pub use app::{run, Listening};
pub use config::Config;
