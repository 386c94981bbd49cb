//! A reader for a resolved read: its history on a thread, then, when it
//! follows, its steps on the follow workers while it waits without one;
//! and the sink that hands its output to the client's channel (waiting
//! for room in a history, queueing in a step).

use super::*;

/// How a reader hands its output to the consumer of its channel.
pub(crate) struct Handing<T> {
    /// The channel item for a chunk or an event (with its time).
    pub(crate) item: fn(Option<Nanos>, Bytes) -> T,
    /// A consumer that takes nothing for this long is ended (see
    /// [`send_within`]); `None`: it is waited for (a merge, whose own
    /// client has the stall).
    pub(crate) stall: Option<std::time::Duration>,
    /// Counted as served in this format.
    pub(crate) served: Option<&'static str>,
}

/// Output a follow step could not hand over at once, sent by the follow
/// loop before the next step. A step stops at its budget
/// (`read::follow::STEP_BYTES` read or handed over), so this holds at
/// most that and one event.
struct Queued<T> {
    items: std::collections::VecDeque<T>,
    /// A follow step runs: a full channel queues, it is not waited for.
    stepping: bool,
}

/// The reader's end of its channel (see [`Handing`]). A historic read
/// runs on a thread of its own and waits for room; a follow step never
/// waits for a slow consumer but queues (see [`Queued`]), so a client that
/// does not read holds its queue, never a worker.
struct ReaderSink<T> {
    tx: mpsc::Sender<T>,
    how: Handing<T>,
    queue: Arc<std::sync::Mutex<Queued<T>>>,
    handle: tokio::runtime::Handle,
}

impl<T: Send> ReaderSink<T> {
    fn put(&mut self, time: Option<Nanos>, chunk: Bytes) -> bool {
        let n = chunk.len();
        let item = (self.how.item)(time, chunk);
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let ok = if !q.stepping {
            self.send_blocking(item)
        } else if q.items.is_empty() {
            match self.tx.try_send(item) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Closed(_)) => false,
                Err(mpsc::error::TrySendError::Full(item)) => {
                    q.items.push_back(item);
                    true
                }
            }
        } else {
            q.items.push_back(item);
            true
        };
        if ok {
            if let Some(format) = self.how.served {
                telemetry::served(format, n as u64);
            }
        }
        ok
    }

    fn send_blocking(&self, item: T) -> bool {
        match self.how.stall {
            Some(stall) => send_within(&self.tx, item, stall, &self.handle),
            None => self.tx.blocking_send(item).is_ok(),
        }
    }
}

impl<T: Send> Sink for ReaderSink<T> {
    fn send(&mut self, chunk: Bytes) -> bool {
        self.put(None, chunk)
    }

    fn send_event(&mut self, time: Option<Nanos>, event: Bytes) -> bool {
        self.put(time, event)
    }

    fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Sends what the last follow step queued; false when the consumer is
/// gone or stalled.
async fn send_queued<T>(
    queue: &std::sync::Mutex<Queued<T>>,
    tx: &mpsc::Sender<T>,
    stall: Option<std::time::Duration>,
) -> bool {
    let items = std::mem::take(&mut queue.lock().unwrap_or_else(|e| e.into_inner()).items);
    for item in items {
        let ok = match stall {
            Some(stall) => send_or_end(tx, item, stall).await,
            None => tx.send(item).await.is_ok(),
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Waits, without a thread, for something to happen to a followed
/// container directory; says stop when the consumer of `tx` is gone or
/// the agent shuts down.
struct DirWaiter<T> {
    rx: watch::Receiver<DirSeq>,
    seen: DirSeq,
    tx: mpsc::Sender<T>,
    /// Sent before each wait: the reader has caught up (merged reads).
    idle: Option<T>,
    /// The runtime's snapshot and the followed container: when it has
    /// exited (or is gone), the attempt is marked finished and the reader
    /// woken to end the follow, as `kubectl logs -f` does.
    exit: Option<ExitWatch>,
    cancel: CancellationToken,
}

/// See [`DirWaiter::exit`].
struct ExitWatch {
    runtime: Arc<crate::node::runtime::Runtime>,
    changes: watch::Receiver<u64>,
    container_id: String,
    finished: Arc<AtomicBool>,
}

impl ExitWatch {
    /// True once the container is exited or gone from the snapshot.
    fn exited(&self) -> bool {
        self.runtime
            .container(&self.container_id)
            .is_none_or(|c| c.state == ContainerState::Exited)
    }
}

/// What woke a [`DirWaiter`].
enum Woken {
    Timeout,
    Dir,
    Runtime,
    Stop,
}

impl<T: Clone + Send> DirWaiter<T> {
    async fn wait_for(&mut self, timeout: Option<std::time::Duration>) -> Wake {
        if let Some(m) = &self.idle {
            if self.tx.send(m.clone()).await.is_err() {
                return Wake::Stop;
            }
        }
        let timer = async {
            match timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(timer);
        loop {
            let rt_changed = async {
                match &mut self.exit {
                    Some(x) if !x.finished.load(Ordering::Acquire) => {
                        x.changes.changed().await.is_ok()
                    }
                    _ => std::future::pending().await,
                }
            };
            let woken = tokio::select! {
                () = &mut timer => Woken::Timeout,
                r = self.rx.changed() => if r.is_ok() { Woken::Dir } else { Woken::Stop },
                r = rt_changed => if r { Woken::Runtime } else { Woken::Stop },
                _ = self.tx.closed() => Woken::Stop,
                _ = self.cancel.cancelled() => Woken::Stop,
            };
            match woken {
                Woken::Stop => return Wake::Stop,
                Woken::Timeout => return Wake::Timeout,
                Woken::Dir => break,
                Woken::Runtime => {
                    let x = self.exit.as_ref().expect("only a runtime watch wakes so");
                    if x.exited() {
                        x.finished.store(true, Ordering::Release);
                        return Wake::Changed;
                    }
                }
            }
        }
        let now = *self.rx.borrow_and_update();
        let wake = if now.changed != self.seen.changed {
            Wake::Changed
        } else {
            Wake::Modified
        };
        self.seen = now;
        wake
    }
}

/// Starts a reader for `plan`; resolves once its files are open (or with
/// the reason they cannot be). The history is read on a blocking thread
/// (a follower's on one of the [`ApiState::history_work`]ers); a follower
/// then waits without one and runs each step on one of the
/// [`ApiState::follow_work`]ers. `idle`, when
/// given, is sent on `tx` each time a follower has caught up. `slot`, the
/// request's place under `maxReads` or `maxFollowers`, is held until the
/// reader ends (a merged read holds one for all its readers).
pub(crate) async fn spawn_reader<T>(
    state: &ApiState,
    plan: Plan,
    how: Handing<T>,
    tx: mpsc::Sender<T>,
    idle: Option<T>,
    slot: Option<ReadSlot>,
) -> Result<(), ServeError>
where
    T: Clone + Send + 'static,
{
    let rx_dir = state.discovery.subscribe(&plan.target.dir);
    let seen = *rx_dir.borrow();
    let exit = match (&state.runtime, &plan.target.ctx.container_id) {
        (Some(rt), Some(id)) if plan.spec.follow => Some(ExitWatch {
            runtime: rt.clone(),
            changes: rt.subscribe_changes(),
            container_id: id.clone(),
            finished: plan.target.finished.clone(),
        }),
        _ => None,
    };
    let waiter = DirWaiter {
        seen,
        rx: rx_dir,
        tx: tx.clone(),
        idle,
        exit,
        cancel: state.shutdown.clone(),
    };
    let queue = Arc::new(std::sync::Mutex::new(Queued {
        items: std::collections::VecDeque::new(),
        stepping: false,
    }));
    let stall = how.stall;
    let sink = ReaderSink {
        tx: tx.clone(),
        how,
        queue: queue.clone(),
        handle: tokio::runtime::Handle::current(),
    };
    let (open_tx, open_rx) = oneshot::channel::<Result<(), ReadError>>();
    let follow = plan.spec.follow;
    let work = state.follow_work.clone();
    let history_work = follow.then(|| state.history_work.clone());
    tokio::spawn(async move {
        let _slot = slot;
        let _reading = telemetry::reading();
        let _guard = follow.then(telemetry::follower);
        let history = move || match Session::open(plan.target, plan.spec, sink) {
            Err(e) => {
                let _ = open_tx.send(Err(e));
                None
            }
            Ok(mut s) => {
                let _ = open_tx.send(Ok(()));
                let f = s.history();
                f.map(|f| Box::new((s, f)))
            }
        };
        let history = match history_work {
            Some(w) => w.run(history).await.flatten(),
            // A read that does not follow: a blocking thread of its own,
            // under its place in `maxReads`.
            None => tokio::task::spawn_blocking(history).await.ok().flatten(),
        };
        if let Some(follower) = history {
            queue.lock().unwrap_or_else(|e| e.into_inner()).stepping = true;
            follow_loop(follower, waiter, &queue, &tx, stall, work).await;
        }
    });
    match open_rx.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(ReadError::Cursor(e))) => Err(ServeError::Param(ParamError {
            parameter: "cursor".into(),
            message: e.to_string(),
        })),
        Ok(Err(e @ ReadError::NoFiles { .. })) | Ok(Err(e @ ReadError::List { .. })) => {
            Err(ServeError::NotFound(e.to_string()))
        }
        Err(_) => Err(ServeError::Unavailable("the reader stopped".into())),
    }
}

/// A follower after its history: waits for a wake-up without a thread,
/// runs the step on one of the `work`ers, hands on what the step queued,
/// and waits again.
async fn follow_loop<T: Clone + Send + 'static>(
    mut follower: Box<(Session<'static>, crate::read::Follower)>,
    mut waiter: DirWaiter<T>,
    queue: &std::sync::Mutex<Queued<T>>,
    tx: &mpsc::Sender<T>,
    stall: Option<std::time::Duration>,
    work: Arc<workers::Workers>,
) {
    loop {
        if !send_queued(queue, tx, stall).await {
            return;
        }
        let wake = if follower.1.has_more() {
            // More to read at once; others go first.
            tokio::task::yield_now().await;
            if waiter.cancel.is_cancelled() || tx.is_closed() {
                return;
            }
            Wake::Modified
        } else {
            waiter.wait_for(follower.1.timeout()).await
        };
        if wake == Wake::Stop {
            return;
        }
        // The client has taken what the last step made: a step's output
        // goes straight to the channel, and a client that takes nothing
        // holds no more than that (ended after its stall).
        if !room_for_a_step(tx, stall, &waiter.cancel).await {
            return;
        }
        // Boxed, so that what moves to the worker and back is a pointer
        // (and the task's future stays small).
        let step = work.run(move || {
            let (s, f) = &mut *follower;
            let go = s.follow_step(f, wake);
            (follower, go)
        });
        let Some((back, go)) = step.await else {
            return;
        };
        follower = back;
        if !go {
            send_queued(queue, tx, stall).await;
            return;
        }
    }
}

/// Waits until `tx` has room for a chunk (at most `stall`, then the
/// consumer is ended and counted); false when it is gone, stalled, or
/// podlogd stops.
async fn room_for_a_step<T>(
    tx: &mpsc::Sender<T>,
    stall: Option<std::time::Duration>,
    cancel: &CancellationToken,
) -> bool {
    let room = async {
        match stall {
            Some(stall) => match tokio::time::timeout(stall, tx.reserve()).await {
                Ok(r) => r.is_ok(),
                Err(_) => {
                    telemetry::slow_consumer_ended();
                    false
                }
            },
            None => tx.reserve().await.is_ok(),
        }
    };
    tokio::select! {
        ok = room => ok,
        _ = cancel.cancelled() => false,
    }
}
