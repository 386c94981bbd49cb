//! Runtime mode against an in-process fake CRI server on a Unix socket:
//! metadata in the inventory and in events, the runtime going away and
//! coming back, and the runtime's odd answers (a container removed between
//! the list and its status, a sandbox without a verbose log directory).
//! The real containerd is exercised by the e2e suite; this one runs
//! anywhere.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::fake_cri::{serve, Fake};
use common::*;
use podlog_proto::cri as pb;

fn sandbox(id: &str, ns: &str, name: &str, uid: &str, labels: &[(&str, &str)]) -> pb::PodSandbox {
    pb::PodSandbox {
        id: id.into(),
        metadata: Some(pb::PodSandboxMetadata {
            name: name.into(),
            uid: uid.into(),
            namespace: ns.into(),
            attempt: 0,
        }),
        state: pb::PodSandboxState::SandboxReady as i32,
        created_at: 1,
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        annotations: [("podlog.dev/max-files".to_owned(), "4".to_owned())].into(),
        runtime_handler: String::new(),
    }
}

fn container(
    id: &str,
    sandbox: &str,
    name: &str,
    attempt: u32,
    log: &Path,
) -> (pb::Container, pb::ContainerStatus) {
    let meta = pb::ContainerMetadata {
        name: name.into(),
        attempt,
    };
    let image = pb::ImageSpec {
        image: "registry.example/app:1".into(),
        ..Default::default()
    };
    (
        pb::Container {
            id: id.into(),
            pod_sandbox_id: sandbox.into(),
            metadata: Some(meta.clone()),
            image: Some(image.clone()),
            image_ref: "sha256:abc".into(),
            state: pb::ContainerState::ContainerRunning as i32,
            created_at: 2,
            ..Default::default()
        },
        pb::ContainerStatus {
            id: id.into(),
            metadata: Some(meta),
            state: pb::ContainerState::ContainerRunning as i32,
            created_at: 2,
            started_at: 3,
            image: Some(image),
            image_ref: "sha256:abc".into(),
            log_path: log.display().to_string(),
            ..Default::default()
        },
    )
}

struct Fx {
    t: Tree,
    sock: PathBuf,
    fake: Fake,
}

fn fixture() -> Fx {
    let t = Tree::new();
    let c = t.container("shop", "cart-1", "uid-cart", "app");
    write_file(
        &c.join("0.log"),
        &cri("2026-11-21T05:00:00.000000001Z", "stdout", "F", "hello"),
    );
    let d = t.container("shop", "db-1", "uid-db", "pg");
    write_file(
        &d.join("0.log"),
        &cri("2026-11-21T05:00:00.5Z", "stderr", "F", "ready"),
    );
    let sock = t.root.parent().unwrap().join("cri.sock");
    let fake = Fake::default();
    {
        let mut s = fake.0.lock().unwrap();
        s.sandboxes.push(sandbox(
            "sb-cart",
            "shop",
            "cart-1",
            "uid-cart",
            &[("app", "cart")],
        ));
        s.info.insert(
            "sb-cart".into(),
            format!(
                r#"{{"config":{{"log_directory":"{}"}}}}"#,
                t.root.join("shop_cart-1_uid-cart").display()
            ),
        );
        // No verbose info: the directory comes from the container's log path.
        let mut db = sandbox("sb-db", "shop", "db-1", "uid-db", &[("app", "db")]);
        db.annotations
            .insert("podlog.dev/rotate".into(), "weekly".into());
        s.sandboxes.push(db);
        s.containers
            .push(container("c-app", "sb-cart", "app", 0, &c.join("0.log")));
        s.containers
            .push(container("c-pg", "sb-db", "pg", 0, &d.join("0.log")));
        // Listed, but gone by the time its status is asked.
        s.containers
            .push(container("c-gone", "sb-db", "sidecar", 0, &d.join("x.log")));
        s.vanished.push("c-gone".into());
    }
    Fx { t, sock, fake }
}

/// Polls `/readyz` (podlogd exposes no event for the runtime's state)
/// until it answers `want`.
async fn wait_ready(d: &Daemon, want: u16) -> String {
    wait_readyz(d, want, "").await
}

/// Waits for `/readyz` to answer `want` with a body containing `needle`.
async fn wait_readyz(d: &Daemon, want: u16, needle: &str) -> String {
    let mut last = String::new();
    for _ in 0..1200 {
        let r = get(d.addr, "/readyz").await;
        last = r.text();
        if r.status == want && last.contains(needle) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("/readyz never answered {want} with {needle:?}; last: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_metadata_reaches_the_inventory_and_the_events() {
    let f = fixture();
    let (_stop, _task) = serve(f.fake.clone(), &f.sock).await;
    let d = f.t.start_with(&[
        "--cri-endpoint",
        f.sock.to_str().unwrap(),
        "--resync-interval",
        "200ms",
    ]);
    wait_ready(&d, 200).await;
    let inv = inventory(d.addr, "").await;
    assert_eq!(inv["mode"], "runtime");
    assert_eq!(inv["runtime"]["name"], "fake");
    assert_eq!(inv["runtime"]["connected"], true);
    let cart = &inv["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pod"] == "cart-1")
        .unwrap()
        .clone();
    assert_eq!(cart["labels"]["app"], "cart");
    assert_eq!(cart["sandboxId"], "sb-cart");
    assert_eq!(cart["state"], "SANDBOX_READY");
    assert_eq!(
        cart["logDirectory"],
        f.t.root.join("shop_cart-1_uid-cart").display().to_string()
    );
    let app = &cart["containers"][0];
    assert_eq!(app["id"], "c-app");
    assert_eq!(app["image"], "registry.example/app:1");
    assert_eq!(app["instances"][0]["imageRef"], "sha256:abc");
    assert_eq!(
        app["instances"][0]["startedAt"],
        "1970-01-01T00:00:00.000000003Z"
    );
    assert_eq!(
        app["policy"]["maxFiles"], 4,
        "the sandbox's annotations give the policy"
    );
    // The sandbox without verbose info: its directory from the log path;
    // the vanished container is left out, not an error.
    let db = inv["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pod"] == "db-1")
        .unwrap()
        .clone();
    assert_eq!(
        db["logDirectory"],
        f.t.root.join("shop_db-1_uid-db").display().to_string()
    );
    let names: Vec<&str> = db["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pg"]);
    // Selection by the runtime's labels, in the inventory and in reads.
    let sel = inventory(d.addr, "labelSelector=app%3Ddb").await;
    assert_eq!(pod_names(&sel), ["shop/db-1"]);
    // Set-based selectors, as kubectl -l takes them.
    for (selector, pods) in [
        ("app in (db,cart)", &["shop/cart-1", "shop/db-1"][..]),
        ("app notin (db)", &["shop/cart-1"][..]),
        ("app,!nope", &["shop/cart-1", "shop/db-1"][..]),
        ("app in (x)", &[][..]),
    ] {
        let mut got =
            pod_names(&inventory(d.addr, &format!("labelSelector={}", enc(selector))).await);
        got.sort();
        assert_eq!(got, pods, "{selector}");
    }
    let evs = get_events(d.addr, "/logs/shop/cart-1/app?format=json&labels=true").await;
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0]["containerId"], "c-app");
    assert_eq!(evs[0]["image"], "registry.example/app:1");
    assert_eq!(evs[0]["labels"]["app"], "cart");
    // The refused setting: named in the inventory, counted, logged once.
    assert!(db["containers"][0]["policyErrors"][0]
        .as_str()
        .is_some_and(|e| e.starts_with("podlog.dev/rotate: \"weekly\"")));
    for _ in 0..400 {
        if metric(d.addr, "podlog_policy_errors").await == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(metric(d.addr, "podlog_policy_errors").await, Some(1.0));
    assert_eq!(
        d.stderr().matches("policy setting refused").count(),
        1,
        "{}",
        d.stderr()
    );
    let merged = get_events(d.addr, "/logs?labelSelector=app&format=json").await;
    let logs: Vec<&str> = merged.iter().map(|e| e["log"].as_str().unwrap()).collect();
    assert_eq!(logs, ["hello", "ready"], "both pods, in time order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_runtime_is_reported_and_the_last_snapshot_served() {
    let f = fixture();
    // Nothing listens yet: directory data is served, readiness says why.
    let d = f.t.start_with(&[
        "--cri-endpoint",
        f.sock.to_str().unwrap(),
        "--resync-interval",
        "200ms",
    ]);
    let why = wait_readyz(&d, 503, "unreachable").await;
    assert!(why.contains(f.sock.to_str().unwrap()), "{why}");
    assert!(why.contains("No such file"), "{why}");
    let inv = inventory(d.addr, "").await;
    assert_eq!(inv["runtime"]["connected"], false);
    assert!(inv["runtime"]["lastError"]
        .as_str()
        .is_some_and(|e| !e.is_empty()));
    assert_eq!(pod_names(&inv), ["shop/cart-1", "shop/db-1"]);
    assert_eq!(get_text(d.addr, "/logs/shop/cart-1/app").await, "hello\n");

    // The runtime comes up: ready, with metadata.
    let (stop, task) = serve(f.fake.clone(), &f.sock).await;
    wait_ready(&d, 200).await;
    let inv = inventory(d.addr, "namespace=shop").await;
    assert_eq!(inv["pods"][0]["containers"][0]["id"], "c-app");

    // It goes away again: not ready, the snapshot is kept and served.
    stop.cancel();
    task.await.unwrap();
    wait_readyz(&d, 503, "unreachable").await;
    let inv = inventory(d.addr, "namespace=shop").await;
    assert_eq!(inv["runtime"]["connected"], false);
    assert_eq!(
        inv["pods"][0]["containers"][0]["id"], "c-app",
        "the last snapshot"
    );
    let evs = get_events(d.addr, "/logs/shop/cart-1/app?format=json").await;
    assert_eq!(evs[0]["containerId"], "c-app");

    // And back once more, with a change it must pick up.
    f.fake.0.lock().unwrap().sandboxes[0]
        .labels
        .insert("tier".into(), "web".into());
    let (_stop, _task) = serve(f.fake.clone(), &f.sock).await;
    wait_ready(&d, 200).await;
    let sel = inventory(d.addr, "labelSelector=tier%3Dweb").await;
    assert_eq!(pod_names(&sel), ["shop/cart-1"]);
}

#[test]
fn a_bad_resync_interval_is_a_configuration_error() {
    let t = Tree::new();
    for bad in ["0s", "10", "fast", "50ms"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_podlogd"))
            .args([
                "--cri-endpoint",
                "none",
                "--listen",
                "127.0.0.1:0",
                "--resync-interval",
                bad,
                "--log-root",
            ])
            .arg(&t.root)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--resync-interval"), "{bad}: {err}");
    }
}

/// The CRI logging proposal's example, `examples/policy/proposal-pod.yaml`,
/// as the runtime describes it: each container's effective policy in the
/// inventory, `foo`'s passthrough `annotations` on every one of its events
/// (HTTP `json` and gRPC) and on none of `bar`'s, and `bar`'s stack traces
/// joined by its `multiline` delimiter. (Rotation by period, on an injected
/// clock, is in policy/tests/examples.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proposal_example_passes_its_annotations_to_consumers() {
    let manifest: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policy/proposal-pod.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    let annotations: std::collections::HashMap<String, String> =
        serde_yaml::from_value(manifest["metadata"]["annotations"].clone()).unwrap();
    let t = Tree::new();
    let (ns, pod, uid) = ("default", "logging-proposal-example", "uid-proposal");
    let foo = t.container(ns, pod, uid, "foo");
    write_file(
        &foo.join("0.log"),
        &cri_lines(&[
            (
                "2026-11-21T05:00:00Z",
                "stdout",
                "F",
                "2026-11-21T05:00:00Z foo: tick 1",
            ),
            (
                "2026-11-21T05:00:01Z",
                "stdout",
                "F",
                "2026-11-21T05:00:01Z foo: tick 2",
            ),
        ]),
    );
    let bar = t.container(ns, pod, uid, "bar");
    write_file(
        &bar.join("0.log"),
        &cri_lines(&[
            (
                "2026-11-21T05:00:09Z",
                "stdout",
                "F",
                "2026-11-21 05:00:09 INFO request 9 served",
            ),
            (
                "2026-11-21T05:00:10Z",
                "stdout",
                "F",
                "2026-11-21 05:00:10 ERROR request 10 failed",
            ),
            (
                "2026-11-21T05:00:10Z",
                "stdout",
                "F",
                "java.lang.IllegalStateException: backend unavailable (request 10)",
            ),
            (
                "2026-11-21T05:00:10Z",
                "stdout",
                "F",
                "    at com.example.Backend.call(Backend.java:88)",
            ),
            (
                "2026-11-21T05:00:11Z",
                "stdout",
                "F",
                "2026-11-21 05:00:11 INFO request 11 served",
            ),
        ]),
    );
    let sock = t.root.parent().unwrap().join("cri.sock");
    let fake = Fake::default();
    {
        let mut s = fake.0.lock().unwrap();
        let mut sb = sandbox("sb-proposal", ns, pod, uid, &[("app", pod)]);
        sb.annotations = annotations;
        s.sandboxes.push(sb);
        s.containers.push(container(
            "c-foo",
            "sb-proposal",
            "foo",
            0,
            &foo.join("0.log"),
        ));
        s.containers.push(container(
            "c-bar",
            "sb-proposal",
            "bar",
            0,
            &bar.join("0.log"),
        ));
    }
    let (_stop, _task) = serve(fake.clone(), &sock).await;
    let d = t.start_with(&[
        "--cri-endpoint",
        sock.to_str().unwrap(),
        "--grpc-listen",
        "127.0.0.1:0",
    ]);
    wait_ready(&d, 200).await;
    let inv = inventory(d.addr, "").await;
    let containers = inv["pods"][0]["containers"].as_array().unwrap().clone();
    let policy = |name: &str| {
        containers
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} listed: {inv}"))["policy"]
            .clone()
    };
    let passthrough = serde_json::json!({"fluentd-config": "actual fluentd configuration"});
    assert_eq!(policy("foo")["rotate"], "daily");
    assert_eq!(policy("foo")["maxFiles"], 5);
    assert_eq!(policy("foo")["annotations"], passthrough);
    assert_eq!(policy("bar")["rotate"], "hourly");
    assert_eq!(policy("bar")["maxFiles"], 5);
    assert_eq!(policy("bar")["annotations"], serde_json::json!({}));

    let foo_evs = get_events(d.addr, &format!("/logs/{ns}/{pod}/foo?format=json")).await;
    assert_eq!(foo_evs.len(), 2);
    for e in &foo_evs {
        assert_eq!(e["policyAnnotations"], passthrough, "{e}");
    }
    let bar_evs = get_events(d.addr, &format!("/logs/{ns}/{pod}/bar?format=json")).await;
    assert!(bar_evs.iter().all(|e| e.get("policyAnnotations").is_none()));
    let logs: Vec<&str> = bar_evs.iter().map(|e| e["log"].as_str().unwrap()).collect();
    assert_eq!(
        logs,
        [
            "2026-11-21 05:00:09 INFO request 9 served",
            "2026-11-21 05:00:10 ERROR request 10 failed\n\
             java.lang.IllegalStateException: backend unavailable (request 10)\n    \
             at com.example.Backend.call(Backend.java:88)",
            "2026-11-21 05:00:11 INFO request 11 served",
        ]
    );
    // The gRPC form of the same events.
    let addr = d.grpc.as_deref().expect("gRPC is on");
    let mut client =
        podlog_proto::podlog::logs_client::LogsClient::connect(format!("http://{addr}"))
            .await
            .expect("connect to the gRPC API");
    let mut stream = client
        .read(podlog_proto::podlog::ReadRequest {
            namespace: ns.into(),
            pod: pod.into(),
            container: "foo".into(),
            ..Default::default()
        })
        .await
        .expect("Read")
        .into_inner();
    let mut n = 0;
    while let Some(batch) = stream.message().await.expect("a batch of events") {
        for ev in batch.events {
            assert_eq!(
                ev.policy_annotations
                    .get("fluentd-config")
                    .map(String::as_str),
                Some("actual fluentd configuration")
            );
            n += 1;
        }
    }
    assert_eq!(n, 2);
}
