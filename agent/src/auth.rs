//! Who a client is and what it may read, the kubelet's way.
//!
//! A request's credentials (a verified client certificate, a bearer token)
//! become a [`User`]: the certificate's subject (CN the name, O the
//! groups), a `TokenReview`'s answer, or `system:anonymous` when anonymous
//! requests are allowed. What the user asks for becomes [`Attributes`]
//! (`get pods/log` of a pod in its namespace, `list pods` in a namespace,
//! `get /metrics`), which `AlwaysAllow` allows and `Webhook` asks the API
//! server about with a `SubjectAccessReview`. Both answers are cached
//! ([`cache`]: bounded, per-answer TTLs, one review for identical
//! questions asked together); an API server that does not answer makes
//! uncached questions [`AuthError::Unavailable`] while cached answers hold
//! until their TTL.
//!
//! The settings mirror `KubeletConfiguration` ([`AuthConfig`]), the API
//! client is in [`kube`], serving TLS (reloaded when its files change) in
//! [`tls`].

pub(crate) mod cache;
pub mod kube;
pub(crate) mod tls;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::telemetry;

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

/// `authorization.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthorizationMode {
    /// Every authenticated (or anonymous, when allowed) user reads all.
    AlwaysAllow,
    /// Each question goes to the API server (`SubjectAccessReview`).
    Webhook,
}

impl std::str::FromStr for AuthorizationMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "AlwaysAllow" => Ok(Self::AlwaysAllow),
            "Webhook" => Ok(Self::Webhook),
            _ => Err(format!("{s:?}: must be AlwaysAllow or Webhook")),
        }
    }
}

/// Authentication, authorization and serving TLS, resolved (flags over the
/// file over the kubelet's command-line defaults: anonymous allowed, no
/// token webhook, `AlwaysAllow`, which only a loopback listener accepts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthConfig {
    /// `authentication.anonymous.enabled`: requests without credentials
    /// are `system:anonymous` (group `system:unauthenticated`); otherwise
    /// `401`.
    pub anonymous: bool,
    /// `authentication.webhook.enabled`: bearer tokens are checked with a
    /// `TokenReview`; otherwise they are not looked at.
    pub token_webhook: bool,
    /// `authentication.webhook.cacheTTL` (default 2m).
    pub token_cache_ttl: Duration,
    /// `authentication.x509.clientCAFile`: client certificates signed by
    /// it authenticate (CN the user, O the groups). Needs TLS.
    pub client_ca_file: Option<PathBuf>,
    pub mode: AuthorizationMode,
    /// `authorization.webhook.cacheAuthorizedTTL` (default 5m).
    pub cache_authorized_ttl: Duration,
    /// `authorization.webhook.cacheUnauthorizedTTL` (default 30s).
    pub cache_unauthorized_ttl: Duration,
    /// The API server, from `kubeconfig` or in-cluster (the pod's own
    /// service account); read when the checks need it.
    pub api: Option<kube::Target>,
    /// `tlsCertFile` and `tlsPrivateKeyFile`: TLS on the TCP listeners.
    pub tls: Option<tls::TlsFiles>,
    /// `--insecure-allow-unauthenticated`: a non-loopback listener may
    /// serve without authentication (a warning at start and
    /// `podlog_unauthenticated_listeners`).
    pub insecure_allow_unauthenticated: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            anonymous: true,
            token_webhook: false,
            token_cache_ttl: Duration::from_secs(120),
            client_ca_file: None,
            mode: AuthorizationMode::AlwaysAllow,
            cache_authorized_ttl: Duration::from_secs(300),
            cache_unauthorized_ttl: Duration::from_secs(30),
            api: None,
            tls: None,
            insecure_allow_unauthenticated: false,
        }
    }
}

impl AuthConfig {
    /// Whether anyone who reaches a listener reads everything: anonymous
    /// requests allowed and nothing asked about them.
    pub fn unauthenticated(&self) -> bool {
        self.anonymous && self.mode == AuthorizationMode::AlwaysAllow
    }

    /// Whether the API server is asked anything.
    pub fn needs_api_server(&self) -> bool {
        self.token_webhook || self.mode == AuthorizationMode::Webhook
    }
}

/// The file's `authentication` key (the kubelet's shape).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthenticationFile {
    pub anonymous: Option<EnabledFile>,
    pub webhook: Option<TokenWebhookFile>,
    pub x509: Option<X509File>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnabledFile {
    pub enabled: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenWebhookFile {
    pub enabled: Option<bool>,
    #[serde(rename = "cacheTTL")]
    pub cache_ttl: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct X509File {
    #[serde(rename = "clientCAFile")]
    pub client_ca_file: Option<PathBuf>,
}

/// The file's `authorization` key.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationFile {
    pub mode: Option<String>,
    pub webhook: Option<AuthzWebhookFile>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthzWebhookFile {
    #[serde(rename = "cacheAuthorizedTTL")]
    pub cache_authorized_ttl: Option<String>,
    #[serde(rename = "cacheUnauthorizedTTL")]
    pub cache_unauthorized_ttl: Option<String>,
}

// ---------------------------------------------------------------------------
// Users and questions
// ---------------------------------------------------------------------------

/// Who a request is from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct User {
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) groups: Vec<String>,
    pub(crate) extra: BTreeMap<String, Vec<String>>,
}

impl User {
    /// Requests without credentials, when anonymous requests are allowed.
    pub(crate) fn anonymous() -> Self {
        Self {
            name: "system:anonymous".into(),
            uid: String::new(),
            groups: vec!["system:unauthenticated".into()],
            extra: BTreeMap::new(),
        }
    }

    /// A verified client certificate's subject: CN the name, O the groups
    /// (and `system:authenticated`, as the API server adds).
    pub(crate) fn of_certificate(cn: String, mut organizations: Vec<String>) -> Self {
        organizations.push("system:authenticated".into());
        Self {
            name: cn,
            uid: String::new(),
            groups: organizations,
            extra: BTreeMap::new(),
        }
    }
}

/// What a request presents.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Credentials<'a> {
    /// The user of a client certificate the TLS handshake verified.
    pub(crate) certificate: Option<&'a Arc<User>>,
    /// An `Authorization: Bearer` token.
    pub(crate) bearer: Option<&'a str>,
}

impl<'a> Credentials<'a> {
    /// The token of an `Authorization` header value, if it is `Bearer`.
    pub(crate) fn bearer_of(header: Option<&'a [u8]>) -> Option<&'a str> {
        let v = std::str::from_utf8(header?).ok()?;
        let (scheme, token) = v.trim().split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    }
}

/// What is asked: the attributes of a `SubjectAccessReview`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Attributes {
    /// A verb on pods (or a subresource of them) in a namespace; `name`
    /// absent: all pods there.
    Pods {
        verb: &'static str,
        namespace: String,
        subresource: Option<&'static str>,
        name: Option<String>,
    },
    /// A verb on a path of podlogd's own (`/metrics`).
    Path {
        verb: &'static str,
        path: &'static str,
    },
}

impl Attributes {
    /// `get pods/log` of one pod: a container read.
    pub(crate) fn pod_log(namespace: &str, pod: &str) -> Self {
        Self::Pods {
            verb: "get",
            namespace: namespace.to_owned(),
            subresource: Some("log"),
            name: Some(pod.to_owned()),
        }
    }

    /// `get pods/log` of every pod in a namespace: a merged read there.
    pub(crate) fn namespace_logs(namespace: &str) -> Self {
        Self::Pods {
            verb: "get",
            namespace: namespace.to_owned(),
            subresource: Some("log"),
            name: None,
        }
    }

    /// `list pods` in a namespace: the inventory and merged reads.
    pub(crate) fn list_pods(namespace: &str) -> Self {
        Self::Pods {
            verb: "list",
            namespace: namespace.to_owned(),
            subresource: None,
            name: None,
        }
    }

    /// `get /metrics`.
    pub(crate) fn metrics() -> Self {
        Self::Path {
            verb: "get",
            path: "/metrics",
        }
    }
}

impl Attributes {
    /// The resource with its subresource (`pods`, `pods/log`); `None` for
    /// a path.
    pub(crate) fn resource(&self) -> Option<String> {
        match self {
            Attributes::Pods {
                subresource: Some(s),
                ..
            } => Some(format!("pods/{s}")),
            Attributes::Pods { .. } => Some("pods".into()),
            Attributes::Path { .. } => None,
        }
    }
}

impl std::fmt::Display for Attributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Attributes::Pods {
                verb,
                namespace,
                name,
                ..
            } => {
                write!(f, "{verb} {}", self.resource().unwrap_or_default())?;
                if let Some(n) = name {
                    write!(f, " {n:?}")?;
                }
                write!(f, " in namespace {namespace:?}")
            }
            Attributes::Path { verb, path } => write!(f, "{verb} {path}"),
        }
    }
}

/// Why a request is not served.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum AuthError {
    /// No credentials where some are needed, or credentials that do not
    /// authenticate.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    #[error("forbidden: user {user:?} may not {attributes}{}", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    Forbidden {
        user: String,
        attributes: Attributes,
        reason: Option<String>,
    },
    /// The API server could not be asked, and no answer is cached.
    #[error("cannot check access: {0}")]
    Unavailable(String),
}

// ---------------------------------------------------------------------------
// Access: the checks
// ---------------------------------------------------------------------------

/// A cached authorization: allowed or not, and the webhook's reason.
#[derive(Clone, Debug)]
struct Decision {
    allowed: bool,
    reason: Option<String>,
}

/// The authenticator and the authorizer, with their caches.
pub(crate) struct Access {
    config: AuthConfig,
    api: Option<Arc<kube::Client>>,
    /// SHA-256 of a token → its user (`None`: not authenticated).
    tokens: cache::Cache<[u8; 32], Option<Arc<User>>>,
    decisions: cache::Cache<(Arc<User>, Attributes), Decision>,
}

/// Entries each cache holds at most.
const CACHE_ENTRIES: usize = 4096;

impl Access {
    /// Checks with `config`; `api` is the API server's client, needed when
    /// [`AuthConfig::needs_api_server`].
    pub(crate) fn new(config: AuthConfig, api: Option<Arc<kube::Client>>) -> Self {
        Self {
            config,
            api,
            tokens: cache::Cache::new("tokens", CACHE_ENTRIES),
            decisions: cache::Cache::new("decisions", CACHE_ENTRIES),
        }
    }

    /// `AlwaysAllow` with anonymous requests: nothing is checked.
    #[cfg(test)]
    pub(crate) fn open() -> Self {
        Self::new(AuthConfig::default(), None)
    }

    pub(crate) fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Who presents `creds`: the certificate's user, else the token's,
    /// else anonymous when allowed.
    ///
    /// # Errors
    ///
    /// [`AuthError::Unauthenticated`] (no usable credentials, a token the
    /// API server does not know), [`AuthError::Unavailable`] (the API
    /// server not reached for a token not cached).
    pub(crate) async fn authenticate(
        &self,
        creds: Credentials<'_>,
    ) -> Result<Arc<User>, AuthError> {
        if let Some(user) = creds.certificate {
            telemetry::authenticated("x509");
            return Ok(user.clone());
        }
        match (creds.bearer, &self.api) {
            (Some(token), Some(api)) if self.config.token_webhook => {
                let key: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
                    .as_ref()
                    .try_into()
                    .expect("SHA-256 is 32 bytes");
                let ttl = self.config.token_cache_ttl;
                let api = api.clone();
                let token = token.to_owned();
                let user = self
                    .tokens
                    .get_or_fetch(
                        key,
                        move || Box::pin(async move { api.token_review(&token).await }),
                        |_| ttl,
                    )
                    .await
                    .map_err(|e| {
                        telemetry::authenticated("unavailable");
                        AuthError::Unavailable(e)
                    })?;
                match user {
                    Some(u) => {
                        telemetry::authenticated("token");
                        Ok(u)
                    }
                    None => {
                        telemetry::authenticated("rejected");
                        Err(AuthError::Unauthenticated(
                            "the bearer token was not accepted by the API server (TokenReview)"
                                .into(),
                        ))
                    }
                }
            }
            _ if self.config.anonymous => {
                telemetry::authenticated("anonymous");
                static ANONYMOUS: std::sync::OnceLock<Arc<User>> = std::sync::OnceLock::new();
                Ok(ANONYMOUS
                    .get_or_init(|| Arc::new(User::anonymous()))
                    .clone())
            }
            (Some(_), _) => {
                telemetry::authenticated("rejected");
                Err(AuthError::Unauthenticated(
                    "bearer tokens are not accepted: authentication.webhook is off".into(),
                ))
            }
            (None, _) => {
                telemetry::authenticated("rejected");
                Err(AuthError::Unauthenticated(
                    "no credentials: give a bearer token or a client certificate".into(),
                ))
            }
        }
    }

    /// Whether `user` may do `attributes`.
    ///
    /// # Errors
    ///
    /// [`AuthError::Forbidden`], or [`AuthError::Unavailable`] when the
    /// API server is not reached for a question not cached.
    pub(crate) async fn authorize(
        &self,
        user: &Arc<User>,
        attributes: Attributes,
    ) -> Result<(), AuthError> {
        let api = match (&self.config.mode, &self.api) {
            (AuthorizationMode::AlwaysAllow, _) => return Ok(()),
            (AuthorizationMode::Webhook, Some(api)) => api.clone(),
            (AuthorizationMode::Webhook, None) => {
                return Err(AuthError::Unavailable("no API server configured".into()))
            }
        };
        let (yes, no) = (
            self.config.cache_authorized_ttl,
            self.config.cache_unauthorized_ttl,
        );
        let key = (user.clone(), attributes.clone());
        let (u, a) = (user.clone(), attributes.clone());
        let decision = self
            .decisions
            .get_or_fetch(
                key,
                move || {
                    Box::pin(async move {
                        api.subject_access_review(&u, &a)
                            .await
                            .map(|(allowed, reason)| Decision { allowed, reason })
                    })
                },
                |d: &Decision| if d.allowed { yes } else { no },
            )
            .await
            .map_err(|e| {
                telemetry::authorized("unavailable");
                AuthError::Unavailable(e)
            })?;
        if decision.allowed {
            telemetry::authorized("allowed");
            Ok(())
        } else {
            telemetry::authorized("denied");
            Err(AuthError::Forbidden {
                user: user.name.clone(),
                attributes,
                reason: decision.reason.filter(|r| !r.is_empty()),
            })
        }
    }

    /// Authenticates, then authorizes `attributes`: the user, or why not.
    ///
    /// # Errors
    ///
    /// As [`Access::authenticate`] and [`Access::authorize`].
    pub(crate) async fn check(
        &self,
        creds: Credentials<'_>,
        attributes: Attributes,
    ) -> Result<Arc<User>, AuthError> {
        let user = self.authenticate(creds).await?;
        self.authorize(&user, attributes).await?;
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        assert_eq!(Credentials::bearer_of(Some(b"Bearer abc")), Some("abc"));
        assert_eq!(Credentials::bearer_of(Some(b"bearer  abc ")), Some("abc"));
        assert_eq!(Credentials::bearer_of(Some(b"Basic abc")), None);
        assert_eq!(Credentials::bearer_of(Some(b"Bearer ")), None);
        assert_eq!(Credentials::bearer_of(Some(b"Bearer\xff")), None);
        assert_eq!(Credentials::bearer_of(None), None);
    }

    #[test]
    fn forbidden_names_user_verb_resource_and_namespace() {
        let e = AuthError::Forbidden {
            user: "alice".into(),
            attributes: Attributes::pod_log("team-a", "web-1"),
            reason: None,
        };
        assert_eq!(
            e.to_string(),
            "forbidden: user \"alice\" may not get pods/log \"web-1\" in namespace \"team-a\""
        );
        assert_eq!(
            Attributes::list_pods("b").to_string(),
            "list pods in namespace \"b\""
        );
        assert_eq!(Attributes::metrics().to_string(), "get /metrics");
    }

    #[tokio::test]
    async fn without_credentials_anonymous_or_401() {
        let open = Access::open();
        let u = open.authenticate(Credentials::default()).await.unwrap();
        assert_eq!(u.name, "system:anonymous");
        assert!(open
            .authorize(&u, Attributes::pod_log("a", "b"))
            .await
            .is_ok());
        let closed = Access::new(
            AuthConfig {
                anonymous: false,
                ..AuthConfig::default()
            },
            None,
        );
        let e = closed
            .authenticate(Credentials::default())
            .await
            .unwrap_err();
        assert!(matches!(e, AuthError::Unauthenticated(_)), "{e}");
        // A token without the webhook is refused, not ignored, when
        // anonymous requests are not allowed.
        let e = closed
            .authenticate(Credentials {
                certificate: None,
                bearer: Some("t"),
            })
            .await
            .unwrap_err();
        assert!(e.to_string().contains("webhook is off"), "{e}");
        let cert = Arc::new(User::of_certificate("bob".into(), vec!["ops".into()]));
        let u = closed
            .authenticate(Credentials {
                certificate: Some(&cert),
                bearer: Some("ignored"),
            })
            .await
            .unwrap();
        assert_eq!(u.groups, vec!["ops", "system:authenticated"]);
    }
}
