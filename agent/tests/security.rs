//! Nothing outside the log root is ever served: path segments are checked
//! before any lookup, and symlinks, hard links and special files planted in
//! the tree are never followed or read.

use crate::common;

use std::os::unix::fs::symlink;
use std::path::Path;

use common::*;

const MARKER: &str = "SECRET-MARKER-4b1d9e";

const LEGIT: &str = "legit-1\nlegit-2\n";

/// A valid CRI log holding the marker, so that it would be served if it
/// were ever opened.
fn secret_log() -> Vec<u8> {
    cri_lines(&[
        ("2026-11-21T05:00:00.000000000Z", "stdout", "F", MARKER),
        ("2026-11-21T05:00:01.000000000Z", "stderr", "F", MARKER),
        ("2026-11-21T09:00:00.000000000Z", "stdout", "P", MARKER),
    ])
}

fn legit_log() -> Vec<u8> {
    cri_lines(&[
        ("2026-11-21T05:00:00.000000000Z", "stdout", "F", "legit-1"),
        ("2026-11-21T05:00:01.000000000Z", "stderr", "F", "legit-2"),
    ])
}

struct Fx {
    d: Daemon,
    t: Tree,
}

fn fixture() -> Fx {
    let t = Tree::new();
    let out = &t.outside;
    write_file(&out.join("secret.log"), &secret_log());
    write_file(&out.join("hard-secret.log"), &secret_log());
    std::fs::create_dir_all(out.join("cdir")).unwrap();
    write_file(&out.join("cdir/0.log"), &secret_log());
    std::fs::create_dir_all(out.join("poddir/c")).unwrap();
    write_file(&out.join("poddir/c/0.log"), &secret_log());
    write_file(&out.join("poddir/app"), &secret_log());

    let app = t.container("default", "web", "uid-1", "app");
    write_file(&app.join("0.log"), &legit_log());
    // A symlinked newer attempt and a symlinked rotated file.
    symlink(out.join("secret.log"), app.join("1.log")).unwrap();
    symlink(out.join("secret.log"), app.join("0.log.20261121-040000")).unwrap();
    symlink(out.join("secret.log"), app.join("0.log.20261121-030000.gz")).unwrap();
    // A relative symlink climbing out of the tree.
    symlink("../../../outside/secret.log", app.join("2.log")).unwrap();
    // A FIFO and a directory with log file names.
    let st = std::process::Command::new("mkfifo")
        .arg(app.join("3.log"))
        .status()
        .expect("run mkfifo");
    assert!(st.success());
    std::fs::create_dir(app.join("4.log")).unwrap();

    let pod = t.pod("default", "web", "uid-1");
    // A container directory that is a symlink.
    symlink(out.join("cdir"), pod.join("evil")).unwrap();
    // A container whose only log file is a symlink.
    let linked = t.container("default", "web", "uid-1", "linked");
    symlink(out.join("secret.log"), linked.join("0.log")).unwrap();
    // A container with a hard link to a file outside the root (the same
    // filesystem).
    let hard = t.container("default", "web", "uid-1", "hard");
    write_file(&hard.join("0.log"), &legit_log());
    std::fs::hard_link(out.join("hard-secret.log"), hard.join("1.log")).unwrap();
    // A pod directory that is a symlink.
    symlink(out.join("poddir"), t.root.join("default_evilpod_uid-9")).unwrap();
    // A pod whose container directory is a symlink to the pod directory of
    // another (outside) tree.
    let p2 = t.pod("other", "p2", "uid-2");
    symlink(out.join("poddir"), p2.join("c")).unwrap();

    let d = t.start();
    Fx { d, t }
}

fn assert_no_marker(target: &str, r: &Response) {
    assert!(
        !String::from_utf8_lossy(&r.body).contains(MARKER),
        "{target} leaked the outside file: {}",
        String::from_utf8_lossy(&r.body)
    );
}

/// Every combination of format and start parameter on `path`.
fn variants(path: &str) -> Vec<String> {
    let mut v = Vec::new();
    for format in ["text", "cri", "json"] {
        for extra in [
            "",
            "&tailLines=1",
            "&tailLines=100",
            "&previous=true",
            "&attempt=0",
            "&attempt=1",
            "&attempt=2",
            "&attempt=3",
            "&attempt=4",
            "&sinceTime=2026-11-21T00:00:00Z",
            "&timestamps=true&stream=stdout",
            "&grep=SECRET",
        ] {
            v.push(format!("{path}?format={format}{extra}"));
        }
    }
    v
}

#[tokio::test]
async fn planted_links_are_never_followed() {
    let f = fixture();
    let addr = f.d.addr;

    let inv = get(addr, "/logs").await;
    inv.expect_status(200);
    assert_no_marker("/logs", &inv);
    let inv = inv.json();
    let pods = pod_names(&inv);
    assert!(!pods.contains(&"default/evilpod".to_owned()), "{pods:?}");
    let web = inv["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pod"] == "web")
        .expect("pod web listed");
    let containers: Vec<&str> = web["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(!containers.contains(&"evil"), "{containers:?}");
    let app = web["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "app")
        .unwrap();
    assert_eq!(app["attempts"], serde_json::json!([0]), "{app}");
    let names: Vec<&str> = app["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["0.log"]);

    // The legitimate container reads as itself, whatever the parameters.
    let app_path = "/logs/default/web/app";
    assert_eq!(get_text(addr, app_path).await, LEGIT);
    assert_eq!(
        get_text(addr, &format!("{app_path}?tailLines=100")).await,
        LEGIT
    );
    assert_eq!(
        get_text(addr, &format!("{app_path}?attempt=0")).await,
        LEGIT
    );
    for target in variants(app_path) {
        let r = get(addr, &target).await;
        assert!(r.status == 200 || r.status == 404, "{target}: {}", r.status);
        assert_no_marker(&target, &r);
    }
    for target in [
        "/logs/default/web/evil",
        "/logs/web/evil",
        "/logs/default/web/linked",
        "/logs/default/evilpod/c",
        "/logs/evilpod/c",
        "/logs/default/evilpod/app",
        "/logs/other/p2/c",
        "/logs/default/web/hard",
    ] {
        for t in variants(target) {
            let r = get(addr, &t).await;
            assert!(r.status == 200 || r.status == 404, "{t}: {}", r.status);
            assert_no_marker(&t, &r);
            if r.status == 200 {
                let body = String::from_utf8_lossy(&r.body).into_owned();
                assert!(
                    body.is_empty() || body.contains("legit-"),
                    "{t}: unexpected content {body}"
                );
            }
        }
    }
    // The hard-linked newer attempt is refused; the legitimate attempt 0
    // still reads (now finished).
    assert_eq!(
        get_text(addr, "/logs/default/web/hard?attempt=0").await,
        LEGIT
    );
}

#[tokio::test]
async fn links_planted_while_following_are_ignored() {
    let f = fixture();
    let app = f.t.container("default", "web", "uid-1", "app");
    let mut fol = Follow::open(f.d.addr, "/logs/default/web/app?follow=true&format=cri").await;
    assert!(fol.next_text().await.ends_with("legit-1"));
    assert!(fol.next_text().await.ends_with("legit-2"));
    symlink(f.t.outside.join("secret.log"), app.join("7.log")).unwrap();
    symlink(
        f.t.outside.join("secret.log"),
        app.join("0.log.20261121-060000"),
    )
    .unwrap();
    append(
        &app.join("0.log"),
        &cri("2026-11-21T05:00:02.000000000Z", "stdout", "F", "legit-3"),
    );
    let l = fol.next_text().await;
    assert_eq!(l, "2026-11-21T05:00:02.000000000Z stdout F legit-3");
    // A symlinked pod directory appearing after start.
    symlink(
        f.t.outside.join("poddir"),
        f.t.root.join("default_latepod_uid-5"),
    )
    .unwrap();
    append(
        &app.join("0.log"),
        &cri("2026-11-21T05:00:03.000000000Z", "stdout", "F", "legit-4"),
    );
    assert_eq!(
        fol.next_text().await,
        "2026-11-21T05:00:03.000000000Z stdout F legit-4"
    );
    let r = get(f.d.addr, "/logs").await;
    assert_no_marker("/logs", &r);
    assert!(!r.text().contains("latepod"));
    for t in variants("/logs/default/latepod/c") {
        let r = get(f.d.addr, &t).await;
        assert_eq!(r.status, 404, "{t}");
    }
}

/// Raw request targets whose path segments must be refused, with the
/// segment they name.
const BAD_PATHS: &[(&str, &str)] = &[
    ("/logs/default/../app", "pod"),
    ("/logs/default/web/..", "container"),
    ("/logs/default/web/.", "container"),
    ("/logs/../web/app", "namespace"),
    ("/logs/default/%2e%2e/app", "pod"),
    ("/logs/default/%2E%2E/app", "pod"),
    ("/logs/default/web/%2e%2e", "container"),
    ("/logs/default/web/%2e", "container"),
    ("/logs/%2e%2e/web/app", "namespace"),
    ("/logs/default/web%2fapp", "container"),
    ("/logs/default/web%2Fapp", "container"),
    ("/logs/%2e%2e%2f%2e%2e%2foutside/app", "pod"),
    (
        "/logs/default/web/app%2F..%2F..%2F..%2Foutside",
        "container",
    ),
    (
        "/logs/default/web/..%2F..%2F..%2Foutside%2Fsecret.log",
        "container",
    ),
    ("/logs/default/%00/app", "pod"),
    ("/logs/default/web/app%00", "container"),
    ("/logs/default/web/app%00.log", "container"),
    ("/logs/default//app", "pod"),
    ("/logs/default/web/app%20", "container"),
    ("/logs/default/w%C3%A9b/app", "pod"),
    ("/logs/default/web/%5C..%5Capp", "container"),
    ("/logs/..%2f/app", "pod"),
];

#[tokio::test]
async fn traversal_in_path_segments_is_refused() {
    let f = fixture();
    for (target, _) in BAD_PATHS {
        for q in ["", "?format=cri", "?tailLines=1&format=json"] {
            let t = format!("{target}{q}");
            let r = get(f.d.addr, &t).await;
            assert_eq!(r.status, 400, "{t}: {}", String::from_utf8_lossy(&r.body));
            assert_error(&r, 400, "BadRequest", None);
            assert_no_marker(&t, &r);
        }
    }
    // Paths with more segments than an endpoint has are refused too,
    // whatever their segments.
    for t in [
        "/logs/default/web/app/../../../outside",
        "/logs/default/web/app/%2e%2e/%2e%2e",
    ] {
        let r = get(f.d.addr, t).await;
        assert!(r.status == 400 || r.status == 404, "{t}: {}", r.status);
        assert_no_marker(t, &r);
    }
    // The daemon still serves.
    assert_eq!(get_text(f.d.addr, "/logs/default/web/app").await, LEGIT);
}

#[tokio::test]
async fn a_refused_segment_is_named_as_documented() {
    // "answered 400 with "parameter" naming the segment (namespace, pod or
    // container)".
    let f = fixture();
    for (target, segment) in BAD_PATHS {
        let r = get(f.d.addr, target).await;
        assert_error(&r, 400, "BadRequest", Some(segment));
    }
}

#[tokio::test]
async fn the_fifo_does_not_block_anything() {
    let f = fixture();
    // The FIFO 3.log and the directory 4.log are no log files.
    let r = get(f.d.addr, "/logs/default/web/app?attempt=3").await;
    assert_error(&r, 404, "NotFound", None);
    let r = get(f.d.addr, "/logs/default/web/app?attempt=4").await;
    assert_error(&r, 404, "NotFound", None);
    assert_eq!(get_text(f.d.addr, "/logs/default/web/app").await, LEGIT);
    assert!(Path::new(&f.t.root).exists());
}
