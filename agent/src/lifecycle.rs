//! Policies carried out on the files: rotation, compression, retention.
//!
//! The [`manager`] gathers facts about each container's files, asks
//! [`podlog_policy::plan`] what to do, and hands the actions to the
//! [`executor`], which records each step in the intent [`journal`] and
//! finishes or rolls back an interrupted one at start-up. [`reopen`] asks
//! the runtime to reopen a rotated log; [`naming`] picks rotated names;
//! [`fault`] holds the crash-test fault points.

pub mod executor;
pub mod fault;
pub mod journal;
pub mod manager;
pub mod naming;
pub mod reopen;

pub use executor::*;

pub use crate::node::inventory::Paused;
pub use fault::{Fault, FaultPoints, ENV as FAULT_ENV};
pub use reopen::{ReopenError, Reopener, RuntimeReopener};
