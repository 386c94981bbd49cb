//! Merged reads: `GET /logs` with `container=` or any log parameter serves
//! the events of every matching container, merged in time order; with only
//! `namespace` and `labelSelector` it stays the inventory.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// 2026-11-21T06:00:00Z in nanoseconds.
const BASE: i128 = 1_795_240_800_000_000_000;
const SEC: i128 = 1_000_000_000;

/// Events per container in the fixture.
const N: usize = 6;

/// One stored event of the fixture.
#[derive(Clone, Debug)]
struct Ev {
    /// `namespace/pod/container`.
    id: String,
    attempt: u64,
    time: String,
    stream: &'static str,
    log: String,
    /// The stored CRI lines.
    raw: Vec<u8>,
}

/// A container of the fixture: `(namespace, pod, uid, container)` and its
/// slot in the interleaving.
const CTRS: [(&str, &str, &str, &str); 5] = [
    ("default", "web", "uid-web", "app"),
    ("default", "web", "uid-web", "side"),
    ("default", "api", "uid-api", "app"),
    ("default", "api", "uid-api", "side"),
    ("other", "db", "uid-db", "app"),
];

struct Fx {
    d: Daemon,
    t: Tree,
    /// The current attempt's events of every container, in no particular
    /// order.
    evs: Vec<Ev>,
    /// The events of attempt 0 of `default/web/app` (its previous attempt).
    prev: Vec<Ev>,
}

impl Fx {
    /// The directory of container `i` of [`CTRS`].
    fn dir(&self, i: usize) -> PathBuf {
        let (ns, pod, uid, c) = CTRS[i];
        self.t.container(ns, pod, uid, c)
    }

    /// The expected events whose id matches `keep`, in time order.
    fn expected(&self, keep: impl Fn(&Ev) -> bool) -> Vec<Ev> {
        let mut v: Vec<Ev> = self.evs.iter().filter(|e| keep(e)).cloned().collect();
        v.sort_by(|a, b| a.time.cmp(&b.time));
        v
    }
}

fn ev(id: &str, attempt: u64, t: i128, stream: &'static str, tag: &str, log: &str) -> Ev {
    let time = rfc3339(t);
    Ev {
        id: id.to_owned(),
        attempt,
        raw: cri(&time, stream, tag, log),
        time,
        stream,
        log: log.to_owned(),
    }
}

/// Two pods of two containers in `default`, one pod in `other`. Event `j`
/// of container `i` is written at `BASE + (5j + i)` seconds, so the
/// containers' events interleave and no two share a time.
/// `default/web/app` has a finished attempt 0 (ending in an open `P`
/// chain) and the current attempt 1; `default/api/app` has its first
/// events in a rotated file.
fn fixture() -> Fx {
    let t = Tree::new();
    let mut evs = Vec::new();
    for (i, (ns, pod, uid, c)) in CTRS.iter().enumerate() {
        let dir = t.container(ns, pod, uid, c);
        let id = format!("{ns}/{pod}/{c}");
        let attempt = u64::from(i == 0);
        let mine: Vec<Ev> = (0..N)
            .map(|j| {
                let stream = if (i + j) % 3 == 0 { "stderr" } else { "stdout" };
                let at = BASE + (5 * j as i128 + i as i128) * SEC;
                ev(&id, attempt, at, stream, "F", &format!("{pod}/{c}#{j}"))
            })
            .collect();
        let raw = |es: &[Ev]| es.iter().flat_map(|e| e.raw.clone()).collect::<Vec<u8>>();
        if i == 2 {
            write_file(&dir.join("0.log.20261121-060000"), &raw(&mine[..3]));
            write_file(&dir.join("0.log"), &raw(&mine[3..]));
        } else {
            write_file(&dir.join(format!("{attempt}.log")), &raw(&mine));
        }
        evs.extend(mine);
    }
    let mut prev: Vec<Ev> = (0..3)
        .map(|j| {
            let at = BASE - 3600 * SEC + j as i128 * SEC;
            ev(
                "default/web/app",
                0,
                at,
                "stdout",
                "F",
                &format!("web/app@0#{j}"),
            )
        })
        .collect();
    prev.push(ev(
        "default/web/app",
        0,
        BASE - 3000 * SEC,
        "stderr",
        "P",
        "web/app@0#unfinished",
    ));
    let dir = t.container("default", "web", "uid-web", "app");
    write_file(
        &dir.join("0.log"),
        &prev.iter().flat_map(|e| e.raw.clone()).collect::<Vec<u8>>(),
    );
    let d = t.start();
    Fx { d, t, evs, prev }
}

/// `namespace/pod/container` of a JSON event.
fn id_of(e: &Value) -> String {
    format!(
        "{}/{}/{}",
        e["namespace"].as_str().expect("namespace"),
        e["pod"].as_str().expect("pod"),
        e["container"].as_str().expect("container")
    )
}

fn ids_of(evs: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = evs.iter().map(id_of).collect();
    v.sort();
    v.dedup();
    v
}

/// Asserts that JSON events are the expected ones, in that order: id,
/// attempt, time, stream and log.
fn assert_events(got: &[Value], want: &[Ev], what: &str) {
    let g: Vec<(String, u64, String, String, String)> = got
        .iter()
        .map(|e| {
            (
                id_of(e),
                e["attempt"].as_u64().expect("attempt"),
                e["time"].as_str().expect("time").to_owned(),
                e["stream"].as_str().expect("stream").to_owned(),
                e["log"].as_str().expect("log").to_owned(),
            )
        })
        .collect();
    let w: Vec<(String, u64, String, String, String)> = want
        .iter()
        .map(|e| {
            (
                e.id.clone(),
                e.attempt,
                e.time.clone(),
                e.stream.to_owned(),
                e.log.clone(),
            )
        })
        .collect();
    assert_eq!(g, w, "{what}");
}

/// Asserts that event times never go backwards.
fn assert_time_order(evs: &[Value], what: &str) {
    let times: Vec<&str> = evs
        .iter()
        .map(|e| e["time"].as_str().expect("time"))
        .collect();
    for w in times.windows(2) {
        assert!(w[0] <= w[1], "{what}: {} after {}", w[1], w[0]);
    }
}

/// Asserts that `merged` is, container by container, exactly the
/// per-container reads (whole events, cursors included) of the same
/// parameters, and holds nothing else.
async fn assert_merge_of(d: &Daemon, merged: &[Value], ids: &[&str], params: &str) {
    let mut total = 0;
    for id in ids {
        let own = get_events(d.addr, &format!("/logs/{id}?format=json&{params}")).await;
        let mine: Vec<Value> = merged.iter().filter(|e| id_of(e) == *id).cloned().collect();
        assert_eq!(
            mine, own,
            "{params}: the merged events of {id} differ from its own read"
        );
        total += own.len();
    }
    assert_eq!(
        merged.len(),
        total,
        "{params}: merged events of other containers: {:?}",
        ids_of(merged)
    );
}

const DEFAULT_IDS: [&str; 4] = [
    "default/web/app",
    "default/web/side",
    "default/api/app",
    "default/api/side",
];

#[tokio::test]
async fn only_selection_parameters_give_the_inventory() {
    let f = fixture();
    for q in [
        "",
        "namespace=default",
        "labelSelector=%21app",
        "namespace=default&labelSelector=%21app",
    ] {
        let target = if q.is_empty() {
            "/logs".to_owned()
        } else {
            format!("/logs?{q}")
        };
        let r = get(f.d.addr, &target).await;
        r.expect_status(200);
        assert_eq!(r.header("content-type"), Some("application/json"), "{q}");
        let inv = r.json();
        assert!(inv["pods"].is_array(), "{q}: not an inventory: {inv}");
        assert!(inv["node"].is_string(), "{q}");
    }
    let inv = inventory(f.d.addr, "namespace=default").await;
    assert_eq!(pod_names(&inv), vec!["default/api", "default/web"]);

    // Any log parameter, or container=, turns it into a merged read.
    for q in [
        "namespace=default&format=text",
        "namespace=default&timestamps=false",
        "namespace=default&stream=all",
        "namespace=default&labels=false",
    ] {
        let r = get(f.d.addr, &format!("/logs?{q}")).await;
        r.expect_status(200);
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "{q}"
        );
        let want: String = f
            .expected(|e| e.id.starts_with("default/"))
            .iter()
            .map(|e| format!("{}\n", e.log))
            .collect();
        assert_eq!(r.text(), want, "{q}");
    }
    let r = get(f.d.addr, "/logs?container=side").await;
    r.expect_status(200);
    let want: String = f
        .expected(|e| e.id.ends_with("/side"))
        .iter()
        .map(|e| format!("{}\n", e.log))
        .collect();
    assert_eq!(r.text(), want);
}

#[tokio::test]
async fn merged_json_is_every_containers_events_in_time_order() {
    let f = fixture();
    let merged = get_events(f.d.addr, "/logs?namespace=default&format=json").await;
    assert_eq!(merged.len(), 4 * N);
    assert_time_order(&merged, "namespace=default");
    assert_events(
        &merged,
        &f.expected(|e| e.id.starts_with("default/")),
        "namespace=default",
    );
    assert_merge_of(&f.d, &merged, &DEFAULT_IDS, "").await;
    // The interleaving is real: consecutive events come from different
    // containers.
    for w in merged.windows(2) {
        assert_ne!(id_of(&w[0]), id_of(&w[1]), "{} then {}", w[0], w[1]);
    }
    // Without a namespace, every namespace.
    let all = get_events(f.d.addr, "/logs?format=json").await;
    assert_events(&all, &f.expected(|_| true), "all namespaces");
    let mut ids = DEFAULT_IDS.to_vec();
    ids.push("other/db/app");
    assert_merge_of(&f.d, &all, &ids, "").await;
}

#[tokio::test]
async fn merged_text_and_cri_are_in_the_same_order() {
    let f = fixture();
    let want = f.expected(|e| e.id.starts_with("default/"));
    let text = get_text(f.d.addr, "/logs?namespace=default&format=text").await;
    let want_text: String = want.iter().map(|e| format!("{}\n", e.log)).collect();
    assert_eq!(text, want_text);
    let ts = get_text(f.d.addr, "/logs?namespace=default&timestamps=true").await;
    let want_ts: String = want
        .iter()
        .map(|e| format!("{} {}\n", e.time, e.log))
        .collect();
    assert_eq!(ts, want_ts);
    let r = get(f.d.addr, "/logs?namespace=default&format=cri").await;
    r.expect_status(200);
    let want_cri: Vec<u8> = want.iter().flat_map(|e| e.raw.clone()).collect();
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        String::from_utf8_lossy(&want_cri)
    );
}

#[tokio::test]
async fn container_selects_that_container_in_every_pod() {
    let f = fixture();
    let merged = get_events(f.d.addr, "/logs?container=app&format=json").await;
    assert_eq!(
        ids_of(&merged),
        vec!["default/api/app", "default/web/app", "other/db/app"]
    );
    assert_events(&merged, &f.expected(|e| e.id.ends_with("/app")), "app");
    assert_merge_of(
        &f.d,
        &merged,
        &["default/web/app", "default/api/app", "other/db/app"],
        "",
    )
    .await;
    let merged = get_events(f.d.addr, "/logs?namespace=other&container=app&format=json").await;
    assert_events(
        &merged,
        &f.expected(|e| e.id == "other/db/app"),
        "other/app",
    );
    let merged = get_events(
        f.d.addr,
        "/logs?namespace=default&container=side&format=json",
    )
    .await;
    assert_eq!(
        ids_of(&merged),
        vec!["default/api/side", "default/web/side"]
    );
    assert_time_order(&merged, "default/side");
}

#[tokio::test]
async fn tail_lines_applies_per_container() {
    let f = fixture();
    for n in [0usize, 1, 2, 5] {
        let q = format!("tailLines={n}");
        let merged = get_events(
            f.d.addr,
            &format!("/logs?namespace=default&format=json&{q}"),
        )
        .await;
        assert_eq!(merged.len(), 4 * n, "{q}");
        let mut want: Vec<Ev> = Vec::new();
        for id in DEFAULT_IDS {
            let mut mine = f.expected(|e| e.id == id);
            want.extend(mine.split_off(N - n));
        }
        want.sort_by(|a, b| a.time.cmp(&b.time));
        assert_events(&merged, &want, &q);
        assert_merge_of(&f.d, &merged, &DEFAULT_IDS, &q).await;
    }
}

/// Which expected events a filter keeps.
type Keep = Box<dyn Fn(&Ev) -> bool>;

#[tokio::test]
async fn filters_apply_to_every_container() {
    let f = fixture();
    let since = rfc3339(BASE + 7 * SEC);
    let until = rfc3339(BASE + 21 * SEC);
    let cases: Vec<(String, Keep)> = vec![
        ("stream=stderr".into(), Box::new(|e| e.stream == "stderr")),
        ("stream=stdout".into(), Box::new(|e| e.stream == "stdout")),
        (
            format!("grep={}", enc("#[24]$")),
            Box::new(|e| e.log.ends_with("#2") || e.log.ends_with("#4")),
        ),
        (
            format!("grep={}", enc("^api/")),
            Box::new(|e| e.log.starts_with("api/")),
        ),
        (
            format!("sinceTime={}", enc(&since)),
            Box::new(move |e| e.time >= rfc3339(BASE + 7 * SEC)),
        ),
        (
            format!("sinceTime={}&untilTime={}", enc(&since), enc(&until)),
            Box::new(move |e| {
                e.time >= rfc3339(BASE + 7 * SEC) && e.time < rfc3339(BASE + 21 * SEC)
            }),
        ),
        (
            format!("stream=stdout&untilTime={}", enc(&until)),
            Box::new(move |e| e.stream == "stdout" && e.time < rfc3339(BASE + 21 * SEC)),
        ),
    ];
    for (q, keep) in cases {
        let merged = get_events(
            f.d.addr,
            &format!("/logs?namespace=default&format=json&{q}"),
        )
        .await;
        let want = f.expected(|e| e.id.starts_with("default/") && keep(e));
        assert!(!want.is_empty() && want.len() < 4 * N, "{q}: a real filter");
        assert_events(&merged, &want, &q);
        assert_merge_of(&f.d, &merged, &DEFAULT_IDS, &q).await;
    }
}

#[tokio::test]
async fn previous_reads_each_containers_previous_attempt() {
    let f = fixture();
    let merged = get_events(
        f.d.addr,
        "/logs?namespace=default&previous=true&format=json",
    )
    .await;
    // Only default/web/app has a previous attempt; the others are skipped.
    assert_events(&merged, &f.prev, "previous=true");
    let last = merged.last().expect("events");
    assert_eq!(last["partial"], true, "the finished attempt's open chain");
    assert!(merged.iter().all(|e| e["attempt"] == 0));
    assert_eq!(
        merged,
        get_events(f.d.addr, "/logs/default/web/app?previous=true&format=json").await
    );
    let text = get_text(f.d.addr, "/logs?previous=true&container=app").await;
    let want: String = f.prev.iter().map(|e| format!("{}\n", e.log)).collect();
    assert_eq!(text, want);
    // No container of `other` has a previous attempt.
    let r = get(f.d.addr, "/logs?namespace=other&previous=true").await;
    assert_error(&r, 404, "NotFound", None);
}

#[tokio::test]
async fn each_cursor_resumes_its_own_container() {
    let f = fixture();
    let merged = get_events(f.d.addr, "/logs?namespace=default&format=json").await;
    let mut own: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for id in DEFAULT_IDS {
        own.insert(
            id.to_owned(),
            get_events(f.d.addr, &format!("/logs/{id}?format=json")).await,
        );
    }
    for e in &merged {
        let id = id_of(e);
        let cursor = e["cursor"].as_str().expect("cursor");
        assert!(!cursor.is_empty());
        let after = get_events(f.d.addr, &format!("/logs/{id}?format=json&cursor={cursor}")).await;
        let all = &own[&id];
        let k = all
            .iter()
            .position(|o| o["log"] == e["log"])
            .expect("the event is in its container's read");
        assert_eq!(after, all[k + 1..], "resuming {id} after {}", e["log"]);
    }
    // A merged event's cursor names its container: another one refuses it.
    let c = merged
        .iter()
        .find(|e| id_of(e) == "default/api/side")
        .expect("an api/side event")["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = get(
        f.d.addr,
        &format!("/logs/default/web/side?format=json&cursor={c}"),
    )
    .await;
    assert_error(&r, 400, "BadRequest", Some("cursor"));
}

#[tokio::test]
async fn events_carry_identity_node_and_labels_when_asked() {
    let f = fixture();
    let merged = get_events(f.d.addr, "/logs?namespace=default&format=json").await;
    for e in &merged {
        let o = e.as_object().expect("an object");
        for k in ["namespace", "pod", "uid", "container", "cursor", "node"] {
            assert!(o.get(k).is_some_and(Value::is_string), "{k} in {e}");
        }
        assert!(o["attempt"].is_u64(), "attempt in {e}");
        assert!(!o.contains_key("labels"), "labels only when asked: {e}");
        assert!(!o.contains_key("annotations"), "{e}");
        let uid = if e["pod"] == "web" {
            "uid-web"
        } else {
            "uid-api"
        };
        assert_eq!(e["uid"], uid, "{e}");
        assert_eq!(e["namespace"], "default");
        let want_attempt = u64::from(id_of(e) == "default/web/app");
        assert_eq!(e["attempt"].as_u64(), Some(want_attempt), "{e}");
    }
    let inv = inventory(f.d.addr, "").await;
    assert!(merged.iter().all(|e| e["node"] == inv["node"]));

    let with = get_events(
        f.d.addr,
        "/logs?namespace=default&format=json&labels=true&annotations=true",
    )
    .await;
    assert_eq!(with.len(), merged.len());
    for (w, m) in with.iter().zip(&merged) {
        // Directory mode: pods have no labels or annotations.
        assert_eq!(w["labels"], serde_json::json!({}), "{w}");
        assert_eq!(w["annotations"], serde_json::json!({}), "{w}");
        let mut w = w.clone();
        let o = w.as_object_mut().unwrap();
        o.remove("labels");
        o.remove("annotations");
        assert_eq!(&w, m, "labels=true adds members and changes nothing else");
    }
}

#[tokio::test]
async fn one_containers_parameters_are_refused() {
    let f = fixture();
    let merged = get_events(f.d.addr, "/logs?namespace=default&format=json").await;
    let c = merged[0]["cursor"].as_str().unwrap().to_owned();
    let cases = [
        (format!("namespace=default&cursor={c}"), "cursor"),
        (format!("container=app&format=json&cursor={c}"), "cursor"),
        ("namespace=default&attempt=0".to_owned(), "attempt"),
        ("container=app&attempt=1&follow=true".to_owned(), "attempt"),
        ("container=..&format=json".to_owned(), "container"),
        ("container=a%2Fb".to_owned(), "container"),
        ("namespace=..&format=json".to_owned(), "namespace"),
        (
            "labelSelector=a%20b&follow=true".to_owned(),
            "labelSelector",
        ),
        (
            "labelSelector=app+in+%28a&format=json".to_owned(),
            "labelSelector",
        ),
        ("namespace=default&tailLines=-1".to_owned(), "tailLines"),
        ("namespace=default&tail=1".to_owned(), "tail"),
        ("container=app&container=side".to_owned(), "container"),
        ("container=app&format=xml".to_owned(), "format"),
        ("container=app&grep=%28".to_owned(), "grep"),
    ];
    for (q, param) in cases {
        let r = get(f.d.addr, &format!("/logs?{q}")).await;
        assert_error(&r, 400, "BadRequest", Some(param));
        let msg = r.json()["error"].as_str().unwrap().to_owned();
        assert!(msg.contains(param), "{q}: message {msg:?} names {param}");
    }
}

#[tokio::test]
async fn a_selection_that_matches_nothing_is_not_found() {
    let f = fixture();
    for q in [
        // Directory mode: pods have no labels.
        "labelSelector=app%3Dweb&format=json",
        "labelSelector=app&container=app",
        "namespace=nope&format=text",
        "container=nope",
        "namespace=other&container=side",
    ] {
        let r = get(f.d.addr, &format!("/logs?{q}")).await;
        assert_error(&r, 404, "NotFound", None);
        let msg = r.json()["error"].as_str().unwrap().to_owned();
        assert!(
            msg.contains("no container with logs matches"),
            "{q}: {msg:?}"
        );
    }
    // The same selections as an inventory are empty, not errors.
    let inv = inventory(f.d.addr, "labelSelector=app%3Dweb").await;
    assert_eq!(inv["pods"], serde_json::json!([]));
    // `!key` matches every pod, so the merged read has everything.
    let all = get_events(f.d.addr, "/logs?labelSelector=%21app&format=json").await;
    assert_eq!(all.len(), 5 * N);
}

#[tokio::test]
async fn limit_bytes_bounds_each_containers_json() {
    let f = fixture();
    let one = get(f.d.addr, "/logs/default/web/side?format=json").await;
    let first = one
        .body
        .split_inclusive(|&b| b == b'\n')
        .next()
        .unwrap()
        .len();
    // About two and a half events of each container.
    let n = first * 5 / 2;
    let q = format!("limitBytes={n}");
    let merged = get_events(
        f.d.addr,
        &format!("/logs?namespace=default&format=json&{q}"),
    )
    .await;
    assert_time_order(&merged, &q);
    assert_merge_of(&f.d, &merged, &DEFAULT_IDS, &q).await;
    for id in DEFAULT_IDS {
        let mine = merged.iter().filter(|e| id_of(e) == id).count();
        assert!((1..N).contains(&mine), "{q}: {mine} events of {id}");
    }
}

#[tokio::test]

async fn limit_bytes_cut_pieces_keep_their_place() {
    let f = fixture();
    for n in [1usize, 15, 25] {
        // Each container's own limited output, its k-th piece (the last
        // one cut) at the time of its k-th event, merged by time.
        let mut pieces: Vec<(String, String)> = Vec::new();
        for id in DEFAULT_IDS {
            let own = get_text(f.d.addr, &format!("/logs/{id}?limitBytes={n}")).await;
            assert_eq!(own.len(), n, "{id}");
            let evs = f.expected(|e| e.id == id);
            for (k, piece) in own.split_inclusive('\n').enumerate() {
                pieces.push((evs[k].time.clone(), piece.to_owned()));
            }
        }
        pieces.sort_by(|a, b| a.0.cmp(&b.0));
        let want: String = pieces.into_iter().map(|(_, p)| p).collect();
        let got = get_text(f.d.addr, &format!("/logs?namespace=default&limitBytes={n}")).await;
        assert_eq!(got, want, "limitBytes={n}");
    }
}

// ---------------------------------------------------------------------------
// Follow
// ---------------------------------------------------------------------------

/// Receives `n` JSON events and returns them sorted by log.
async fn receive(fol: &mut Follow, n: usize) -> Vec<Value> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(fol.next_json().await);
    }
    v.sort_by(|a, b| a["log"].as_str().cmp(&b["log"].as_str()));
    v
}

/// Receives events until every one of `logs` has arrived, in any order
/// (events of different containers written one after the other may
/// arrive in either order); asserts that nothing else arrives meanwhile.
async fn receive_all(fol: &mut Follow, logs: &[&str]) -> Vec<Value> {
    let mut v: Vec<Value> = Vec::new();
    while v.len() < logs.len() {
        let e = fol.next_json().await;
        let log = e["log"].as_str().expect("log");
        assert!(
            logs.contains(&log) && !v.iter().any(|o| o["log"] == log),
            "unexpected event {e} while waiting for {logs:?}"
        );
        v.push(e);
    }
    v
}

fn line(t: i128, stream: &str, log: &str) -> Vec<u8> {
    cri(&rfc3339(t), stream, "F", log)
}

/// A container directory built outside the root, then renamed into it as a
/// whole pod directory, so it appears at once with its log.
fn add_pod(t: &Tree, ns: &str, pod: &str, uid: &str, container: &str, data: &[u8]) -> PathBuf {
    let name = format!("{ns}_{pod}_{uid}");
    let staged = t.outside.join(&name);
    std::fs::create_dir_all(staged.join(container)).unwrap();
    write_file(&staged.join(container).join("0.log"), data);
    let dest = t.root.join(&name);
    std::fs::rename(&staged, &dest).unwrap();
    dest.join(container)
}

fn log_path(dir: &Path, attempt: u32) -> PathBuf {
    dir.join(format!("{attempt}.log"))
}

#[tokio::test]
async fn follow_merges_the_live_lines_of_every_container() {
    let f = fixture();
    let mut fol = Follow::open(
        f.d.addr,
        "/logs?namespace=default&follow=true&format=json&tailLines=1",
    )
    .await;
    // The stored part: each container's last event, in time order.
    let mut stored = Vec::new();
    for _ in 0..4 {
        stored.push(fol.next_json().await);
    }
    let mut want: Vec<Ev> = DEFAULT_IDS
        .iter()
        .map(|id| f.expected(|e| e.id == *id).pop().unwrap())
        .collect();
    want.sort_by(|a, b| a.time.cmp(&b.time));
    assert_events(&stored, &want, "tailLines=1 before the live part");

    let t0 = BASE + 1000 * SEC;
    append(&log_path(&f.dir(0), 1), &line(t0, "stdout", "live-web-app"));
    let e = fol.next_json().await;
    assert_eq!(e["log"], "live-web-app");
    assert_eq!(id_of(&e), "default/web/app");
    assert_eq!(e["attempt"], 1);
    append(
        &log_path(&f.dir(3), 0),
        &line(t0 + SEC, "stderr", "live-api-side"),
    );
    let e = fol.next_json().await;
    assert_eq!(e["log"], "live-api-side");
    assert_eq!(id_of(&e), "default/api/side");
    assert_eq!(e["stream"], "stderr");

    // Lines in three containers at once all arrive, once each.
    append(
        &log_path(&f.dir(1), 0),
        &line(t0 + 2 * SEC, "stdout", "b-web-side"),
    );
    append(
        &log_path(&f.dir(2), 0),
        &line(t0 + 3 * SEC, "stdout", "c-api-app"),
    );
    append(
        &log_path(&f.dir(0), 1),
        &line(t0 + 4 * SEC, "stdout", "a-web-app"),
    );
    let got = receive(&mut fol, 3).await;
    assert_eq!(
        got.iter()
            .map(|e| (id_of(e), e["log"].clone()))
            .collect::<Vec<_>>(),
        vec![
            ("default/web/app".to_owned(), Value::from("a-web-app")),
            ("default/web/side".to_owned(), Value::from("b-web-side")),
            ("default/api/app".to_owned(), Value::from("c-api-app")),
        ]
    );
    // Each live event's cursor resumes its container: nothing after it yet.
    for e in &got {
        let after = get_events(
            f.d.addr,
            &format!(
                "/logs/{}?format=json&cursor={}",
                id_of(e),
                e["cursor"].as_str().unwrap()
            ),
        )
        .await;
        assert_eq!(after, Vec::<Value>::new(), "after {}", e["log"]);
    }
    // A line of `other` is not part of this stream: the next event is the
    // one written after it in `default`.
    append(
        &log_path(&f.dir(4), 0),
        &line(t0 + 5 * SEC, "stdout", "other-ns"),
    );
    append(
        &log_path(&f.dir(1), 0),
        &line(t0 + 6 * SEC, "stdout", "sync"),
    );
    receive_all(&mut fol, &["sync"]).await;
}

#[tokio::test]
async fn follow_in_text_and_cri() {
    let f = fixture();
    let mut text = Follow::open(f.d.addr, "/logs?container=side&follow=true&tailLines=0").await;
    let mut raw = Follow::open(
        f.d.addr,
        "/logs?container=side&follow=true&tailLines=0&format=cri",
    )
    .await;
    let l = line(BASE + 1000 * SEC, "stdout", "side-1");
    append(&log_path(&f.dir(3), 0), &l);
    assert_eq!(text.next_text().await, "side-1");
    assert_eq!(
        raw.next_text().await,
        String::from_utf8_lossy(&l[..l.len() - 1])
    );
    append(
        &log_path(&f.dir(1), 0),
        &line(BASE + 1001 * SEC, "stderr", "side-2"),
    );
    assert_eq!(text.next_text().await, "side-2");
    assert!(raw.next_text().await.ends_with(" stderr F side-2"));
}

#[tokio::test]
async fn new_pods_containers_and_attempts_join_the_stream() {
    let f = fixture();
    let mut fol = Follow::open(
        f.d.addr,
        "/logs?namespace=default&follow=true&format=json&tailLines=0",
    )
    .await;
    let t0 = BASE + 2000 * SEC;
    append(&log_path(&f.dir(0), 1), &line(t0, "stdout", "before"));
    assert_eq!(fol.next_json().await["log"], "before");

    // A pod of another namespace appears first: it must not join.
    let other = add_pod(
        &f.t,
        "other",
        "late",
        "uid-late",
        "app",
        &line(t0 + SEC, "stdout", "other-late"),
    );
    // A new pod: all its events arrive, although tailLines=0 (it is new).
    let mut v = line(t0 + 2 * SEC, "stdout", "new-pod-1");
    v.extend(line(t0 + 3 * SEC, "stderr", "new-pod-2"));
    let newdir = add_pod(&f.t, "default", "fresh", "uid-fresh", "main", &v);
    let got = receive(&mut fol, 2).await;
    assert_eq!(got[0]["log"], "new-pod-1");
    assert_eq!(got[1]["log"], "new-pod-2");
    for e in &got {
        assert_eq!(id_of(e), "default/fresh/main");
        assert_eq!(e["uid"], "uid-fresh");
        assert_eq!(e["attempt"], 0);
    }
    // It is followed from then on.
    append(
        &log_path(&newdir, 0),
        &line(t0 + 4 * SEC, "stdout", "new-pod-3"),
    );
    assert_eq!(fol.next_json().await["log"], "new-pod-3");

    // A new container in an existing pod, created in place.
    let extra = f.t.root.join("default_api_uid-api").join("extra");
    std::fs::create_dir(&extra).unwrap();
    write_file(
        &log_path(&extra, 0),
        &line(t0 + 5 * SEC, "stdout", "new-container-1"),
    );
    let e = fol.next_json().await;
    assert_eq!(e["log"], "new-container-1");
    assert_eq!(id_of(&e), "default/api/extra");
    append(
        &log_path(&extra, 0),
        &line(t0 + 6 * SEC, "stdout", "new-container-2"),
    );
    assert_eq!(fol.next_json().await["log"], "new-container-2");

    // A new attempt of a followed container: its events join from its
    // start.
    let mut v = line(t0 + 7 * SEC, "stdout", "web-side-run-1-a");
    v.extend(line(t0 + 8 * SEC, "stdout", "web-side-run-1-b"));
    write_file(&log_path(&f.dir(1), 1), &v);
    let got = receive(&mut fol, 2).await;
    assert_eq!(got[0]["log"], "web-side-run-1-a");
    assert_eq!(got[1]["log"], "web-side-run-1-b");
    for e in &got {
        assert_eq!(id_of(e), "default/web/side");
        assert_eq!(e["attempt"], 1);
    }
    append(
        &log_path(&f.dir(1), 1),
        &line(t0 + 9 * SEC, "stdout", "web-side-run-1-c"),
    );
    append(
        &log_path(&other, 0),
        &line(t0 + 10 * SEC, "stdout", "other-2"),
    );
    append(
        &log_path(&f.dir(2), 0),
        &line(t0 + 11 * SEC, "stdout", "sync"),
    );
    // Nothing of `other` arrives meanwhile.
    receive_all(&mut fol, &["web-side-run-1-c", "sync"]).await;
}

#[tokio::test]
async fn a_follow_that_matches_nothing_yet_waits_for_a_match() {
    let f = fixture();
    // Without follow: nothing matches.
    let r = get(f.d.addr, "/logs?namespace=late&format=json").await;
    assert_error(&r, 404, "NotFound", None);
    // With follow: the stream opens and waits.
    let mut fol = Follow::open(f.d.addr, "/logs?namespace=late&follow=true&format=json").await;
    let mut sel = Follow::open(f.d.addr, "/logs?labelSelector=app%3Dweb&follow=true").await;
    assert!(sel.conn.is_chunked());
    let mut v = line(BASE + 3000 * SEC, "stdout", "late-1");
    v.extend(line(BASE + 3001 * SEC, "stdout", "late-2"));
    let dir = add_pod(&f.t, "late", "p", "uid-p", "c", &v);
    let got = receive(&mut fol, 2).await;
    assert_eq!(got[0]["log"], "late-1");
    assert_eq!(got[1]["log"], "late-2");
    assert_eq!(id_of(&got[0]), "late/p/c");
    append(
        &log_path(&dir, 0),
        &line(BASE + 3002 * SEC, "stderr", "late-3"),
    );
    let e = fol.next_json().await;
    assert_eq!(e["log"], "late-3");
    assert_eq!(e["stream"], "stderr");
    // Shutdown ends both streams cleanly.
    let mut d = f.d;
    let st = d.terminate();
    assert!(st.success(), "exit status {st}");
    fol.expect_end().await;
    sel.expect_end().await;
}

#[tokio::test]

async fn pods_created_in_place_while_following_all_join() {
    let f = fixture();
    let mut fol = Follow::open(f.d.addr, "/logs?namespace=burst&follow=true&format=json").await;
    // Directory by directory, file last, as a runtime creates them, and
    // faster than discovery handles the events.
    let n = 500;
    let want: Vec<String> = (0..n).map(|i| format!("p{i:03}")).collect();
    for (i, pod) in want.iter().enumerate() {
        let dir = f.t.container("burst", pod, "u", "c");
        write_file(
            &log_path(&dir, 0),
            &line(BASE + i as i128 * SEC, "stdout", pod),
        );
    }
    let mut got: Vec<String> = Vec::new();
    while got.len() < n {
        match fol.try_next_line().await {
            Ok(Some(l)) => {
                let e: Value = serde_json::from_slice(&l).expect("a JSON event");
                let log = e["log"].as_str().expect("log").to_owned();
                assert_eq!(id_of(&e), format!("burst/{log}/c"));
                got.push(log);
            }
            end => {
                // Say what the daemon's view of the missing pods is.
                let missing: Vec<&String> = want.iter().filter(|p| !got.contains(p)).collect();
                let inv = inventory(f.d.addr, "namespace=burst").await;
                let seen: Vec<&Value> = inv["pods"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| missing.iter().any(|m| p["pod"] == m.as_str()))
                    .collect();
                panic!("{end:?}: never arrived: {missing:?}; their inventory entries: {seen:?}");
            }
        }
    }
    got.sort();
    assert_eq!(got, want);
}
