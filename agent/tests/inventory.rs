//! `GET /logs`, its filters, discovery of pods that come and go, and the
//! health, readiness and metrics endpoints.

use crate::common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

struct Fx {
    d: Daemon,
    t: Tree,
}

fn fixture() -> Fx {
    let t = Tree::new();
    let nginx = t.container("default", "web", "uid-web", "nginx");
    write_file(
        &nginx.join("0.log.20261121-050000"),
        &cri_lines(&[
            ("2026-11-21T04:40:00.118244471Z", "stdout", "F", "a"),
            ("2026-11-21T04:59:59.000000000Z", "stdout", "F", "b"),
        ]),
    );
    write_file(
        &nginx.join("0.log"),
        &cri_lines(&[
            ("2026-11-21T05:00:01.000000000Z", "stdout", "F", "c"),
            ("2026-11-21T00:26:43.035456531-05:00", "stderr", "F", "d"),
        ]),
    );
    let sidecar = t.container("default", "web", "uid-web", "sidecar");
    write_file(
        &sidecar.join("0.log"),
        &cri("2026-11-21T04:00:00.000000000Z", "stdout", "F", "run0"),
    );
    write_file(
        &sidecar.join("1.log"),
        &cri("2026-11-21T04:10:00.5Z", "stdout", "F", "run1"),
    );
    let dns = t.container("kube-system", "coredns", "uid-dns", "coredns");
    let old = dns.join("0.log.20261121-040000");
    write_file(
        &old,
        &cri("2026-11-21T03:00:00.000000000Z", "stdout", "F", "gz"),
    );
    gzip(&old);
    write_file(
        &dns.join("0.log"),
        &cri("2026-11-21T04:30:00.000000000Z", "stdout", "F", "plain"),
    );
    // A container with no complete line yet.
    let empty = t.container("kube-system", "coredns", "uid-dns", "init");
    write_file(
        &empty.join("0.log"),
        b"2026-11-21T04:00:00Z stdout F no newline",
    );
    // Entries that are not pods or log files.
    std::fs::create_dir_all(t.root.join("not-a-pod-dir")).unwrap();
    std::fs::create_dir_all(t.root.join("a_b_c_d")).unwrap();
    write_file(&t.root.join("stray-file"), b"x");
    write_file(&nginx.join("notes.txt"), b"x");
    write_file(&nginx.join("0.log.20261121-060000.gz.tmp"), b"x");
    let d = t.start();
    Fx { d, t }
}

fn size(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

fn pod<'a>(inv: &'a Value, ns: &str, name: &str) -> &'a Value {
    inv["pods"]
        .as_array()
        .expect("pods is an array")
        .iter()
        .find(|p| p["namespace"] == ns && p["pod"] == name)
        .unwrap_or_else(|| panic!("pod {ns}/{name} not in {inv}"))
}

fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["containers"]
        .as_array()
        .expect("containers is an array")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("container {name} not in {pod}"))
}

#[tokio::test]
async fn inventory_lists_pods_containers_attempts_and_files() {
    let f = fixture();
    let r = get(f.d.addr, "/logs").await;
    r.expect_status(200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let inv = r.json();
    assert_eq!(pod_names(&inv), ["default/web", "kube-system/coredns"]);
    assert!(inv["node"].as_str().is_some_and(|n| !n.is_empty()));

    let web = pod(&inv, "default", "web");
    assert_eq!(web["uid"], "uid-web");
    assert_eq!(web["labels"], json!({}));
    let nginx_dir = f.t.container("default", "web", "uid-web", "nginx");
    let rot = size(&nginx_dir.join("0.log.20261121-050000"));
    let act = size(&nginx_dir.join("0.log"));
    let nginx = container(web, "nginx");
    assert_eq!(nginx["attempts"], json!([0]));
    assert_eq!(nginx["currentAttempt"], 0);
    assert_eq!(
        nginx["files"],
        json!([
            {"name": "0.log.20261121-050000", "attempt": 0, "bytes": rot, "compressed": false},
            {"name": "0.log", "attempt": 0, "bytes": act, "compressed": false},
        ])
    );
    assert_eq!(nginx["bytes"], rot + act);
    assert_eq!(nginx["firstTime"], "2026-11-21T04:40:00.118244471Z");
    assert_eq!(nginx["lastTime"], "2026-11-21T05:26:43.035456531Z");

    let sidecar_dir = f.t.container("default", "web", "uid-web", "sidecar");
    let sidecar = container(web, "sidecar");
    assert_eq!(sidecar["attempts"], json!([0, 1]));
    assert_eq!(sidecar["currentAttempt"], 1);
    let s0 = size(&sidecar_dir.join("0.log"));
    let s1 = size(&sidecar_dir.join("1.log"));
    assert_eq!(
        sidecar["files"],
        json!([
            {"name": "0.log", "attempt": 0, "bytes": s0, "compressed": false},
            {"name": "1.log", "attempt": 1, "bytes": s1, "compressed": false},
        ])
    );
    assert_eq!(sidecar["bytes"], s0 + s1);
    assert_eq!(sidecar["firstTime"], "2026-11-21T04:00:00.000000000Z");
    assert_eq!(sidecar["lastTime"], "2026-11-21T04:10:00.500000000Z");

    let dns_pod = pod(&inv, "kube-system", "coredns");
    let dns_dir =
        f.t.container("kube-system", "coredns", "uid-dns", "coredns");
    let gz = size(&dns_dir.join("0.log.20261121-040000.gz"));
    let plain = size(&dns_dir.join("0.log"));
    let dns = container(dns_pod, "coredns");
    assert_eq!(
        dns["files"],
        json!([
            {"name": "0.log.20261121-040000.gz", "attempt": 0, "bytes": gz, "compressed": true},
            {"name": "0.log", "attempt": 0, "bytes": plain, "compressed": false},
        ])
    );
    assert_eq!(dns["bytes"], gz + plain);
    assert_eq!(dns["firstTime"], "2026-11-21T03:00:00.000000000Z");
    assert_eq!(dns["lastTime"], "2026-11-21T04:30:00.000000000Z");
}

#[tokio::test]
async fn times_are_null_without_a_complete_line() {
    // "firstTime, lastTime: ... null when the container has no complete
    // line".
    let f = fixture();
    let inv = inventory(f.d.addr, "").await;
    let init = container(pod(&inv, "kube-system", "coredns"), "init");
    assert_eq!(init["attempts"], json!([0]));
    assert_eq!(init["firstTime"], Value::Null, "{init}");
    assert_eq!(init["lastTime"], Value::Null, "{init}");
    // Nothing to read either.
    assert_eq!(
        get_text(f.d.addr, "/logs/kube-system/coredns/init").await,
        ""
    );
}

#[tokio::test]
async fn namespace_and_label_selector_filters() {
    let f = fixture();
    let inv = inventory(f.d.addr, "namespace=kube-system").await;
    assert_eq!(pod_names(&inv), ["kube-system/coredns"]);
    let inv = inventory(f.d.addr, "namespace=nothing-here").await;
    assert_eq!(inv["pods"], json!([]));
    // Directory mode: pods have no labels.
    for sel in ["app=web", "app==web", "app", "app=web,tier!=db"] {
        let inv = inventory(f.d.addr, &format!("labelSelector={}", enc(sel))).await;
        assert_eq!(inv["pods"], json!([]), "{sel}");
    }
    for sel in ["!app", "app!=web", "", "!app,tier!=db"] {
        let inv = inventory(f.d.addr, &format!("labelSelector={}", enc(sel))).await;
        assert_eq!(
            pod_names(&inv),
            ["default/web", "kube-system/coredns"],
            "{sel}"
        );
    }
    let inv = inventory(
        f.d.addr,
        &format!("namespace=default&labelSelector={}", enc("!app")),
    )
    .await;
    assert_eq!(pod_names(&inv), ["default/web"]);
    // Set-based requirements hold as Kubernetes defines them: without the
    // label, `in` does not, `notin` does.
    let inv = inventory(
        f.d.addr,
        &format!("labelSelector={}", enc("app in (web,api)")),
    )
    .await;
    assert!(pod_names(&inv).is_empty());
    let inv = inventory(
        f.d.addr,
        &format!("labelSelector={}", enc("app notin (web)")),
    )
    .await;
    assert_eq!(pod_names(&inv), ["default/web", "kube-system/coredns"]);
    for sel in [
        "app in (web",
        "app notin ()",
        "a b=c",
        "app=web c",
        "=web",
        "app=w/eb",
        "app=web,,=x",
    ] {
        let r = get(f.d.addr, &format!("/logs?labelSelector={}", enc(sel))).await;
        assert_error(&r, 400, "BadRequest", Some("labelSelector"));
    }
    let r = get(f.d.addr, "/logs?namespace=..").await;
    assert_error(&r, 400, "BadRequest", Some("namespace"));
}

/// Polls the inventory until `pred` holds (at most [`TIMEOUT`]).
async fn wait_inventory(d: &Daemon, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let inv = inventory(d.addr, "").await;
        if pred(&inv) {
            return inv;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not seen within {TIMEOUT:?}; inventory: {inv}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn has_container(inv: &Value, ns: &str, pod: &str, c: &str, attempts: Value) -> bool {
    inv["pods"].as_array().unwrap().iter().any(|p| {
        p["namespace"] == ns
            && p["pod"] == pod
            && p["containers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["name"] == c && x["attempts"] == attempts)
    })
}

#[tokio::test]
async fn pods_that_come_and_go() {
    let f = fixture();
    // Created in place, one step after the other, as a runtime does.
    let c = f.t.container("staging", "api", "uid-api", "server");
    write_file(
        &c.join("0.log"),
        &cri("2026-11-21T05:00:00.000000000Z", "stdout", "F", "up"),
    );
    wait_inventory(&f.d, "new pod staging/api", |inv| {
        has_container(inv, "staging", "api", "server", json!([0]))
    })
    .await;
    assert_eq!(get_text(f.d.addr, "/logs/staging/api/server").await, "up\n");
    assert_eq!(get_text(f.d.addr, "/logs/api/server").await, "up\n");

    // Moved in whole.
    let staged = f.t.outside.join("prod_batch_uid-b");
    std::fs::create_dir_all(staged.join("job")).unwrap();
    write_file(
        &staged.join("job/0.log"),
        &cri("2026-11-21T05:00:00.000000000Z", "stdout", "F", "moved"),
    );
    std::fs::rename(&staged, f.t.root.join("prod_batch_uid-b")).unwrap();
    wait_inventory(&f.d, "moved-in pod prod/batch", |inv| {
        has_container(inv, "prod", "batch", "job", json!([0]))
    })
    .await;
    assert_eq!(get_text(f.d.addr, "/logs/prod/batch/job").await, "moved\n");

    // A new container and a new attempt in an existing pod.
    let extra = f.t.container("default", "web", "uid-web", "extra");
    write_file(
        &extra.join("0.log"),
        &cri("2026-11-21T05:00:00.000000000Z", "stdout", "F", "x"),
    );
    let sidecar = f.t.container("default", "web", "uid-web", "sidecar");
    write_file(
        &sidecar.join("2.log"),
        &cri("2026-11-21T05:00:00.000000000Z", "stdout", "F", "run2"),
    );
    wait_inventory(&f.d, "new container and attempt", |inv| {
        has_container(inv, "default", "web", "extra", json!([0]))
            && has_container(inv, "default", "web", "sidecar", json!([0, 1, 2]))
    })
    .await;
    assert_eq!(
        get_text(f.d.addr, "/logs/default/web/sidecar?previous=true").await,
        "run1\n"
    );

    // Deleted pods disappear, and reading them is a 404.
    std::fs::remove_dir_all(f.t.root.join("staging_api_uid-api")).unwrap();
    std::fs::remove_dir_all(f.t.root.join("kube-system_coredns_uid-dns")).unwrap();
    let inv = wait_inventory(&f.d, "deleted pods gone", |inv| {
        let names = pod_names(inv);
        !names.contains(&"staging/api".to_owned())
            && !names.contains(&"kube-system/coredns".to_owned())
    })
    .await;
    assert_eq!(pod_names(&inv), ["default/web", "prod/batch"]);
    let r = get(f.d.addr, "/logs/staging/api/server").await;
    assert_error(&r, 404, "NotFound", None);

    // A pod moved out of the root disappears too.
    std::fs::rename(f.t.root.join("prod_batch_uid-b"), f.t.outside.join("gone")).unwrap();
    wait_inventory(&f.d, "moved-out pod gone", |inv| {
        pod_names(inv) == ["default/web"]
    })
    .await;
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let f = fixture();
    let r = get(f.d.addr, "/healthz").await;
    assert_eq!(r.ok_text(), "ok\n");
    let r = get(f.d.addr, "/readyz").await;
    assert_eq!(r.ok_text(), "ready\n");
    // Some traffic first, so that request and byte counters exist.
    get_text(f.d.addr, "/logs/default/web/nginx").await;
    get(f.d.addr, "/logs/default/web/nope").await;
    let r = get(f.d.addr, "/metrics").await;
    r.expect_status(200);
    let ct = r.header("content-type").unwrap_or("").to_owned();
    assert!(
        ct.starts_with("application/openmetrics-text") || ct.starts_with("text/plain"),
        "{ct}"
    );
    let m = r.text();
    assert!(m.contains("podlog_"), "{m}");
    assert!(m.contains("podlog_followers"), "{m}");
    assert!(m.contains("podlog_http_requests"), "{m}");
    assert_eq!(metric(f.d.addr, "podlog_followers").await, Some(0.0));
    // The pods gauge counts the pods of the initial scan.
    assert_eq!(metric(f.d.addr, "podlog_pods").await, Some(2.0));
}

#[tokio::test]
async fn the_sample_tree_of_the_docs() {
    // The documented example on examples/var-log-pods: the first tail
    // command's output is printed in docs/api.md.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/var-log-pods");
    let d = Daemon::start(&root);
    let got = get_text(
        d.addr,
        "/logs/default/web-7d4b9c/nginx?tailLines=5&timestamps=true",
    )
    .await;
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md"),
    )
    .unwrap();
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 5, "{got}");
    for l in &lines {
        assert!(doc.contains(l), "line not in docs/api.md: {l}");
    }
    let inv = inventory(d.addr, "").await;
    assert_eq!(
        pod_names(&inv),
        [
            "batch/report-28374650-abcde",
            "default/web-7d4b9c",
            "kube-system/coredns-5d78c9869d-xk2lp"
        ]
    );
    let r = get(d.addr, "/logs/web-7d4b9c/nginx?tailLines=5").await;
    r.expect_status(200);
}

#[tokio::test]
async fn node_policy_from_the_config_file_is_in_force() {
    let f = fixture();
    let cfg = f.t.root.parent().unwrap().join("podlogd.yaml");
    write_file(
        &cfg,
        b"policy:\n  rotate: hourly\n  maxFiles: 7\n  maxFileSize: 1Mi\n  compress: gzip\n",
    );
    let d = f.t.start_with(&["--config", cfg.to_str().unwrap()]);
    let inv = inventory(d.addr, "").await;
    let c = &inv["pods"][0]["containers"][0];
    assert_eq!(c["policy"]["rotate"], "hourly");
    assert_eq!(c["policy"]["maxFiles"], 7);
    assert_eq!(c["policy"]["maxFileSize"], 1 << 20);
    assert_eq!(c["policy"]["compress"], "gzip");
    // Unset fields keep the built-in defaults; directory mode has no
    // annotations, so nothing is refused.
    assert_eq!(c["policy"]["delimiter"], "newline");
    // Shown, not enforced, and the inventory says why.
    assert_eq!(inv["lifecycle"]["enabled"], false);
    assert!(inv["lifecycle"]["reason"]
        .as_str()
        .is_some_and(|r| r.starts_with("directory mode")));
    assert!(c.get("policyErrors").is_none(), "{c}");
}

#[test]
fn a_bad_node_policy_is_a_configuration_error() {
    let t = Tree::new();
    let cfg = t.root.parent().unwrap().join("podlogd.yaml");
    write_file(&cfg, b"policy:\n  maxFiles: -2\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_podlogd"))
        .args([
            "--cri-endpoint",
            "none",
            "--listen",
            "127.0.0.1:0",
            "--log-root",
        ])
        .arg(&t.root)
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("maxFiles") && err.contains("-2"), "{err}");
}
