//! The HTTP API: `/logs`, `/logs/{namespace}/{pod}/{container}`,
//! `/logs/{pod}/{container}`, `/healthz`, `/readyz`, `/metrics`.
//!
//! Requests are routed on the raw (still percent-encoded) path: each segment
//! is decoded once and must be a plain name, so `..`, `%2e%2e`, `%2f` and NUL
//! never reach the file layer. Log reads run on blocking threads (they
//! `pread` files) and stream bounded chunks to the client through a channel
//! of a few chunks: a slow client makes the reader wait. HTTP statuses come
//! from one function, [`ApiError::status`].

pub(crate) mod merge;
pub(crate) mod query;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::event::framing::Framing;
use crate::fs::ContainerKey;
use crate::node::discovery::{DirSeq, Discovery};
use crate::node::inventory::{self, PodView};
use crate::node::runtime::ContainerState;
use crate::read::{ReadError, ReadSpec, Session, Sink, Target, Waiter, Wake};
use crate::render::{Context, Format};
use crate::telemetry;
use query::ParamError;

/// What the API needs from the rest of the daemon.
pub(crate) struct ApiState {
    pub(crate) discovery: Arc<Discovery>,
    /// `None` in directory mode.
    pub(crate) runtime: Option<Arc<crate::node::runtime::Runtime>>,
    pub(crate) node: String,
    /// Node defaults of the log policy.
    pub(crate) node_policy: podlog_policy::PolicySpec,
    /// Whether policies are enforced.
    pub(crate) lifecycle: inventory::LifecycleInfo,
    /// Cancelled at shutdown: followers end.
    pub(crate) shutdown: CancellationToken,
}

/// A response body: a whole buffer, or chunks streamed from a reader.
pub(crate) enum ApiBody {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl Body for ApiBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ApiBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ApiBody::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, ApiBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ApiBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            ApiBody::Full(None) => SizeHint::with_exact(0),
            ApiBody::Stream(_) => SizeHint::default(),
        }
    }
}

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
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
    #[error("method {0} not allowed")]
    Method(Method),
    #[error("{0}")]
    Unavailable(String),
}

// === impl ApiState ===

impl ApiState {
    /// Reads and the inventory wait for the first scan of the log root.
    pub(crate) fn require_scan(&self) -> Result<(), ApiError> {
        if self.discovery.is_ready() {
            Ok(())
        } else {
            Err(ApiError::Unavailable("the initial scan is not done".into()))
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

// === impl ApiError ===

impl ApiError {
    /// The one place that maps errors to HTTP statuses.
    pub(crate) fn status(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Param(_) | ApiError::Segment { .. } => {
                (StatusCode::BAD_REQUEST, "BadRequest")
            }
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
            ApiError::Ambiguous { .. } => (StatusCode::CONFLICT, "Conflict"),
            ApiError::Method(_) => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
        }
    }

    fn response(&self) -> Response<ApiBody> {
        let (status, reason) = self.status();
        let mut body = serde_json::json!({
            "error": self.to_string(),
            "reason": reason,
        });
        match self {
            ApiError::Param(p) => body["parameter"] = p.parameter.clone().into(),
            ApiError::Segment { parameter, segment } => {
                body["parameter"] = (*parameter).into();
                body["segment"] = segment.clone().into();
            }
            ApiError::Ambiguous { candidates, .. } => {
                body["candidates"] = candidates.clone().into()
            }
            _ => {}
        }
        let mut b = serde_json::to_vec(&body).expect("a JSON value serializes");
        b.push(b'\n');
        json_response(status, b)
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response<ApiBody> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(ApiBody::Full(Some(Bytes::from(body))))
        .expect("static headers are valid")
}

fn text_response(status: StatusCode, body: impl Into<Bytes>) -> Response<ApiBody> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(ApiBody::Full(Some(body.into())))
        .expect("static headers are valid")
}

/// Decodes the segments of a raw path once each, without checking them.
fn segments(raw: &str) -> Vec<String> {
    raw.split('/')
        .skip(1)
        .map(|seg| {
            let decoded = percent_encoding::percent_decode_str(seg).collect::<Vec<u8>>();
            String::from_utf8_lossy(&decoded).into_owned()
        })
        .collect()
}

/// Checks decoded segments against the names they stand for.
fn check_segments(segs: &[String], names: &[&'static str]) -> Result<(), ApiError> {
    for (s, name) in segs.iter().zip(names) {
        if !query::valid_name(s) {
            return Err(ApiError::Segment {
                parameter: name,
                segment: s.clone(),
            });
        }
    }
    Ok(())
}

/// Serves HTTP on `listener` until `cancel`.
pub(crate) async fn serve(listener: TcpListener, state: Arc<ApiState>, cancel: CancellationToken) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let cancel = cancel.clone();
        conns.spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(req, &state, peer).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                _ = cancel.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
        // Reap finished connections so the set stays small.
        while conns.try_join_next().is_some() {}
    }
    while conns.join_next().await.is_some() {}
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    state: &Arc<ApiState>,
    _peer: SocketAddr,
) -> Response<ApiBody> {
    let resp = match route(&req, state).await {
        Ok(r) => r,
        Err(e) => e.response(),
    };
    telemetry::request(resp.status().as_u16());
    resp
}

async fn route(
    req: &Request<hyper::body::Incoming>,
    state: &Arc<ApiState>,
) -> Result<Response<ApiBody>, ApiError> {
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or("");
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(ApiError::Method(req.method().clone()));
    }
    match path {
        "/healthz" => return Ok(text_response(StatusCode::OK, "ok\n")),
        "/readyz" => {
            return Ok(match state.readiness() {
                Ok(()) => text_response(StatusCode::OK, "ready\n"),
                Err(why) => text_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {why}\n"),
                ),
            })
        }
        "/metrics" => {
            return Ok(Response::builder()
                .header(
                    "content-type",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )
                .body(ApiBody::Full(Some(Bytes::from(telemetry::encode()))))
                .expect("static headers are valid"))
        }
        "/logs" | "/logs/" => {
            return match query::parse_logs_query(query)? {
                query::LogsQuery::Inventory(p) => inventory(state, &p),
                query::LogsQuery::Merged(m) => read_merged(state, m).await,
            }
        }
        _ => {}
    }
    let Some(rest) = path.strip_prefix("/logs/") else {
        return Err(ApiError::NotFound(format!("no such endpoint {path:?}")));
    };
    let segs = segments(&format!("/{rest}"));
    match segs.len() {
        2 => check_segments(&segs, &["pod", "container"])?,
        3 => check_segments(&segs, &["namespace", "pod", "container"])?,
        _ => check_segments(&segs, &["segment"; 8])?,
    }
    let (ns, pod, container) = match segs.as_slice() {
        [pod, c] => (None, pod.as_str(), c.as_str()),
        [ns, pod, c] => (Some(ns.as_str()), pod.as_str(), c.as_str()),
        _ => {
            return Err(ApiError::NotFound(format!(
                "no such endpoint {path:?}: use /logs/{{namespace}}/{{pod}}/{{container}}"
            )))
        }
    };
    let params = query::parse_log_params(query)?;
    read_logs(state, ns, pod, container, params).await
}

fn inventory(
    state: &ApiState,
    params: &crate::node::inventory::InventoryParams,
) -> Result<Response<ApiBody>, ApiError> {
    state.require_scan()?;
    let inv = inventory::build(
        &state.discovery,
        state.runtime.as_deref(),
        state.lifecycle.clone(),
        &state.node,
        &state.node_policy,
        params,
    );
    let mut b = serde_json::to_vec_pretty(&inv).expect("the inventory serializes");
    b.push(b'\n');
    Ok(json_response(StatusCode::OK, b))
}

/// Sends output chunks to a channel; counts bytes.
struct ChanSink {
    tx: mpsc::Sender<Bytes>,
    format: &'static str,
}

impl Sink for ChanSink {
    fn send(&mut self, chunk: Bytes) -> bool {
        let n = chunk.len() as u64;
        let ok = self.tx.blocking_send(chunk).is_ok();
        if ok {
            telemetry::served(self.format, n);
        }
        ok
    }
}

/// Waits for directory notifications on a blocking thread; ends when the
/// consumer of `tx` is gone or the agent shuts down.
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
    handle: tokio::runtime::Handle,
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

impl<T: Clone + Send> Waiter for DirWaiter<T> {
    fn wait(&mut self) -> Wake {
        self.wait_for(None)
    }

    fn wait_for(&mut self, timeout: Option<std::time::Duration>) -> Wake {
        if let Some(m) = &self.idle {
            if self.tx.blocking_send(m.clone()).is_err() {
                return Wake::Stop;
            }
        }
        loop {
            let rx = &mut self.rx;
            let tx = &self.tx;
            let cancel = &self.cancel;
            let exit = &mut self.exit;
            let woken = self.handle.block_on(async {
                let rt_changed = async {
                    match exit {
                        Some(x) if !x.finished.load(Ordering::Acquire) => {
                            x.changes.changed().await.is_ok()
                        }
                        _ => std::future::pending().await,
                    }
                };
                let timer = async {
                    match timeout {
                        Some(t) => tokio::time::sleep(t).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = timer => Woken::Timeout,
                    r = rx.changed() => if r.is_ok() { Woken::Dir } else { Woken::Stop },
                    r = rt_changed => if r { Woken::Runtime } else { Woken::Stop },
                    _ = tx.closed() => Woken::Stop,
                    _ = cancel.cancelled() => Woken::Stop,
                }
            });
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

/// A resolved read: which files, how, and what to subscribe to.
pub(crate) struct Plan {
    pub(crate) target: Target,
    pub(crate) spec: ReadSpec,
}

/// Finds the one pod a request names.
pub(crate) fn find_pod(state: &ApiState, ns: Option<&str>, pod: &str) -> Result<PodView, ApiError> {
    let mut found: Vec<PodView> = inventory::pods(&state.discovery, state.runtime.as_deref())
        .into_iter()
        .filter(|p| p.name == pod && ns.is_none_or(|ns| p.namespace == ns))
        .collect();
    // A pod may have been recreated under the same name: prefer the ones
    // with log files, then the runtime's.
    if found.len() > 1 && found.iter().any(|p| p.logs.is_some()) {
        found.retain(|p| p.logs.is_some());
    }
    match found.len() {
        0 => Err(ApiError::NotFound(match ns {
            Some(ns) => format!("pod {ns}/{pod} not found"),
            None => format!("pod {pod} not found in any namespace"),
        })),
        1 => Ok(found.remove(0)),
        _ => Err(ApiError::Ambiguous {
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

/// Chooses the attempt and builds the reader's target and spec.
pub(crate) fn plan(
    state: &ApiState,
    p: &PodView,
    container: &str,
    params: &query::LogParams,
    format: Format,
) -> Result<Plan, ApiError> {
    let Some(logs) = &p.logs else {
        return Err(ApiError::NotFound(format!(
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
        return Err(ApiError::NotFound(format!(
            "container {container:?} not found in pod {} (containers: {})",
            p.reference(),
            p.container_names().join(", ")
        )));
    };
    let attempt = if let Some(a) = params.attempt {
        if !c.attempts.contains(&a) {
            return Err(ApiError::NotFound(format!(
                "attempt {a} of container {container:?} not found (attempts: {:?})",
                c.attempts
            )));
        }
        a
    } else if let Some(a) = params
        .cursor
        .as_deref()
        .and_then(crate::cursor::Cursor::peek_key)
        .and_then(|key| {
            c.attempts.iter().copied().find(|&a| {
                crate::cursor::attempt_key(&p.namespace, &p.name, &p.uid, container, a) == key
            })
        })
    {
        // A cursor resumes in the attempt it was taken from.
        a
    } else if params.previous {
        let n = c.attempts.len();
        if n < 2 {
            return Err(ApiError::NotFound(format!(
                "container {container:?} in pod {} has no previous attempt",
                p.reference()
            )));
        }
        c.attempts[n - 2]
    } else {
        match c.attempts.last() {
            Some(a) => *a,
            None => {
                return Err(ApiError::NotFound(format!(
                    "container {container:?} has no log files"
                )))
            }
        }
    };
    let now = crate::cri::now_nanos();
    let since = match (params.since_seconds, params.since_time) {
        (Some(s), _) => Some(now.saturating_sub((s as i64).saturating_mul(1_000_000_000))),
        (None, t) => t,
    };
    // The container's delimiter and event cap, from its policy.
    let policy = podlog_policy::PodPolicy::from_annotations(p.annotations())
        .resolve(&state.node_policy, container)
        .effective;
    let spec = ReadSpec {
        stream: params.stream,
        since,
        until: params.until_time,
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

/// Starts a reader for `plan` on a blocking thread; resolves once its files
/// are open (or with the reason they cannot be). `idle`, when given, is
/// sent on `tx` each time a follower has caught up.
pub(crate) async fn spawn_reader<T, S>(
    state: &ApiState,
    plan: Plan,
    sink: S,
    tx: mpsc::Sender<T>,
    idle: Option<T>,
) -> Result<(), ApiError>
where
    T: Clone + Send + 'static,
    S: Sink + Send + 'static,
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
        tx,
        idle,
        exit,
        cancel: state.shutdown.clone(),
        handle: tokio::runtime::Handle::current(),
    };
    let (open_tx, open_rx) = oneshot::channel::<Result<(), ReadError>>();
    let follow = plan.spec.follow;
    tokio::task::spawn_blocking(move || {
        let _guard = follow.then(telemetry::follower);
        let mut waiter = waiter;
        let mut sink = sink;
        match Session::open(plan.target, plan.spec, &mut sink) {
            Err(e) => {
                let _ = open_tx.send(Err(e));
            }
            Ok(s) => {
                let _ = open_tx.send(Ok(()));
                s.run(&mut waiter);
            }
        }
    });
    match open_rx.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(ReadError::Cursor(e))) => Err(ApiError::Param(ParamError {
            parameter: "cursor".into(),
            message: e.to_string(),
        })),
        Ok(Err(e @ ReadError::NoFiles { .. })) | Ok(Err(e @ ReadError::List { .. })) => {
            Err(ApiError::NotFound(e.to_string()))
        }
        Err(_) => Err(ApiError::Unavailable("the reader stopped".into())),
    }
}

/// Opens one container's events as a stream of rendered chunks.
pub(crate) async fn open_logs(
    state: &ApiState,
    ns: Option<&str>,
    pod: &str,
    container: &str,
    params: &query::LogParams,
    format: Format,
) -> Result<mpsc::Receiver<Bytes>, ApiError> {
    state.require_scan()?;
    let p = find_pod(state, ns, pod)?;
    let mut plan = plan(state, &p, container, params, format)?;
    refresh_finished(state, &mut plan).await;
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let sink = ChanSink {
        tx: tx.clone(),
        format: format.name(),
    };
    spawn_reader(state, plan, sink, tx, None).await?;
    Ok(rx)
}

fn stream_response(format: Format, rx: mpsc::Receiver<Bytes>) -> Response<ApiBody> {
    let ctype = match format {
        Format::Json => "application/x-ndjson",
        _ => "text/plain; charset=utf-8",
    };
    Response::builder()
        .header("content-type", ctype)
        .header("x-content-type-options", "nosniff")
        .header("cache-control", "no-store")
        .body(ApiBody::Stream(rx))
        .expect("static headers are valid")
}

async fn read_logs(
    state: &ApiState,
    ns: Option<&str>,
    pod: &str,
    container: &str,
    params: query::LogParams,
) -> Result<Response<ApiBody>, ApiError> {
    let format = params.format.unwrap_or(Format::Text);
    let rx = open_logs(state, ns, pod, container, &params, format).await?;
    Ok(stream_response(format, rx))
}

async fn read_merged(
    state: &Arc<ApiState>,
    params: query::MergedParams,
) -> Result<Response<ApiBody>, ApiError> {
    let format = params.params.format.unwrap_or(Format::Text);
    let rx = merge::open(state.clone(), params, format).await?;
    Ok(stream_response(format, rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_checked() {
        let ok = segments("/a/b-1/c.d");
        assert_eq!(ok, vec!["a", "b-1", "c.d"]);
        assert!(check_segments(&ok, &["namespace", "pod", "container"]).is_ok());
        for bad in [
            "/a/../b",
            "/a/%2e%2e/b",
            "/a%2fb/c/d",
            "/a/%00/c",
            "/a//c",
            "/a/./c",
            "/a/b%20c",
        ] {
            let segs = segments(bad);
            assert!(
                check_segments(&segs, &["namespace", "pod", "container"]).is_err(),
                "{bad}"
            );
        }
        match check_segments(
            &segments("/ns/%2e%2e/c"),
            &["namespace", "pod", "container"],
        ) {
            Err(ApiError::Segment { parameter, segment }) => {
                assert_eq!((parameter, segment.as_str()), ("pod", ".."));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
