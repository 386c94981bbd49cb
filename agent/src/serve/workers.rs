//! The threads followers' steps (and, apart, their histories) run on: at
//! most a fixed number, started as they are needed and kept, whatever the
//! number of followers.
//!
//! tokio's blocking pool would do the work too, but it starts a thread
//! whenever none is idle at the instant a task is handed over, so steps
//! that follow each other closely (a write wakes every follower of a
//! container) grow it towards its maximum. Here a step waits in the queue
//! (bounded by `maxFollowers`: a follower has at most one step queued).
//!
//! Workers run at a lower priority ([`NICE`]): when the node's CPU is
//! short, followers fall behind (they lose nothing: the files hold what
//! they have not read yet) while plain reads, the API and the lifecycle
//! manager keep their pace.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use tokio::sync::oneshot;

use crate::telemetry;

type Job = Box<dyn FnOnce() + Send>;

/// The nice value of the workers' threads (Linux applies it per thread).
const NICE: i32 = 10;

/// Lowers the calling thread's priority to [`NICE`]; a failure leaves it
/// as it is.
#[allow(unsafe_code)]
fn lower_priority() {
    let tid = nix::unistd::gettid().as_raw();
    // SAFETY: setpriority takes no pointers; with PRIO_PROCESS and a
    // thread id it changes that thread's nice value only.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS as _, tid as libc::id_t, NICE) };
    if r != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "could not lower a worker's priority");
    }
}

/// See the module docs.
pub(crate) struct Workers {
    /// Names the threads, and the metrics' label.
    name: &'static str,
    tx: Mutex<mpsc::Sender<Job>>,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    max: usize,
    started: AtomicUsize,
    /// Workers waiting for a job.
    idle: Arc<AtomicUsize>,
}

impl Workers {
    pub(crate) fn new(name: &'static str, max: usize) -> Self {
        let (tx, rx) = mpsc::channel();
        Self {
            name,
            tx: Mutex::new(tx),
            rx: Arc::new(Mutex::new(rx)),
            max: max.max(1),
            started: AtomicUsize::new(0),
            idle: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Runs `f` on a worker; `None` when it panicked (the worker lives on).
    pub(crate) async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        self.submit(Box::new(move || {
            let _ = tx.send(f());
        }));
        rx.await.ok()
    }

    fn submit(&self, job: Job) {
        if self.idle.load(Ordering::Acquire) == 0 {
            self.start_one();
        }
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        telemetry::work_queued(self.name, 1);
        // The receiver lives as long as `self`.
        let _ = tx.send(job);
    }

    /// Starts one more worker, unless all are started (or the system
    /// refuses a thread: the jobs wait for the ones there are).
    fn start_one(&self) {
        let n = self.started.load(Ordering::Acquire);
        if n >= self.max
            || self
                .started
                .compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        telemetry::workers(self.name, 1);
        let rx = self.rx.clone();
        let idle = self.idle.clone();
        let name = self.name;
        let spawned = std::thread::Builder::new()
            .name(format!("podlogd-{}", self.name))
            .spawn(move || {
                lower_priority();
                loop {
                    idle.fetch_add(1, Ordering::AcqRel);
                    let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    idle.fetch_sub(1, Ordering::AcqRel);
                    let Ok(job) = job else { return };
                    telemetry::work_queued(name, -1);
                    // A panicking step ends its follower (its answer is never
                    // sent), not the worker.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            });
        if let Err(e) = spawned {
            self.started.fetch_sub(1, Ordering::AcqRel);
            telemetry::workers(self.name, -1);
            tracing::warn!(error = %e, workers = self.name, "could not start a worker");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_jobs_share_at_most_max_threads() {
        let w = Arc::new(Workers::new("test", 3));
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let w = w.clone();
            tasks.push(tokio::spawn(async move { w.run(move || i * 2).await }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap(), Some(i as u32 * 2));
        }
        let started = w.started.load(Ordering::Acquire);
        assert!(started <= 3, "{started} threads");
        // A panic ends its job only.
        assert_eq!(w.run(|| -> u32 { panic!("a step panics") }).await, None);
        assert_eq!(w.run(|| 7).await, Some(7));
    }
}
