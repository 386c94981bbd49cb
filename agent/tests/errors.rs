//! Error answers: 400 naming the parameter, 404, 405, 409.

use crate::common;

use common::*;

struct Fx {
    d: Daemon,
    _t: Tree,
}

fn fixture() -> Fx {
    let t = Tree::new();
    let app = t.container("default", "web", "uid-1", "app");
    write_file(
        &app.join("0.log"),
        &cri_lines(&[
            ("2026-11-21T05:00:00.000000000Z", "stdout", "F", "hello"),
            ("2026-11-21T05:00:01.000000000Z", "stderr", "F", "world"),
        ]),
    );
    let side = t.container("default", "web", "uid-1", "side");
    write_file(
        &side.join("0.log"),
        &cri("2026-11-21T05:00:00.000000000Z", "stdout", "F", "side"),
    );
    // The same pod name in two namespaces.
    for (ns, uid) in [("default", "uid-2"), ("staging", "uid-3")] {
        let c = t.container(ns, "dup", uid, "app");
        write_file(
            &c.join("0.log"),
            &cri("2026-11-21T05:00:00.000000000Z", "stdout", "F", ns),
        );
    }
    let d = t.start();
    Fx { d, _t: t }
}

const APP: &str = "/logs/default/web/app";

#[tokio::test]
async fn bad_values_name_their_parameter() {
    let f = fixture();
    let cases: &[(&str, &str)] = &[
        ("follow=yes", "follow"),
        ("follow=2", "follow"),
        ("tailLines=-1", "tailLines"),
        ("tailLines=abc", "tailLines"),
        ("tailLines=1.5", "tailLines"),
        ("tailLines=", "tailLines"),
        ("sinceSeconds=0", "sinceSeconds"),
        ("sinceSeconds=-5", "sinceSeconds"),
        ("sinceSeconds=1h", "sinceSeconds"),
        ("sinceTime=yesterday", "sinceTime"),
        ("sinceTime=2026-11-21", "sinceTime"),
        ("sinceTime=2026-11-21T05:00:00", "sinceTime"),
        ("sinceTime=2026-11-21T05:00:00.1234567890Z", "sinceTime"),
        ("sinceTime=2026-13-21T05:00:00Z", "sinceTime"),
        ("untilTime=2026-11-21", "untilTime"),
        ("untilTime=noon", "untilTime"),
        ("limitBytes=0", "limitBytes"),
        ("limitBytes=-1", "limitBytes"),
        ("limitBytes=ten", "limitBytes"),
        ("timestamps=maybe", "timestamps"),
        ("previous=2", "previous"),
        ("previous=yes", "previous"),
        ("attempt=-1", "attempt"),
        ("attempt=x", "attempt"),
        ("attempt=99999999999", "attempt"),
        ("stream=stdin", "stream"),
        ("stream=STDOUT", "stream"),
        ("format=xml", "format"),
        ("format=", "format"),
        ("cursor=", "cursor"),
        ("grep=(", "grep"),
        ("grep=a%5B", "grep"),
        // Ignored, but a boolean like the others.
        (
            "insecureSkipTLSVerifyBackend=null",
            "insecureSkipTLSVerifyBackend",
        ),
        (
            "insecureSkipTLSVerifyBackend=yes",
            "insecureSkipTLSVerifyBackend",
        ),
    ];
    for (q, param) in cases {
        let r = get(f.d.addr, &format!("{APP}?{q}")).await;
        assert_eq!(r.status, 400, "{q}: {}", String::from_utf8_lossy(&r.body));
        assert_error(&r, 400, "BadRequest", Some(param));
    }
    // A pattern over the length limit.
    let long = "a".repeat(5000);
    let r = get(f.d.addr, &format!("{APP}?grep={long}")).await;
    assert_error(&r, 400, "BadRequest", Some("grep"));
    // The limit counts characters, as the OpenAPI document's maxLength
    // does: 2500 two-byte ones are within it.
    let r = get(f.d.addr, &format!("{APP}?grep={}", enc(&"é".repeat(2500)))).await;
    r.expect_status(200);
}

#[tokio::test]
async fn unknown_and_repeated_parameters_are_refused() {
    let f = fixture();
    for (q, param) in [
        ("tail=5", "tail"),
        ("tailLine=5", "tailLine"),
        ("TAILLINES=5", "TAILLINES"),
        ("tailLines=5&bogus=1", "bogus"),
        ("container=app", "container"),
        ("tailLines=1&tailLines=2", "tailLines"),
        ("follow&follow", "follow"),
        ("format=json&format=json", "format"),
        ("grep=a&grep=b", "grep"),
        (
            "insecureSkipTLSVerifyBackend=true&insecureSkipTLSVerifyBackend=true",
            "insecureSkipTLSVerifyBackend",
        ),
    ] {
        let r = get(f.d.addr, &format!("{APP}?{q}")).await;
        assert_error(&r, 400, "BadRequest", Some(param));
    }
    // The inventory refuses them too.
    let r = get(f.d.addr, "/logs?ns=default").await;
    assert_error(&r, 400, "BadRequest", Some("ns"));
    let r = get(f.d.addr, "/logs?namespace=a&namespace=b").await;
    assert_error(&r, 400, "BadRequest", Some("namespace"));
}

#[tokio::test]
async fn conflicting_parameters_are_refused() {
    let f = fixture();
    let r = get(
        f.d.addr,
        &format!("{APP}?sinceSeconds=5&sinceTime=2026-11-21T05:00:00Z"),
    )
    .await;
    assert_error(&r, 400, "BadRequest", None);
    let p = r.json()["parameter"].as_str().unwrap_or("").to_owned();
    assert!(p == "sinceSeconds" || p == "sinceTime", "parameter {p:?}");

    for q in [
        "previous=true&attempt=0",
        "previous&attempt=1",
        "attempt=0&previous=1",
    ] {
        let r = get(f.d.addr, &format!("{APP}?{q}")).await;
        assert_error(&r, 400, "BadRequest", None);
        let p = r.json()["parameter"].as_str().unwrap_or("").to_owned();
        assert!(p == "previous" || p == "attempt", "{q}: parameter {p:?}");
    }
}

#[tokio::test]
async fn cursor_with_a_start_parameter_is_refused() {
    // "cursor with tailLines, sinceSeconds or sinceTime (each of them
    // chooses where reading starts)" is a documented 400.
    let f = fixture();
    let evs = get_events(f.d.addr, &format!("{APP}?format=json")).await;
    let c = evs[0]["cursor"].as_str().unwrap().to_owned();
    for q in [
        format!("cursor={c}&tailLines=1"),
        format!("cursor={c}&sinceSeconds=10"),
        format!("cursor={c}&sinceTime=2026-11-21T05:00:00Z"),
    ] {
        let r = get(f.d.addr, &format!("{APP}?format=json&{q}")).await;
        assert_error(&r, 400, "BadRequest", None);
        let p = r.json()["parameter"].as_str().unwrap_or("").to_owned();
        assert!(
            ["cursor", "tailLines", "sinceSeconds", "sinceTime"].contains(&p.as_str()),
            "{q}: parameter {p:?}"
        );
    }
}

#[tokio::test]
async fn bad_cursors_are_refused() {
    let f = fixture();
    let evs = get_events(f.d.addr, &format!("{APP}?format=json")).await;
    let good = evs[0]["cursor"].as_str().unwrap().to_owned();
    // Every character flipped in turn still must not pass as a cursor
    // (checksum), and garbage of every kind.
    let mut bad: Vec<String> = vec![
        "garbage".into(),
        "AAAA".into(),
        "%2F%2F%2F".into(),
        "x".repeat(200),
        format!("{good}A"),
        good[..good.len() - 1].to_owned(),
    ];
    for i in [0, 5, 20, good.len() / 2, good.len() - 2] {
        let mut b = good.clone().into_bytes();
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        bad.push(String::from_utf8(b).unwrap());
    }
    for c in &bad {
        let r = get(f.d.addr, &format!("{APP}?format=json&cursor={c}")).await;
        assert_error(&r, 400, "BadRequest", Some("cursor"));
    }
    // A valid cursor of another container.
    let other = get_events(f.d.addr, "/logs/default/web/side?format=json").await;
    let oc = other[0]["cursor"].as_str().unwrap();
    let r = get(f.d.addr, &format!("{APP}?format=json&cursor={oc}")).await;
    assert_error(&r, 400, "BadRequest", Some("cursor"));
    // A valid cursor of another pod with the same container name.
    let dup = get_events(f.d.addr, "/logs/default/dup/app?format=json").await;
    let dc = dup[0]["cursor"].as_str().unwrap();
    let r = get(f.d.addr, &format!("{APP}?cursor={dc}")).await;
    assert_error(&r, 400, "BadRequest", Some("cursor"));
    // The good one works.
    let r = get(f.d.addr, &format!("{APP}?cursor={good}")).await;
    assert_eq!(r.ok_text(), "world\n");
}

#[tokio::test]
async fn not_found_answers() {
    let f = fixture();
    for target in [
        "/logs/default/nopod/app",
        "/logs/nons/web/app",
        "/logs/nopod/app",
        "/logs/default/web/nocontainer",
        "/logs/web/nocontainer",
        "/logs/default/web/app?attempt=1",
        "/logs/default/web/app?attempt=7&format=json",
        "/logs/default/web/app?previous=true",
        "/logs/default/web/app?previous",
        "/nothing",
        "/logs/default/web/app/extra",
        "/logs/a/b/c/d/e",
        "/logs/default",
        "/logsx",
        "/healthz/x",
        "/",
    ] {
        let r = get(f.d.addr, target).await;
        assert_eq!(
            r.status,
            404,
            "{target}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_error(&r, 404, "NotFound", None);
    }
}

#[tokio::test]
async fn only_get_is_allowed() {
    let f = fixture();
    for (method, target) in [
        ("POST", "/logs"),
        ("DELETE", APP),
        ("PUT", "/logs/web/app"),
        ("POST", "/healthz"),
    ] {
        let r = request(f.d.addr, method, target).await;
        assert_error(&r, 405, "MethodNotAllowed", None);
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method} {target}");
    }
}

#[tokio::test]
async fn ambiguous_short_form_lists_the_candidates() {
    let f = fixture();
    let r = get(f.d.addr, "/logs/dup/app").await;
    assert_error(&r, 409, "Conflict", None);
    let v = r.json();
    let mut cands: Vec<String> = v["candidates"]
        .as_array()
        .expect("candidates is an array")
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    cands.sort();
    assert_eq!(cands, ["default/dup", "staging/dup"]);
    // With parameters too, and the long forms work.
    let r = get(f.d.addr, "/logs/dup/app?tailLines=1").await;
    assert_error(&r, 409, "Conflict", None);
    assert_eq!(
        get_text(f.d.addr, "/logs/default/dup/app").await,
        "default\n"
    );
    assert_eq!(
        get_text(f.d.addr, "/logs/staging/dup/app").await,
        "staging\n"
    );
}
