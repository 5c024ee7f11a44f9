//! A minimal HTTPS GET client (rustls, aws-lc-rs) for discovery: one request per connection
//! (`Connection: close`), `Content-Length` or chunked bodies. The server is trusted through
//! given roots, the system's roots, or not at all (kubeadm's first, unverified cluster-info
//! fetch, whose content is then checked by JWS and pin instead). No retries: the caller decides.

use crate::net::netaddr::{Endpoint, Host};
use anyhow::{Context, Result, anyhow, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Where Go looks for the system's roots on Linux, after `SSL_CERT_FILE`.
const SYSTEM_ROOT_FILES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// An `https://host[:port][/path]` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpsUrl {
    /// The host.
    pub host: Host,
    /// The port (443 when the URL has none).
    pub port: u16,
    /// The path, `/` when the URL has none.
    pub path: String,
}

impl HttpsUrl {
    /// The same server with another path.
    pub fn with_path(&self, path: &str) -> HttpsUrl {
        HttpsUrl {
            path: path.into(),
            ..self.clone()
        }
    }

    fn authority(&self) -> String {
        crate::net::netaddr::https_url(&self.host, self.port)
            .trim_start_matches("https://")
            .into()
    }
}

impl std::fmt::Display for HttpsUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "https://{}{}", self.authority(), self.path)
    }
}

impl FromStr for HttpsUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<HttpsUrl, String> {
        let rest = text
            .strip_prefix("https://")
            .ok_or_else(|| format!("{text:?} is not an https:// URL"))?;
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, "/"),
        };
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{text:?}: a URL path holds no spaces or control characters"
            ));
        }
        let endpoint: Endpoint = authority.parse()?;
        Ok(HttpsUrl {
            host: endpoint.host,
            port: endpoint.port.unwrap_or(443),
            path: path.into(),
        })
    }
}

/// Whom to trust for the server's certificate.
pub enum Trust {
    /// Nobody: the certificate is not checked (the content must be verified otherwise).
    Nothing,
    /// These CA certificates, with the host name or IP checked against the certificate.
    Roots(Vec<CertificateDer<'static>>),
}

impl Trust {
    /// The CA certificates of a PEM bundle.
    pub fn from_pem(pem_bundle: &[u8]) -> Result<Trust> {
        let roots = CertificateDer::pem_slice_iter(pem_bundle)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                anyhow!(
                    "malformed CA certificate: {}",
                    crate::pki::pem::describe(&e)
                )
            })?;
        if roots.is_empty() {
            bail!("no CA certificate found");
        }
        Ok(Trust::Roots(roots))
    }

    /// The system's roots: `SSL_CERT_FILE`, else the first bundle of Go's list that exists.
    pub fn system() -> Result<Trust> {
        let from_env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
        let path = from_env
            .or_else(|| {
                SYSTEM_ROOT_FILES
                    .iter()
                    .map(std::path::PathBuf::from)
                    .find(|p| p.is_file())
            })
            .ok_or_else(|| anyhow!("no system CA bundle found; set SSL_CERT_FILE"))?;
        let pem = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        Trust::from_pem(&pem).with_context(|| path.display().to_string())
    }
}

/// A response: its status code and (de-chunked) body.
#[derive(Debug)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// GETs `url`, trusting `trust`, giving up after `timeout` without progress.
pub fn get(url: &HttpsUrl, trust: &Trust, timeout: Duration) -> Result<Response> {
    let config = client_config(trust)?;
    let server_name = match &url.host {
        Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
        Host::Dns(name) => ServerName::try_from(name.as_str().to_string())
            .map_err(|_| anyhow!("{:?} is not a valid server name", name.as_str()))?,
    };
    let tcp = connect(url, timeout)?;
    let conn = ClientConnection::new(Arc::new(config), server_name)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nUser-Agent: kubepki/{}\r\nConnection: close\r\n\r\n",
        url.path,
        url.authority(),
        env!("CARGO_PKG_VERSION")
    );
    tls.write_all(request.as_bytes())
        .and_then(|()| tls.flush())
        .map_err(tls_error)?;
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(tls_error(e)),
    }
    parse_response(&raw)
}

fn tls_error(error: std::io::Error) -> anyhow::Error {
    match error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(tls) => anyhow!("TLS: {tls}"),
        None => anyhow!("{error}"),
    }
}

fn connect(url: &HttpsUrl, timeout: Duration) -> Result<TcpStream> {
    let authority = url.authority();
    let addresses = authority
        .to_socket_addrs()
        .with_context(|| format!("resolving {authority}"))?;
    let mut last = anyhow!("{authority} resolves to no address");
    for address in addresses {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(tcp) => {
                tcp.set_read_timeout(Some(timeout))?;
                tcp.set_write_timeout(Some(timeout))?;
                return Ok(tcp);
            }
            Err(e) => last = anyhow!("connecting to {address}: {e}"),
        }
    }
    Err(last)
}

fn client_config(trust: &Trust) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    Ok(match trust {
        Trust::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
            .with_no_client_auth(),
        Trust::Roots(certs) => {
            let mut roots = RootCertStore::empty();
            for cert in certs {
                roots
                    .add(cert.clone())
                    .map_err(|e| anyhow!("unusable CA certificate: {e}"))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    })
}

/// Splits the head from the body, reads the status, and undoes chunking.
fn parse_response(raw: &[u8]) -> Result<Response> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("the server sent no complete HTTP response"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let body = &raw[split + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| anyhow!("the server sent no HTTP status"))?;
    let header = |name: &str| {
        head.lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(key, _)| key.trim() == name)
            .map(|(_, value)| value.trim().to_string())
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(body)?
    } else if let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.get(..length)
            .ok_or_else(|| anyhow!("the response body is shorter than its Content-Length"))?
            .to_vec()
    } else {
        body.to_vec()
    };
    Ok(Response { status, body })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| anyhow!("truncated chunked body"))?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| anyhow!("bad chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest
            .get(..size)
            .ok_or_else(|| anyhow!("truncated chunked body"))?;
        body.extend_from_slice(chunk);
        rest = rest.get(size + 2..).unwrap_or_default();
    }
}

/// Accepts any server certificate (the handshake signature is still checked, so the peer
/// holds the key of the certificate it sent).
#[derive(Debug)]
struct AnyServerCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::netaddr::https_url;
    use crate::testgen::{dns_name, one_line};
    use proptest::prelude::*;

    #[test]
    fn urls_parse_with_default_port_and_path() {
        let url: HttpsUrl = "https://[::1]:6443".parse().unwrap();
        assert_eq!((url.port, url.path.as_str()), (6443, "/"));
        assert_eq!(url.to_string(), "https://[::1]:6443/");
        let url: HttpsUrl = "https://example.com/a/b.conf".parse().unwrap();
        assert_eq!(url.to_string(), "https://example.com:443/a/b.conf");
        assert!("http://example.com".parse::<HttpsUrl>().is_err());
        let smuggled = "https://example.com/a HTTP/1.1\r\nX-Injected: 1";
        assert!(
            smuggled.parse::<HttpsUrl>().is_err(),
            "a request line from a URL"
        );
    }

    #[test]
    fn bodies_are_read_by_length_or_chunks() {
        let plain = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi").unwrap();
        assert_eq!((plain.status, plain.body.as_slice()), (200, &b"hi"[..]));
        let chunked = parse_response(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            (chunked.status, chunked.body.as_slice()),
            (404, &b"abcde"[..])
        );
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
                .is_err()
        );
        assert!(parse_response(b"garbage").is_err());
    }

    fn host() -> impl Strategy<Value = Host> {
        prop_oneof![
            any::<std::net::IpAddr>().prop_map(Host::Ip),
            dns_name().prop_map(|name| Host::Dns(name.parse().unwrap())),
        ]
    }

    /// `body` split into chunks at `cuts`, in HTTP/1.1 chunked encoding.
    fn chunked(body: &[u8], cuts: &[prop::sample::Index]) -> Vec<u8> {
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(body.len() + 1)).collect();
        at.extend([0, body.len()]);
        at.sort_unstable();
        let mut encoded = Vec::new();
        for pair in at.windows(2).filter(|p| p[0] < p[1]) {
            encoded.extend(format!("{:x}\r\n", pair[1] - pair[0]).bytes());
            encoded.extend(&body[pair[0]..pair[1]]);
            encoded.extend(b"\r\n");
        }
        encoded.extend(b"0\r\n\r\n");
        encoded
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn urls_print_and_parse_back(host in host(), port in 1..=u16::MAX, path in "(/[a-z0-9._-]{0,8}){0,3}") {
            let path = if path.is_empty() { "/".to_string() } else { path };
            let text = format!("{}{path}", https_url(&host, port));
            let url: HttpsUrl = text.parse().map_err(TestCaseError::fail)?;
            prop_assert_eq!(&url, &HttpsUrl { host, port, path });
            prop_assert_eq!(url.to_string(), text);
        }

        #[test]
        fn any_text_is_a_url_or_a_one_line_error(text in "(https://)?\\PC{0,30}") {
            if let Err(e) = text.parse::<HttpsUrl>() {
                prop_assert!(one_line(&e), "{}", e);
            }
        }

        #[test]
        fn any_answer_is_a_response_or_an_error(raw in any::<Vec<u8>>()) {
            let _ = parse_response(&raw);
        }

        #[test]
        fn chunked_bodies_are_reassembled(
            body in any::<Vec<u8>>(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
            cut_short in any::<Option<prop::sample::Index>>(),
        ) {
            let mut raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            raw.extend(chunked(&body, &cuts));
            match cut_short {
                None => prop_assert_eq!(parse_response(&raw).map(|r| r.body).ok(), Some(body)),
                Some(at) => {
                    raw.truncate(at.index(raw.len()));
                    let _ = parse_response(&raw);
                }
            }
        }
    }
}
