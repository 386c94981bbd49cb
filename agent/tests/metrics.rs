//! `/metrics`: OpenMetrics by default, the Prometheus text format for a
//! client that asks for `text/plain`; the documented families present from
//! the start and moving as work is done; both expositions read by the
//! reference parsers (Python's `prometheus_client`, when
//! `PODLOG_PROMETHEUS_PYTHON` names a Python that has it; CI sets it).

use crate::common;

use common::*;

/// The exposition of `/metrics` with `accept`, and its content type.
async fn scrape(addr: std::net::SocketAddr, accept: Option<&str>) -> (String, String) {
    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let headers: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
    let c = Conn::open_on(Box::new(s), addr, "GET", "/metrics", &headers).await;
    let r = whole(c, "GET", "/metrics").await;
    assert_eq!(r.status, 200);
    (r.header("content-type").unwrap().to_owned(), r.text())
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Parses `text` with `prometheus_client`'s parser for `format` (`text` or
/// `openmetrics`), if a Python that has it is named.
fn reference_parse(text: &str, format: &str) {
    let Ok(python) = std::env::var("PODLOG_PROMETHEUS_PYTHON") else {
        eprintln!("PODLOG_PROMETHEUS_PYTHON unset: the reference parsers are not run");
        return;
    };
    let module = match format {
        "openmetrics" => "prometheus_client.openmetrics.parser",
        _ => "prometheus_client.parser",
    };
    let script = format!(
        "import sys\nfrom {module} import text_string_to_metric_families as p\nn = sum(1 for _ in p(sys.stdin.read()))\nprint(n)\n"
    );
    let mut child = std::process::Command::new(python)
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the Python named by PODLOG_PROMETHEUS_PYTHON runs");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{format} parser refused /metrics: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let families: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(families > 50, "{families} families");
}

#[tokio::test]
async fn both_expositions_hold_the_documented_families_from_the_start() {
    let t = Tree::new();
    write_file(
        &t.container("default", "web", "uid-1", "app").join("0.log"),
        &cri_lines(&[
            ("2026-12-07T10:00:00Z", "stdout", "F", "one"),
            ("2026-12-07T10:00:01Z", "stdout", "F", "two"),
        ]),
    );
    let d = t.start();
    let (ctype, om) = scrape(d.addr, None).await;
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    assert!(om.ends_with("# EOF\n"));
    for series in [
        "podlog_security_events_total{kind=\"planted_log_file\"}",
        "podlog_lifecycle_steps_total{op=\"rotate\",result=\"failed\"}",
        "podlog_grpc_requests_total{method=\"Read\",code=\"ok\"}",
        "podlog_served_events_total{format=\"json\"}",
        "podlog_http_requests_total{route=\"/logs/{namespace}/{pod}/{container}\",method=\"GET\",code=\"200\"}",
        "podlog_http_request_duration_seconds_count{route=\"/logs\",method=\"GET\"}",
        "podlog_authorizations_total{result=\"denied\"}",
        "podlog_connections_refused_total{listener=\"grpc\"}",
    ] {
        assert_eq!(value(&om, series), Some(0.0), "{series} not at 0 from the start");
    }
    for family in [
        "podlog_build_info{version=\"",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_start_time_seconds ",
        "process_cpu_seconds_total ",
    ] {
        assert!(om.contains(family), "{family} missing");
    }
    assert!(value(&om, "process_resident_memory_bytes").unwrap() > 1e6);

    // Work moves them.
    assert_eq!(
        get_text(d.addr, "/logs/default/web/app").await,
        "one\ntwo\n"
    );
    let (_, om) = scrape(d.addr, None).await;
    assert_eq!(
        value(&om, "podlog_served_events_total{format=\"text\"}"),
        Some(2.0)
    );
    assert_eq!(
        value(&om, "podlog_http_requests_total{route=\"/logs/{namespace}/{pod}/{container}\",method=\"GET\",code=\"200\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(&om, "podlog_http_request_duration_seconds_count{route=\"/logs/{namespace}/{pod}/{container}\",method=\"GET\"}"),
        Some(1.0)
    );
    reference_parse(&om, "openmetrics");
    // Cut by limitBytes: a text event's part that fits counts, a JSON
    // event that does not fit (and is not served) does not.
    assert_eq!(
        get_text(d.addr, "/logs/default/web/app?limitBytes=5").await,
        "one\nt"
    );
    let all = get_text(d.addr, "/logs/default/web/app?format=json").await;
    let first = all.lines().next().unwrap().len() + 1;
    let r = get_text(
        d.addr,
        &format!("/logs/default/web/app?format=json&limitBytes={}", first + 5),
    )
    .await;
    assert_eq!(r.lines().count(), 1);
    let (_, om) = scrape(d.addr, None).await;
    assert_eq!(
        value(&om, "podlog_served_events_total{format=\"text\"}"),
        Some(4.0)
    );
    // Two from the whole read, one from the cut one.
    assert_eq!(
        value(&om, "podlog_served_events_total{format=\"json\"}"),
        Some(3.0)
    );

    // The Prometheus text format, for a client that asks for it.
    let (ctype, text) = scrape(d.addr, Some("text/plain")).await;
    assert_eq!(ctype, "text/plain; version=0.0.4; charset=utf-8");
    assert!(!text.contains("# EOF") && !text.contains("# UNIT"));
    assert!(text.contains("# TYPE podlog_served_events_total counter"));
    assert_eq!(
        value(&text, "podlog_served_events_total{format=\"text\"}"),
        Some(4.0)
    );
    reference_parse(&text, "text");
    // Prometheus itself asks for OpenMetrics first.
    let (ctype, _) = scrape(
        d.addr,
        Some("application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"),
    )
    .await;
    assert!(ctype.starts_with("application/openmetrics-text"));
}
