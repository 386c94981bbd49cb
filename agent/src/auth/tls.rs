//! Serving TLS: the certificate and key (and the client CA) loaded from
//! their files, loaded again when the files change (a Secret's volume
//! swaps them), each connection's handshake bounded in time, and the user
//! of a verified client certificate.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

use super::kube::{certificates, private_key, provider};
use super::User;
use crate::telemetry;

/// `tlsCertFile` and `tlsPrivateKeyFile`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What each listener speaks over TLS (ALPN).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Alpn {
    Http1,
    H2,
}

/// A file's identity and version, to see it change.
type Stamp = Option<(u64, u64, u64, i64, i64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt as _;
    // Followed: a Secret's files are symlinks swapped together.
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

struct Loaded {
    stamps: Vec<Stamp>,
    http: Arc<rustls::ServerConfig>,
    grpc: Arc<rustls::ServerConfig>,
}

/// The serving configuration in force, reloaded by [`ServerTls::watch`].
pub(crate) struct ServerTls {
    files: TlsFiles,
    client_ca: Option<PathBuf>,
    current: RwLock<Loaded>,
}

/// How often the files are looked at.
const WATCH_EVERY: Duration = Duration::from_secs(1);

impl ServerTls {
    /// Loads the certificate, its key and the client CA.
    ///
    /// # Errors
    ///
    /// A file cannot be read, is not PEM, or the key does not match.
    pub(crate) fn load(files: TlsFiles, client_ca: Option<PathBuf>) -> Result<Arc<Self>, String> {
        let loaded = load(
            &files,
            client_ca.as_deref(),
            stamps(&files, client_ca.as_deref()),
        )?;
        Ok(Arc::new(Self {
            files,
            client_ca,
            current: RwLock::new(loaded),
        }))
    }

    /// The acceptor for a new connection, with the configuration now.
    pub(crate) fn acceptor(&self, alpn: Alpn) -> tokio_rustls::TlsAcceptor {
        let cur = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tokio_rustls::TlsAcceptor::from(match alpn {
            Alpn::Http1 => cur.http.clone(),
            Alpn::H2 => cur.grpc.clone(),
        })
    }

    /// Loads the files again if any changed; a set that does not load
    /// keeps the one in force (and is tried again when it changes).
    pub(crate) fn reload_if_changed(&self) {
        let stamps = stamps(&self.files, self.client_ca.as_deref());
        let changed = {
            let cur = self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            cur.stamps != stamps
        };
        if !changed {
            return;
        }
        match load(&self.files, self.client_ca.as_deref(), stamps.clone()) {
            Ok(loaded) => {
                *self
                    .current
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = loaded;
                telemetry::tls_reload(true);
                tracing::info!(cert = %self.files.cert.display(), "serving certificate reloaded");
            }
            Err(e) => {
                // Not tried again until the files change again.
                self.current
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .stamps = stamps;
                telemetry::tls_reload(false);
                tracing::error!(error = %e, "the changed TLS files do not load; serving with the previous ones");
            }
        }
    }

    /// Looks at the files every second until `cancel`.
    pub(crate) async fn watch(self: Arc<Self>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(WATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let me = self.clone();
            let _ = tokio::task::spawn_blocking(move || me.reload_if_changed()).await;
        }
    }
}

/// The stamps of the files a configuration is loaded from.
fn stamps(files: &TlsFiles, client_ca: Option<&Path>) -> Vec<Stamp> {
    [
        Some(files.cert.as_path()),
        Some(files.key.as_path()),
        client_ca,
    ]
    .into_iter()
    .flatten()
    .map(stamp)
    .collect()
}

/// Loads the configuration from the files whose `stamps` were taken just
/// before.
fn load(files: &TlsFiles, client_ca: Option<&Path>, stamps: Vec<Stamp>) -> Result<Loaded, String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let certs = certificates(&read(&files.cert)?, &files.cert.display().to_string())?;
    let key = private_key(&read(&files.key)?, &files.key.display().to_string())?;
    let verifier = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certificates(&read(ca)?, &ca.display().to_string())? {
                roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
            }
            // A client without a certificate goes on to bearer tokens or
            // anonymous; one with a certificate must chain to this CA.
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .allow_unauthenticated()
                .build()
                .map_err(|e| format!("{}: {e}", ca.display()))?
        }
        None => rustls::server::WebPkiClientVerifier::no_client_auth(),
    };
    let config = |alpn: &[u8]| -> Result<Arc<rustls::ServerConfig>, String> {
        let mut c = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier.clone())
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(|e| format!("{}: {e}", files.key.display()))?;
        c.alpn_protocols = vec![alpn.to_vec()];
        Ok(Arc::new(c))
    };
    Ok(Loaded {
        stamps,
        http: config(b"http/1.1")?,
        grpc: config(b"h2")?,
    })
}

/// The user a verified client certificate names: CN the name, O the
/// groups. `None` without a certificate or without a CN.
fn certificate_user(certs: Option<&[rustls_pki_types::CertificateDer<'_>]>) -> Option<Arc<User>> {
    let der = certs?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let subject = cert.subject();
    let cn = subject.iter_common_name().next()?.as_str().ok()?.to_owned();
    if cn.is_empty() {
        return None;
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_owned))
        .collect();
    Some(Arc::new(User::of_certificate(cn, groups)))
}

/// A connection, in clear or after its TLS handshake, with the user of
/// its client certificate.
pub(crate) enum Conn<IO> {
    Plain(IO),
    Tls(Box<tokio_rustls::server::TlsStream<IO>>, Option<Arc<User>>),
}

impl<IO> Conn<IO> {
    /// The user of the verified client certificate, if any.
    pub(crate) fn certificate_user(&self) -> Option<Arc<User>> {
        match self {
            Conn::Plain(_) => None,
            Conn::Tls(_, u) => u.clone(),
        }
    }
}

/// Runs the TLS handshake of `io` (when `tls`), within `timeout`.
///
/// # Errors
///
/// The handshake failed (a client certificate that does not verify,
/// expired or of another CA, among others) or took too long; counted in
/// `podlog_tls_handshake_failures_total{listener}`.
pub(crate) async fn accept<IO>(
    tls: Option<&ServerTls>,
    alpn: Alpn,
    io: IO,
    timeout: Duration,
    listener: &'static str,
) -> Result<Conn<IO>, String>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let Some(tls) = tls else {
        return Ok(Conn::Plain(io));
    };
    let result = match tokio::time::timeout(timeout, tls.acceptor(alpn).accept(io)).await {
        Ok(Ok(stream)) => {
            let user = certificate_user(stream.get_ref().1.peer_certificates());
            Ok(Conn::Tls(Box::new(stream), user))
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no handshake within {timeout:?}")),
    };
    if let Err(e) = &result {
        telemetry::tls_handshake_failed(listener);
        tracing::debug!(error = %e, listener, "TLS handshake failed");
    }
    result
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for Conn<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(io) => Pin::new(io).poll_read(cx, buf),
            Conn::Tls(io, _) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Conn<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(io) => Pin::new(io).poll_write(cx, buf),
            Conn::Tls(io, _) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(io) => Pin::new(io).poll_flush(cx),
            Conn::Tls(io, _) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(io) => Pin::new(io).poll_shutdown(cx),
            Conn::Tls(io, _) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            Conn::Tls(io, _) => Pin::new(io.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(io) => io.is_write_vectored(),
            Conn::Tls(io, _) => io.is_write_vectored(),
        }
    }
}
