//! The HTTP API: `/logs`, `/logs/{namespace}/{pod}/{container}`,
//! `/logs/{pod}/{container}`, `/healthz`, `/readyz`, `/metrics`.
//!
//! A thin adapter over `serve`: requests are routed on the raw (still
//! percent-encoded) path: each segment is decoded once and must be a plain
//! name, so `..`, `%2e%2e`, `%2f` and NUL never reach the file layer; the
//! query becomes typed parameters (`serve::query`); the reader's chunks are
//! streamed as the body. HTTP statuses come from one function, [`status`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::auth::{tls, Attributes, AuthError, Credentials, User};
use crate::render::Format;
use crate::serve::query;
use crate::serve::{merge, open_logs, ApiState, ServeError};
use crate::telemetry;

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

/// The one place that maps errors to HTTP statuses.
pub(crate) fn status(e: &ServeError) -> (StatusCode, &'static str) {
    match e {
        ServeError::Param(_) | ServeError::Segment { .. } => {
            (StatusCode::BAD_REQUEST, "BadRequest")
        }
        ServeError::NotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
        ServeError::Ambiguous { .. } => (StatusCode::CONFLICT, "Conflict"),
        ServeError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
        ServeError::TooMany { .. } => (StatusCode::TOO_MANY_REQUESTS, "TooManyRequests"),
        ServeError::Auth(e) => match **e {
            AuthError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "Unauthorized"),
            AuthError::Forbidden { .. } => (StatusCode::FORBIDDEN, "Forbidden"),
            AuthError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
        },
    }
}

/// The JSON error body: the message, the reason, and what names the fault.
fn error_response(e: &ServeError) -> Response<ApiBody> {
    let (code, reason) = status(e);
    let mut body = serde_json::json!({
        "error": e.to_string(),
        "reason": reason,
    });
    match e {
        ServeError::Param(p) => body["parameter"] = p.parameter.clone().into(),
        ServeError::Segment { parameter, segment } => {
            body["parameter"] = (*parameter).into();
            body["segment"] = segment.clone().into();
        }
        ServeError::Ambiguous { candidates, .. } => body["candidates"] = candidates.clone().into(),
        ServeError::TooMany { limit, .. } => body["limit"] = (*limit).into(),
        ServeError::Auth(e) => {
            if let AuthError::Forbidden {
                user, attributes, ..
            } = &**e
            {
                forbidden_fields(&mut body, user, attributes);
            }
        }
        _ => {}
    }
    let mut resp = error_json(code, &body);
    if code == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            "www-authenticate",
            hyper::header::HeaderValue::from_static("Bearer realm=\"podlog\""),
        );
    }
    resp
}

/// What a `403` names: the user, the verb, and the resource with its
/// subresource, namespace and name (or the path).
fn forbidden_fields(body: &mut serde_json::Value, user: &str, attributes: &Attributes) {
    body["user"] = user.into();
    match attributes {
        Attributes::Pods {
            verb,
            namespace,
            name,
            ..
        } => {
            body["verb"] = (*verb).into();
            body["resource"] = attributes.resource().into();
            body["namespace"] = namespace.clone().into();
            if let Some(n) = name {
                body["name"] = n.clone().into();
            }
        }
        Attributes::Path { verb, path } => {
            body["verb"] = (*verb).into();
            body["path"] = (*path).into();
        }
    }
}

/// `405`: only `GET` and `HEAD` are served.
fn method_not_allowed(m: &Method) -> Response<ApiBody> {
    let body = serde_json::json!({
        "error": format!("method {m} not allowed"),
        "reason": "MethodNotAllowed",
    });
    let mut resp = error_json(StatusCode::METHOD_NOT_ALLOWED, &body);
    resp.headers_mut().insert(
        hyper::header::ALLOW,
        hyper::header::HeaderValue::from_static("GET, HEAD"),
    );
    resp
}

fn error_json(code: StatusCode, body: &serde_json::Value) -> Response<ApiBody> {
    let mut b = serde_json::to_vec(body).expect("a JSON value serializes");
    b.push(b'\n');
    json_response(code, b)
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
fn check_segments(segs: &[String], names: &[&'static str]) -> Result<(), ServeError> {
    for (s, name) in segs.iter().zip(names) {
        if !query::valid_name(s) {
            return Err(ServeError::Segment {
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
    let mut failures = crate::serve::AcceptFailures::default();
    loop {
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors or memory: wait before trying
                    // again instead of spinning, and say so now and then.
                    let wait = failures.failed(&e);
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(wait) => continue,
                    }
                }
            },
        };
        failures.accepted();
        // Reap finished connections so the set stays small.
        while conns.try_join_next().is_some() {}
        let limits = state.limits.get();
        if conns.len() >= limits.max_connections {
            refuse(&stream, limits.max_connections);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let cancel = cancel.clone();
        conns.spawn(async move {
            let _open = telemetry::connection("http");
            let Ok(stream) = tls::accept(
                state.tls.as_deref(),
                tls::Alpn::Http1,
                stream,
                limits.header_timeout,
                "http",
            )
            .await
            else {
                return;
            };
            let certificate = stream.certificate_user();
            // Boxed: hyper keeps room for the request future with each
            // connection, idle or not, and the routing future is large.
            let svc = hyper::service::service_fn(move |req| {
                let state = state.clone();
                let certificate = certificate.clone();
                Box::pin(async move {
                    Ok::<_, Infallible>(handle(req, &state, peer, certificate.as_ref()).await)
                })
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(MAX_BUF)
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
    }
    while conns.join_next().await.is_some() {}
}

/// What hyper buffers per connection at most, each way: a request head
/// (its path, query and headers) up to this size, and this much of a
/// response a client has not taken yet (the reader waits for the rest).
const MAX_BUF: usize = 16 << 10;

/// One connection too many: a `429` naming the limit, then the connection
/// is closed. Written without waiting: a client that does not read it
/// loses it, not podlogd's time.
fn refuse(stream: &tokio::net::TcpStream, max: usize) {
    telemetry::connection_refused("http");
    let body = serde_json::json!({
        "error": format!("too many connections: maxConnections is {max}"),
        "reason": "TooManyRequests",
        "limit": "maxConnections",
    })
    .to_string();
    let response = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}\n",
        body.len() + 1
    );
    let _ = stream.try_write(response.as_bytes());
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    state: &Arc<ApiState>,
    _peer: SocketAddr,
    certificate: Option<&Arc<User>>,
) -> Response<ApiBody> {
    let started = tokio::time::Instant::now();
    let (route_name, method) = (route_of(req.uri().path()), method_of(req.method()));
    let resp = if req.method() != Method::GET && req.method() != Method::HEAD {
        method_not_allowed(req.method())
    } else {
        let creds = Credentials {
            certificate,
            bearer: Credentials::bearer_of(
                req.headers()
                    .get(hyper::header::AUTHORIZATION)
                    .map(|v| v.as_bytes()),
            ),
        };
        match route(&req, state, creds).await {
            Ok(r) => r,
            Err(e) => error_response(&e),
        }
    };
    telemetry::request(
        route_name,
        method,
        resp.status().as_u16(),
        started.elapsed(),
    );
    resp
}

/// The `route` label of a path (`podlog_http_requests_total`).
fn route_of(path: &str) -> &'static str {
    match path {
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        "/logs" | "/logs/" => "/logs",
        _ => match path.strip_prefix("/logs/").map(|r| r.split('/').count()) {
            Some(3) => "/logs/{namespace}/{pod}/{container}",
            Some(2) => "/logs/{pod}/{container}",
            _ => "other",
        },
    }
}

/// The `method` label: `GET`, `HEAD`, or `other`.
fn method_of(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        _ => "other",
    }
}

/// Routes a request; `/healthz` and `/readyz` need no credentials, the
/// rest is authenticated and authorized as it is served.
async fn route(
    req: &Request<hyper::body::Incoming>,
    state: &Arc<ApiState>,
    creds: Credentials<'_>,
) -> Result<Response<ApiBody>, ServeError> {
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or("");
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
            state.access.check(creds, Attributes::metrics()).await?;
            let how = telemetry::Exposition::of_accept(
                req.headers()
                    .get(hyper::header::ACCEPT)
                    .and_then(|v| v.to_str().ok()),
            );
            return Ok(Response::builder()
                .header("content-type", how.content_type())
                .body(ApiBody::Full(Some(Bytes::from(telemetry::encode(how)))))
                .expect("static headers are valid"));
        }
        "/logs" | "/logs/" => {
            let q = query::parse_logs_query(query)?;
            let user = state.access.authenticate(creds).await?;
            return match q {
                query::LogsQuery::Inventory(p) => inventory(state, &user, &p).await,
                query::LogsQuery::Merged(m) => read_merged(state, user, *m).await,
            };
        }
        _ => {}
    }
    let Some(rest) = path.strip_prefix("/logs/") else {
        return Err(ServeError::NotFound(format!("no such endpoint {path:?}")));
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
            return Err(ServeError::NotFound(format!(
                "no such endpoint {path:?}: use /logs/{{namespace}}/{{pod}}/{{container}}"
            )))
        }
    };
    let params = query::parse_log_params(query)?;
    let user = state.access.authenticate(creds).await?;
    read_logs(state, &user, ns, pod, container, params).await
}

async fn inventory(
    state: &ApiState,
    user: &Arc<User>,
    params: &crate::node::inventory::InventoryParams,
) -> Result<Response<ApiBody>, ServeError> {
    let inv = crate::serve::inventory(state, user, params).await?;
    let mut b = serde_json::to_vec_pretty(&inv).expect("the inventory serializes");
    b.push(b'\n');
    Ok(json_response(StatusCode::OK, b))
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
    user: &Arc<User>,
    ns: Option<&str>,
    pod: &str,
    container: &str,
    params: query::LogParams,
) -> Result<Response<ApiBody>, ServeError> {
    let format = params.format.unwrap_or(Format::Text);
    let rx = open_logs(state, user, ns, pod, container, &params, format).await?;
    Ok(stream_response(format, rx))
}

async fn read_merged(
    state: &Arc<ApiState>,
    user: Arc<User>,
    params: query::MergedParams,
) -> Result<Response<ApiBody>, ServeError> {
    let format = params.params.format.unwrap_or(Format::Text);
    let rx = merge::open(state.clone(), user, params, format).await?;
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
            Err(ServeError::Segment { parameter, segment }) => {
                assert_eq!((parameter, segment.as_str()), ("pod", ".."));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
