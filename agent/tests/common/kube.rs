//! The clients the access tests need (TLS with or without a client
//! certificate, a bearer token); the stub API server and the certificates
//! are in [`super::kube_api`].

use std::net::SocketAddr;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::kube_api::provider;
pub use super::kube_api::{ApiServer, Ca, Leaf, Rule};
use super::{whole, Conn, Io, Response, TIMEOUT};

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
