//! The gRPC API (`podlog.v1.Logs`): `List` and `Read` give what the HTTP
//! API gives for the same parameters, over TCP and a Unix socket.

use crate::common;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use common::*;
use podlog_proto::podlog::logs_client::LogsClient;
use podlog_proto::podlog::{Event, ListRequest, ListResponse, ReadRequest, ReadResponse};
use serde_json::Value;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Code, Status, Streaming};

type Client = LogsClient<Channel>;

const NODE: &str = "node-grpc-test";
/// `maxEventBytes` of the fixture's daemon: small, so a long line is
/// served truncated.
const MAX_EVENT: usize = 1024;

struct Fx {
    d: Daemon,
    t: Tree,
    app: PathBuf,
}

/// Lines of attempt 1 of `default/web/app`, rotated part.
fn rotated() -> Vec<u8> {
    let mut v = cri_lines(&[
        ("2026-11-21T05:00:01.000000001Z", "stdout", "F", "one"),
        ("2026-11-21T05:00:02.5Z", "stderr", "F", "two-err"),
    ]);
    v.extend_from_slice(b"not a cri line at all\n");
    v.extend(cri("2026-11-21T05:00:03Z", "stdout", "P", "span-"));
    v
}

/// Lines of attempt 1 of `default/web/app`, active part.
fn active() -> Vec<u8> {
    let mut v = cri("2026-11-21T05:00:04Z", "stdout", "F", "rotation");
    v.extend(cri_bytes(
        "2026-11-21T05:00:05.123456789Z",
        "stdout",
        "F",
        b"bad\xff\xfeutf8 \xc3(",
    ));
    v.extend(cri("2026-11-21T05:00:06Z", "stderr", "P", "err-"));
    v.extend(cri("2026-11-21T05:00:07Z", "stdout", "F", "grep-me 1"));
    v.extend(cri("2026-11-21T05:00:08Z", "stderr", "F", "chain"));
    v.extend(cri(
        "2026-11-21T05:00:09Z",
        "stdout",
        "F",
        &"L".repeat(2 * MAX_EVENT + 100),
    ));
    v.extend(cri(
        "2026-11-21T01:00:10.5-04:00",
        "stdout",
        "F",
        "grep-me 2 \"quoted\" \\ \t tab",
    ));
    v.extend(cri("2026-11-21T05:00:11Z", "stderr", "F", "last"));
    v
}

/// `default/web` (containers `app`, with a finished attempt 0 and the
/// current attempt 1 split over a rotation, and `side`), `staging/web`
/// (so the short form `web` is ambiguous) and `default/solo`. The daemon
/// serves gRPC on `grpc` (`127.0.0.1:0` unless a test says otherwise).
fn fixture_on(grpc: &str) -> Fx {
    let t = Tree::new();
    let app = t.container("default", "web", "uid-web", "app");
    write_file(
        &app.join("0.log"),
        &cri_lines(&[
            ("2026-11-21T04:00:00Z", "stdout", "F", "run0-a"),
            ("2026-11-21T04:00:01Z", "stderr", "F", "run0-b"),
            ("2026-11-21T04:00:02Z", "stdout", "P", "run0-open-"),
        ]),
    );
    write_file(&app.join("1.log.20261121-050003"), &rotated());
    write_file(&app.join("1.log"), &active());
    let side = t.container("default", "web", "uid-web", "side");
    write_file(
        &side.join("0.log"),
        &cri_lines(&[
            ("2026-11-21T05:00:00.5Z", "stdout", "F", "side-1"),
            ("2026-11-21T05:00:06.5Z", "stderr", "F", "side-2"),
        ]),
    );
    let staging = t.container("staging", "web", "uid-web-2", "app");
    write_file(
        &staging.join("0.log"),
        &cri("2026-11-21T05:30:00Z", "stdout", "F", "staging"),
    );
    let solo = t.container("default", "solo", "uid-solo", "x");
    write_file(
        &solo.join("0.log"),
        &cri_lines(&[
            ("2026-11-21T05:40:00Z", "stdout", "F", "solo-1"),
            ("2026-11-21T05:40:01Z", "stdout", "F", "solo-2"),
        ]),
    );
    let config = t.outside.join("podlogd.yaml");
    write_file(
        &config,
        format!("nodeName: {NODE}\nmaxEventBytes: {MAX_EVENT}\n").as_bytes(),
    );
    let d = t.start_with(&[
        "--grpc-listen",
        grpc,
        "--config",
        config.to_str().expect("a UTF-8 temp path"),
    ]);
    Fx { d, t, app }
}

fn fixture() -> Fx {
    fixture_on("127.0.0.1:0")
}

async fn client(d: &Daemon) -> Client {
    let addr = d.grpc.as_deref().expect("gRPC is on");
    tokio::time::timeout(TIMEOUT, LogsClient::connect(format!("http://{addr}")))
        .await
        .expect("connect within the timeout")
        .expect("connect to the gRPC API")
}

/// A client over the Unix socket at `path`.
async fn unix_client(path: &Path) -> Client {
    let path = path.to_owned();
    // The URI is required but unused: the connector dials the socket.
    let endpoint = Endpoint::from_static("http://podlogd.invalid");
    let channel = endpoint.connect_with_connector(tower::service_fn(move |_: Uri| {
        let path = path.clone();
        async move {
            let s = tokio::net::UnixStream::connect(path).await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
        }
    }));
    let channel = tokio::time::timeout(TIMEOUT, channel)
        .await
        .expect("connect within the timeout")
        .expect("connect to the gRPC Unix socket");
    LogsClient::new(channel)
}

/// All events of a (non-follow) `Read`, or its status.
async fn read(c: &mut Client, r: ReadRequest) -> Result<Vec<Event>, Status> {
    let what = format!("{r:?}");
    let fut = async {
        let mut s = c.read(r).await?.into_inner();
        let mut out = Vec::new();
        while let Some(m) = s.message().await? {
            assert!(!m.events.is_empty(), "a ReadResponse without events");
            out.extend(m.events);
        }
        Ok(out)
    };
    tokio::time::timeout(TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| panic!("Read {what} did not complete within {TIMEOUT:?}"))
}

async fn read_ok(c: &mut Client, r: ReadRequest) -> Vec<Event> {
    let what = format!("{r:?}");
    read(c, r)
        .await
        .unwrap_or_else(|st| panic!("Read {what}: {st:?}"))
}

async fn read_err(c: &mut Client, r: ReadRequest) -> Status {
    let what = format!("{r:?}");
    match read(c, r).await {
        Ok(evs) => panic!("Read {what} succeeded with {} events", evs.len()),
        Err(st) => st,
    }
}

/// The HTTP request equivalent to a `ReadRequest`, in `json`.
fn http_target(r: &ReadRequest) -> String {
    let mut q: Vec<(&str, String)> = vec![("format", "json".into())];
    let path = if r.pod.is_empty() {
        for (k, v) in [
            ("namespace", &r.namespace),
            ("labelSelector", &r.label_selector),
            ("container", &r.container),
        ] {
            if !v.is_empty() {
                q.push((k, v.clone()));
            }
        }
        "/logs".to_owned()
    } else if r.namespace.is_empty() {
        format!("/logs/{}/{}", r.pod, r.container)
    } else {
        format!("/logs/{}/{}/{}", r.namespace, r.pod, r.container)
    };
    for (k, on) in [
        ("follow", r.follow),
        ("previous", r.previous),
        ("labels", r.labels),
        ("annotations", r.annotations),
    ] {
        if on {
            q.push((k, "true".into()));
        }
    }
    for (k, n) in [
        ("tailLines", r.tail_lines),
        ("sinceSeconds", r.since_seconds),
        ("limitBytes", r.limit_bytes),
        ("attempt", r.attempt.map(u64::from)),
    ] {
        if let Some(n) = n {
            q.push((k, n.to_string()));
        }
    }
    for (k, s) in [
        ("sinceTime", &r.since_time),
        ("untilTime", &r.until_time),
        ("stream", &r.stream),
        ("cursor", &r.cursor),
        ("grep", &r.grep),
    ] {
        if !s.is_empty() {
            q.push((k, s.clone()));
        }
    }
    let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
    format!("{path}?{}", query(&pairs))
}

/// The members of an HTTP `json` event that an `Event` carries.
const KNOWN: [&str; 18] = [
    "time",
    "stream",
    "log",
    "log_base64",
    "cursor",
    "partial",
    "truncated",
    "malformed",
    "namespace",
    "pod",
    "uid",
    "container",
    "attempt",
    "node",
    "containerId",
    "image",
    "labels",
    "annotations",
];

fn flag(h: &Value, k: &str) -> bool {
    match h.get(k) {
        None => false,
        Some(Value::Bool(true)) => true,
        Some(v) => panic!("{k} is present only when true, got {v} in {h}"),
    }
}

fn string_map(h: &Value, k: &str) -> HashMap<String, String> {
    match h.get(k) {
        None => HashMap::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("a string value").to_owned()))
            .collect(),
        Some(v) => panic!("{k} is an object, got {v}"),
    }
}

/// The exact bytes of an HTTP `json` event's content.
fn log_bytes(h: &Value) -> Vec<u8> {
    match h.get("log_base64") {
        Some(b) => base64::engine::general_purpose::STANDARD
            .decode(b.as_str().expect("log_base64 is a string"))
            .expect("log_base64 decodes"),
        None => h["log"].as_str().expect("log").as_bytes().to_vec(),
    }
}

/// An event in one line, for comparing lists of events; the log is cut
/// to 40 bytes.
fn summarize(e: &Event) -> String {
    let log = String::from_utf8_lossy(&e.log[..e.log.len().min(40)]).into_owned();
    format!(
        "{} {} {log:?} ({} bytes) {} p={} t={} m={} {}/{}/{}/{}#{}",
        e.time,
        e.stream,
        e.log.len(),
        e.cursor,
        e.partial,
        e.truncated,
        e.malformed,
        e.namespace,
        e.pod,
        e.uid,
        e.container,
        e.attempt
    )
}

/// Asserts that gRPC events are the HTTP `json` events, field by field.
fn assert_same(http: &[Value], grpc: &[Event], what: &str) {
    let n = http.len().min(grpc.len());
    for (i, (h, g)) in http.iter().zip(grpc).enumerate().take(n) {
        let at = format!("{what}: event {i} ({})", h["log"]);
        for k in h.as_object().expect("an object").keys() {
            assert!(KNOWN.contains(&k.as_str()), "{at}: unknown member {k}");
        }
        assert_eq!(g.time, h["time"].as_str().unwrap_or(""), "{at}: time");
        assert_eq!(
            g.stream,
            h["stream"].as_str().expect("stream"),
            "{at}: stream"
        );
        assert_eq!(
            String::from_utf8_lossy(&g.log),
            String::from_utf8_lossy(&log_bytes(h)),
            "{at}: log"
        );
        assert_eq!(g.log, log_bytes(h), "{at}: log bytes");
        assert_eq!(
            g.cursor,
            h["cursor"].as_str().expect("cursor"),
            "{at}: cursor"
        );
        assert_eq!(g.partial, flag(h, "partial"), "{at}: partial");
        assert_eq!(g.truncated, flag(h, "truncated"), "{at}: truncated");
        assert_eq!(g.malformed, flag(h, "malformed"), "{at}: malformed");
        for (k, v) in [
            ("namespace", &g.namespace),
            ("pod", &g.pod),
            ("uid", &g.uid),
            ("container", &g.container),
            ("node", &g.node),
            ("containerId", &g.container_id),
            ("image", &g.image),
        ] {
            assert_eq!(v, h[k].as_str().unwrap_or(""), "{at}: {k}");
        }
        assert_eq!(
            Some(u64::from(g.attempt)),
            h["attempt"].as_u64(),
            "{at}: attempt"
        );
        assert_eq!(g.labels, string_map(h, "labels"), "{at}: labels");
        assert_eq!(
            g.annotations,
            string_map(h, "annotations"),
            "{at}: annotations"
        );
    }
    assert_eq!(grpc.len(), http.len(), "{what}: number of events");
}

/// Reads `r` over gRPC and HTTP, asserts the events are the same, and
/// returns them (HTTP form).
async fn same_read(d: &Daemon, c: &mut Client, r: ReadRequest) -> Vec<Value> {
    let target = http_target(&r);
    let http = get_events(d.addr, &target).await;
    let grpc = read_ok(c, r).await;
    assert_same(&http, &grpc, &target);
    http
}

fn app() -> ReadRequest {
    ReadRequest {
        namespace: "default".into(),
        pod: "web".into(),
        container: "app".into(),
        ..Default::default()
    }
}

fn logs_of(evs: &[Value]) -> Vec<String> {
    evs.iter()
        .map(|e| String::from_utf8_lossy(&log_bytes(e)).into_owned())
        .collect()
}

#[tokio::test]
async fn grpc_listens_on_its_own_address() {
    let f = fixture();
    let g: std::net::SocketAddr =
        f.d.grpc
            .as_deref()
            .expect("the grpc listening line")
            .parse()
            .expect("ADDR:PORT");
    assert!(g.ip().is_loopback());
    assert_ne!(g.port(), 0);
    assert_ne!(g, f.d.addr);
    // HTTP still serves.
    assert_eq!(get_text(f.d.addr, "/healthz").await, "ok\n");
    let mut c = client(&f.d).await;
    let l = c.list(ListRequest::default()).await.expect("List");
    assert_eq!(l.into_inner().node, NODE);
}

/// Asserts that a `List` answer is the HTTP inventory.
fn assert_list_is_inventory(l: &ListResponse, inv: &Value, what: &str) {
    assert_eq!(l.node, inv["node"].as_str().unwrap(), "{what}: node");
    assert_eq!(
        l.log_root,
        inv["logRoot"].as_str().unwrap(),
        "{what}: logRoot"
    );
    assert_eq!(l.mode, "directory", "{what}: mode");
    assert!(l.runtime.is_none(), "{what}: no runtime in directory mode");
    let pods = inv["pods"].as_array().unwrap();
    assert_eq!(l.pods.len(), pods.len(), "{what}: pods");
    for (g, h) in l.pods.iter().zip(pods) {
        let at = format!("{what}: pod {}/{}", h["namespace"], h["pod"]);
        assert_eq!(g.namespace, h["namespace"].as_str().unwrap(), "{at}");
        assert_eq!(g.name, h["pod"].as_str().unwrap(), "{at}");
        assert_eq!(g.uid, h["uid"].as_str().unwrap(), "{at}");
        assert_eq!(g.labels, string_map(h, "labels"), "{at}: labels");
        assert!(g.labels.is_empty(), "{at}: directory mode has no labels");
        let cs = h["containers"].as_array().unwrap();
        assert_eq!(g.containers.len(), cs.len(), "{at}: containers");
        for (gc, hc) in g.containers.iter().zip(cs) {
            let at = format!("{at} container {}", hc["name"]);
            assert_eq!(gc.name, hc["name"].as_str().unwrap(), "{at}");
            let attempts: Vec<u32> = hc["attempts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(gc.attempts, attempts, "{at}: attempts");
            assert_eq!(
                gc.current_attempt.map(u64::from),
                hc["currentAttempt"].as_u64(),
                "{at}: currentAttempt"
            );
            assert_eq!(Some(gc.bytes), hc["bytes"].as_u64(), "{at}: bytes");
            assert_eq!(
                gc.first_time,
                hc["firstTime"].as_str().unwrap_or(""),
                "{at}: firstTime"
            );
            assert_eq!(
                gc.last_time,
                hc["lastTime"].as_str().unwrap_or(""),
                "{at}: lastTime"
            );
            let files = hc["files"].as_array().unwrap();
            assert_eq!(gc.files.len(), files.len(), "{at}: files");
            for (gf, hf) in gc.files.iter().zip(files) {
                assert_eq!(gf.name, hf["name"].as_str().unwrap(), "{at}");
                assert_eq!(Some(u64::from(gf.attempt)), hf["attempt"].as_u64(), "{at}");
                assert_eq!(Some(gf.bytes), hf["bytes"].as_u64(), "{at}");
                assert_eq!(Some(gf.compressed), hf["compressed"].as_bool(), "{at}");
            }
        }
    }
}

#[tokio::test]
async fn list_matches_the_http_inventory() {
    let f = fixture();
    let mut c = client(&f.d).await;
    for (ns, sel, q) in [
        ("", "", ""),
        ("default", "", "namespace=default"),
        ("staging", "", "namespace=staging"),
        ("nope", "", "namespace=nope"),
        ("", "!app", "labelSelector=%21app"),
        ("", "app=web", "labelSelector=app%3Dweb"),
    ] {
        let l = c
            .list(ListRequest {
                namespace: ns.into(),
                label_selector: sel.into(),
            })
            .await
            .unwrap_or_else(|st| panic!("List {q}: {st:?}"))
            .into_inner();
        let inv = inventory(f.d.addr, q).await;
        assert_list_is_inventory(&l, &inv, q);
    }
    let all = c.list(ListRequest::default()).await.unwrap().into_inner();
    let names: Vec<String> = all
        .pods
        .iter()
        .map(|p| format!("{}/{}", p.namespace, p.name))
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    let web = all
        .pods
        .iter()
        .find(|p| p.namespace == "default" && p.name == "web")
        .expect("default/web");
    let app = web.containers.iter().find(|c| c.name == "app").unwrap();
    assert_eq!(app.attempts, vec![0, 1]);
    assert_eq!(app.current_attempt, Some(1));
    assert_eq!(app.files.len(), 3);
    let on_disk: u64 = ["0.log", "1.log.20261121-050003", "1.log"]
        .iter()
        .map(|n| std::fs::metadata(f.app.join(n)).unwrap().len())
        .sum();
    assert_eq!(app.bytes, on_disk);

    // A bad selector: the HTTP error, as InvalidArgument.
    let st = c
        .list(ListRequest {
            namespace: String::new(),
            label_selector: "a b".into(),
        })
        .await
        .expect_err("a bad selector");
    assert_eq!(st.code(), Code::InvalidArgument, "{st:?}");
    let r = get(f.d.addr, "/logs?labelSelector=a%20b").await;
    assert_error(&r, 400, "BadRequest", Some("labelSelector"));
    assert_eq!(st.message(), r.json()["error"].as_str().unwrap());
    let st = c
        .list(ListRequest {
            namespace: "..".into(),
            label_selector: String::new(),
        })
        .await
        .expect_err("a bad namespace");
    assert_eq!(st.code(), Code::InvalidArgument, "{st:?}");
    assert!(st.message().starts_with("namespace"), "{st:?}");
}

#[tokio::test]
async fn read_returns_the_http_events() {
    let f = fixture();
    let mut c = client(&f.d).await;

    let all = same_read(&f.d, &mut c, app()).await;
    assert_eq!(
        logs_of(&all)[..6],
        [
            "one",
            "two-err",
            "not a cri line at all",
            "span-rotation",
            "bad\u{fffd}\u{fffd}utf8 \u{fffd}(",
            "grep-me 1",
        ]
    );
    // What the side-by-side comparison covers: raw bytes, flags, identity.
    assert!(all.iter().any(|e| e.get("log_base64").is_some()));
    assert!(all.iter().any(|e| e["malformed"] == true));
    assert!(all.iter().any(|e| e["truncated"] == true));
    assert_eq!(all[2]["malformed"], true);
    assert_eq!(all[2]["stream"], "unknown");
    assert_eq!(all.len(), 12, "{:?}", logs_of(&all));
    assert!(all.iter().all(|e| e["node"] == NODE && e["attempt"] == 1));
    let g = read_ok(&mut c, app()).await;
    let bad = g.iter().find(|e| e.log.starts_with(b"bad")).unwrap();
    assert_eq!(bad.log, b"bad\xff\xfeutf8 \xc3(");
    assert_eq!(bad.time, "2026-11-21T05:00:05.123456789Z");
    assert_eq!(bad.uid, "uid-web");

    let since = "2026-11-21T05:00:04Z".to_owned();
    let until = "2026-11-21T05:00:09Z".to_owned();
    // The number of events each read returns; `None`: some.
    let cases: Vec<(ReadRequest, Option<usize>)> = vec![
        (
            ReadRequest {
                tail_lines: Some(3),
                ..app()
            },
            Some(3),
        ),
        (
            ReadRequest {
                tail_lines: Some(0),
                ..app()
            },
            Some(0),
        ),
        (
            ReadRequest {
                stream: "stderr".into(),
                ..app()
            },
            Some(3),
        ),
        (
            ReadRequest {
                stream: "stdout".into(),
                tail_lines: Some(2),
                ..app()
            },
            Some(2),
        ),
        (
            ReadRequest {
                grep: "^grep-me".into(),
                ..app()
            },
            Some(2),
        ),
        (
            ReadRequest {
                since_time: since.clone(),
                ..app()
            },
            Some(8),
        ),
        (
            ReadRequest {
                since_time: since.clone(),
                until_time: until.clone(),
                ..app()
            },
            Some(3),
        ),
        (
            ReadRequest {
                until_time: "2026-11-21T05:00:03Z".into(),
                stream: "all".into(),
                ..app()
            },
            Some(3),
        ),
        (
            ReadRequest {
                limit_bytes: Some(700),
                ..app()
            },
            None,
        ),
        (
            ReadRequest {
                previous: true,
                ..app()
            },
            Some(3),
        ),
        (
            ReadRequest {
                attempt: Some(0),
                tail_lines: Some(1),
                ..app()
            },
            Some(1),
        ),
        (
            ReadRequest {
                labels: true,
                annotations: true,
                ..app()
            },
            None,
        ),
        (
            ReadRequest {
                since_seconds: Some(1 << 40),
                ..app()
            },
            None,
        ),
        (
            ReadRequest {
                namespace: String::new(),
                pod: "solo".into(),
                container: "x".into(),
                ..Default::default()
            },
            Some(2),
        ),
        (
            ReadRequest {
                container: "side".into(),
                follow: false,
                ..app()
            },
            Some(2),
        ),
    ];
    for (r, want) in cases {
        let what = http_target(&r);
        let evs = same_read(&f.d, &mut c, r).await;
        match want {
            Some(n) => assert_eq!(evs.len(), n, "{what}"),
            None => assert!(!evs.is_empty(), "{what}: something to compare"),
        }
    }
    // Spot checks that the parameters did something.
    let prev = read_ok(
        &mut c,
        ReadRequest {
            previous: true,
            ..app()
        },
    )
    .await;
    assert_eq!(prev.last().unwrap().log, b"run0-open-");
    assert!(prev.last().unwrap().partial);
    assert!(prev.iter().all(|e| e.attempt == 0));
    let err = read_ok(
        &mut c,
        ReadRequest {
            stream: "stderr".into(),
            ..app()
        },
    )
    .await;
    assert!(err.iter().all(|e| e.stream == "stderr"));
    let win = read_ok(
        &mut c,
        ReadRequest {
            since_time: since,
            until_time: until,
            ..app()
        },
    )
    .await;
    let logs: Vec<String> = win
        .iter()
        .map(|e| String::from_utf8_lossy(&e.log).into_owned())
        .collect();
    assert_eq!(
        logs,
        // An event's time is its first line's: "span-" was written at :03.
        [
            "bad\u{fffd}\u{fffd}utf8 \u{fffd}(",
            "grep-me 1",
            "err-chain"
        ]
    );
    let labelled = read_ok(
        &mut c,
        ReadRequest {
            labels: true,
            ..app()
        },
    )
    .await;
    assert!(labelled.iter().all(|e| e.labels.is_empty()));
}

#[tokio::test]
async fn cursors_resume_over_grpc_and_http_alike() {
    let f = fixture();
    let mut c = client(&f.d).await;
    let all = read_ok(&mut c, app()).await;
    assert!(all.len() > 5);
    for (k, e) in all.iter().enumerate() {
        let r = ReadRequest {
            cursor: e.cursor.clone(),
            ..app()
        };
        let target = http_target(&r);
        let http = get_events(f.d.addr, &target).await;
        let grpc = read_ok(&mut c, r).await;
        assert_same(&http, &grpc, &target);
        let summary = |evs: &[Event]| -> Vec<String> { evs.iter().map(summarize).collect() };
        assert_eq!(
            summary(&grpc),
            summary(&all[k + 1..]),
            "resuming after event {k}"
        );
        assert!(grpc[..] == all[k + 1..], "resuming after event {k}");
    }
    // With filters after the cursor.
    let r = ReadRequest {
        cursor: all[1].cursor.clone(),
        stream: "stderr".into(),
        grep: "chain|last".into(),
        ..app()
    };
    let evs = same_read(&f.d, &mut c, r).await;
    assert_eq!(logs_of(&evs), ["err-chain", "last"]);
    // The short form resumes too.
    let solo = read_ok(
        &mut c,
        ReadRequest {
            pod: "solo".into(),
            container: "x".into(),
            ..Default::default()
        },
    )
    .await;
    let r = ReadRequest {
        pod: "solo".into(),
        container: "x".into(),
        cursor: solo[0].cursor.clone(),
        ..Default::default()
    };
    let evs = same_read(&f.d, &mut c, r).await;
    assert_eq!(logs_of(&evs), ["solo-2"]);
}

/// Asserts that `r` fails over gRPC with `code` and over HTTP with
/// `status`, with the same message (gRPC may add to it).
async fn same_error(d: &Daemon, c: &mut Client, r: ReadRequest, code: Code, status: u16) -> Status {
    let target = http_target(&r);
    let st = read_err(c, r).await;
    assert_eq!(st.code(), code, "{target}: {st:?}");
    let h = get(d.addr, &target).await;
    h.expect_status(status);
    let msg = h.json()["error"].as_str().expect("error").to_owned();
    assert!(
        st.message().starts_with(&msg),
        "{target}: gRPC message {:?}, HTTP error {msg:?}",
        st.message()
    );
    if code != Code::FailedPrecondition {
        assert_eq!(st.message(), msg, "{target}");
    }
    st
}

#[tokio::test]
async fn errors_map_to_grpc_codes() {
    let f = fixture();
    let mut c = client(&f.d).await;
    let bad: Vec<(ReadRequest, &str)> = vec![
        (
            ReadRequest {
                since_seconds: Some(0),
                ..app()
            },
            "sinceSeconds",
        ),
        (
            ReadRequest {
                limit_bytes: Some(0),
                ..app()
            },
            "limitBytes",
        ),
        (
            ReadRequest {
                since_time: "yesterday".into(),
                ..app()
            },
            "sinceTime",
        ),
        (
            ReadRequest {
                until_time: "2026-11-21".into(),
                ..app()
            },
            "untilTime",
        ),
        (
            ReadRequest {
                stream: "stdin".into(),
                ..app()
            },
            "stream",
        ),
        (
            ReadRequest {
                grep: "(".into(),
                ..app()
            },
            "grep",
        ),
        (
            ReadRequest {
                previous: true,
                attempt: Some(0),
                ..app()
            },
            "attempt",
        ),
        (
            ReadRequest {
                cursor: "not-a-cursor".into(),
                ..app()
            },
            "cursor",
        ),
        (
            ReadRequest {
                cursor: "AAAA".into(),
                tail_lines: Some(1),
                ..app()
            },
            "cursor",
        ),
        (
            ReadRequest {
                since_seconds: Some(5),
                since_time: "2026-11-21T05:00:00Z".into(),
                ..app()
            },
            "sinceSeconds",
        ),
    ];
    for (r, param) in bad {
        let st = same_error(&f.d, &mut c, r, Code::InvalidArgument, 400).await;
        assert!(
            st.message().starts_with(&format!("{param}: ")),
            "{param}: {st:?}"
        );
    }
    // A cursor of another container.
    let side = read_ok(
        &mut c,
        ReadRequest {
            container: "side".into(),
            ..app()
        },
    )
    .await;
    let st = same_error(
        &f.d,
        &mut c,
        ReadRequest {
            cursor: side[0].cursor.clone(),
            ..app()
        },
        Code::InvalidArgument,
        400,
    )
    .await;
    assert!(st.message().starts_with("cursor"), "{st:?}");

    // Names that cannot be pods or containers: the error of the same
    // invalid path segment over HTTP.
    for (r, param, target) in [
        (
            ReadRequest {
                pod: "..".into(),
                ..app()
            },
            "pod",
            "/logs/default/%2E%2E/app",
        ),
        (
            ReadRequest {
                container: "a/b".into(),
                ..app()
            },
            "container",
            "/logs/default/web/a%2Fb",
        ),
        (
            ReadRequest {
                container: String::new(),
                ..app()
            },
            "container",
            "/logs/default/web/",
        ),
        (
            ReadRequest {
                namespace: "..".into(),
                ..app()
            },
            "namespace",
            "/logs/%2E%2E/web/app",
        ),
    ] {
        let st = read_err(&mut c, r).await;
        assert_eq!(st.code(), Code::InvalidArgument, "{param}: {st:?}");
        let h = get(f.d.addr, target).await;
        assert_error(&h, 400, "BadRequest", Some(param));
        assert_eq!(
            st.message(),
            h.json()["error"].as_str().unwrap(),
            "{target}"
        );
        assert!(st.message().contains(param), "{param}: {st:?}");
    }

    // Not found: pod, container, attempt.
    for r in [
        ReadRequest {
            pod: "nope".into(),
            ..app()
        },
        ReadRequest {
            namespace: String::new(),
            pod: "nope".into(),
            ..app()
        },
        ReadRequest {
            container: "nope".into(),
            ..app()
        },
        ReadRequest {
            attempt: Some(7),
            ..app()
        },
        ReadRequest {
            container: "side".into(),
            previous: true,
            ..app()
        },
        ReadRequest {
            namespace: "staging".into(),
            pod: "solo".into(),
            container: "x".into(),
            ..Default::default()
        },
    ] {
        same_error(&f.d, &mut c, r, Code::NotFound, 404).await;
    }

    // The short form of a name two namespaces share.
    let st = same_error(
        &f.d,
        &mut c,
        ReadRequest {
            namespace: String::new(),
            ..app()
        },
        Code::FailedPrecondition,
        409,
    )
    .await;
    for cand in ["default/web", "staging/web"] {
        assert!(st.message().contains(cand), "{cand} in {st:?}");
    }
    let h = get(f.d.addr, "/logs/web/app").await;
    assert_eq!(
        h.json()["candidates"],
        serde_json::json!(["default/web", "staging/web"])
    );

    // A label selector needs the merged form.
    let st = read_err(
        &mut c,
        ReadRequest {
            label_selector: "app=web".into(),
            ..app()
        },
    )
    .await;
    assert_eq!(st.code(), Code::InvalidArgument, "{st:?}");
    assert!(st.message().starts_with("label_selector"), "{st:?}");
}

#[tokio::test]
async fn merged_read_matches_the_http_merged_read() {
    let f = fixture();
    let mut c = client(&f.d).await;
    let default = ReadRequest {
        namespace: "default".into(),
        ..Default::default()
    };
    let evs = same_read(&f.d, &mut c, default.clone()).await;
    let mut ids: Vec<String> = evs
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e["pod"].as_str().unwrap(),
                e["container"].as_str().unwrap()
            )
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids, ["solo/x", "web/app", "web/side"]);
    for r in [
        ReadRequest {
            container: "app".into(),
            ..Default::default()
        },
        ReadRequest {
            container: "app".into(),
            previous: true,
            ..Default::default()
        },
        ReadRequest {
            tail_lines: Some(1),
            stream: "stdout".into(),
            ..default.clone()
        },
        ReadRequest {
            grep: "side|solo".into(),
            labels: true,
            ..default.clone()
        },
        ReadRequest {
            label_selector: "!app".into(),
            ..Default::default()
        },
    ] {
        let what = http_target(&r);
        let evs = same_read(&f.d, &mut c, r).await;
        assert!(!evs.is_empty(), "{what}");
    }
    // Errors as over HTTP.
    let st = same_error(
        &f.d,
        &mut c,
        ReadRequest {
            label_selector: "app=web".into(),
            ..Default::default()
        },
        Code::NotFound,
        404,
    )
    .await;
    assert!(
        st.message().contains("no container with logs matches"),
        "{st:?}"
    );
    for (r, param) in [
        (
            ReadRequest {
                cursor: "abc".into(),
                ..default.clone()
            },
            "cursor",
        ),
        (
            ReadRequest {
                attempt: Some(0),
                ..default.clone()
            },
            "attempt",
        ),
        (
            ReadRequest {
                label_selector: "a b".into(),
                ..Default::default()
            },
            "labelSelector",
        ),
    ] {
        let st = same_error(&f.d, &mut c, r, Code::InvalidArgument, 400).await;
        assert!(st.message().starts_with(param), "{param}: {st:?}");
    }
}

/// A followed `Read`, event by event.
struct GrpcFollow {
    s: Streaming<ReadResponse>,
    pending: VecDeque<Event>,
}

impl GrpcFollow {
    async fn open(c: &mut Client, r: ReadRequest) -> GrpcFollow {
        let s = tokio::time::timeout(TIMEOUT, c.read(r))
            .await
            .expect("Read answers within the timeout")
            .expect("Read")
            .into_inner();
        GrpcFollow {
            s,
            pending: VecDeque::new(),
        }
    }

    /// The next event, `None` once the stream ended.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            let m = tokio::time::timeout(TIMEOUT, self.s.message())
                .await
                .unwrap_or_else(|_| panic!("no event within {TIMEOUT:?}"))
                .expect("the stream failed");
            match m {
                None => return None,
                Some(m) => self.pending.extend(m.events),
            }
        }
    }

    async fn next_log(&mut self) -> String {
        let e = self.next().await.expect("an event, not the end");
        String::from_utf8(e.log).expect("UTF-8")
    }
}

#[tokio::test]
async fn follow_over_grpc_sees_appended_lines() {
    let f = fixture();
    let mut c = client(&f.d).await;
    let mut fol = GrpcFollow::open(
        &mut c,
        ReadRequest {
            follow: true,
            tail_lines: Some(1),
            ..app()
        },
    )
    .await;
    assert_eq!(fol.next_log().await, "last");
    let log = f.app.join("1.log");
    append(&log, &cri("2026-11-21T06:00:00Z", "stdout", "F", "new-1"));
    let e = fol.next().await.unwrap();
    assert_eq!(e.log, b"new-1");
    assert_eq!(e.time, "2026-11-21T06:00:00.000000000Z");
    assert_eq!((e.attempt, e.pod.as_str()), (1, "web"));
    // A chain arrives once complete, after the other stream's line.
    append(&log, &cri("2026-11-21T06:00:01Z", "stdout", "P", "part-"));
    append(&log, &cri("2026-11-21T06:00:02Z", "stderr", "F", "sync"));
    assert_eq!(fol.next_log().await, "sync");
    append(&log, &cri("2026-11-21T06:00:03Z", "stdout", "F", "end"));
    assert_eq!(fol.next_log().await, "part-end");
    for i in 0..30 {
        append(
            &log,
            &cri("2026-11-21T06:00:04Z", "stdout", "F", &format!("burst-{i}")),
        );
    }
    for i in 0..30 {
        assert_eq!(fol.next_log().await, format!("burst-{i}"));
    }
    // The cursor of a followed event resumes after it.
    append(&log, &cri("2026-11-21T06:00:05Z", "stdout", "F", "tail"));
    let e = fol.next().await.unwrap();
    let after = read_ok(
        &mut c,
        ReadRequest {
            cursor: e.cursor,
            ..app()
        },
    )
    .await;
    assert!(after.is_empty(), "{after:?}");
    // A newer attempt ends the stream.
    write_file(
        &f.app.join("2.log"),
        &cri("2026-11-21T06:01:00Z", "stdout", "F", "run-2"),
    );
    assert!(fol.next().await.is_none(), "the stream ends");
}

#[tokio::test]
async fn merged_follow_over_grpc() {
    let f = fixture();
    let mut c = client(&f.d).await;
    let mut fol = GrpcFollow::open(
        &mut c,
        ReadRequest {
            namespace: "default".into(),
            follow: true,
            tail_lines: Some(0),
            ..Default::default()
        },
    )
    .await;
    let side = f.t.container("default", "web", "uid-web", "side");
    append(
        &side.join("0.log"),
        &cri("2026-11-21T06:00:00Z", "stdout", "F", "side-live"),
    );
    let e = fol.next().await.unwrap();
    assert_eq!(
        (e.container.as_str(), e.log.as_slice()),
        ("side", &b"side-live"[..])
    );
    append(
        &f.app.join("1.log"),
        &cri("2026-11-21T06:00:01Z", "stderr", "F", "app-live"),
    );
    let e = fol.next().await.unwrap();
    assert_eq!(
        (e.container.as_str(), e.log.as_slice()),
        ("app", &b"app-live"[..])
    );
    assert_eq!(e.stream, "stderr");
    // A new pod joins (built outside the root and renamed in whole; merged.rs
    // covers pods created in place).
    let staged = f.t.outside.join("default_fresh_uid-fresh");
    std::fs::create_dir_all(staged.join("c")).unwrap();
    write_file(
        &staged.join("c").join("0.log"),
        &cri("2026-11-21T06:00:02Z", "stdout", "F", "fresh-1"),
    );
    std::fs::rename(&staged, f.t.root.join("default_fresh_uid-fresh")).unwrap();
    let e = fol.next().await.unwrap();
    assert_eq!(
        (e.pod.as_str(), e.log.as_slice()),
        ("fresh", &b"fresh-1"[..])
    );
}

// Several threads: the client's connection must keep running while the
// test thread waits for the daemon to exit (an HTTP/2 graceful shutdown
// waits for the client to answer its GOAWAY ping).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_on_a_unix_socket() {
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join("g.sock");
    let mut f = fixture_on(&format!("unix:{}", sock.display()));
    assert_eq!(
        f.d.grpc.as_deref(),
        Some(format!("unix:{}", sock.display()).as_str())
    );
    // 0660 whatever the umask (the tests' is 022, which gave 0755).
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "{mode:o}");
    assert_eq!(std::fs::read_dir(sock_dir.path()).unwrap().count(), 1);
    let mut c = unix_client(&sock).await;
    let l = c
        .list(ListRequest::default())
        .await
        .expect("List")
        .into_inner();
    let inv = inventory(f.d.addr, "").await;
    assert_list_is_inventory(&l, &inv, "unix");
    same_read(&f.d, &mut c, app()).await;
    let mut fol = GrpcFollow::open(
        &mut c,
        ReadRequest {
            follow: true,
            tail_lines: Some(0),
            ..app()
        },
    )
    .await;
    append(
        &f.app.join("1.log"),
        &cri("2026-11-21T06:00:00Z", "stdout", "F", "over-unix"),
    );
    assert_eq!(fol.next_log().await, "over-unix");
    // Shutdown ends the stream and removes the socket.
    let st = f.d.terminate();
    assert!(st.success(), "exit status {st}");
    assert!(fol.next().await.is_none(), "the stream ends at shutdown");
    assert!(!sock.exists(), "the socket file is removed");
}

#[tokio::test]
async fn a_stale_unix_socket_is_replaced() {
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join("g.sock");
    // A socket file left behind by a process that is gone.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let f = fixture_on(&format!("unix:{}", sock.display()));
    let mut c = unix_client(&sock).await;
    let evs = read_ok(
        &mut c,
        ReadRequest {
            pod: "solo".into(),
            container: "x".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(evs.len(), 2);
    drop(f);
}

#[tokio::test]

async fn a_malformed_event_keeps_its_time_after_a_cursor() {
    let f = fixture();
    let mut c = client(&f.d).await;
    let all = get_events(f.d.addr, &http_target(&app())).await;
    let k = all
        .iter()
        .position(|e| e["malformed"] == true)
        .expect("a malformed event");
    assert!(k > 0);
    // It has the time of the valid line before it.
    assert_eq!(all[k]["time"], "2026-11-21T05:00:02.500000000Z");
    let r = ReadRequest {
        cursor: all[k - 1]["cursor"].as_str().unwrap().to_owned(),
        ..app()
    };
    let after = get_events(f.d.addr, &http_target(&r)).await;
    assert_eq!(after[0]["log"], all[k]["log"]);
    assert_eq!(
        after[0]["time"], all[k]["time"],
        "the same event, resumed from the cursor before it, has another time"
    );
    let g = read_ok(&mut c, r).await;
    assert_eq!(g[0].time, "2026-11-21T05:00:02.500000000Z");
}

/// A daemon with gRPC on, container `default/web/app` holding one line,
/// and `yaml` as its configuration file.
fn limited(yaml: &str) -> (Tree, Daemon) {
    crate::connections::one_line(yaml, &["--grpc-listen", "127.0.0.1:0"])
}

#[tokio::test]
async fn reads_past_max_reads_are_resource_exhausted() {
    let (_t, d) = crate::connections::big(
        "maxReads: 1\nmaxFollowers: 1\n",
        48,
        &["--grpc-listen", "127.0.0.1:0"],
    );
    let mut c = client(&d).await;
    // A read whose client takes one message and no more holds its place.
    let mut held = c.read(app()).await.expect("the read starts").into_inner();
    let first = held.message().await.unwrap().expect("a response");
    assert_eq!(first.events[0].log.len(), 990);
    let st = read_err(&mut c, app()).await;
    assert_eq!(st.code(), Code::ResourceExhausted, "{st:?}");
    assert!(st.message().contains("maxReads"), "{st:?}");
    // HTTP says the same, as 429.
    let r = get(d.addr, "/logs/default/web/app").await;
    assert_error(&r, 429, "TooManyRequests", None);
    // One follower still fits; a second is refused, naming its limit.
    let mut f = c
        .read(ReadRequest {
            follow: true,
            tail_lines: Some(1),
            ..app()
        })
        .await
        .expect("a follow starts")
        .into_inner();
    assert!(f.message().await.unwrap().is_some());
    let st = read_err(
        &mut c,
        ReadRequest {
            follow: true,
            ..app()
        },
    )
    .await;
    assert_eq!(st.code(), Code::ResourceExhausted, "{st:?}");
    assert!(st.message().contains("maxFollowers"), "{st:?}");
    drop(held);
}

#[tokio::test]
async fn grpc_connections_past_max_connections_are_closed() {
    let (_t, d) = limited("maxConnections: 1\n");
    let mut first = client(&d).await;
    read_ok(&mut first, app()).await;
    // A second connection is closed at once: the call fails, unserved.
    let addr = d.grpc.as_deref().unwrap();
    let second = async {
        let mut c = LogsClient::connect(format!("http://{addr}")).await?;
        c.read(app()).await.map(|_| ()).map_err(Into::into)
    };
    let r: Result<(), Box<dyn std::error::Error + Send + Sync>> =
        tokio::time::timeout(TIMEOUT, second)
            .await
            .expect("an answer within the timeout");
    assert!(r.is_err(), "a second connection was served");
    let refused = metric(
        d.addr,
        "podlog_connections_refused_total{listener=\"grpc\"}",
    )
    .await;
    assert!(refused.unwrap_or(0.0) >= 1.0, "{refused:?}");
    // The first one still is.
    read_ok(&mut first, app()).await;
}
