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

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Containers whose rotation is paused, with the reason: shared by the
/// executor, which pauses and resumes, the manager, which plans no
/// rotation for them meanwhile, and the API, which shows the reason.
#[derive(Debug, Default)]
pub struct Paused(Mutex<BTreeMap<(String, String), String>>);

impl Paused {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), String>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Pauses the rotation of `[pod directory, container]`; true if it was
    /// not paused yet.
    pub(crate) fn pause(&self, dir: &[&str], reason: String) -> bool {
        let key = (dir[0].to_owned(), dir[1].to_owned());
        self.map().insert(key, reason).is_none()
    }

    pub(crate) fn resume(&self, dir: &[&str]) -> bool {
        self.map()
            .remove(&(dir[0].to_owned(), dir[1].to_owned()))
            .is_some()
    }

    /// Why the rotation of `container` in `pod_dir` is paused, if it is.
    pub(crate) fn reason(&self, pod_dir: &str, container: &str) -> Option<String> {
        self.map()
            .get(&(pod_dir.to_owned(), container.to_owned()))
            .cloned()
    }
}
pub use fault::{Fault, FaultPoints, ENV as FAULT_ENV};
pub use reopen::{ReopenError, Reopener, RuntimeReopener};
