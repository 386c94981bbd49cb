//! A stub Kubernetes API server for the access tests: HTTPS with a test
//! CA, answering `TokenReview` and `SubjectAccessReview` in the real JSON
//! shapes from a table of tokens and rules, recording every review it was
//! asked; and the certificates and clients the tests need (serving
//! certificates, client certificates good, of another CA and expired).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::{whole, Conn, Io, Response, TIMEOUT};

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

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls client trusting `ca`, presenting `cert` when given.
pub fn client_tls(ca: &str, cert: Option<&Leaf>, alpn: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut c = match cert {
        Some(l) => b
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(l.cert.as_bytes())
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_slice(l.key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    c.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(c)
}

/// How a test client reaches podlogd: TLS or not, a bearer token or not.
#[derive(Clone, Default)]
pub struct As {
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub token: Option<String>,
}

impl As {
    pub fn token(token: &str) -> As {
        As {
            tls: None,
            token: Some(token.into()),
        }
    }

    pub fn with_tls(mut self, tls: Arc<rustls::ClientConfig>) -> As {
        self.tls = Some(tls);
        self
    }

    /// A connection to `addr`, TLS when `self.tls`.
    ///
    /// # Errors
    ///
    /// The handshake failed.
    pub async fn connect(&self, addr: SocketAddr) -> std::io::Result<Box<dyn Io>> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some(c) => {
                let name = ServerName::IpAddress(addr.ip().into());
                let s = tokio_rustls::TlsConnector::from(c.clone())
                    .connect(name, tcp)
                    .await?;
                Ok(Box::new(s))
            }
        }
    }

    /// `GET target`: the whole response, or the connection's error.
    pub async fn try_get(&self, addr: SocketAddr, target: &str) -> std::io::Result<Response> {
        let io = tokio::time::timeout(TIMEOUT, self.connect(addr))
            .await
            .expect("connect within TIMEOUT")?;
        let bearer = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .as_deref()
            .map(|b| ("Authorization", b))
            .into_iter()
            .collect();
        // A handshake a server refuses after it completed on the client's
        // side (TLS 1.3 client certificates) shows as a closed connection.
        let c = tokio::time::timeout(
            TIMEOUT,
            tokio::spawn({
                let target = target.to_owned();
                let headers: Vec<(String, String)> = headers
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect();
                async move {
                    let h: Vec<(&str, &str)> = headers
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    Conn::open_on(io, addr, "GET", &target, &h).await
                }
            }),
        )
        .await
        .expect("a response head within TIMEOUT");
        match c {
            Ok(c) => Ok(whole(c, "GET", target).await),
            Err(e) => Err(std::io::Error::other(format!("no response: {e}"))),
        }
    }

    pub async fn get(&self, addr: SocketAddr, target: &str) -> Response {
        self.try_get(addr, target)
            .await
            .unwrap_or_else(|e| panic!("GET {target}: {e}"))
    }
}

// ---------------------------------------------------------------------------
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
