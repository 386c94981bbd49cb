//! The Kubernetes API client: two `POST`s, `TokenReview`
//! (`authentication.k8s.io/v1`) and `SubjectAccessReview`
//! (`authorization.k8s.io/v1`), over HTTPS to the server a kubeconfig
//! names, or in-cluster (the pod's service-account token and CA).
//!
//! hyper's client with rustls and the typed JSON of the two reviews, not
//! `kube` with `k8s-openapi`: two request kinds do not pay for compiling
//! every API type on a 2-core build, and the TLS stack is the one the
//! listeners use anyway.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use super::{Attributes, User};
use crate::telemetry;

/// Where the API server is and how podlogd proves who it is (its `Debug`
/// shows no secret).
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// `https://host:port`, without a trailing `/`.
    pub(crate) server: String,
    /// PEM: the CA the server's certificate must chain to.
    pub(crate) ca: Vec<u8>,
    pub(crate) token: Option<Token>,
    /// PEM: a client certificate and its key.
    pub(crate) client_cert: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("client_cert", &self.client_cert.is_some())
            .finish_non_exhaustive()
    }
}

/// podlogd's own bearer token.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Token {
    Value(String),
    /// Read again for each review: projected service-account tokens
    /// rotate.
    File(PathBuf),
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Value(_) => f.write_str("Value(…)"),
            Token::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

/// The service account's files in a pod.
const SERVICE_ACCOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// How long one review may take, connection included.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest answer read.
const MAX_ANSWER: usize = 1 << 20;

// === kubeconfig ===

#[derive(Deserialize)]
struct KubeconfigFile {
    #[serde(default)]
    clusters: Vec<NamedCluster>,
    #[serde(default)]
    users: Vec<NamedUser>,
    #[serde(default)]
    contexts: Vec<NamedContext>,
    #[serde(rename = "current-context")]
    current_context: Option<String>,
}

#[derive(Deserialize)]
struct NamedCluster {
    name: String,
    cluster: ClusterFile,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ClusterFile {
    server: String,
    certificate_authority: Option<PathBuf>,
    certificate_authority_data: Option<String>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
}

#[derive(Deserialize)]
struct NamedUser {
    name: String,
    #[serde(default)]
    user: UserFile,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct UserFile {
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<PathBuf>,
    client_certificate: Option<PathBuf>,
    client_certificate_data: Option<String>,
    client_key: Option<PathBuf>,
    client_key_data: Option<String>,
    exec: Option<serde_yaml::Value>,
    auth_provider: Option<serde_yaml::Value>,
}

#[derive(Deserialize)]
struct NamedContext {
    name: String,
    context: ContextFile,
}

#[derive(Deserialize)]
struct ContextFile {
    cluster: String,
    user: Option<String>,
}

/// The target of the kubeconfig at `path` (its current context); relative
/// file names are relative to the kubeconfig's directory.
///
/// # Errors
///
/// The file or a file it names cannot be read, or it does not say where
/// the server is and how to trust it.
pub(crate) fn from_kubeconfig(path: &Path) -> Result<Target, String> {
    let text = read_small(path)?;
    parse_kubeconfig(&text, path.parent().unwrap_or(Path::new("/")))
}

fn parse_kubeconfig(text: &str, dir: &Path) -> Result<Target, String> {
    let file: KubeconfigFile = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    let ctx_name = file
        .current_context
        .as_deref()
        .filter(|c| !c.is_empty())
        .or(file.contexts.first().map(|c| c.name.as_str()));
    let ctx = match ctx_name {
        Some(n) => Some(
            &file
                .contexts
                .iter()
                .find(|c| c.name == n)
                .ok_or_else(|| format!("current-context {n:?} is not among contexts"))?
                .context,
        ),
        None => None,
    };
    let cluster = match ctx {
        Some(c) => file
            .clusters
            .iter()
            .find(|k| k.name == c.cluster)
            .ok_or_else(|| format!("cluster {:?} is not among clusters", c.cluster))?,
        None => file
            .clusters
            .first()
            .ok_or_else(|| "no clusters".to_string())?,
    };
    let user = match ctx.and_then(|c| c.user.as_deref()) {
        Some(u) => Some(
            &file
                .users
                .iter()
                .find(|k| k.name == u)
                .ok_or_else(|| format!("user {u:?} is not among users"))?
                .user,
        ),
        None => None,
    };
    let c = &cluster.cluster;
    if c.insecure_skip_tls_verify {
        return Err(format!(
            "cluster {:?}: insecure-skip-tls-verify is refused: give certificate-authority",
            cluster.name
        ));
    }
    let server = c.server.trim_end_matches('/').to_owned();
    if !server.starts_with("https://") {
        return Err(format!(
            "cluster {:?}: server {server:?} is not https://",
            cluster.name
        ));
    }
    let rel = |p: &PathBuf| {
        if p.is_absolute() {
            p.clone()
        } else {
            dir.join(p)
        }
    };
    let ca = match (&c.certificate_authority_data, &c.certificate_authority) {
        (Some(d), _) => base64_pem(d, "certificate-authority-data")?,
        (None, Some(p)) => read_small(&rel(p))?.into_bytes(),
        (None, None) => {
            return Err(format!(
                "cluster {:?}: no certificate-authority(-data) to trust the server with",
                cluster.name
            ))
        }
    };
    let mut target = Target {
        server,
        ca,
        token: None,
        client_cert: None,
    };
    if let Some(u) = user {
        if u.exec.is_some() || u.auth_provider.is_some() {
            return Err("exec and auth-provider credentials are not supported: use a token, tokenFile or a client certificate".into());
        }
        target.token = match (&u.token, &u.token_file) {
            (Some(t), _) => Some(Token::Value(t.trim().to_owned())),
            (None, Some(p)) => Some(Token::File(rel(p))),
            (None, None) => None,
        };
        let cert = match (&u.client_certificate_data, &u.client_certificate) {
            (Some(d), _) => Some(base64_pem(d, "client-certificate-data")?),
            (None, Some(p)) => Some(read_small(&rel(p))?.into_bytes()),
            (None, None) => None,
        };
        let key = match (&u.client_key_data, &u.client_key) {
            (Some(d), _) => Some(base64_pem(d, "client-key-data")?),
            (None, Some(p)) => Some(read_small(&rel(p))?.into_bytes()),
            (None, None) => None,
        };
        target.client_cert = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err("a client certificate needs its key, and a key its certificate".into())
            }
        };
    }
    Ok(target)
}

/// In a pod: `KUBERNETES_SERVICE_HOST`/`_PORT` and the service account's
/// token and CA.
///
/// # Errors
///
/// Not in a pod (the variables unset), or the CA cannot be read.
pub(crate) fn in_cluster() -> Result<Target, String> {
    let host = std::env::var("KUBERNETES_SERVICE_HOST").map_err(|_| {
        "no kubeconfig given and not in a pod (KUBERNETES_SERVICE_HOST is unset)".to_string()
    })?;
    let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let dir = Path::new(SERVICE_ACCOUNT);
    Ok(Target {
        server: format!("https://{host}:{port}"),
        ca: read_small(&dir.join("ca.crt"))?.into_bytes(),
        token: Some(Token::File(dir.join("token"))),
        client_cert: None,
    })
}

fn base64_pem(data: &str, key: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| format!("{key}: not base64: {e}"))
}

/// A small file (a kubeconfig, a PEM, a token): at most 1 MiB.
fn read_small(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if text.len() > MAX_ANSWER {
        return Err(format!("{}: larger than 1 MiB", path.display()));
    }
    Ok(text)
}

/// Every certificate in a PEM text.
///
/// # Errors
///
/// Not PEM, or no certificate in it.
pub(crate) fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what}: no certificate in it"));
    }
    Ok(certs)
}

/// The private key of a PEM text.
///
/// # Errors
///
/// No key in it.
pub(crate) fn private_key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("{what}: {e}"))
}

/// The crypto provider of every TLS connection podlogd makes or takes:
/// *ring* (aws-lc-rs, rustls's default, offers post-quantum key exchange
/// but takes minutes more to build on 2 cores).
#[allow(deprecated)]
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

// === the client ===

type Https = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// Asks the API server the two reviews.
pub(crate) struct Client {
    server: String,
    token: Option<Token>,
    http: hyper_util::client::legacy::Client<Https, Full<Bytes>>,
    /// When the last failure was logged (ms since start), to log at most
    /// one every 10 s.
    last_logged: AtomicU64,
    started: tokio::time::Instant,
}

impl Client {
    /// A client for `target`.
    ///
    /// # Errors
    ///
    /// Its CA or client certificate is not usable.
    pub(crate) fn new(target: Target) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        for c in certificates(&target.ca, "the API server's CA")? {
            roots
                .add(c)
                .map_err(|e| format!("the API server's CA: {e}"))?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        let tls = match &target.client_cert {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    certificates(cert, "client-certificate")?,
                    private_key(key, "client-key")?,
                )
                .map_err(|e| format!("client certificate: {e}"))?,
            None => builder.with_no_client_auth(),
        };
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_max_idle_per_host(4)
                .pool_idle_timeout(Duration::from_secs(60))
                .pool_timer(hyper_util::rt::TokioTimer::new())
                .build(https);
        Ok(Self {
            server: target.server,
            token: target.token,
            http: client,
            last_logged: AtomicU64::new(u64::MAX),
            started: tokio::time::Instant::now(),
        })
    }

    /// Who `token` is: `None` when the API server does not authenticate it.
    ///
    /// # Errors
    ///
    /// The API server was not reached or answered something else.
    pub(crate) async fn token_review(&self, token: &str) -> Result<Option<Arc<User>>, String> {
        let review = Review {
            api_version: "authentication.k8s.io/v1",
            kind: "TokenReview",
            spec: TokenReviewSpec { token },
        };
        let status: TokenReviewStatus = self
            .post(
                "TokenReview",
                "/apis/authentication.k8s.io/v1/tokenreviews",
                &review,
            )
            .await?;
        Ok(match (status.authenticated, status.user) {
            (true, Some(u)) if !u.username.is_empty() => Some(Arc::new(User {
                name: u.username,
                uid: u.uid,
                groups: u.groups,
                extra: u.extra,
            })),
            _ => None,
        })
    }

    /// Whether `user` may do `attributes`, and the authorizer's reason.
    ///
    /// # Errors
    ///
    /// The API server was not reached or answered something else.
    pub(crate) async fn subject_access_review(
        &self,
        user: &User,
        attributes: &Attributes,
    ) -> Result<(bool, Option<String>), String> {
        let review = Review {
            api_version: "authorization.k8s.io/v1",
            kind: "SubjectAccessReview",
            spec: sar_spec(user, attributes),
        };
        let status: SarStatus = self
            .post(
                "SubjectAccessReview",
                "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                &review,
            )
            .await?;
        let reason = match (status.reason, status.evaluation_error) {
            (Some(r), _) if !r.is_empty() => Some(r),
            (_, Some(e)) if !e.is_empty() => Some(e),
            _ => None,
        };
        Ok((status.allowed && !status.denied, reason))
    }

    /// Posts `body` and reads the answer's `status`.
    async fn post<B: Serialize, S: serde::de::DeserializeOwned>(
        &self,
        kind: &'static str,
        path: &str,
        body: &B,
    ) -> Result<S, String> {
        let result = tokio::time::timeout(REVIEW_TIMEOUT, self.exchange(path, body))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {REVIEW_TIMEOUT:?}")))
            .map_err(|e| format!("{kind} to {}: {e}", self.server));
        telemetry::kube_api_request(kind, result.is_ok());
        match result {
            Ok(answer) => {
                let answer: Answer<S> = serde_json::from_slice(&answer)
                    .map_err(|e| format!("{kind}: the answer is not a {kind}: {e}"))?;
                Ok(answer.status)
            }
            Err(e) => {
                self.log_failure(&e);
                Err(e)
            }
        }
    }

    async fn exchange<B: Serialize>(&self, path: &str, body: &B) -> Result<Bytes, String> {
        let mut req = hyper::Request::post(format!("{}{path}", self.server))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("user-agent", concat!("podlogd/", env!("CARGO_PKG_VERSION")));
        match &self.token {
            Some(Token::Value(t)) => req = req.header("authorization", format!("Bearer {t}")),
            Some(Token::File(p)) => {
                let t = tokio::fs::read_to_string(p)
                    .await
                    .map_err(|e| format!("token file {}: {e}", p.display()))?;
                req = req.header("authorization", format!("Bearer {}", t.trim()));
            }
            None => {}
        }
        let body = serde_json::to_vec(body).expect("a review serializes");
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let resp = self.http.request(req).await.map_err(|e| {
            // The cause says what failed (refused, TLS, DNS).
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg = format!("{msg}: {s}");
                src = s.source();
            }
            msg
        })?;
        let status = resp.status();
        let bytes = Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned();
            return Err(format!("the API server answered {status}: {}", text.trim()));
        }
        Ok(bytes)
    }

    fn log_failure(&self, error: &str) {
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.last_logged.load(Ordering::Relaxed);
        if last == u64::MAX || now.saturating_sub(last) >= 10_000 {
            self.last_logged.store(now, Ordering::Relaxed);
            tracing::warn!(error, "the Kubernetes API server could not be asked; uncached access checks answer 503 (logged at most every 10s)");
        }
    }
}

// === the reviews' JSON ===

/// The `spec` of the `SubjectAccessReview` asking whether `user` may do
/// `attributes`: pods are core (`group` ""), `version` v1.
fn sar_spec<'a>(user: &'a User, attributes: &'a Attributes) -> SarSpec<'a> {
    let (resource_attributes, non_resource_attributes) = match attributes {
        Attributes::Pods {
            verb,
            namespace,
            subresource,
            name,
        } => (
            Some(ResourceAttributes {
                namespace,
                verb,
                group: "",
                version: "v1",
                resource: "pods",
                subresource: subresource.unwrap_or(""),
                name: name.as_deref().unwrap_or(""),
            }),
            None,
        ),
        Attributes::Path { verb, path } => (None, Some(NonResourceAttributes { path, verb })),
    };
    SarSpec {
        resource_attributes,
        non_resource_attributes,
        user: &user.name,
        uid: &user.uid,
        groups: &user.groups,
        extra: &user.extra,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Review<S> {
    api_version: &'static str,
    kind: &'static str,
    spec: S,
}

#[derive(Serialize)]
struct TokenReviewSpec<'a> {
    token: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarSpec<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_attributes: Option<ResourceAttributes<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    non_resource_attributes: Option<NonResourceAttributes<'a>>,
    user: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    uid: &'a str,
    groups: &'a [String],
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    extra: &'a std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Serialize)]
struct ResourceAttributes<'a> {
    namespace: &'a str,
    verb: &'a str,
    group: &'a str,
    version: &'a str,
    resource: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    subresource: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
}

#[derive(Serialize)]
struct NonResourceAttributes<'a> {
    path: &'a str,
    verb: &'a str,
}

#[derive(Deserialize)]
struct Answer<S> {
    status: S,
}

#[derive(Deserialize)]
struct TokenReviewStatus {
    #[serde(default)]
    authenticated: bool,
    user: Option<UserInfo>,
}

#[derive(Deserialize)]
struct UserInfo {
    #[serde(default)]
    username: String,
    #[serde(default)]
    uid: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    extra: std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SarStatus {
    #[serde(default)]
    allowed: bool,
    #[serde(default)]
    denied: bool,
    reason: Option<String>,
    evaluation_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kubeconfig_names_server_trust_and_credentials() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "CA").unwrap();
        let text = r#"
apiVersion: v1
kind: Config
current-context: podlog
clusters:
- name: other
  cluster: {server: "https://other:6443", certificate-authority-data: Q0E=}
- name: c
  cluster: {server: "https://10.0.0.1:6443/", certificate-authority: ca.pem}
users:
- name: u
  user: {tokenFile: /run/token}
contexts:
- name: podlog
  context: {cluster: c, user: u}
preferences: {}
"#;
        let t = parse_kubeconfig(text, dir.path()).unwrap();
        assert_eq!(t.server, "https://10.0.0.1:6443");
        assert_eq!(t.ca, b"CA");
        assert_eq!(t.token, Some(Token::File("/run/token".into())));
        for (bad, says) in [
            (
                text.replace("podlog\nclusters", "nope\nclusters"),
                "current-context \"nope\"",
            ),
            (
                text.replace(
                    "certificate-authority: ca.pem",
                    "insecure-skip-tls-verify: true",
                ),
                "insecure-skip-tls-verify",
            ),
            (
                text.replace("https://10.0.0.1", "http://10.0.0.1"),
                "is not https://",
            ),
            (
                text.replace("{tokenFile: /run/token}", "{exec: {command: x}}"),
                "exec",
            ),
            (
                text.replace("{tokenFile: /run/token}", "{client-key: k.pem}"),
                "k.pem",
            ),
        ] {
            let e = parse_kubeconfig(&bad, dir.path()).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn a_subject_access_review_carries_exactly_the_attributes() {
        let user = User::anonymous();
        let a = Attributes::pod_log("ns", "p");
        let spec = sar_spec(&user, &a);
        let v = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "resourceAttributes": {"namespace": "ns", "verb": "get", "group": "", "version": "v1",
                    "resource": "pods", "subresource": "log", "name": "p"},
                "user": "system:anonymous",
                "groups": ["system:unauthenticated"],
            })
        );
        let m = serde_json::to_value(sar_spec(&user, &Attributes::metrics())).unwrap();
        assert_eq!(
            m["nonResourceAttributes"],
            serde_json::json!({"path": "/metrics", "verb": "get"})
        );
        assert!(m.get("resourceAttributes").is_none());
    }
}
