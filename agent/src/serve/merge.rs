//! Merged reads: the events of every container that matches a selection
//! (`GET /logs?labelSelector=…`), in time order, like `kubectl logs -l`.
//!
//! Each container attempt is read by its own reader, which hands over one
//! event at a time with its timestamp. The merger emits the oldest head
//! once every source has either a head, has caught up (a follower waiting
//! for writes), or has ended, so the history of all containers comes out
//! in time order and live events as they are written. Only sources
//! without a pending head are polled, so a fast container cannot pile up
//! memory while a slow one is being opened. While following, containers
//! that start matching later (a new pod, a new attempt, labels learnt from
//! the runtime) join the stream from their first event.

use std::collections::HashSet;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::auth::{Attributes, User};
use crate::cri::Nanos;
use crate::fs::ContainerKey;
use crate::node::inventory;
use crate::render::Format;
use crate::serve::query::MergedParams;
use crate::serve::{self, ApiState, ServeError};
use crate::telemetry;

/// What a source hands to the merger.
#[derive(Clone, Debug)]
enum Item {
    Event(Option<Nanos>, Bytes),
    /// The follower has caught up and waits for writes.
    Idle,
}

/// A source: one container attempt.
struct Source {
    rx: mpsc::Receiver<Item>,
    head: Option<(Option<Nanos>, Bytes)>,
    idle: bool,
    done: bool,
}

/// A container attempt being read.
type Key = (ContainerKey, u32);

/// Output is flushed to the client in chunks of about this size.
const CHUNK: usize = 64 << 10;

/// Starts the readers of every matching container; returns the merged
/// stream.
///
/// # Errors
///
/// The view is not ready, or (without `follow`) nothing matches.
pub(crate) async fn open(
    state: Arc<ApiState>,
    user: Arc<User>,
    params: MergedParams,
    format: Format,
) -> Result<mpsc::Receiver<Bytes>, ServeError> {
    state.require_scan()?;
    let mut known = HashSet::new();
    // One place under maxReads for the whole merged read.
    let slot = state.read_slot(params.params.follow)?;
    let reader = Reader {
        state,
        user,
        params,
        format,
    };
    let sources = reader.start_new(&mut known, Joins::AtOpen).await?;
    if sources.is_empty() && !reader.params.params.follow {
        return Err(ServeError::NotFound(
            "no container with logs matches the selection".into(),
        ));
    }
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        let _slot = slot;
        reader.run(sources, known, tx).await;
    });
    Ok(rx)
}

/// A merged read: for whom, of what, how.
struct Reader {
    state: Arc<ApiState>,
    user: Arc<User>,
    params: MergedParams,
    format: Format,
}

/// When a container joins a merged read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Joins {
    /// Matching when the read opens: its history is read as asked.
    AtOpen,
    /// Starting to match while the read follows: all of its events are new.
    WhileFollowing,
}

impl Reader {
    /// Starts a reader for each matching container attempt not in `known`,
    /// in the namespaces where the user may `list pods` and `get pods/log`.
    ///
    /// # Errors
    ///
    /// Access could not be checked.
    async fn start_new(
        &self,
        known: &mut HashSet<Key>,
        joins: Joins,
    ) -> Result<Vec<Source>, ServeError> {
        let (state, params, format) = (&*self.state, &self.params, self.format);
        let mut lp = params.params.clone();
        if joins == Joins::WhileFollowing {
            // A container that starts matching while we follow is new: all of
            // its events are.
            lp.tail_lines = None;
        }
        let mut pods = inventory::select(
            inventory::pods(&state.discovery, state.runtime.as_deref()),
            &params.select,
        );
        let allowed = serve::allowed_namespaces(
            state,
            &self.user,
            pods.iter().map(|p| p.namespace.clone()),
            &[Attributes::list_pods, Attributes::namespace_logs],
        )
        .await?;
        pods.retain(|p| allowed.contains(&p.namespace));
        let mut out = Vec::new();
        for p in pods {
            let Some(logs) = &p.logs else { continue };
            for name in logs.containers.keys() {
                if params.container.as_ref().is_some_and(|c| c != name) {
                    continue;
                }
                // A container without a previous attempt, say, is skipped.
                let Ok(mut plan) = serve::plan(state, &p, name, &lp, format) else {
                    continue;
                };
                let key = (plan.target.dir.clone(), plan.target.ctx.attempt);
                if known.contains(&key) {
                    continue;
                }
                serve::refresh_finished(state, &mut plan).await;
                plan.spec.per_event = true;
                let (tx, rx) = mpsc::channel::<Item>(64);
                let how = serve::Handing {
                    item: Item::Event,
                    stall: None,
                    served: None,
                };
                let idle = lp.follow.then_some(Item::Idle);
                match serve::spawn_reader(state, plan, how, tx, idle, None).await {
                    Ok(()) => {
                        known.insert(key);
                        out.push(Source {
                            rx,
                            head: None,
                            idle: false,
                            done: false,
                        });
                    }
                    Err(e) => {
                        tracing::debug!(pod = %p.reference(), container = %name, error = %e, "merged read skips a container");
                    }
                }
            }
        }
        Ok(out)
    }

    async fn run(
        &self,
        mut sources: Vec<Source>,
        mut known: HashSet<Key>,
        tx: mpsc::Sender<Bytes>,
    ) {
        let (state, format) = (&self.state, self.format);
        let follow = self.params.params.follow;
        let format_name = format.name();
        let stall = state.limits.get().send_timeout;
        let mut view = inventory::ViewChanges::new(&state.discovery, state.runtime.as_deref());
        let mut buf = Merged::default();
        loop {
            sources.retain(|s| !(s.done && s.head.is_none()));
            let ready = sources.iter().all(|s| s.done || s.idle || s.head.is_some());
            if ready {
                let oldest = sources
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| s.head.as_ref().map(|(t, _)| (t.unwrap_or(i64::MIN), i)))
                    .min();
                if let Some((_, i)) = oldest {
                    let (_, ev) = sources[i]
                        .head
                        .take()
                        .expect("the oldest source has a head");
                    buf.bytes.extend_from_slice(&ev);
                    buf.events += 1;
                    if buf.bytes.len() >= CHUNK && !flush(&tx, &mut buf, format_name, stall).await {
                        return;
                    }
                    continue;
                }
                if sources.is_empty() && !follow {
                    let _ = flush(&tx, &mut buf, format_name, stall).await;
                    return;
                }
            }
            // Waiting for input: what is merged so far goes out first.
            if !flush(&tx, &mut buf, format_name, stall).await {
                return;
            }
            let next = poll_fn(|cx| {
                for (i, s) in sources.iter_mut().enumerate() {
                    if s.done || s.head.is_some() {
                        continue;
                    }
                    if let Poll::Ready(item) = s.rx.poll_recv(cx) {
                        return Poll::Ready((i, item));
                    }
                }
                Poll::Pending
            });
            tokio::select! {
                (i, item) = next => {
                    let s = &mut sources[i];
                    match item {
                        Some(Item::Event(t, b)) => {
                            s.head = Some((t, b));
                            s.idle = false;
                        }
                        Some(Item::Idle) => s.idle = true,
                        None => s.done = true,
                    }
                }
                r = view.changed(), if follow => {
                    if !r {
                        return;
                    }
                    // Access not checkable now: tried again at the next change.
                    match self.start_new(&mut known, Joins::WhileFollowing).await {
                        Ok(new) => sources.extend(new),
                        Err(e) => tracing::debug!(error = %e, "a merged follow cannot check access to new containers yet"),
                    }
                }
                _ = tx.closed() => return,
                _ = state.shutdown.cancelled() => {
                    let _ = flush(&tx, &mut buf, format_name, stall).await;
                    return;
                }
            }
        }
    }
}

/// Hands what is merged to the client, waiting at most `stall` (see
/// [`serve::send_within`]).
async fn flush(
    tx: &mpsc::Sender<Bytes>,
    buf: &mut Merged,
    format: &'static str,
    stall: std::time::Duration,
) -> bool {
    if buf.bytes.is_empty() {
        return true;
    }
    let chunk = buf.bytes.split().freeze();
    let n = chunk.len() as u64;
    let events = std::mem::take(&mut buf.events);
    let ok = serve::send_or_end(tx, chunk, stall).await;
    if ok {
        telemetry::served(format, n);
        telemetry::served_events(format, events);
    }
    ok
}

/// What is merged and not yet handed to the client: its bytes and how many
/// events they are.
#[derive(Default)]
struct Merged {
    bytes: BytesMut,
    events: u64,
}
