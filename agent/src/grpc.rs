//! The gRPC API (`podlog.v1.Logs`), beside the HTTP one.
//!
//! Both share one implementation: a `ReadRequest` becomes the same typed
//! [`LogParams`] an HTTP query gives, through the same checks, and is read
//! by the same readers, which render `podlog.v1.Event` messages directly
//! ([`Format::Proto`]). So a gRPC read returns exactly the events and
//! cursors of the HTTP read with the same parameters.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;
use podlog_proto::podlog as pb;
use podlog_proto::podlog::logs_server::{Logs, LogsServer};
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::auth::{tls, AuthError, Credentials, User};
use crate::config::GrpcListen;
use crate::node::inventory::{Inventory, InventoryParams};
use crate::render::Format;
use crate::serve::query::{self, LogParams, ParamError};
use crate::serve::{self, ApiState, ServeError, Slot};
use crate::telemetry;

/// The one mapping from API errors to gRPC statuses.
pub(crate) fn status(e: &ServeError) -> Status {
    let msg = e.to_string();
    match e {
        ServeError::Param(_) | ServeError::Segment { .. } => Status::invalid_argument(msg),
        ServeError::NotFound(_) => Status::not_found(msg),
        ServeError::Ambiguous { candidates, .. } => {
            Status::failed_precondition(format!("{msg}: {}", candidates.join(", ")))
        }
        ServeError::Unavailable(_) => Status::unavailable(msg),
        ServeError::TooMany { .. } => Status::resource_exhausted(msg),
        ServeError::Auth(e) => match **e {
            AuthError::Unauthenticated(_) => Status::unauthenticated(msg),
            AuthError::Forbidden { .. } => Status::permission_denied(msg),
            AuthError::Unavailable(_) => Status::unavailable(msg),
        },
    }
}

fn code_name(s: &Status) -> &'static str {
    match s.code() {
        tonic::Code::Ok => "ok",
        tonic::Code::InvalidArgument => "invalid_argument",
        tonic::Code::NotFound => "not_found",
        tonic::Code::FailedPrecondition => "failed_precondition",
        tonic::Code::Unavailable => "unavailable",
        tonic::Code::ResourceExhausted => "resource_exhausted",
        tonic::Code::Unauthenticated => "unauthenticated",
        tonic::Code::PermissionDenied => "permission_denied",
        _ => "other",
    }
}

/// The log parameters of a request, built and checked as HTTP's are; an
/// error names the parameter as HTTP spells it. Fields are taken in the
/// order HTTP checks its parameters, so both report the same first fault.
fn log_params(r: &pb::ReadRequest) -> Result<LogParams, ParamError> {
    let attempt = r.attempt.map(|n| query::attempt("attempt", u64::from(n)));
    let cursor = given(&r.cursor).map(|c| query::cursor("cursor", c));
    let grep = given(&r.grep).map(|g| query::grep("grep", g));
    let limit_bytes = r.limit_bytes.map(|n| query::at_least("limitBytes", n, 1));
    let since_seconds = r
        .since_seconds
        .map(|n| query::at_least("sinceSeconds", n, 1));
    let since_time = given(&r.since_time).map(|t| query::time("sinceTime", t));
    let stream = query::stream("stream", &r.stream);
    let until_time = given(&r.until_time).map(|t| query::time("untilTime", t));
    LogParams {
        annotations: r.annotations,
        attempt: attempt.transpose()?,
        cursor: cursor.transpose()?,
        follow: r.follow,
        grep: grep.transpose()?,
        labels: r.labels,
        limit_bytes: limit_bytes.transpose()?,
        previous: r.previous,
        since_seconds: since_seconds.transpose()?,
        since_time: since_time.transpose()?,
        stream: stream?,
        tail_lines: r.tail_lines,
        until_time: until_time.transpose()?,
        format: Some(Format::Proto),
        timestamps: false,
    }
    .checked()
}

/// Checks a name as the HTTP API checks a path segment, with the same error.
fn check_name(field: &'static str, v: &str) -> Result<(), ServeError> {
    if query::valid_name(v) {
        Ok(())
    } else {
        Err(ServeError::Segment {
            parameter: field,
            segment: v.to_owned(),
        })
    }
}

/// A string field, unless left empty.
fn given(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// The container selection of a request (empty fields are absent).
fn selection(namespace: &str, label_selector: &str) -> Result<InventoryParams, ParamError> {
    query::inventory_params(given(namespace), given(label_selector))
}

/// Starts the read a request asks for; the stream carries `ReadResponse`
/// encodings (runs of whole `events` entries).
async fn open(
    state: &Arc<ApiState>,
    creds: Credentials<'_>,
    r: &pb::ReadRequest,
) -> Result<mpsc::Receiver<Bytes>, ServeError> {
    if r.pod.is_empty() {
        let select = selection(&r.namespace, &r.label_selector)?;
        let container = (!r.container.is_empty()).then(|| r.container.clone());
        let mp = query::merged_params(select, container, log_params(r)?)?;
        let user = state.access.authenticate(creds).await?;
        return crate::serve::merge::open(state.clone(), user, mp, Format::Proto).await;
    }
    if !r.label_selector.is_empty() {
        return Err(ServeError::Param(ParamError {
            parameter: "label_selector".into(),
            message: "selects containers across pods: leave pod empty to use it".into(),
        }));
    }
    if !r.namespace.is_empty() {
        check_name("namespace", &r.namespace)?;
    }
    check_name("pod", &r.pod)?;
    check_name("container", &r.container)?;
    let params = log_params(r)?;
    let ns = (!r.namespace.is_empty()).then_some(r.namespace.as_str());
    let user = state.access.authenticate(creds).await?;
    serve::open_logs(
        state,
        &user,
        ns,
        &r.pod,
        &r.container,
        &params,
        Format::Proto,
    )
    .await
}

/// The user of a connection's verified client certificate (tonic puts it
/// in each request's extensions).
#[derive(Clone)]
pub(crate) struct CertificateUser(Option<Arc<User>>);

impl<IO> tonic::transport::server::Connected for tls::Conn<IO>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    type ConnectInfo = CertificateUser;

    fn connect_info(&self) -> CertificateUser {
        CertificateUser(self.certificate_user())
    }
}

/// What a request presents: its `authorization: Bearer` metadata and its
/// connection's client certificate.
fn credentials<'a, T>(req: &'a Request<T>) -> Credentials<'a> {
    Credentials {
        certificate: req
            .extensions()
            .get::<CertificateUser>()
            .and_then(|c| c.0.as_ref()),
        bearer: Credentials::bearer_of(req.metadata().get("authorization").map(|v| v.as_bytes())),
    }
}

fn list_response(inv: Inventory) -> pb::ListResponse {
    let s = |o: Option<String>| o.unwrap_or_default();
    pb::ListResponse {
        node: inv.node,
        log_root: inv.log_root,
        mode: inv.mode.to_owned(),
        lifecycle_enabled: inv.lifecycle.enabled,
        lifecycle_reason: inv.lifecycle.reason.unwrap_or_default().to_owned(),
        runtime: inv.runtime.map(|r| pb::RuntimeInfo {
            endpoint: r.endpoint,
            connected: r.connected,
            runtime_name: r.name,
            runtime_version: r.version,
            last_error: s(r.last_error),
        }),
        pods: inv
            .pods
            .into_iter()
            .map(|p| pb::Pod {
                namespace: p.namespace,
                name: p.pod,
                uid: p.uid,
                labels: p.labels.into_iter().collect(),
                annotations: p.annotations.into_iter().collect(),
                sandbox_id: s(p.sandbox_id),
                state: p.state.unwrap_or_default().to_owned(),
                log_directory: s(p.log_directory),
                containers: p
                    .containers
                    .into_iter()
                    .map(|c| pb::Container {
                        name: c.name,
                        attempts: c.attempts,
                        current_attempt: c.current_attempt,
                        files: c
                            .files
                            .into_iter()
                            .map(|f| pb::LogFile {
                                name: f.name,
                                attempt: f.attempt,
                                bytes: f.bytes,
                                compressed: f.compressed,
                            })
                            .collect(),
                        bytes: c.bytes,
                        first_time: s(c.first_time),
                        last_time: s(c.last_time),
                        policy_json: serde_json::to_string(&c.policy).expect("a policy serializes"),
                        policy_errors: c.policy_errors,
                        rotation_paused: s(c.rotation_paused),
                        instances: c
                            .instances
                            .into_iter()
                            .map(|i| pb::Instance {
                                id: i.id,
                                attempt: i.attempt,
                                image: i.image,
                                image_ref: i.image_ref,
                                state: i.state.as_str().to_owned(),
                                exit_code: i.exit_code,
                                reason: i.reason,
                                created_at: s(i.created_at),
                                started_at: s(i.started_at),
                                finished_at: s(i.finished_at),
                                log_path: s(i.log_path),
                                labels: i.labels.into_iter().collect(),
                                annotations: i.annotations.into_iter().collect(),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// The `Logs` service.
pub(crate) struct LogsService {
    state: Arc<ApiState>,
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::ReadResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Logs for LogsService {
    async fn list(
        &self,
        req: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        let started = tokio::time::Instant::now();
        let result = async {
            let r = req.get_ref();
            let params = selection(&r.namespace, &r.label_selector)?;
            let user = self.state.access.authenticate(credentials(&req)).await?;
            let inv = serve::inventory(&self.state, &user, &params).await?;
            Ok(Response::new(list_response(inv)))
        }
        .await
        .map_err(|e: ServeError| status(&e));
        telemetry::grpc_request("List", result.as_ref().err().map_or("ok", code_name));
        telemetry::grpc_latency("List", started.elapsed());
        result
    }

    type ReadStream = EventStream;

    async fn read(&self, req: Request<pb::ReadRequest>) -> Result<Response<EventStream>, Status> {
        let started = tokio::time::Instant::now();
        let mut rx = match open(&self.state, credentials(&req), req.get_ref()).await {
            Ok(rx) => rx,
            Err(e) => {
                let st = status(&e);
                telemetry::grpc_request("Read", code_name(&st));
                telemetry::grpc_latency("Read", started.elapsed());
                return Err(st);
            }
        };
        telemetry::grpc_request("Read", "ok");
        telemetry::grpc_latency("Read", started.elapsed());
        let (tx, out) = mpsc::channel::<Result<pb::ReadResponse, Status>>(4);
        let stall = self.state.limits.get().send_timeout;
        tokio::spawn(async move {
            loop {
                let chunk = tokio::select! {
                    c = rx.recv() => c,
                    _ = tx.closed() => return,
                };
                let Some(chunk) = chunk else { return };
                // A chunk is whole `events` entries: a `ReadResponse`.
                let response = pb::ReadResponse::decode(chunk)
                    .map_err(|e| Status::internal(format!("event rendering: {e}")));
                let failed = response.is_err();
                let sent = crate::serve::send_or_end(&tx, response, stall).await;
                if !sent || failed {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(out),
        )))
    }
}

/// A bound gRPC listener.
pub(crate) enum Bound {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener, std::path::PathBuf),
}

/// Binds the gRPC listener. A stale Unix socket file is replaced.
///
/// # Errors
///
/// The address cannot be bound.
pub(crate) async fn bind(listen: &GrpcListen) -> std::io::Result<(Bound, String)> {
    match listen {
        GrpcListen::Tcp(a) => {
            let l = tokio::net::TcpListener::bind(a).await?;
            let addr = l.local_addr()?.to_string();
            Ok((Bound::Tcp(l), addr))
        }
        GrpcListen::Unix(p) => {
            use std::os::unix::fs::FileTypeExt as _;
            if let Ok(m) = std::fs::symlink_metadata(p) {
                if m.file_type().is_socket() {
                    std::fs::remove_file(p)?;
                }
            }
            let l = bind_private(p)?;
            Ok((Bound::Unix(l, p.clone()), format!("unix:{}", p.display())))
        }
    }
}

/// A Unix socket at `path`, mode `0660` whatever the umask: bound in a
/// directory of its own (mode `0700`) beside `path`, given its mode there,
/// then renamed into place, so that no one can connect while its mode is
/// the umask's.
fn bind_private(path: &std::path::Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let parent = path.parent().unwrap_or(std::path::Path::new("."));
    let private = parent.join(format!(
        ".podlogd-socket-{}-{}",
        std::process::id(),
        crate::cri::now_nanos()
    ));
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let staged = private.join("s");
    let bound = tokio::net::UnixListener::bind(&staged).and_then(|l| {
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o660))?;
        std::fs::rename(&staged, path)?;
        Ok(l)
    });
    let _ = std::fs::remove_file(&staged);
    let _ = std::fs::remove_dir(&private);
    bound
}

/// Serves gRPC until `cancel`.
pub(crate) async fn serve(bound: Bound, state: Arc<ApiState>, cancel: CancellationToken) {
    let limits = state.limits.clone();
    let tls = state.tls.clone();
    let svc = LogsServer::new(LogsService { state });
    // A peer that stops answering is found by HTTP/2 pings.
    let router = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
        .add_service(svc);
    let r = match bound {
        Bound::Tcp(l) => {
            router
                .serve_with_incoming_shutdown(
                    handshaken(
                        bounded(
                            tokio_stream::wrappers::TcpListenerStream::new(l),
                            limits.clone(),
                        ),
                        tls,
                        limits,
                    ),
                    cancel.cancelled(),
                )
                .await
        }
        Bound::Unix(l, path) => {
            let r = router
                .serve_with_incoming_shutdown(
                    bounded(tokio_stream::wrappers::UnixListenerStream::new(l), limits),
                    cancel.cancelled(),
                )
                .await;
            let _ = std::fs::remove_file(path);
            r
        }
    };
    if let Err(e) = r {
        tracing::error!(error = %e, "gRPC server stopped");
    }
}

/// The listener's connections, at most `maxConnections` open: one more is
/// closed at once (`podlog_connections_refused_total{listener="grpc"}`);
/// accept failures wait before the next try, as HTTP's do.
fn bounded<S, IO>(
    incoming: S,
    limits: Arc<crate::config::LiveLimits>,
) -> impl Stream<Item = std::io::Result<Counted<IO>>>
where
    S: Stream<Item = std::io::Result<IO>>,
{
    use futures_util::StreamExt as _;
    let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(
        crate::serve::AcceptFailures::default(),
    ));
    incoming.filter_map(move |r| {
        let (open, failures, max) = (open.clone(), failures.clone(), limits.get().max_connections);
        async move {
            let lock = || {
                failures
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
            };
            match r {
                Ok(io) => {
                    lock().accepted();
                    let Some(slot) = Slot::take(&open, max) else {
                        telemetry::connection_refused("grpc");
                        return None;
                    };
                    Some(Ok(Counted {
                        io,
                        _slot: slot,
                        _gauge: telemetry::connection("grpc"),
                    }))
                }
                Err(e) => {
                    let wait = lock().failed(&e);
                    tokio::time::sleep(wait).await;
                    None
                }
            }
        }
    })
}

/// Connections after their TLS handshake (when TLS is on), handshakes run
/// side by side (as many as connections may be open at start; each holds
/// a connection slot, so a reload's `maxConnections` still bounds them),
/// each within the `headerTimeout` in force when it begins; a failed one is
/// closed and counted.
fn handshaken<IO>(
    incoming: impl Stream<Item = std::io::Result<IO>>,
    tls: Option<Arc<crate::auth::tls::ServerTls>>,
    limits: Arc<crate::config::LiveLimits>,
) -> impl Stream<Item = std::io::Result<tls::Conn<IO>>>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::StreamExt as _;
    let side_by_side = limits.get().max_connections;
    incoming
        .map(move |r| {
            let (tls, limits) = (tls.clone(), limits.clone());
            async move {
                let io = r.ok()?;
                let timeout = limits.get().header_timeout;
                tls::accept(tls.as_deref(), tls::Alpn::H2, io, timeout, "grpc")
                    .await
                    .ok()
            }
        })
        .buffer_unordered(side_by_side)
        .filter_map(|c| async move { c.map(Ok) })
}

/// A connection that counts against `maxConnections` while it is open.
pub(crate) struct Counted<IO> {
    io: IO,
    _slot: Slot,
    _gauge: telemetry::GaugeGuard,
}

impl<IO: tonic::transport::server::Connected> tonic::transport::server::Connected for Counted<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

impl<IO: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Counted<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Counted<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            "127.0.0.1:9".parse::<GrpcListen>(),
            Ok(GrpcListen::Tcp("127.0.0.1:9".parse().unwrap()))
        );
        assert_eq!(
            "unix:/run/p.sock".parse::<GrpcListen>(),
            Ok(GrpcListen::Unix("/run/p.sock".into()))
        );
        assert!("unix:rel.sock".parse::<GrpcListen>().is_err());
        assert!("localhost".parse::<GrpcListen>().is_err());
    }

    #[test]
    fn requests_are_checked_as_http_queries() {
        let r = pb::ReadRequest {
            follow: true,
            tail_lines: Some(0),
            stream: "stderr".into(),
            grep: "a|b".into(),
            ..Default::default()
        };
        let p = log_params(&r).unwrap();
        assert!(p.follow && p.tail_lines == Some(0) && p.cursor.is_none() && !p.previous);
        assert_eq!(p.stream, Some(crate::cri::Stream::Stderr));
        assert!(p.grep.unwrap().is_match(b"xby"));
        let http = |q: &str| query::parse_log_params(q).unwrap_err();
        let cases = [
            (
                pb::ReadRequest {
                    since_seconds: Some(0),
                    ..Default::default()
                },
                "sinceSeconds=0",
            ),
            (
                pb::ReadRequest {
                    attempt: Some(1_000_000_000),
                    ..Default::default()
                },
                "attempt=1000000000",
            ),
            (
                pb::ReadRequest {
                    cursor: "c".into(),
                    since_time: "2026-11-21T05:00:00Z".into(),
                    ..Default::default()
                },
                "cursor=c&sinceTime=2026-11-21T05:00:00Z",
            ),
            (
                pb::ReadRequest {
                    grep: "(".into(),
                    stream: "stdin".into(),
                    ..Default::default()
                },
                "grep=(&stream=stdin",
            ),
        ];
        for (r, q) in cases {
            assert_eq!(log_params(&r).unwrap_err(), http(q), "{q}");
        }
    }

    #[test]
    fn rendered_events_are_read_responses() {
        use crate::event::{Event, Flags};
        let ctx = crate::render::Context {
            namespace: "n".into(),
            pod: "p".into(),
            container: "c".into(),
            attempt: 2,
            container_id: Some("abc".into()),
            labels: Some([("app".to_owned(), "web".to_owned())].into()),
            ..Default::default()
        };
        let ev = |content: &'static [u8], partial| Event {
            flags: Flags {
                partial,
                ..Flags::default()
            },
            ..crate::render::tests::ev(content)
        };
        let members = ctx.members(Format::Proto);
        let mut out = Vec::new();
        for e in [ev(b"x\xff", true), ev(b"", false)] {
            crate::render::render(&mut out, &e, Format::Proto, false, b"c1", &members);
        }
        let r = pb::ReadResponse::decode(out.as_slice()).unwrap();
        assert_eq!(r.events.len(), 2);
        let e = &r.events[0];
        assert_eq!(e.log, b"x\xff");
        assert_eq!(e.time, "1970-01-01T00:00:01.500000000Z");
        assert_eq!((e.stream.as_str(), e.cursor.as_str()), ("stderr", "c1"));
        assert_eq!((e.attempt, e.container_id.as_str()), (2, "abc"));
        assert!(e.partial && !e.truncated && !r.events[1].partial);
        assert_eq!(e.labels.get("app").map(String::as_str), Some("web"));
        assert!(r.events[1].log.is_empty() && r.events[1].pod == "p");
    }
}
