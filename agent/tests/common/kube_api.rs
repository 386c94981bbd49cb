//! A stub Kubernetes API server: HTTPS with a test CA, answering
//! `TokenReview` and `SubjectAccessReview` in the real JSON shapes from a
//! table of tokens and rules, recording every review it was asked; and the
//! certificates the tests need (serving certificates, client certificates
//! good, of another CA and expired). Self-contained, so that the e2e suite
//! includes the same file for the podlogd it runs as a pod.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate authority of the tests.
pub struct Ca {
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, in PEM.
pub struct Leaf {
    pub cert: String,
    pub key: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        let cert = p.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(p, key),
        }
    }

    /// A serving certificate for 127.0.0.1 and localhost.
    pub fn server(&self) -> Leaf {
        self.leaf(
            vec!["127.0.0.1".into(), "localhost".into()],
            "podlog-test-server",
            &[],
            false,
        )
    }

    /// A client certificate: CN `user`, O `groups`; `expired`: its
    /// validity ended in 2020.
    pub fn client(&self, user: &str, groups: &[&str], expired: bool) -> Leaf {
        self.leaf(Vec::new(), user, groups, expired)
    }

    fn leaf(&self, sans: Vec<String>, cn: &str, orgs: &[&str], expired: bool) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(sans).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        for o in orgs {
            p.distinguished_name.push(DnType::OrganizationName, *o);
        }
        if expired {
            p.not_before = rcgen::date_time_ymd(2019, 1, 1);
            p.not_after = rcgen::date_time_ymd(2020, 1, 1);
        }
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

impl Leaf {
    /// Writes `<name>.crt` and `<name>.key` in `dir`; returns their paths.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, &self.cert).unwrap();
        std::fs::write(&k, &self.key).unwrap();
        (c, k)
    }
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

// The stub API server
// ---------------------------------------------------------------------------

/// A rule of the stub's authorizer: `user` may `verb` on `resource`
/// (`pods`, `pods/log`, or a path like `/metrics`) in `namespace` (`*`:
/// any).
#[derive(Clone, Debug)]
pub struct Rule {
    pub user: &'static str,
    pub verb: &'static str,
    pub resource: &'static str,
    pub namespace: &'static str,
}

/// What the stub knows and what it was asked.
#[derive(Default)]
pub struct Book {
    /// token → (username, groups)
    pub tokens: HashMap<String, (String, Vec<String>)>,
    pub rules: Vec<Rule>,
    /// Every review body received, in order.
    pub asked: Vec<serde_json::Value>,
}

/// The stub API server; stopped on drop.
pub struct ApiServer {
    pub addr: SocketAddr,
    pub ca: Ca,
    pub book: Arc<Mutex<Book>>,
    /// podlogd's own token, which every review must carry.
    pub own_token: String,
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ApiServer {
    pub async fn start() -> ApiServer {
        let ca = Ca::new("stub-kube-ca");
        let leaf = ca.server();
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                CertificateDer::pem_slice_iter(leaf.cert.as_bytes())
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let book = Arc::new(Mutex::new(Book::default()));
        let own_token = "podlogd-sa-token".to_owned();
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let (b, t) = (book.clone(), own_token.clone());
        let task = tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    r = listener.accept() => r.unwrap(),
                    _ = stopped.changed() => return,
                };
                let (acceptor, book, own) = (acceptor.clone(), b.clone(), t.clone());
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(move |req| {
                        let (book, own) = (book.clone(), own.clone());
                        async move { Ok::<_, Infallible>(answer(req, &book, &own).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = stopped.changed() => {}
                    }
                });
            }
        });
        ApiServer {
            addr,
            ca,
            book,
            own_token,
            stop,
            task: Some(task),
        }
    }

    /// Knows `token` as `user` in `groups`.
    pub fn token(&self, token: &str, user: &str, groups: &[&str]) {
        self.book.lock().unwrap().tokens.insert(
            token.into(),
            (
                user.into(),
                groups.iter().map(|g| (*g).to_owned()).collect(),
            ),
        );
    }

    pub fn allow(&self, rule: Rule) {
        self.book.lock().unwrap().rules.push(rule);
    }

    /// The reviews of `kind` asked so far.
    pub fn asked(&self, kind: &str) -> Vec<serde_json::Value> {
        self.book
            .lock()
            .unwrap()
            .asked
            .iter()
            .filter(|r| r["kind"] == kind)
            .cloned()
            .collect()
    }

    /// Stops answering: the listener and every connection close.
    pub async fn stop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// A kubeconfig for podlogd, written in `dir`.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let ca = dir.join("kube-ca.crt");
        std::fs::write(&ca, &self.ca.pem).unwrap();
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: test\n\
                 clusters:\n- name: stub\n  cluster:\n    server: https://{}\n    certificate-authority: kube-ca.crt\n\
                 users:\n- name: podlogd\n  user:\n    token: {}\n\
                 contexts:\n- name: test\n  context: {{cluster: stub, user: podlogd}}\n",
                self.addr, self.own_token
            ),
        )
        .unwrap();
        path
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

fn json(status: u16, v: serde_json::Value) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .unwrap()
}

async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
    book: &Mutex<Book>,
    own: &str,
) -> hyper::Response<Full<Bytes>> {
    let authorized = req
        .headers()
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == format!("Bearer {own}").as_bytes());
    let path = req.uri().path().to_owned();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    if !authorized {
        return json(
            401,
            serde_json::json!({"kind": "Status", "code": 401, "message": "Unauthorized"}),
        );
    }
    let Ok(mut review) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return json(400, serde_json::json!({"kind": "Status", "code": 400}));
    };
    let mut b = book.lock().unwrap();
    b.asked.push(review.clone());
    let status = match path.as_str() {
        "/apis/authentication.k8s.io/v1/tokenreviews" => {
            let token = review["spec"]["token"].as_str().unwrap_or("");
            match b.tokens.get(token) {
                Some((user, groups)) => serde_json::json!({
                    "authenticated": true,
                    "user": {"username": user, "uid": format!("uid-{user}"), "groups": groups},
                    "audiences": ["https://kubernetes.default.svc"],
                }),
                None => {
                    serde_json::json!({"authenticated": false, "error": "invalid bearer token"})
                }
            }
        }
        "/apis/authorization.k8s.io/v1/subjectaccessreviews" => {
            let spec = &review["spec"];
            let user = spec["user"].as_str().unwrap_or("");
            let (verb, resource, ns) = match (
                spec.get("resourceAttributes"),
                spec.get("nonResourceAttributes"),
            ) {
                (Some(r), _) => {
                    let res = match r["subresource"].as_str() {
                        Some(s) if !s.is_empty() => {
                            format!("{}/{s}", r["resource"].as_str().unwrap_or(""))
                        }
                        _ => r["resource"].as_str().unwrap_or("").to_owned(),
                    };
                    (
                        r["verb"].as_str().unwrap_or(""),
                        res,
                        r["namespace"].as_str().unwrap_or(""),
                    )
                }
                (None, Some(n)) => (
                    n["verb"].as_str().unwrap_or(""),
                    n["path"].as_str().unwrap_or("").to_owned(),
                    "",
                ),
                _ => ("", String::new(), ""),
            };
            let allowed = b.rules.iter().any(|r| {
                r.user == user
                    && r.verb == verb
                    && r.resource == resource
                    && (r.namespace == "*" || r.namespace == ns)
            });
            if allowed {
                serde_json::json!({"allowed": true, "reason": "stub rule"})
            } else {
                serde_json::json!({"allowed": false})
            }
        }
        _ => return json(404, serde_json::json!({"kind": "Status", "code": 404})),
    };
    review["status"] = status;
    json(201, review)
}
