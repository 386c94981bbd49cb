//! The node: what runs on it and what is on its disk.
//!
//! [`runtime`] keeps a snapshot of the container runtime's pods and
//! containers over CRI; [`discovery`] watches the log root with inotify and
//! tells readers and the lifecycle manager what changed; [`inventory`]
//! joins both into the pod/container view that `serve` and `lifecycle`
//! work from. Nothing here reads log content beyond a file's first and last
//! line.

pub mod discovery;
pub mod inventory;
pub mod runtime;
