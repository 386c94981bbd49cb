//! Asking the runtime to reopen a container's log after a rotation
//! (`ReopenContainerLog`), behind a small synchronous trait so that the
//! executor's tests use a fake runtime.

use std::sync::Arc;

use crate::node::runtime::Runtime;

/// Asks the container runtime to reopen a container's log file: it closes
/// the file it writes (now renamed) and opens (creating) `N.log` again.
pub trait Reopener {
    /// Reopens the log of `container_id`.
    ///
    /// # Errors
    ///
    /// [`ReopenError::Refused`] when the runtime answered and did not
    /// reopen (the container is not running, is unknown, …): the rotation
    /// is undone. [`ReopenError::Unavailable`] when the runtime could not
    /// be asked, or did not answer in time (it may or may not have
    /// reopened): the rotation stays pending and recovery asks again.
    fn reopen(&self, container_id: &str) -> Result<(), ReopenError>;

    /// Whether the runtime can be asked now. A rotation is not begun while
    /// it cannot: the renamed file would be written on until the runtime
    /// is back and reopens the log, longer than a tailer's `rotate_wait`.
    fn connected(&self) -> bool {
        true
    }
}

/// Why the runtime did not reopen a log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReopenError {
    /// The runtime answered and refused.
    #[error("the runtime refused to reopen the log of container {container_id}: {reason}")]
    Refused {
        container_id: String,
        /// The runtime's answer (`code: message`).
        reason: String,
    },
    /// The runtime could not be asked or did not answer in time.
    #[error(
        "the runtime could not be asked to reopen the log of container {container_id}: {reason}"
    )]
    Unavailable {
        container_id: String,
        /// What went wrong (`code: message`).
        reason: String,
    },
}

/// Maps a CRI call's status to a [`ReopenError`]. Transport failures,
/// timeouts, cancellation and overload are [`ReopenError::Unavailable`]
/// (the call may not have reached the runtime, or may have succeeded
/// without an answer); every other answer is [`ReopenError::Refused`].
/// containerd and CRI-O answer `Unknown` ("container is not running") for a
/// stopped container, and `NotFound` for a removed one.
pub(crate) fn reopen_error(container_id: &str, status: &tonic::Status) -> ReopenError {
    use tonic::Code;
    let reason = format!("{:?}: {}", status.code(), status.message());
    let container_id = container_id.to_owned();
    match status.code() {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Cancelled
        | Code::ResourceExhausted
        | Code::Aborted => ReopenError::Unavailable {
            container_id,
            reason,
        },
        _ => ReopenError::Refused {
            container_id,
            reason,
        },
    }
}

/// The real runtime as a [`Reopener`]: [`Runtime::reopen_container_log`]
/// run to completion on a tokio runtime.
///
/// [`Reopener::reopen`] blocks the calling thread on the tokio handle for
/// up to the CRI call timeout, so it must be called from a blocking thread
/// (`tokio::task::spawn_blocking`, or a thread of its own), never from an
/// async task: `Handle::block_on` panics inside an async execution context,
/// and would stall a worker thread if it did not.
#[derive(Clone)]
pub struct RuntimeReopener {
    runtime: Arc<Runtime>,
    handle: tokio::runtime::Handle,
}

// === impl RuntimeReopener ===

impl RuntimeReopener {
    /// Calls `runtime` on the tokio runtime of `handle`.
    pub fn new(runtime: Arc<Runtime>, handle: tokio::runtime::Handle) -> Self {
        Self { runtime, handle }
    }
}

impl std::fmt::Debug for RuntimeReopener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeReopener")
            .field("endpoint", &self.runtime.endpoint())
            .finish_non_exhaustive()
    }
}

impl Reopener for RuntimeReopener {
    fn reopen(&self, container_id: &str) -> Result<(), ReopenError> {
        self.handle
            .block_on(self.runtime.reopen_container_log(container_id))
            .map_err(|s| reopen_error(container_id, &s))
    }

    fn connected(&self) -> bool {
        self.runtime.status().connected
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::{Code, Status};

    #[test]
    fn statuses_map_to_refused_or_unavailable() {
        let unavailable = [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Cancelled,
            Code::ResourceExhausted,
            Code::Aborted,
        ];
        let refused = [
            Code::Unknown,
            Code::NotFound,
            Code::FailedPrecondition,
            Code::InvalidArgument,
            Code::Internal,
            Code::Unimplemented,
            Code::PermissionDenied,
        ];
        for code in unavailable {
            let e = reopen_error("c1", &Status::new(code, "x"));
            assert!(matches!(e, ReopenError::Unavailable { .. }), "{code:?}");
        }
        for code in refused {
            let e = reopen_error("c1", &Status::new(code, "container is not running"));
            assert_eq!(
                e,
                ReopenError::Refused {
                    container_id: "c1".into(),
                    reason: format!("{code:?}: container is not running"),
                }
            );
        }
    }

    #[test]
    fn a_disconnected_runtime_is_unavailable() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let runtime = Runtime::new("/nonexistent/cri.sock".into());
        let reopener = RuntimeReopener::new(runtime, rt.handle().clone());
        let task = rt.spawn_blocking(move || reopener.reopen("c1"));
        let r = rt.block_on(task).unwrap();
        let Err(ReopenError::Unavailable {
            container_id,
            reason,
        }) = r
        else {
            panic!("{r:?}");
        };
        assert_eq!(container_id, "c1");
        assert!(reason.contains("not connected"), "{reason}");
    }
}
