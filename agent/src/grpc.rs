//! The gRPC API (`podlog.v1.Logs`), beside the HTTP one.
//!
//! Both share one implementation: a `ReadRequest` is turned into the same
//! parameter pairs an HTTP query gives, validated by the same functions,
//! and read by the same readers in `json`; each NDJSON event becomes an
//! `Event` message. So a gRPC read returns exactly the events and cursors
//! of the HTTP read with the same parameters.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::Stream;
use podlog_proto::podlog as pb;
use podlog_proto::podlog::logs_server::{Logs, LogsServer};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::config::GrpcListen;
use crate::node::inventory::{self, Inventory};
use crate::render::Format;
use crate::serve::query::{self, ParamError};
use crate::serve::{self, ApiError, ApiState};
use crate::telemetry;

/// The one mapping from API errors to gRPC statuses.
pub(crate) fn status(e: &ApiError) -> Status {
    let msg = e.to_string();
    match e {
        ApiError::Param(_) | ApiError::Segment { .. } => Status::invalid_argument(msg),
        ApiError::NotFound(_) => Status::not_found(msg),
        ApiError::Ambiguous { candidates, .. } => {
            Status::failed_precondition(format!("{msg}: {}", candidates.join(", ")))
        }
        ApiError::Method(_) => Status::unimplemented(msg),
        ApiError::Unavailable(_) => Status::unavailable(msg),
    }
}

fn code_name(s: &Status) -> &'static str {
    match s.code() {
        tonic::Code::Ok => "ok",
        tonic::Code::InvalidArgument => "invalid_argument",
        tonic::Code::NotFound => "not_found",
        tonic::Code::FailedPrecondition => "failed_precondition",
        tonic::Code::Unavailable => "unavailable",
        _ => "other",
    }
}

/// The log parameters of a request, as the pairs an HTTP query would give.
fn log_pairs(r: &pb::ReadRequest) -> BTreeMap<String, String> {
    let mut kv = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        kv.insert(k.to_owned(), v);
    };
    let flags = [
        ("follow", r.follow),
        ("previous", r.previous),
        ("labels", r.labels),
        ("annotations", r.annotations),
    ];
    for (k, on) in flags {
        if on {
            put(k, "true".into());
        }
    }
    let numbers = [
        ("tailLines", r.tail_lines),
        ("sinceSeconds", r.since_seconds),
        ("limitBytes", r.limit_bytes),
        ("attempt", r.attempt.map(u64::from)),
    ];
    for (k, n) in numbers {
        if let Some(n) = n {
            put(k, n.to_string());
        }
    }
    let strings = [
        ("sinceTime", &r.since_time),
        ("untilTime", &r.until_time),
        ("stream", &r.stream),
        ("cursor", &r.cursor),
        ("grep", &r.grep),
    ];
    for (k, s) in strings {
        if !s.is_empty() {
            put(k, s.clone());
        }
    }
    kv
}

/// Checks a name as the HTTP API checks a path segment, with the same error.
fn check_name(field: &'static str, v: &str) -> Result<(), ApiError> {
    if query::valid_name(v) {
        Ok(())
    } else {
        Err(ApiError::Segment {
            parameter: field,
            segment: v.to_owned(),
        })
    }
}

/// The container selection of a request, as the HTTP query pairs
/// `namespace` and `labelSelector` (empty fields are absent).
fn selection(namespace: &str, label_selector: &str) -> BTreeMap<String, String> {
    [("namespace", namespace), ("labelSelector", label_selector)]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Starts the read a request asks for; the stream carries NDJSON chunks.
async fn open(
    state: &Arc<ApiState>,
    r: &pb::ReadRequest,
) -> Result<mpsc::Receiver<Bytes>, ApiError> {
    let kv = log_pairs(r);
    if r.pod.is_empty() {
        let select = selection(&r.namespace, &r.label_selector);
        let container = (!r.container.is_empty()).then(|| r.container.clone());
        let mp = query::merged_params(&select, container, &kv)?;
        return crate::serve::merge::open(state.clone(), mp, Format::Json).await;
    }
    if !r.label_selector.is_empty() {
        return Err(ApiError::Param(ParamError {
            parameter: "label_selector".into(),
            message: "selects containers across pods: leave pod empty to use it".into(),
        }));
    }
    if !r.namespace.is_empty() {
        check_name("namespace", &r.namespace)?;
    }
    check_name("pod", &r.pod)?;
    check_name("container", &r.container)?;
    let params = query::log_params(&kv)?;
    let ns = (!r.namespace.is_empty()).then_some(r.namespace.as_str());
    serve::open_logs(state, ns, &r.pod, &r.container, &params, Format::Json).await
}

/// One `json` event as the reader renders it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonEvent {
    time: Option<String>,
    stream: String,
    log: String,
    #[serde(rename = "log_base64")]
    log_base64: Option<String>,
    cursor: String,
    #[serde(default)]
    partial: bool,
    #[serde(default)]
    truncated: bool,
    #[serde(default)]
    malformed: bool,
    namespace: String,
    pod: String,
    uid: String,
    container: String,
    attempt: u32,
    #[serde(default)]
    node: String,
    #[serde(default)]
    container_id: String,
    #[serde(default)]
    image: String,
    #[serde(default)]
    labels: std::collections::HashMap<String, String>,
    #[serde(default)]
    annotations: std::collections::HashMap<String, String>,
    #[serde(default)]
    policy_annotations: std::collections::HashMap<String, String>,
}

fn event(line: &[u8]) -> Result<pb::Event, Status> {
    let j: JsonEvent = serde_json::from_slice(line)
        .map_err(|e| Status::internal(format!("event rendering: {e}")))?;
    let log = match j.log_base64 {
        Some(b) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|e| Status::internal(format!("event rendering: {e}")))?,
        None => j.log.into_bytes(),
    };
    Ok(pb::Event {
        time: j.time.unwrap_or_default(),
        stream: j.stream,
        log,
        cursor: j.cursor,
        partial: j.partial,
        truncated: j.truncated,
        malformed: j.malformed,
        namespace: j.namespace,
        pod: j.pod,
        uid: j.uid,
        container: j.container,
        attempt: j.attempt,
        container_id: j.container_id,
        image: j.image,
        node: j.node,
        labels: j.labels,
        annotations: j.annotations,
        policy_annotations: j.policy_annotations,
    })
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
        let r = req.into_inner();
        let result = (|| {
            self.state.require_scan().map_err(|e| status(&e))?;
            let params = query::inventory_params(&selection(&r.namespace, &r.label_selector))
                .map_err(|e| status(&ApiError::Param(e)))?;
            let inv = inventory::build(
                &self.state.discovery,
                self.state.runtime.as_deref(),
                self.state.lifecycle.clone(),
                &self.state.node,
                &self.state.node_policy,
                &params,
            );
            Ok(Response::new(list_response(inv)))
        })();
        telemetry::grpc_request("List", result.as_ref().err().map_or("ok", code_name));
        result
    }

    type ReadStream = EventStream;

    async fn read(&self, req: Request<pb::ReadRequest>) -> Result<Response<EventStream>, Status> {
        let r = req.into_inner();
        let mut rx = match open(&self.state, &r).await {
            Ok(rx) => rx,
            Err(e) => {
                let st = status(&e);
                telemetry::grpc_request("Read", code_name(&st));
                return Err(st);
            }
        };
        telemetry::grpc_request("Read", "ok");
        let (tx, out) = mpsc::channel::<Result<pb::ReadResponse, Status>>(4);
        tokio::spawn(async move {
            // NDJSON chunks hold whole lines; a partial tail is kept anyway.
            let mut rest: Vec<u8> = Vec::new();
            loop {
                let chunk = tokio::select! {
                    c = rx.recv() => c,
                    _ = tx.closed() => return,
                };
                let Some(chunk) = chunk else { return };
                rest.extend_from_slice(&chunk);
                let mut events = Vec::new();
                let mut start = 0;
                while let Some(n) = memchr::memchr(b'\n', &rest[start..]) {
                    match event(&rest[start..start + n]) {
                        Ok(e) => events.push(e),
                        Err(st) => {
                            let _ = tx.send(Err(st)).await;
                            return;
                        }
                    }
                    start += n + 1;
                }
                rest.drain(..start);
                if !events.is_empty() && tx.send(Ok(pb::ReadResponse { events })).await.is_err() {
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
            let l = tokio::net::UnixListener::bind(p)?;
            Ok((Bound::Unix(l, p.clone()), format!("unix:{}", p.display())))
        }
    }
}

/// Serves gRPC until `cancel`.
pub(crate) async fn serve(bound: Bound, state: Arc<ApiState>, cancel: CancellationToken) {
    let svc = LogsServer::new(LogsService { state });
    let router = tonic::transport::Server::builder().add_service(svc);
    let r = match bound {
        Bound::Tcp(l) => {
            router
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(l),
                    cancel.cancelled(),
                )
                .await
        }
        Bound::Unix(l, path) => {
            let r = router
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::UnixListenerStream::new(l),
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
    fn request_becomes_http_pairs() {
        let r = pb::ReadRequest {
            follow: true,
            tail_lines: Some(0),
            stream: "stderr".into(),
            grep: "a|b".into(),
            ..Default::default()
        };
        let kv = log_pairs(&r);
        assert_eq!(kv.get("follow").map(String::as_str), Some("true"));
        assert_eq!(kv.get("tailLines").map(String::as_str), Some("0"));
        assert_eq!(kv.get("stream").map(String::as_str), Some("stderr"));
        assert!(!kv.contains_key("cursor") && !kv.contains_key("previous"));
        let p = query::log_params(&kv).unwrap();
        assert!(p.follow && p.tail_lines == Some(0));
        let bad = pb::ReadRequest {
            since_seconds: Some(0),
            ..Default::default()
        };
        assert_eq!(
            query::log_params(&log_pairs(&bad)).unwrap_err().parameter,
            "sinceSeconds"
        );
    }

    #[test]
    fn json_events_convert_exactly() {
        let line = br#"{"time":"2026-11-21T05:26:50.000000001Z","stream":"stderr","log":"x\ufffd","log_base64":"eP8=","cursor":"c1","namespace":"n","pod":"p","uid":"u","container":"c","attempt":2,"containerId":"abc","labels":{"app":"web"},"partial":true}"#;
        let e = event(line).unwrap();
        assert_eq!(e.log, b"x\xff");
        assert_eq!(e.stream, "stderr");
        assert_eq!(e.attempt, 2);
        assert_eq!(e.container_id, "abc");
        assert!(e.partial && !e.truncated);
        assert_eq!(e.labels.get("app").map(String::as_str), Some("web"));
        assert!(event(b"{not json").is_err());
    }
}
