//! Access and security: authentications, authorizations, the caches and
//! the API server's reviews behind them, serving TLS, listeners open to
//! anyone, and attempts to turn podlogd against its node; every label set
//! a dashboard or an alert looks for present from the start.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{metrics, ListenerLabel, ResultLabel};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabel {
    cache: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReviewLabel {
    kind: &'static str,
    result: &'static str,
}

/// The metrics of this module.
#[derive(Default)]
pub(crate) struct Access {
    authentications: Family<ResultLabel, Counter>,
    authorizations: Family<ResultLabel, Counter>,
    auth_cache: Family<CacheLabel, Counter>,
    kube_api_requests: Family<ReviewLabel, Counter>,
    tls_reloads: Family<ResultLabel, Counter>,
    tls_handshake_failures: Family<ListenerLabel, Counter>,
    unauthenticated_listeners: Family<ListenerLabel, Gauge>,
    security_events: Family<KindLabel, Counter>,
}

impl Access {
    /// Registers the metrics in `podlog`'s registry, their label sets
    /// present (at 0) from the start.
    pub(crate) fn register(&self, registry: &mut Registry) {
        for result in ["anonymous", "x509", "token", "rejected", "unavailable"] {
            let _ = self.authentications.get_or_create(&ResultLabel { result });
        }
        for result in ["allowed", "denied", "unavailable"] {
            let _ = self.authorizations.get_or_create(&ResultLabel { result });
        }
        for kind in ["TokenReview", "SubjectAccessReview"] {
            for result in ["ok", "error"] {
                let _ = self
                    .kube_api_requests
                    .get_or_create(&ReviewLabel { kind, result });
            }
        }
        for result in ["applied", "refused"] {
            let _ = self.tls_reloads.get_or_create(&ResultLabel { result });
        }
        for listener in ["http", "grpc"] {
            let _ = self
                .tls_handshake_failures
                .get_or_create(&ListenerLabel { listener });
        }
        for kind in ["planted_log_file", "log_file_replaced"] {
            let _ = self.security_events.get_or_create(&KindLabel { kind });
        }
        registry.register(
            "authentications",
            "Requests authenticated, by result (anonymous, x509, token, rejected: 401, unavailable: the API server not reached)",
            self.authentications.clone(),
        );
        registry.register(
            "authorizations",
            "Access checks, by result (allowed, denied: 403, unavailable: 503)",
            self.authorizations.clone(),
        );
        registry.register(
            "auth_cache",
            "Look-ups of the token and decision caches, by cache and result (hit, miss, joined: waited for the same question, evicted)",
            self.auth_cache.clone(),
        );
        registry.register(
            "kube_api_requests",
            "TokenReview and SubjectAccessReview requests to the Kubernetes API server, by kind and result",
            self.kube_api_requests.clone(),
        );
        registry.register(
            "tls_reloads",
            "Serving certificate reloads after their files changed, by result (applied, refused)",
            self.tls_reloads.clone(),
        );
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes that failed or timed out (bad or expired client certificates among them), by listener",
            self.tls_handshake_failures.clone(),
        );
        registry.register(
            "unauthenticated_listeners",
            "1 for a listener off loopback that serves without authentication (--insecure-allow-unauthenticated)",
            self.unauthenticated_listeners.clone(),
        );
        registry.register(
            "security_events",
            "Attempts to turn podlogd against its node, by kind (see docs/security.md)",
            self.security_events.clone(),
        );
    }
}

pub(crate) fn authenticated(result: &'static str) {
    metrics()
        .access
        .authentications
        .get_or_create(&ResultLabel { result })
        .inc();
}

pub(crate) fn authorized(result: &'static str) {
    metrics()
        .access
        .authorizations
        .get_or_create(&ResultLabel { result })
        .inc();
}

pub(crate) fn auth_cache(cache: &'static str, result: &'static str) {
    metrics()
        .access
        .auth_cache
        .get_or_create(&CacheLabel { cache, result })
        .inc();
}

pub(crate) fn kube_api_request(kind: &'static str, ok: bool) {
    let result = if ok { "ok" } else { "error" };
    metrics()
        .access
        .kube_api_requests
        .get_or_create(&ReviewLabel { kind, result })
        .inc();
}

pub(crate) fn tls_reload(applied: bool) {
    let result = if applied { "applied" } else { "refused" };
    metrics()
        .access
        .tls_reloads
        .get_or_create(&ResultLabel { result })
        .inc();
}

pub(crate) fn tls_handshake_failed(listener: &'static str) {
    metrics()
        .access
        .tls_handshake_failures
        .get_or_create(&ListenerLabel { listener })
        .inc();
}

/// A listener off loopback serves without authentication.
pub(crate) fn unauthenticated_listener(listener: &'static str, address: &str) {
    metrics()
        .access
        .unauthenticated_listeners
        .get_or_create(&ListenerLabel { listener })
        .set(1);
    tracing::warn!(listener, address, "serving every container's logs WITHOUT authentication to anyone who reaches this address (--insecure-allow-unauthenticated)");
}

/// Something tried to turn podlogd against its node: logged at `error`
/// and counted by `kind`.
pub(crate) fn security_event(kind: &'static str, what: &str) {
    metrics()
        .access
        .security_events
        .get_or_create(&KindLabel { kind })
        .inc();
    tracing::error!(kind, "security event: {what}");
}
