//! A minimal HTTPS client for requests `kubectl` cannot make: the front proxy's (a client
//! certificate plus `X-Remote-*` headers) and hand-made bearer tokens. It trusts only the
//! given CA, presents an optional client certificate, speaks HTTP/1.0 (no chunking: the
//! server closes after one answer), and bounds every read, write and answer size. It also
//! returns the certificate the server showed.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// How long connecting, and any one read or write, may take.
const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest answer read.
const MAX_ANSWER: u64 = 4 << 20;

/// A client of one HTTPS server.
pub struct ApiClient {
    addr: SocketAddr,
    config: Arc<ClientConfig>,
}

/// An answer.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// The body, as text.
    pub body: String,
    /// The DER of the certificate the server presented.
    pub server_cert: Vec<u8>,
}

impl ApiClient {
    /// A client of `addr` trusting `ca_pem`, presenting `client` (certificate PEM, key PEM)
    /// when given.
    pub fn new(addr: SocketAddr, ca_pem: &[u8], client: Option<(&[u8], &[u8])>) -> ApiClient {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            roots
                .add(cert.expect("a CA certificate"))
                .expect("a usable CA");
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots);
        let config = match client {
            Some((cert_pem, key_pem)) => {
                let chain = CertificateDer::pem_slice_iter(cert_pem)
                    .collect::<Result<Vec<_>, _>>()
                    .expect("a client certificate");
                let key = PrivateKeyDer::from_pem_slice(key_pem).expect("a client key");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("a client certificate and its key")
            }
            None => builder.with_no_client_auth(),
        };
        ApiClient {
            addr,
            config: Arc::new(config),
        }
    }

    /// `GET path` with `headers`.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.request("GET", path, headers)
    }

    /// Sends one request and reads the whole answer.
    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
        let name = ServerName::IpAddress(self.addr.ip().into());
        let conn = ClientConnection::new(self.config.clone(), name).expect("a TLS client");
        let tcp = TcpStream::connect_timeout(&self.addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.addr));
        tcp.set_read_timeout(Some(IO_TIMEOUT))
            .expect("read timeout");
        tcp.set_write_timeout(Some(IO_TIMEOUT))
            .expect("write timeout");
        let mut tls = StreamOwned::new(conn, tcp);
        let mut head = format!("{method} {path} HTTP/1.0\r\nHost: {}\r\n", self.addr);
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("Accept: application/json\r\n\r\n");
        tls.write_all(head.as_bytes())
            .unwrap_or_else(|e| panic!("{method} {path} on {}: {e}", self.addr));
        let mut raw = Vec::new();
        let read = (&mut tls).take(MAX_ANSWER).read_to_end(&mut raw);
        if let Err(e) = read {
            // A server that closes without close_notify still gave its whole answer.
            assert!(!raw.is_empty(), "{method} {path} on {}: {e}", self.addr);
        }
        let server_cert = tls
            .conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|cert| cert.to_vec())
            .unwrap_or_default();
        parse_answer(&raw, server_cert)
    }
}

fn parse_answer(raw: &[u8], server_cert: Vec<u8>) -> Answer {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {head:?}"));
    Answer {
        status,
        body: body.to_string(),
        server_cert,
    }
}
