//! Authentication and authorization the kubelet's way, against a stub
//! Kubernetes API server (`common::kube`): bearer tokens checked with
//! TokenReview, client certificates with the client CA, every question a
//! SubjectAccessReview, answers cached; TLS on both listeners; listeners
//! off loopback refuse to serve without authentication.

use crate::common;

use std::net::SocketAddr;
use std::path::Path;

use common::kube::{client_tls, ApiServer, As, Ca, Rule};
use common::*;

const LINE: &str = "hello from a";

/// Two namespaces, a pod in each.
fn tree() -> Tree {
    let t = Tree::new();
    for (ns, pod) in [("team-a", "web"), ("team-b", "db")] {
        let c = t.container(ns, pod, &format!("uid-{pod}"), "app");
        write_file(
            &c.join("0.log"),
            &cri(
                "2026-12-07T10:00:00.000000000Z",
                "stdout",
                "F",
                &format!("hello from {}", &ns[5..]),
            ),
        );
    }
    t
}

/// The stub, knowing alice (team-a's logs and pods, /metrics) and bob
/// (nothing).
async fn stub() -> ApiServer {
    let api = ApiServer::start().await;
    api.token("alice-token", "alice", &["devs", "system:authenticated"]);
    api.token("bob-token", "bob", &["system:authenticated"]);
    for (verb, resource) in [("get", "pods/log"), ("list", "pods")] {
        api.allow(Rule {
            user: "alice",
            verb,
            resource,
            namespace: "team-a",
        });
    }
    api.allow(Rule {
        user: "alice",
        verb: "get",
        resource: "/metrics",
        namespace: "",
    });
    api
}

/// podlogd with token webhook and Webhook authorization, no anonymous
/// requests, the stub as its API server; `extra` flags after.
fn start(t: &Tree, api: &ApiServer, extra: &[&str]) -> Daemon {
    let kc = api.kubeconfig(&t.outside);
    let mut args = vec![
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--anonymous-auth=false",
        "--authentication-token-webhook",
        "--authorization-mode",
        "Webhook",
    ];
    args.extend_from_slice(extra);
    t.start_with(&args)
}

fn assert_reason(r: &Response, status: u16, reason: &str) -> serde_json::Value {
    assert_eq!(r.status, status, "{}", r.text());
    let j = r.json();
    assert_eq!(j["reason"], reason, "{j}");
    j
}

#[tokio::test]
async fn tokens_are_reviewed_and_reads_authorized_per_pod_and_namespace() {
    let t = tree();
    let api = stub().await;
    let d = start(&t, &api, &[]);
    let a = d.addr;
    // No token, an unknown one: 401, saying how to authenticate.
    let r = get(a, "/logs/team-a/web/app").await;
    assert_reason(&r, 401, "Unauthorized");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"podlog\"")
    );
    let r = As::token("nobody").get(a, "/logs/team-a/web/app").await;
    assert_reason(&r, 401, "Unauthorized");
    // bob may not read team-a: 403 naming user, verb, resource, namespace.
    let r = As::token("bob-token").get(a, "/logs/team-a/web/app").await;
    let j = assert_reason(&r, 403, "Forbidden");
    assert_eq!(j["user"], "bob");
    assert_eq!(j["verb"], "get");
    assert_eq!(j["resource"], "pods/log");
    assert_eq!(j["namespace"], "team-a");
    assert_eq!(j["name"], "web");
    assert!(j["error"].as_str().unwrap().contains("bob"), "{j}");
    // alice may.
    let r = As::token("alice-token")
        .get(a, "/logs/team-a/web/app")
        .await;
    assert_eq!(r.ok_text(), format!("{LINE}\n"));
    // …and not in team-b, nor learn of its pods without a namespace.
    let r = As::token("alice-token").get(a, "/logs/team-b/db/app").await;
    assert_reason(&r, 403, "Forbidden");
    let r = As::token("alice-token").get(a, "/logs/db/app").await;
    let j = assert_reason(&r, 404, "NotFound");
    assert!(j["error"].as_str().unwrap().contains("you may read"), "{j}");
    let r = As::token("alice-token").get(a, "/logs/web/app").await;
    assert_eq!(r.ok_text(), format!("{LINE}\n"));

    // The review of alice's read carries exactly what was asked.
    let sars = api.asked("SubjectAccessReview");
    let read = sars
        .iter()
        .find(|s| s["spec"]["user"] == "alice" && s["spec"]["resourceAttributes"]["name"] == "web")
        .expect("a review of alice's read");
    assert_eq!(read["apiVersion"], "authorization.k8s.io/v1");
    assert_eq!(
        read["spec"]["resourceAttributes"],
        serde_json::json!({"namespace": "team-a", "verb": "get", "group": "", "version": "v1",
            "resource": "pods", "subresource": "log", "name": "web"})
    );
    assert_eq!(
        read["spec"]["groups"],
        serde_json::json!(["devs", "system:authenticated"])
    );
    let tr = &api.asked("TokenReview")[0];
    assert_eq!(tr["apiVersion"], "authentication.k8s.io/v1");
    assert!(tr["spec"]["token"].is_string());
    // /healthz and /readyz need nothing.
    assert_eq!(get(a, "/healthz").await.status, 200);
    assert_eq!(get(a, "/readyz").await.status, 200);
}

#[tokio::test]
async fn the_inventory_and_merged_reads_cover_only_allowed_namespaces() {
    let t = tree();
    let api = stub().await;
    let d = start(&t, &api, &[]);
    let alice = As::token("alice-token");
    let inv = alice.get(d.addr, "/logs").await;
    assert_eq!(inv.status, 200, "{}", inv.text());
    assert_eq!(pod_names(&inv.json()), vec!["team-a/web"]);
    let merged = alice.get(d.addr, "/logs?container=app").await;
    assert_eq!(merged.ok_text(), format!("{LINE}\n"));
    // bob sees nothing, and a merged read of nothing is not found.
    let bob = As::token("bob-token");
    let inv = bob.get(d.addr, "/logs").await;
    assert!(pod_names(&inv.json()).is_empty());
    let r = bob.get(d.addr, "/logs?container=app").await;
    assert_reason(&r, 404, "NotFound");
    // The merged read asked list pods and get pods/log per namespace.
    let asked: Vec<(String, String, String)> = api
        .asked("SubjectAccessReview")
        .iter()
        .filter(|s| s["spec"]["user"] == "alice")
        .map(|s| {
            let r = &s["spec"]["resourceAttributes"];
            (
                r["verb"].as_str().unwrap().to_owned(),
                format!(
                    "{}/{}",
                    r["resource"].as_str().unwrap(),
                    r["subresource"].as_str().unwrap_or("")
                ),
                r["namespace"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for want in [
        ("list", "pods/", "team-a"),
        ("list", "pods/", "team-b"),
        ("get", "pods/log", "team-a"),
    ] {
        assert!(
            asked
                .iter()
                .any(|(v, r, n)| (v.as_str(), r.as_str(), n.as_str()) == want),
            "{want:?} not in {asked:?}"
        );
    }
    assert!(
        asked.iter().all(|(_, _, n)| n == "team-a" || n == "team-b"),
        "{asked:?}"
    );
}

#[tokio::test]
async fn identical_requests_are_reviewed_once_and_cached_answers_outlive_the_api_server() {
    let t = tree();
    let mut api = stub().await;
    let d = start(&t, &api, &[]);
    let alice = As::token("alice-token");
    let reads: Vec<_> = (0..20)
        .map(|_| {
            let alice = alice.clone();
            let a = d.addr;
            tokio::spawn(async move { alice.get(a, "/logs/team-a/web/app").await.status })
        })
        .collect();
    for r in reads {
        assert_eq!(r.await.unwrap(), 200);
    }
    assert_eq!(api.asked("TokenReview").len(), 1);
    assert_eq!(api.asked("SubjectAccessReview").len(), 1);
    assert_eq!(
        get(d.addr, "/metrics").await.status,
        401,
        "/metrics needs a token too"
    );

    api.stop().await;
    // Cached: still served.
    assert_eq!(alice.get(d.addr, "/logs/team-a/web/app").await.status, 200);
    // Not cached (another pod, another token): 503, saying why.
    let r = alice.get(d.addr, "/logs/team-b/db/app").await;
    let j = assert_reason(&r, 503, "ServiceUnavailable");
    assert!(
        j["error"].as_str().unwrap().contains("SubjectAccessReview"),
        "{j}"
    );
    let r = As::token("bob-token")
        .get(d.addr, "/logs/team-a/web/app")
        .await;
    assert_reason(&r, 503, "ServiceUnavailable");
}

#[tokio::test]
async fn metrics_follow_their_non_resource_rule() {
    let t = tree();
    let api = stub().await;
    let d = start(&t, &api, &[]);
    let r = As::token("alice-token").get(d.addr, "/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r
        .text()
        .contains("podlog_authorizations_total{result=\"allowed\"}"));
    let r = As::token("bob-token").get(d.addr, "/metrics").await;
    let j = assert_reason(&r, 403, "Forbidden");
    assert_eq!(j["path"], "/metrics");
    let sar = api
        .asked("SubjectAccessReview")
        .into_iter()
        .find(|s| s["spec"]["user"] == "bob")
        .unwrap();
    assert_eq!(
        sar["spec"]["nonResourceAttributes"],
        serde_json::json!({"path": "/metrics", "verb": "get"})
    );
}

/// TLS with a client CA: the serving certificate, the CA, and podlogd
/// with client certificates and Webhook authorization.
struct Pki {
    ca: Ca,
    clients: Ca,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    client_ca: std::path::PathBuf,
}

impl Pki {
    /// The flags that serve TLS with client certificates.
    fn flags(&self) -> Vec<&str> {
        vec![
            "--tls-cert-file",
            self.cert.to_str().unwrap(),
            "--tls-private-key-file",
            self.key.to_str().unwrap(),
            "--client-ca-file",
            self.client_ca.to_str().unwrap(),
        ]
    }
}

fn pki(dir: &Path) -> Pki {
    let ca = Ca::new("podlog-serving-ca");
    let (cert, key) = ca.server().write(dir, "serving");
    let clients = Ca::new("podlog-client-ca");
    let client_ca = dir.join("client-ca.crt");
    std::fs::write(&client_ca, &clients.pem).unwrap();
    Pki {
        ca,
        clients,
        cert,
        key,
        client_ca,
    }
}

#[tokio::test]
async fn client_certificates_authenticate_when_good_and_never_otherwise() {
    let t = tree();
    let api = stub().await;
    let p = pki(&t.outside);
    let d = start(&t, &api, &p.flags());
    let with = |leaf: Option<&common::kube::Leaf>| As {
        tls: Some(client_tls(&p.ca.pem, leaf, b"http/1.1")),
        token: None,
    };
    // Good: CN alice, allowed by her rules (groups from O).
    let good = p.clients.client("alice", &["devs"], false);
    let r = with(Some(&good)).get(d.addr, "/logs/team-a/web/app").await;
    assert_eq!(r.ok_text(), format!("{LINE}\n"));
    let sar = api.asked("SubjectAccessReview").pop().unwrap();
    assert_eq!(sar["spec"]["user"], "alice");
    assert_eq!(
        sar["spec"]["groups"],
        serde_json::json!(["devs", "system:authenticated"])
    );
    assert!(api.asked("TokenReview").is_empty());
    // No certificate, no token: 401 over TLS.
    let r = with(None).get(d.addr, "/logs/team-a/web/app").await;
    assert_eq!(r.status, 401);
    // Of another CA, expired: the handshake fails, nothing is served.
    let stranger = Ca::new("someone-else").client("alice", &[], false);
    let expired = p.clients.client("alice", &[], true);
    for leaf in [&stranger, &expired] {
        let r = with(Some(leaf))
            .try_get(d.addr, "/logs/team-a/web/app")
            .await;
        assert!(r.is_err(), "served: {:?}", r.map(|r| r.status));
    }
    // Plain HTTP to a TLS listener is not served either.
    assert!(!As::default()
        .try_get(d.addr, "/healthz")
        .await
        .is_ok_and(|r| r.status == 200));
    let alice = As::token("alice-token").with_tls(client_tls(&p.ca.pem, None, b"http/1.1"));
    let m = alice.get(d.addr, "/metrics").await.text();
    let failures = m
        .lines()
        .find_map(|l| l.strip_prefix("podlog_tls_handshake_failures_total{listener=\"http\"} "))
        .and_then(|v| v.parse::<f64>().ok());
    assert!(failures.is_some_and(|n| n >= 2.0), "{failures:?}");
}

#[tokio::test]
async fn the_serving_certificate_is_reloaded_when_its_files_change() {
    let t = tree();
    let p = pki(&t.outside);
    let d = t.start_with(&[
        "--tls-cert-file",
        p.cert.to_str().unwrap(),
        "--tls-private-key-file",
        p.key.to_str().unwrap(),
    ]);
    let old = As::default().with_tls(client_tls(&p.ca.pem, None, b"http/1.1"));
    assert_eq!(old.get(d.addr, "/healthz").await.status, 200);
    // A new CA's certificate, swapped in as a Secret volume does: new
    // files renamed over the old ones.
    let next = Ca::new("podlog-serving-ca-2");
    let (c, k) = next.server().write(&t.outside, "next");
    std::fs::rename(&k, &p.key).unwrap();
    std::fs::rename(&c, &p.cert).unwrap();
    let new = As::default().with_tls(client_tls(&next.pem, None, b"http/1.1"));
    until(|| async {
        new.try_get(d.addr, "/healthz")
            .await
            .is_ok_and(|r| r.status == 200)
    })
    .await;
    assert!(old.try_get(d.addr, "/healthz").await.is_err());
    assert!(d.stderr().contains("serving certificate reloaded"));
}

/// Waits until `ok` holds, trying again as each try ends (at most
/// [`TIMEOUT`]).
async fn until<F, Fut>(ok: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !ok().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {TIMEOUT:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// podlogd on all addresses (`0.0.0.0:0`) of the tree `t` with `args`:
/// the child, once it says where it listens, and its port.
fn start_everywhere(t: &Tree, args: &[&str]) -> (std::process::Child, u16) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_podlogd"))
        .args([
            "--log-root",
            t.root.to_str().unwrap(),
            "--cri-endpoint",
            "none",
        ])
        .args(["--listen", "0.0.0.0:0"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let port = line
        .trim()
        .strip_prefix("podlogd listening on 0.0.0.0:")
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("{line:?}"));
    (child, port)
}

/// Stops `child` with SIGTERM; what it logged.
fn stop_and_read_log(child: std::process::Child) -> String {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_listener_off_loopback_refuses_to_serve_without_authentication() {
    let t = tree();
    for (flag, addr) in [("--listen", "0.0.0.0:0"), ("--grpc-listen", "[::]:0")] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_podlogd"))
            .args([
                "--log-root",
                t.root.to_str().unwrap(),
                "--cri-endpoint",
                "none",
            ])
            .args(if flag == "--listen" {
                vec![flag, addr]
            } else {
                vec!["--listen", "127.0.0.1:0", flag, addr]
            })
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{flag}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(flag) && err.contains("--insecure-allow-unauthenticated"),
            "{err}"
        );
    }
    // Allowed on purpose: served, with a warning and a metric.
    let (child, port) = start_everywhere(&t, &["--insecure-allow-unauthenticated"]);
    let a = SocketAddr::from(([127, 0, 0, 1], port));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        assert_eq!(get(a, "/logs/team-a/web/app").await.status, 200);
        let m = get(a, "/metrics").await.text();
        assert!(
            m.contains("podlog_unauthenticated_listeners{listener=\"http\"} 1"),
            "{m}"
        );
    });
    assert!(stop_and_read_log(child).contains("WITHOUT authentication"));
}

#[test]
fn access_settings_that_cannot_work_are_refused_by_name() {
    let t = tree();
    let cases: &[(&[&str], &str)] = &[
        (&["--anonymous-auth=false"], "--anonymous-auth"),
        (&["--authorization-mode", "RBAC"], "--authorization-mode"),
        (&["--client-ca-file", "/x.crt"], "--client-ca-file"),
        (&["--tls-cert-file", "/x.crt"], "--tls-private-key-file"),
        (
            &[
                "--authorization-mode",
                "Webhook",
                "--kubeconfig",
                "/nonexistent",
            ],
            "--kubeconfig",
        ),
    ];
    for (args, names) in cases {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_podlogd"))
            .args([
                "--log-root",
                t.root.to_str().unwrap(),
                "--cri-endpoint",
                "none",
            ])
            .args(*args)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(names), "{args:?}: {err}");
    }
    // The file's keys, as KubeletConfiguration spells them.
    let cfg = t.config(
        "authentication:\n  anonymous: {enabled: false}\n  webhook: {enabled: true, cacheTTL: 2m0s}\n\
         authorization:\n  mode: Bogus\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_podlogd"))
        .args([
            "--log-root",
            t.root.to_str().unwrap(),
            "--cri-endpoint",
            "none",
        ])
        .args(["--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("authorization.mode"));
}

mod grpc {
    use super::*;
    use podlog_proto::podlog::logs_client::LogsClient;
    use podlog_proto::podlog::{ListRequest, ReadRequest};
    use tonic::transport::{Channel, Endpoint, Uri};

    /// A gRPC client of `addr`, over TLS with `tls` when given.
    async fn client(
        addr: &str,
        tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    ) -> Result<LogsClient<Channel>, tonic::transport::Error> {
        let addr: SocketAddr = addr.parse().unwrap();
        let endpoint = Endpoint::from_static("http://podlogd.invalid");
        let channel = endpoint.connect_with_connector(tower::service_fn(move |_: Uri| {
            let tls = tls.clone();
            async move {
                let io = As { tls, token: None }.connect(addr).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(io))
            }
        }));
        Ok(LogsClient::new(
            tokio::time::timeout(TIMEOUT, channel)
                .await
                .expect("connect within TIMEOUT")?,
        ))
    }

    fn with_token<T>(msg: T, token: Option<&str>) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        if let Some(t) = token {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        r
    }

    fn read_of(ns: &str, pod: &str) -> ReadRequest {
        ReadRequest {
            namespace: ns.into(),
            pod: pod.into(),
            container: "app".into(),
            ..Default::default()
        }
    }

    /// Reads all of `r`'s events' logs, or its status.
    async fn read(
        c: &mut LogsClient<Channel>,
        r: tonic::Request<ReadRequest>,
    ) -> Result<Vec<String>, tonic::Status> {
        let mut s = c.read(r).await?.into_inner();
        let mut out = Vec::new();
        while let Some(m) = s.message().await? {
            out.extend(
                m.events
                    .into_iter()
                    .map(|e| String::from_utf8_lossy(&e.log).into_owned()),
            );
        }
        Ok(out)
    }

    #[tokio::test]
    async fn grpc_asks_the_same_questions_with_its_own_codes() {
        let t = tree();
        let mut api = stub().await;
        let d = start(&t, &api, &["--grpc-listen", "127.0.0.1:0"]);
        let mut c = client(d.grpc.as_deref().unwrap(), None).await.unwrap();
        let code = |r: Result<Vec<String>, tonic::Status>| r.map_err(|s| s.code());
        assert_eq!(
            code(read(&mut c, with_token(read_of("team-a", "web"), None)).await),
            Err(tonic::Code::Unauthenticated)
        );
        assert_eq!(
            code(read(&mut c, with_token(read_of("team-a", "web"), Some("nobody"))).await),
            Err(tonic::Code::Unauthenticated)
        );
        let denied = read(
            &mut c,
            with_token(read_of("team-a", "web"), Some("bob-token")),
        )
        .await
        .unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(
            denied.message().contains("bob") && denied.message().contains("pods/log"),
            "{denied:?}"
        );
        assert_eq!(
            read(
                &mut c,
                with_token(read_of("team-a", "web"), Some("alice-token"))
            )
            .await
            .unwrap(),
            vec![LINE]
        );
        // List: only alice's namespace.
        let list = c
            .list(with_token(ListRequest::default(), Some("alice-token")))
            .await
            .unwrap()
            .into_inner();
        let names: Vec<_> = list
            .pods
            .iter()
            .map(|p| format!("{}/{}", p.namespace, p.name))
            .collect();
        assert_eq!(names, vec!["team-a/web"]);
        assert_eq!(
            c.list(with_token(ListRequest::default(), None))
                .await
                .unwrap_err()
                .code(),
            tonic::Code::Unauthenticated
        );
        // A merged read covers only allowed namespaces.
        let merged = ReadRequest {
            container: "app".into(),
            ..Default::default()
        };
        assert_eq!(
            read(&mut c, with_token(merged, Some("alice-token")))
                .await
                .unwrap(),
            vec![LINE]
        );
        api.stop().await;
        assert_eq!(
            read(
                &mut c,
                with_token(read_of("team-a", "web"), Some("alice-token"))
            )
            .await
            .unwrap(),
            vec![LINE],
            "cached"
        );
        assert_eq!(
            code(
                read(
                    &mut c,
                    with_token(read_of("team-b", "db"), Some("alice-token"))
                )
                .await
            ),
            Err(tonic::Code::Unavailable)
        );
    }

    #[tokio::test]
    async fn grpc_over_tls_takes_client_certificates() {
        let t = tree();
        let api = stub().await;
        let p = pki(&t.outside);
        let mut flags = vec!["--grpc-listen", "127.0.0.1:0"];
        flags.extend(p.flags());
        let d = start(&t, &api, &flags);
        let addr = d.grpc.as_deref().unwrap();
        let good = p.clients.client("alice", &["devs"], false);
        let mut c = client(addr, Some(client_tls(&p.ca.pem, Some(&good), b"h2")))
            .await
            .unwrap();
        assert_eq!(
            read(&mut c, with_token(read_of("team-a", "web"), None))
                .await
                .unwrap(),
            vec![LINE]
        );
        let denied = read(&mut c, with_token(read_of("team-b", "db"), None))
            .await
            .unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        // A certificate of another CA, or expired, gets nothing.
        let stranger = Ca::new("someone-else").client("alice", &[], false);
        let expired = p.clients.client("alice", &[], true);
        for leaf in [&stranger, &expired] {
            if let Ok(mut c) = client(addr, Some(client_tls(&p.ca.pem, Some(leaf), b"h2"))).await {
                let r = read(&mut c, with_token(read_of("team-a", "web"), None)).await;
                assert!(r.is_err(), "served: {r:?}");
            }
        }
        // In clear, nothing either.
        if let Ok(mut c) = client(addr, None).await {
            assert!(read(
                &mut c,
                with_token(read_of("team-a", "web"), Some("alice-token"))
            )
            .await
            .is_err());
        }
    }
}

#[tokio::test]
async fn tokens_in_clear_off_loopback_are_warned_about() {
    let t = tree();
    let api = stub().await;
    let kc = api.kubeconfig(&t.outside);
    let (child, _) = start_everywhere(
        &t,
        &[
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--authentication-token-webhook",
            "--authorization-mode",
            "Webhook",
        ],
    );
    let err = stop_and_read_log(child);
    assert!(
        err.contains("bearer tokens cross the network in clear"),
        "{err}"
    );
}
