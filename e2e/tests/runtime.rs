//! podlogd against a real containerd + runc: discovery over CRI, exact
//! output, follow, previous attempts, removed containers, gRPC parity with
//! HTTP, and a containerd restart under a running agent.
//!
//! Each test starts its own private containerd (see `podlog_e2e`), so the
//! tests are independent; without the runtime they skip, or fail under
//! `PODLOG_E2E=1` as in CI.
// These tests measure a real runtime and a real agent in wall-clock time.
#![allow(clippy::disallowed_types)]

use std::time::{Duration, Instant};

use podlog_e2e::{require_runtime, Agent, Cri, Pod, PodSpec};
use podlog_proto::podlog as pb;
use podlog_proto::podlog::logs_client::LogsClient;
use serde_json::Value;

/// Bound for anything that should be prompt.
const PROMPT: Duration = Duration::from_secs(5);
/// Bound for a container to run to its end.
const RUN: Duration = Duration::from_secs(30);

/// What the `app` container prints, and the exact text podlogd must serve.
/// `sleep 0.2` between streams keeps the interleaving as written: the
/// runtime reads stdout and stderr on separate pipes.
const APP_SCRIPT: &str = r#"
echo 'out 1'
sleep 0.2
echo 'err 1' >&2
sleep 0.2
echo 'out 2 with "quotes" and \\ backslash'
sleep 0.2
head -c 102400 /dev/zero | tr '\0' 'x'
echo
sleep 0.2
echo 'err 2' >&2
sleep 0.2
printf 'last line without newline'
"#;

fn app_expected() -> Vec<u8> {
    let mut v = Vec::new();
    // busybox echo leaves backslashes alone.
    v.extend_from_slice(b"out 1\nerr 1\nout 2 with \"quotes\" and \\\\ backslash\n");
    v.extend(std::iter::repeat_n(b'x', 102_400));
    v.extend_from_slice(b"\nerr 2\nlast line without newline\n");
    v
}

/// A container that writes `tick N` every 100 ms until stopped.
const TICKER_SCRIPT: &str =
    "trap 'exit 0' TERM; i=0; while :; do echo \"tick $i\"; i=$((i+1)); sleep 0.1; done";

fn ndjson(body: &[u8]) -> Vec<Value> {
    body.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("NDJSON line"))
        .collect()
}

/// Polls the inventory (there is no event to wait on from outside) until
/// `pred` holds for the pod `ns/name`; returns the pod entry and how long
/// it took.
async fn wait_pod(
    agent: &Agent,
    ns: &str,
    name: &str,
    limit: Duration,
    pred: impl Fn(&Value) -> bool,
) -> (Value, Duration) {
    let t0 = Instant::now();
    loop {
        let inv = agent.get_json(&format!("/logs?namespace={ns}")).await;
        if let Some(p) = inv["pods"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["pod"] == name)
        {
            if pred(p) {
                return (p.clone(), t0.elapsed());
            }
        }
        assert!(
            t0.elapsed() < limit,
            "pod {ns}/{name} not as expected within {limit:?}: {inv:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("container {name} in {pod:#}"))
}

/// Both containers listed with the given runtime ids.
fn has_ids(pod: &Value, ids: &[(&str, &str)]) -> bool {
    ids.iter().all(|(name, id)| {
        pod["containers"].as_array().into_iter().flatten().any(|c| {
            c["name"] == *name
                && c["id"] == *id
                && c["attempts"].as_array().is_some_and(|a| !a.is_empty())
        })
    })
}

async fn grpc_events(
    client: &mut LogsClient<tonic::transport::Channel>,
    req: pb::ReadRequest,
) -> Vec<pb::Event> {
    let mut stream = client.read(req).await.expect("Read starts").into_inner();
    let mut out = Vec::new();
    while let Some(r) = stream.message().await.expect("Read streams") {
        out.extend(r.events);
    }
    out
}

/// The same events, field by field, from HTTP `format=json` and gRPC.
fn assert_same_events(http: &[Value], grpc: &[pb::Event], what: &str) {
    assert_eq!(http.len(), grpc.len(), "{what}: event counts");
    for (h, g) in http.iter().zip(grpc) {
        let log: Vec<u8> = match h.get("log_base64") {
            Some(b) => base64_decode(b.as_str().expect("base64 string")),
            None => h["log"].as_str().expect("log").as_bytes().to_vec(),
        };
        assert_eq!(g.log, log, "{what}: log");
        assert_eq!(h["time"].as_str().unwrap_or(""), g.time, "{what}: time");
        assert_eq!(h["stream"], g.stream, "{what}: stream");
        assert_eq!(h["cursor"], g.cursor, "{what}: cursor");
        assert_eq!(h["namespace"], g.namespace, "{what}: namespace");
        assert_eq!(h["pod"], g.pod, "{what}: pod");
        assert_eq!(h["uid"], g.uid, "{what}: uid");
        assert_eq!(h["container"], g.container, "{what}: container");
        assert_eq!(h["attempt"], g.attempt, "{what}: attempt");
        assert_eq!(
            h["containerId"].as_str().unwrap_or(""),
            g.container_id,
            "{what}: containerId"
        );
        assert_eq!(h["image"].as_str().unwrap_or(""), g.image, "{what}: image");
        assert_eq!(h["node"], g.node, "{what}: node");
        assert_eq!(h.get("partial").is_some(), g.partial, "{what}: partial");
        assert_eq!(
            h.get("truncated").is_some(),
            g.truncated,
            "{what}: truncated"
        );
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = A.iter().position(|&a| a == c).expect("base64 alphabet") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

struct World {
    // Field order is drop order: the agent and client before containerd.
    agent: Agent,
    cri: Cri,
    ctd: podlog_e2e::Containerd,
}

async fn world() -> Option<World> {
    let ctd = require_runtime()?;
    let cri = Cri::connect(&ctd.socket()).await.expect("CRI answers");
    let agent = Agent::start(&ctd.pod_log_root(), &ctd.socket()).await;
    Some(World { agent, cri, ctd })
}

async fn run_web(w: &mut World) -> (Pod, String, String) {
    let spec = PodSpec::new("e2e", "web-0", &[("app", "web"), ("tier", "front")]).annotate(&[
        ("podlog.dev/note", "hello"),
        ("team", "logs"),
        ("podlog.dev/max-files", "3"),
        (
            "podlog.dev/policy",
            "containers:\n  app:\n    maxFileSize: 256Ki\n    annotations: {sink: audit}\n",
        ),
    ]);
    let pod = w
        .cri
        .run_pod(&w.ctd.pod_log_root(), w.ctd.cgroup_parent(), &spec)
        .await
        .expect("RunPodSandbox");
    let app = w
        .cri
        .start_container(&pod, "app", 0, APP_SCRIPT, &[("role", "app")])
        .await
        .expect("start app");
    let ticker = w
        .cri
        .start_container(&pod, "ticker", 0, TICKER_SCRIPT, &[])
        .await
        .expect("start ticker");
    (pod, app, ticker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_are_discovered_and_served_exactly() {
    let Some(mut w) = world().await else { return };
    let (pod, app, ticker) = run_web(&mut w).await;
    let started = Instant::now();

    // Discovery: listed with runtime metadata within a second of starting.
    let (p, _) = wait_pod(&w.agent, "e2e", "web-0", PROMPT, |p| {
        has_ids(p, &[("app", &app), ("ticker", &ticker)])
    })
    .await;
    let took = started.elapsed();
    eprintln!("web-0 discovered with runtime metadata {took:?} after its containers started");
    assert!(took < Duration::from_secs(1), "discovered after {took:?}");
    assert_eq!(p["labels"]["app"], "web");
    assert_eq!(p["annotations"]["team"], "logs");
    assert_eq!(p["sandboxId"], pod.id.as_str());
    assert_eq!(p["state"], "SANDBOX_READY");
    assert_eq!(p["logDirectory"], pod.log_dir.display().to_string());
    let c = container(&p, "app");
    assert_eq!(c["image"], podlog_e2e::BUSYBOX_IMAGE);
    // The pod's policy annotations, resolved per container.
    assert_eq!(c["policy"]["maxFiles"], 3);
    assert_eq!(c["policy"]["maxFileSize"], 256 * 1024);
    assert_eq!(c["policy"]["annotations"]["sink"], "audit");
    // podlog.dev/note is no policy key: refused by name, nothing else lost.
    let errs = c["policyErrors"].as_array().expect("policy errors");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0]
        .as_str()
        .unwrap()
        .starts_with("podlog.dev/note: \"hello\": unknown"));
    assert_eq!(container(&p, "ticker")["policy"]["maxFileSize"], 10 << 20);
    assert_eq!(container(&p, "ticker")["policy"]["maxFiles"], 3);
    assert_eq!(c["instances"][0]["labels"]["role"], "app");
    let inv = w.agent.get_json("/logs").await;
    assert_eq!(inv["mode"], "runtime");
    assert_eq!(inv["runtime"]["connected"], true);
    assert_eq!(inv["runtime"]["name"], "containerd");
    assert_eq!(inv["lifecycle"]["enabled"], false, "no --state-dir");
    let only_web = w
        .agent
        .get_json("/logs?labelSelector=app%3Dweb,tier%3Dfront")
        .await;
    assert_eq!(only_web["pods"].as_array().map(Vec::len), Some(1));
    let none = w.agent.get_json("/logs?labelSelector=app%3Ddb").await;
    assert_eq!(none["pods"].as_array().map(Vec::len), Some(0));

    // A second pod, in another namespace, with two containers of its own.
    let db_spec = PodSpec::new("e2e-db", "db-0", &[("app", "db")])
        .annotate(&[("owner", "dba"), ("podlog.dev/max-files", "-3")]);
    let db = w
        .cri
        .run_pod(&w.ctd.pod_log_root(), w.ctd.cgroup_parent(), &db_spec)
        .await
        .expect("RunPodSandbox db");
    let main = w
        .cri
        .start_container(
            &db,
            "main",
            0,
            "echo 'db main 1'; sleep 0.2; echo 'db main 2'",
            &[],
        )
        .await
        .expect("start main");
    let helper = w
        .cri
        .start_container(&db, "helper", 0, "sleep 0.1; echo 'db helper 1' >&2", &[])
        .await
        .expect("start helper");
    let started = Instant::now();
    let (p, _) = wait_pod(&w.agent, "e2e-db", "db-0", PROMPT, |p| {
        has_ids(p, &[("main", &main), ("helper", &helper)])
    })
    .await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "db discovered after {took:?}"
    );
    assert_eq!(p["annotations"]["owner"], "dba");
    // A bad policy annotation: named, and the node default applies.
    let main_entry = container(&p, "main");
    assert_eq!(main_entry["policy"]["maxFiles"], 5);
    let errs = main_entry["policyErrors"]
        .as_array()
        .expect("policy errors");
    assert!(
        errs.iter().any(|e| e
            .as_str()
            .is_some_and(|e| e.contains("podlog.dev/max-files") && e.contains("-3"))),
        "{errs:?}"
    );
    let only_db = w.agent.get_json("/logs?labelSelector=app%3Ddb").await;
    let names: Vec<&str> = only_db["pods"]
        .as_array()
        .expect("pods")
        .iter()
        .map(|p| p["pod"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db-0"]);
    for id in [&main, &helper] {
        w.cri
            .wait_exited(id, RUN)
            .await
            .expect("db containers exit");
    }
    // Both of its containers, merged in time order.
    let merged = w
        .agent
        .get_ok("/logs?labelSelector=app%3Ddb&format=text")
        .await;
    let mut own: Vec<(String, String)> = Vec::new();
    for c in ["main", "helper"] {
        let evs = ndjson(
            &w.agent
                .get_ok(&format!("/logs/e2e-db/db-0/{c}?format=json"))
                .await,
        );
        own.extend(evs.iter().map(|e| {
            (
                e["time"].as_str().unwrap().to_owned(),
                e["log"].as_str().unwrap().to_owned(),
            )
        }));
    }
    assert_eq!(own.len(), 3);
    own.sort();
    let want: String = own.iter().map(|(_, l)| format!("{l}\n")).collect();
    assert_eq!(
        String::from_utf8_lossy(&merged),
        want,
        "merged in time order"
    );

    // Follow a running container: new lines arrive promptly.
    let mut f = w
        .agent
        .follow("/logs/e2e/web-0/ticker?follow=true&tailLines=0&format=json");
    let mut last = None;
    let mut lag = Duration::ZERO;
    for _ in 0..5 {
        let ev: Value = serde_json::from_str(&f.next_line(PROMPT).await).expect("json event");
        // From the runtime's timestamp of the line to its arrival here.
        let written = ev["time"]
            .as_str()
            .and_then(|t| podlog_agent::cri::parse_timestamp(t.as_bytes()))
            .expect("a time");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after the epoch")
            .as_nanos() as i64;
        lag = lag.max(Duration::from_nanos(
            now.saturating_sub(written).max(0) as u64
        ));
        let n: u64 = ev["log"]
            .as_str()
            .and_then(|l| l.strip_prefix("tick "))
            .and_then(|n| n.parse().ok())
            .expect("a tick line");
        if let Some(prev) = last {
            assert_eq!(n, prev + 1, "ticks in order, none lost");
        }
        last = Some(n);
        assert_eq!(ev["containerId"], ticker.as_str());
    }
    eprintln!("follow: longest delay from the runtime's write to curl {lag:?}");

    // Exact output once the app container has exited.
    let st = w.cri.wait_exited(&app, RUN).await.expect("app exits");
    assert_eq!(st.exit_code, 0);
    let text = w.agent.get_ok("/logs/e2e/web-0/app").await;
    let raw = std::fs::read(pod.log_dir.join("app/0.log")).expect("the log file");
    assert_eq!(
        text.len(),
        app_expected().len(),
        "served tail {:?}; file tail {:?}",
        String::from_utf8_lossy(&text[text.len().saturating_sub(120)..]),
        String::from_utf8_lossy(&raw[raw.len().saturating_sub(300)..])
    );
    assert!(text == app_expected(), "exact output");
    let evs = ndjson(
        &w.agent
            .get_ok("/logs/e2e/web-0/app?format=json&labels=true&annotations=true")
            .await,
    );
    let streams: Vec<&str> = evs.iter().map(|e| e["stream"].as_str().unwrap()).collect();
    assert_eq!(
        streams,
        ["stdout", "stderr", "stdout", "stdout", "stderr", "stdout"]
    );
    assert_eq!(
        evs[3]["log"].as_str().map(str::len),
        Some(102_400),
        "the 100 KiB line is one event"
    );
    assert!(evs.iter().all(|e| e.get("truncated").is_none()));
    // containerd 1.6 stores a last line without newline as a P record with
    // no F after it: the container has exited, so it is served, flagged.
    let partial: Vec<bool> = evs.iter().map(|e| e.get("partial").is_some()).collect();
    assert_eq!(partial, [false, false, false, false, false, true]);
    assert_eq!(evs[0]["containerId"], app.as_str());
    assert_eq!(evs[0]["labels"]["tier"], "front");
    assert_eq!(evs[0]["annotations"]["podlog.dev/note"], "hello");
    assert_eq!(evs[0]["node"], "e2e-node");
    // The runtime split the long line into P records; the file shows it.
    let partials = raw
        .split(|&b| b == b'\n')
        .filter(|l| l.split(|&b| b == b' ').nth(2) == Some(b"P"))
        .count();
    assert!(
        partials >= 1,
        "containerd wrote P records for the long line"
    );
    // Inventory shows the exit.
    let (p, _) = wait_pod(&w.agent, "e2e", "web-0", PROMPT, |p| {
        container(p, "app")["state"] == "CONTAINER_EXITED"
    })
    .await;
    assert_eq!(container(&p, "app")["instances"][0]["exitCode"], 0);

    // Merged follow over the label selector: both containers, app's
    // history in time order first, ticker lines as they come.
    let mut m = w
        .agent
        .follow("/logs?labelSelector=app%3Dweb&follow=true&format=json");
    let mut seen_app = 0;
    let mut seen_ticker = 0;
    let mut last_time = String::new();
    while seen_app < 6 || seen_ticker < 3 {
        let ev: Value = serde_json::from_str(&m.next_line(PROMPT).await).expect("json event");
        let t = ev["time"].as_str().unwrap().to_owned();
        assert!(
            t >= last_time,
            "merged in time order: {t} after {last_time}"
        );
        last_time = t;
        match ev["container"].as_str() {
            Some("app") => seen_app += 1,
            Some("ticker") => seen_ticker += 1,
            other => panic!("unexpected container {other:?}"),
        }
    }
    assert_eq!(seen_app, 6);

    // gRPC Read returns the same events and cursors as HTTP.
    let mut client = LogsClient::connect(format!("http://{}", w.agent.grpc))
        .await
        .expect("gRPC connects");
    // A cursor taken from one resumes over the other alike.
    let all = ndjson(&w.agent.get_ok("/logs/e2e/web-0/app?format=json").await);
    let cur = all[2]["cursor"].as_str().unwrap().to_owned();
    for (query, req) in [
        (String::new(), pb::ReadRequest::default()),
        (
            format!("&cursor={cur}"),
            pb::ReadRequest {
                cursor: cur.clone(),
                ..Default::default()
            },
        ),
        (
            "&tailLines=2".to_owned(),
            pb::ReadRequest {
                tail_lines: Some(2),
                ..Default::default()
            },
        ),
        (
            "&stream=stderr".to_owned(),
            pb::ReadRequest {
                stream: "stderr".into(),
                ..Default::default()
            },
        ),
        (
            "&grep=out".to_owned(),
            pb::ReadRequest {
                grep: "out".into(),
                ..Default::default()
            },
        ),
    ] {
        let http = ndjson(
            &w.agent
                .get_ok(&format!("/logs/e2e/web-0/app?format=json{query}"))
                .await,
        );
        let grpc = grpc_events(
            &mut client,
            pb::ReadRequest {
                namespace: "e2e".into(),
                pod: "web-0".into(),
                container: "app".into(),
                ..req
            },
        )
        .await;
        assert!(!http.is_empty(), "{query}");
        assert_same_events(&http, &grpc, &query);
        if !query.is_empty() && query.starts_with("&cursor") {
            assert_eq!(http.len(), 3, "the rest after the third event");
        }
    }
    // The inventory over gRPC lists the same pod with the runtime's ids.
    let list = client
        .list(pb::ListRequest {
            namespace: "e2e".into(),
            label_selector: "app=web".into(),
        })
        .await
        .expect("List")
        .into_inner();
    assert_eq!(list.pods.len(), 1);
    assert_eq!(list.pods[0].sandbox_id, pod.id);
    let gapp = list.pods[0]
        .containers
        .iter()
        .find(|c| c.name == "app")
        .expect("app");
    assert_eq!(gapp.instances[0].id, app);
    assert_eq!(gapp.instances[0].exit_code, Some(0));
    let err = client
        .read(pb::ReadRequest {
            pod: "web-0".into(),
            container: "app".into(),
            tail_lines: Some(1),
            cursor: "x".into(),
            ..Default::default()
        })
        .await
        .expect_err("cursor with tailLines is refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let (status, body) = w
        .agent
        .get("/logs/e2e/web-0/app?tailLines=1&cursor=x")
        .await;
    assert_eq!(status, 400);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"], err.message(), "the same error text");

    // A new attempt: previous=true serves attempt 0, the default attempt 1.
    let app1 = w
        .cri
        .start_container(&pod, "app", 1, "echo 'second attempt'", &[])
        .await
        .expect("start app attempt 1");
    w.cri
        .wait_exited(&app1, RUN)
        .await
        .expect("attempt 1 exits");
    let (p, _) = wait_pod(&w.agent, "e2e", "web-0", PROMPT, |p| {
        container(p, "app")["currentAttempt"] == 1 && container(p, "app")["id"] == app1.as_str()
    })
    .await;
    assert_eq!(container(&p, "app")["attempts"], serde_json::json!([0, 1]));
    assert_eq!(
        w.agent.get_ok("/logs/e2e/web-0/app").await,
        b"second attempt\n"
    );
    assert!(w.agent.get_ok("/logs/e2e/web-0/app?previous=true").await == app_expected());
    let prev = ndjson(
        &w.agent
            .get_ok("/logs/e2e/web-0/app?previous=true&format=json")
            .await,
    );
    assert_eq!(
        prev[0]["containerId"],
        app.as_str(),
        "attempt 0 carries its own container id"
    );

    // Removed containers and pods: still served while the files exist.
    w.cri
        .stop_and_remove(&app, 1)
        .await
        .expect("remove attempt 0");
    // A follower of a running container ends once it exits, after its
    // last line, as `kubectl logs -f` does.
    let mut tf = w
        .agent
        .follow("/logs/e2e/web-0/ticker?follow=true&tailLines=1");
    assert!(tf.next_line(PROMPT).await.starts_with("tick "));
    w.cri.remove_pod(&pod).await.expect("remove the pod");
    let rest = tf.rest(PROMPT).await;
    let file_last =
        String::from_utf8(w.agent.get_ok("/logs/e2e/web-0/ticker?tailLines=1").await).unwrap();
    if let Some(l) = rest.last() {
        assert_eq!(
            format!("{l}\n"),
            file_last,
            "the follow ended at the last line"
        );
    }
    // The runtime forgets them at the next resync; the files stay listed.
    let (p, _) = wait_pod(&w.agent, "e2e", "web-0", PROMPT, |_| true).await;
    assert_eq!(container(&p, "app")["attempts"], serde_json::json!([0, 1]));
    assert!(w.agent.get_ok("/logs/e2e/web-0/app?previous=true").await == app_expected());
    let ticks = w.agent.get_ok("/logs/e2e/web-0/ticker").await;
    assert!(ticks.starts_with(b"tick 0\ntick 1\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_restart_keeps_serving_and_recovers() {
    let Some(mut w) = world().await else { return };
    let (_pod, _app, ticker) = run_web(&mut w).await;
    wait_pod(&w.agent, "e2e", "web-0", PROMPT, |p| {
        has_ids(p, &[("ticker", &ticker)])
    })
    .await;
    assert_eq!(w.agent.get("/readyz").await.0, 200);
    let mut f = w
        .agent
        .follow("/logs/e2e/web-0/ticker?follow=true&tailLines=0");
    f.next_line(PROMPT).await;

    // containerd goes away: the agent says so, and keeps serving.
    w.ctd.stop_daemon().expect("containerd stops");
    let t0 = Instant::now();
    loop {
        let (status, body) = w.agent.get("/readyz").await;
        if status == 503 {
            assert!(
                String::from_utf8_lossy(&body).contains("unreachable"),
                "{}",
                String::from_utf8_lossy(&body)
            );
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "readyz still {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let inv = w.agent.get_json("/logs?namespace=e2e").await;
    assert_eq!(inv["runtime"]["connected"], false);
    assert_eq!(
        container(&inv["pods"][0], "ticker")["id"],
        ticker.as_str(),
        "the last snapshot is kept"
    );
    // History is served from the files meanwhile. (containerd itself
    // copies the containers' output into the files, so nothing new is
    // written until it is back.)
    assert!(w
        .agent
        .get_ok("/logs/e2e/web-0/ticker?tailLines=1")
        .await
        .starts_with(b"tick "));

    // containerd is back: ready again, and new pods are discovered.
    w.ctd.start_daemon().expect("containerd starts again");
    let t0 = Instant::now();
    while w.agent.get("/readyz").await.0 != 200 {
        assert!(t0.elapsed() < Duration::from_secs(20), "not ready again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut cri = Cri::connect(&w.ctd.socket())
        .await
        .expect("CRI answers again");
    let spec = PodSpec::new("e2e", "after-0", &[("app", "after")]);
    let pod = cri
        .run_pod(&w.ctd.pod_log_root(), w.ctd.cgroup_parent(), &spec)
        .await
        .expect("RunPodSandbox after the restart");
    let id = cri
        .start_container(&pod, "main", 0, "echo after restart", &[])
        .await
        .expect("start");
    let started = Instant::now();
    wait_pod(&w.agent, "e2e", "after-0", PROMPT, |p| {
        has_ids(p, &[("main", &id)])
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "discovered after {:?}",
        started.elapsed()
    );
    f.next_line(PROMPT).await;
    w.cri = cri;
}
