//! The service both APIs share, whatever the transport: find the pod, plan
//! the read (attempt, context, policy), start readers on blocking threads
//! and hand their bounded chunks on through a channel of a few chunks (a
//! slow client makes the reader wait); merged reads in [`merge`]; typed
//! parameters in [`query`]. Everything a request can fail with is one
//! [`ServeError`]; `http` and `grpc` each map it to their statuses in one
//! function.

pub(crate) mod merge;
pub(crate) mod query;
mod reader;
pub(crate) mod selector;
pub(crate) mod workers;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::auth::{Attributes, AuthError, AuthorizationMode, User};
use crate::cri::Nanos;
use crate::event::framing::Framing;
use crate::fs::ContainerKey;
use crate::node::discovery::{DirSeq, Discovery};
use crate::node::inventory::{self, PodView};
use crate::node::runtime::ContainerState;
use crate::read::{ReadError, ReadSpec, Session, Sink, Target, Wake};
use crate::render::{Context, Format};
use crate::telemetry;
use query::ParamError;
pub(crate) use reader::{spawn_reader, Handing};

/// What the API needs from the rest of the daemon.
pub(crate) struct ApiState {
    pub(crate) discovery: Arc<Discovery>,
    /// `None` in directory mode.
    pub(crate) runtime: Option<Arc<crate::node::runtime::Runtime>>,
    pub(crate) node: String,
    /// Node defaults of the log policy.
    pub(crate) node_policy: Arc<crate::config::LivePolicy>,
    /// Client limits (connections, header timeout, reads).
    pub(crate) limits: Arc<crate::config::LiveLimits>,
    /// Open reads and, among them, followers (see [`ReadSlot`]).
    pub(crate) reads: Arc<std::sync::atomic::AtomicUsize>,
    pub(crate) followers: Arc<std::sync::atomic::AtomicUsize>,
    /// Whether policies are enforced.
    pub(crate) lifecycle: inventory::LifecycleInfo,
    /// Cancelled at shutdown: followers end.
    pub(crate) shutdown: CancellationToken,
    /// Followers' steps run here ([`crate::config::FOLLOW_WORKERS`]
    /// threads at most): any number of followers share them.
    pub(crate) follow_work: Arc<workers::Workers>,
    /// Followers' histories run here ([`crate::config::HISTORY_WORKERS`]
    /// threads at most), apart from the steps: a long history to a slow
    /// client holds up other histories, never the followers' steps.
    pub(crate) history_work: Arc<workers::Workers>,
    /// Who may read what.
    pub(crate) access: Arc<crate::auth::Access>,
    /// Serving TLS of the TCP listeners, when on.
    pub(crate) tls: Option<Arc<crate::auth::tls::ServerTls>>,
}

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    #[error("{0}")]
    Param(#[from] ParamError),
    #[error("invalid {parameter} {segment:?} in the path: a name of [A-Za-z0-9._-], not . or ..")]
    Segment {
        parameter: &'static str,
        segment: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("pod name {pod:?} is ambiguous: {} pods match", candidates.len())]
    Ambiguous {
        pod: String,
        candidates: Vec<String>,
    },
    #[error("{0}")]
    Unavailable(String),
    /// Unauthenticated (401), forbidden (403), or access could not be
    /// checked (503).
    #[error("{0}")]
    Auth(Box<crate::auth::AuthError>),
    /// A limit of the configuration is reached.
    #[error("too many {what}: {limit} is {max}")]
    TooMany {
        what: &'static str,
        /// The configuration key.
        limit: &'static str,
        max: usize,
    },
}

impl From<AuthError> for ServeError {
    fn from(e: AuthError) -> Self {
        ServeError::Auth(Box::new(e))
    }
}

/// One of at most `max` open things (reads, followers, connections),
/// counted in `count` until it drops.
pub(crate) struct Slot(Arc<std::sync::atomic::AtomicUsize>);

impl Slot {
    /// A slot, unless `max` are taken.
    pub(crate) fn take(count: &Arc<std::sync::atomic::AtomicUsize>, max: usize) -> Option<Slot> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(count.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An open read, counted against `maxReads` (a follower: against
/// `maxFollowers`) until it drops.
pub(crate) struct ReadSlot {
    _slot: Slot,
}

// === impl ApiState ===

impl ApiState {
    /// A slot for one more read (a follower when `follow`), or the limit
    /// it would pass. A read holds a blocking thread while it runs, a
    /// follower none while it waits: they are bounded apart.
    pub(crate) fn read_slot(&self, follow: bool) -> Result<ReadSlot, ServeError> {
        let limits = self.limits.get();
        let refused = |what, limit, max| {
            telemetry::read_refused(limit);
            ServeError::TooMany { what, limit, max }
        };
        let slot = if follow {
            Slot::take(&self.followers, limits.max_followers)
                .ok_or_else(|| refused("followers", "maxFollowers", limits.max_followers))?
        } else {
            Slot::take(&self.reads, limits.max_reads)
                .ok_or_else(|| refused("reads", "maxReads", limits.max_reads))?
        };
        Ok(ReadSlot { _slot: slot })
    }

    /// Reads and the inventory wait for the first scan of the log root.
    pub(crate) fn require_scan(&self) -> Result<(), ServeError> {
        if self.discovery.is_ready() {
            Ok(())
        } else {
            Err(ServeError::Unavailable(
                "the initial scan is not done".into(),
            ))
        }
    }

    /// Ready: the first scan is done and, with a runtime, it answers. While
    /// the runtime is away the API keeps serving what it has, and says so
    /// here.
    pub(crate) fn readiness(&self) -> Result<(), String> {
        if self.shutdown.is_cancelled() {
            return Err("shutting down".into());
        }
        if !self.discovery.is_ready() {
            return Err("the initial scan of the log root is not done".into());
        }
        if let Some(rt) = &self.runtime {
            let st = rt.status();
            if !st.connected {
                let endpoint = rt.endpoint().display();
                return Err(match st.last_error.as_deref() {
                    Some(error) => format!(
                        "container runtime {endpoint} unreachable ({error}); serving the last known pods and the files on disk"
                    ),
                    None => format!(
                        "connecting to the container runtime {endpoint}; serving the files on disk"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Sends `item` on `tx` from a blocking thread, waiting at most `stall`
/// for room: a consumer that takes nothing for that long is ended (its
/// channel is given up, which ends the response) and counted.
pub(crate) fn send_within<T>(
    tx: &mpsc::Sender<T>,
    item: T,
    stall: std::time::Duration,
    handle: &tokio::runtime::Handle,
) -> bool {
    match tx.try_send(item) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Closed(_)) => false,
        Err(mpsc::error::TrySendError::Full(item)) => handle.block_on(send_or_end(tx, item, stall)),
    }
}

/// [`send_within`] from a task: false when the consumer is gone or took
/// nothing for `stall` (then counted).
pub(crate) async fn send_or_end<T>(
    tx: &mpsc::Sender<T>,
    item: T,
    stall: std::time::Duration,
) -> bool {
    match tokio::time::timeout(stall, tx.send(item)).await {
        Ok(r) => r.is_ok(),
        Err(_) => {
            telemetry::slow_consumer_ended();
            false
        }
    }
}

/// A resolved read: which files, how, and what to subscribe to.
pub(crate) struct Plan {
    pub(crate) target: Target,
    pub(crate) spec: ReadSpec,
}

/// Finds the one pod a request names that `user` may read the logs of.
///
/// With a namespace, access is checked first (`get pods/log` of the pod
/// there), so a denied user learns nothing of the pod. Without one, pods
/// in namespaces the user may not read are left out, as if absent.
pub(crate) async fn find_pod(
    state: &ApiState,
    user: &Arc<User>,
    ns: Option<&str>,
    pod: &str,
) -> Result<PodView, ServeError> {
    if let Some(ns) = ns {
        state
            .access
            .authorize(user, Attributes::pod_log(ns, pod))
            .await?;
    }
    let mut found: Vec<PodView> = inventory::pods(&state.discovery, state.runtime.as_deref())
        .into_iter()
        .filter(|p| p.name == pod && ns.is_none_or(|ns| p.namespace == ns))
        .collect();
    let mut hidden = false;
    if ns.is_none() {
        let mut readable = Vec::with_capacity(found.len());
        for p in found {
            match state
                .access
                .authorize(user, Attributes::pod_log(&p.namespace, pod))
                .await
            {
                Ok(()) => readable.push(p),
                Err(AuthError::Forbidden { .. }) => hidden = true,
                Err(e) => return Err(e.into()),
            }
        }
        found = readable;
    }
    // A pod may have been recreated under the same name: prefer the ones
    // with log files, then the runtime's.
    if found.len() > 1 && found.iter().any(|p| p.logs.is_some()) {
        found.retain(|p| p.logs.is_some());
    }
    match found.len() {
        0 => Err(ServeError::NotFound(match ns {
            Some(ns) => format!("pod {ns}/{pod} not found"),
            None if hidden || state.access.config().mode == AuthorizationMode::Webhook => {
                format!("pod {pod} not found in any namespace you may read")
            }
            None => format!("pod {pod} not found in any namespace"),
        })),
        1 => Ok(found.remove(0)),
        _ => Err(ServeError::Ambiguous {
            pod: pod.to_owned(),
            // The uid is only added where namespace/name is not enough.
            candidates: found
                .iter()
                .map(|p| {
                    let twins = found.iter().filter(|q| q.namespace == p.namespace).count();
                    if twins > 1 {
                        format!("{} (uid {})", p.reference(), p.uid)
                    } else {
                        p.reference()
                    }
                })
                .collect(),
        }),
    }
}

/// The namespaces among `namespaces` where `user` may do every one of
/// `asks` (each a function of the namespace).
///
/// # Errors
///
/// Access could not be checked for one of them.
pub(crate) async fn allowed_namespaces(
    state: &ApiState,
    user: &Arc<User>,
    namespaces: impl IntoIterator<Item = String>,
    asks: &[fn(&str) -> Attributes],
) -> Result<std::collections::BTreeSet<String>, AuthError> {
    let mut allowed = std::collections::BTreeSet::new();
    'ns: for ns in namespaces
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
    {
        for ask in asks {
            match state.access.authorize(user, ask(&ns)).await {
                Ok(()) => {}
                Err(AuthError::Forbidden { .. }) => continue 'ns,
                Err(e) => return Err(e),
            }
        }
        allowed.insert(ns);
    }
    Ok(allowed)
}

/// The inventory `user` may see: the pods of the namespaces where it may
/// `list pods`.
pub(crate) async fn inventory(
    state: &ApiState,
    user: &Arc<User>,
    params: &inventory::InventoryParams,
) -> Result<inventory::Inventory, ServeError> {
    state.require_scan()?;
    let mut inv = inventory::build(
        &state.discovery,
        state.runtime.as_deref(),
        state.lifecycle.clone(),
        &state.node,
        &state.node_policy.get(),
        params,
    );
    let allowed = allowed_namespaces(
        state,
        user,
        inv.pods.iter().map(|p| p.namespace.clone()),
        &[Attributes::list_pods],
    )
    .await?;
    inv.pods.retain(|p| allowed.contains(&p.namespace));
    Ok(inv)
}

/// The attempt a read is of: the one asked for, the cursor's, the one
/// before the last (`previous`), or the last.
fn choose_attempt(
    p: &PodView,
    container: &str,
    attempts: &[u32],
    params: &query::LogParams,
) -> Result<u32, ServeError> {
    if let Some(a) = params.attempt {
        if !attempts.contains(&a) {
            return Err(ServeError::NotFound(format!(
                "attempt {a} of container {container:?} not found (attempts: {attempts:?})"
            )));
        }
        return Ok(a);
    }
    let of_cursor = params
        .cursor
        .as_deref()
        .and_then(crate::cursor::Cursor::peek_key)
        .and_then(|key| {
            attempts.iter().copied().find(|&a| {
                crate::cursor::attempt_key(&p.namespace, &p.name, &p.uid, container, a) == key
            })
        });
    if let Some(a) = of_cursor {
        // A cursor resumes in the attempt it was taken from.
        return Ok(a);
    }
    if params.previous {
        let n = attempts.len();
        if n < 2 {
            return Err(ServeError::NotFound(format!(
                "container {container:?} in pod {} has no previous attempt",
                p.reference()
            )));
        }
        return Ok(attempts[n - 2]);
    }
    attempts
        .last()
        .copied()
        .ok_or_else(|| ServeError::NotFound(format!("container {container:?} has no log files")))
}

/// The time `secs` seconds before `now`; the earliest time there is when
/// that lies before it (`sinceSeconds` goes up to `u64::MAX`).
fn since_seconds(now: Nanos, secs: u64) -> Nanos {
    let back = i64::try_from(secs)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000_000);
    now.saturating_sub(back)
}

/// Chooses the attempt and builds the reader's target and spec.
pub(crate) fn plan(
    state: &ApiState,
    p: &PodView,
    container: &str,
    params: &query::LogParams,
    format: Format,
) -> Result<Plan, ServeError> {
    let Some(logs) = &p.logs else {
        return Err(ServeError::NotFound(format!(
            "pod {} has no log directory under {}{}",
            p.reference(),
            state.discovery.root().path().display(),
            p.sandbox()
                .and_then(|s| s.log_directory.as_ref())
                .map(|d| format!(" (the runtime writes to {})", d.display()))
                .unwrap_or_default()
        )));
    };
    let Some(c) = logs.containers.get(container) else {
        return Err(ServeError::NotFound(format!(
            "container {container:?} not found in pod {} (containers: {})",
            p.reference(),
            p.container_names().join(", ")
        )));
    };
    let attempt = choose_attempt(p, container, &c.attempts, params)?;
    let now = crate::cri::now_nanos();
    let since = match (params.since_seconds, params.since_time) {
        (Some(s), _) => Some(since_seconds(now, s)),
        (None, t) => t.map(crate::cri::saturate),
    };
    // The container's delimiter and event cap, from its policy.
    let policy = podlog_policy::PodPolicy::from_annotations(p.annotations())
        .resolve(&state.node_policy.get(), container)
        .effective;
    let spec = ReadSpec {
        stream: params.stream,
        since,
        until: params.until_time.map(crate::cri::saturate),
        tail: params.tail_lines,
        cursor: params.cursor.clone(),
        grep: params.grep.clone(),
        limit_bytes: params.limit_bytes,
        format,
        timestamps: params.timestamps,
        follow: params.follow,
        max_event_bytes: usize::try_from(policy.max_event_bytes).unwrap_or(usize::MAX),
        per_event: false,
        framing: Framing::from_policy(&policy.delimiter),
    };
    let inst = p.instance(container, attempt);
    let target = Target {
        root: state.discovery.root().clone(),
        dir: ContainerKey::new(&logs.dir, container),
        finished: Arc::new(AtomicBool::new(
            inst.is_some_and(|i| i.state == ContainerState::Exited),
        )),
        ctx: Context {
            namespace: p.namespace.clone(),
            pod: p.name.clone(),
            uid: p.uid.clone(),
            container: container.to_owned(),
            attempt,
            node: state.node.clone(),
            container_id: inst.map(|i| i.id.clone()),
            image: inst.map(|i| i.image.clone()),
            labels: params.labels.then(|| p.labels()),
            annotations: params.annotations.then(|| p.annotations()),
            policy_annotations: policy.annotations,
        },
    };
    Ok(Plan { target, spec })
}

/// The snapshot may predate the container's exit: ask the runtime, so a
/// read right after the exit serves the attempt as complete.
pub(crate) async fn refresh_finished(state: &ApiState, plan: &mut Plan) {
    if plan.target.finished.load(Ordering::Acquire) {
        return;
    }
    let (Some(rt), Some(id)) = (&state.runtime, &plan.target.ctx.container_id) else {
        return;
    };
    if rt.container_exited(id).await == Some(true) {
        plan.target.finished.store(true, Ordering::Release);
        rt.request_resync();
    }
}

/// Opens one container's events as a stream of rendered chunks.
pub(crate) async fn open_logs(
    state: &ApiState,
    user: &Arc<User>,
    ns: Option<&str>,
    pod: &str,
    container: &str,
    params: &query::LogParams,
    format: Format,
) -> Result<mpsc::Receiver<Bytes>, ServeError> {
    state.require_scan()?;
    let p = find_pod(state, user, ns, pod).await?;
    let mut plan = plan(state, &p, container, params, format)?;
    let slot = state.read_slot(params.follow)?;
    refresh_finished(state, &mut plan).await;
    // A follower's chunks are a step's output each; one waiting is enough
    // to keep its client busy, and bounds what a slow client holds.
    let (tx, rx) = mpsc::channel::<Bytes>(if params.follow { 1 } else { 4 });
    let how = Handing {
        item: |_, chunk| chunk,
        stall: Some(state.limits.get().send_timeout),
        served: Some(format.name()),
    };
    spawn_reader(state, plan, how, tx, None, Some(slot)).await?;
    Ok(rx)
}

/// Accept failures of either listener: the back-off before the next try,
/// and a warning at most every [`AcceptFailures::QUIET`] with how many were not logged.
#[derive(Default)]
pub(crate) struct AcceptFailures {
    /// The current back-off; zero after a success.
    wait: std::time::Duration,
    last_logged: Option<tokio::time::Instant>,
    unlogged: u64,
}

impl AcceptFailures {
    const QUIET: std::time::Duration = std::time::Duration::from_secs(10);
    const FIRST: std::time::Duration = std::time::Duration::from_millis(10);
    const MAX: std::time::Duration = std::time::Duration::from_secs(1);

    pub(crate) fn failed(&mut self, e: &std::io::Error) -> std::time::Duration {
        telemetry::accept_failed();
        self.wait = (self.wait * 2).clamp(Self::FIRST, Self::MAX);
        let now = tokio::time::Instant::now();
        if self
            .last_logged
            .is_none_or(|t| now.duration_since(t) >= Self::QUIET)
        {
            tracing::warn!(error = %e, not_logged = self.unlogged, retry_in = ?self.wait, "accept failed");
            self.last_logged = Some(now);
            self.unlogged = 0;
        } else {
            self.unlogged += 1;
        }
        self.wait
    }

    pub(crate) fn accepted(&mut self) {
        self.wait = std::time::Duration::ZERO;
    }
}
