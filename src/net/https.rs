//! A minimal HTTPS GET client (rustls, aws-lc-rs) for discovery: one request per connection
//! (`Connection: close`), `Content-Length` or chunked bodies. The server is trusted through
//! given roots, the system's roots, or not at all (kubeadm's first, unverified cluster-info
//! fetch, whose content is then checked by JWS and pin instead). No retries: the caller decides.
//!
//! Anything the server sends is bounded, since on that first fetch the server can be anyone:
//! the head at [`MAX_HEAD_BYTES`], the body at [`MAX_BODY_BYTES`], and the whole request
//! (resolving, connecting, the handshake and every read and write) by one deadline, so a
//! server that trickles bytes is cut off on time.

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
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::str::FromStr;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

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

/// The most a response body may hold, as received (cluster-info is a few KB).
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// The most a response head (status line and headers) may hold.
pub const MAX_HEAD_BYTES: usize = 64 << 10;
/// How much one read asks for.
const READ_SIZE: usize = 16 << 10;

/// A response: its status code and (de-chunked) body.
#[derive(Debug)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// An answer larger than kubepki accepts: the server is broken or hostile, and asking again
/// will not help.
#[derive(Debug)]
pub enum TooLarge {
    /// The status line and headers passed [`MAX_HEAD_BYTES`].
    Headers,
    /// The body passed [`MAX_BODY_BYTES`].
    Body,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TooLarge::Headers => write!(
                f,
                "the response headers exceed the limit of {}",
                in_units(MAX_HEAD_BYTES)
            ),
            TooLarge::Body => write!(
                f,
                "the response body exceeds the limit of {}",
                in_units(MAX_BODY_BYTES)
            ),
        }
    }
}

impl std::error::Error for TooLarge {}

/// A server certificate the trusted CAs refuse (another CA's, expired, or not for this
/// host): asking the same server again will not help.
#[derive(Debug)]
pub struct RefusedServerCertificate(String);

impl std::fmt::Display for RefusedServerCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TLS: {}", self.0)
    }
}

impl std::error::Error for RefusedServerCertificate {}

/// A whole number of bytes as KiB or MiB.
fn in_units(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

/// GETs `url`, trusting `trust`. Resolving, connecting, the handshake, the request and the
/// whole response must be done within `time_allowed`; the head and body are capped at
/// [`MAX_HEAD_BYTES`] and [`MAX_BODY_BYTES`] ([`TooLarge`] otherwise).
pub fn get(url: &HttpsUrl, trust: &Trust, time_allowed: Duration) -> Result<Response> {
    let deadline = Instant::now() + time_allowed;
    let config = client_config(trust)?;
    let server_name = match &url.host {
        Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
        Host::Dns(name) => ServerName::try_from(name.as_str().to_string())
            .map_err(|_| anyhow!("{:?} is not a valid server name", name.as_str()))?,
    };
    let tcp = connect(url, deadline)?;
    let conn = ClientConnection::new(Arc::new(config), server_name)?;
    let mut tls = rustls::StreamOwned::new(conn, DeadlineStream { tcp, deadline });
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nUser-Agent: kubepki/{}\r\nConnection: close\r\n\r\n",
        url.path,
        url.authority(),
        env!("CARGO_PKG_VERSION")
    );
    tls.write_all(request.as_bytes())
        .and_then(|()| tls.flush())
        .map_err(tls_error)?;
    read_response(&mut tls)
}

fn tls_error(error: std::io::Error) -> anyhow::Error {
    match error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(tls @ rustls::Error::InvalidCertificate(_)) => {
            RefusedServerCertificate(tls.to_string()).into()
        }
        Some(tls) => anyhow!("TLS: {tls}"),
        None => anyhow!("{error}"),
    }
}

/// The time left before `deadline`, or a timeout error once none is left.
fn time_left(deadline: Instant) -> std::io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(std::io::Error::new(ErrorKind::TimedOut, "timed out"));
    }
    Ok(left)
}

/// A TCP stream whose every read and write waits at most until `deadline`, so a server that
/// trickles bytes cannot stretch a request past it.
struct DeadlineStream {
    tcp: TcpStream,
    deadline: Instant,
}

impl DeadlineStream {
    /// Runs one socket operation with the socket's timeout set to the time left.
    fn before_deadline<T>(
        &mut self,
        operation: impl FnOnce(&mut TcpStream) -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        let tcp = &mut self.tcp;
        let outcome = time_left(self.deadline).and_then(|left| {
            tcp.set_read_timeout(Some(left))?;
            tcp.set_write_timeout(Some(left))?;
            operation(tcp)
        });
        outcome.map_err(|e| match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => {
                std::io::Error::new(ErrorKind::TimedOut, "no complete answer in time")
            }
            _ => e,
        })
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.before_deadline(|tcp| tcp.read(buf))
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.before_deadline(|tcp| tcp.write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

/// The addresses of `authority`, resolved on a helper thread so that a slow resolver cannot
/// hold the caller past `deadline` (the thread is left to finish on its own).
fn resolve(authority: &str, deadline: Instant) -> Result<Vec<SocketAddr>> {
    if let Ok(address) = authority.parse::<SocketAddr>() {
        return Ok(vec![address]);
    }
    let left = time_left(deadline).with_context(|| format!("resolving {authority}"))?;
    let (sender, receiver) = mpsc::channel();
    let name = authority.to_string();
    std::thread::spawn(move || {
        let _ = sender.send(name.to_socket_addrs().map(Iterator::collect));
    });
    match receiver.recv_timeout(left) {
        Ok(resolved) => resolved.with_context(|| format!("resolving {authority}")),
        Err(_) => bail!("resolving {authority}: no answer in time"),
    }
}

fn connect(url: &HttpsUrl, deadline: Instant) -> Result<TcpStream> {
    let authority = url.authority();
    let mut last = anyhow!("{authority} resolves to no address");
    for address in resolve(&authority, deadline)? {
        let left = time_left(deadline).with_context(|| format!("connecting to {address}"))?;
        match TcpStream::connect_timeout(&address, left) {
            Ok(tcp) => return Ok(tcp),
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

/// Reads one response from `stream`: the head (capped), then the body by its framing (capped),
/// stopping at `Content-Length` rather than waiting for the connection to close.
fn read_response(stream: &mut impl Read) -> Result<Response> {
    let (head, start_of_body) = read_head(stream)?;
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
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
    let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let length = header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|_| !chunked);
    let received = read_body(stream, start_of_body, length)?;
    let body = if chunked {
        dechunk(&received)?
    } else {
        received
    };
    Ok(Response { status, body })
}

/// Reads up to the blank line that ends the head: the head, and what came after it.
fn read_head(stream: &mut impl Read) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut received = Vec::new();
    let mut searched = 0;
    loop {
        if let Some(at) = received[searched..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
        {
            let end = searched + at;
            if end > MAX_HEAD_BYTES {
                break;
            }
            let rest = received.split_off(end + 4);
            received.truncate(end);
            return Ok((received, rest));
        }
        if received.len() > MAX_HEAD_BYTES {
            break;
        }
        searched = received.len().saturating_sub(3);
        if read_some(stream, &mut received, READ_SIZE)? == 0 {
            bail!("the server sent no complete HTTP response");
        }
    }
    Err(TooLarge::Headers.into())
}

/// Reads the body after `start`: `length` bytes when given, else up to the end of the stream;
/// more than [`MAX_BODY_BYTES`] either way is [`TooLarge`].
fn read_body(stream: &mut impl Read, start: Vec<u8>, length: Option<usize>) -> Result<Vec<u8>> {
    if length.is_some_and(|length| length > MAX_BODY_BYTES) {
        return Err(TooLarge::Body.into());
    }
    let wanted = length.unwrap_or(MAX_BODY_BYTES + 1);
    let mut body = start;
    while body.len() < wanted {
        let missing = wanted - body.len();
        if read_some(stream, &mut body, missing)? == 0 {
            break;
        }
    }
    body.truncate(wanted);
    if body.len() > MAX_BODY_BYTES {
        return Err(TooLarge::Body.into());
    }
    if length.is_some_and(|length| body.len() < length) {
        bail!("the response body is shorter than its Content-Length");
    }
    Ok(body)
}

/// Appends at most `most` bytes read from `stream` to `received`: how many (0 at the end of
/// the stream, including a TLS peer that closes without `close_notify`).
fn read_some(stream: &mut impl Read, received: &mut Vec<u8>, most: usize) -> Result<usize> {
    let mut buffer = [0u8; READ_SIZE];
    let wanted = most.min(READ_SIZE);
    let read = loop {
        match stream.read(&mut buffer[..wanted]) {
            Ok(read) => break read,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break 0,
            Err(e) => return Err(tls_error(e)),
        }
    };
    received.extend_from_slice(&buffer[..read]);
    Ok(read)
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

    /// Reads a response from `raw`, as from a connection that then closes.
    fn parse(raw: &[u8]) -> Result<Response> {
        read_response(&mut &raw[..])
    }

    /// An `HTTP/1.1 200` answer with `headers`, then `body`.
    fn answer(headers: &str, body: &[u8]) -> Vec<u8> {
        let mut raw = format!("HTTP/1.1 200 OK\r\n{headers}\r\n").into_bytes();
        raw.extend_from_slice(body);
        raw
    }

    fn too_large(result: Result<Response>) -> Option<String> {
        let error = result.err()?;
        error.downcast_ref::<TooLarge>()?;
        Some(error.to_string())
    }

    #[test]
    fn a_body_past_the_cap_is_refused_however_it_is_framed() {
        let at_cap = vec![b'x'; MAX_BODY_BYTES];
        let past_cap = vec![b'x'; MAX_BODY_BYTES + 1];
        assert_eq!(
            parse(&answer("", &at_cap)).unwrap().body.len(),
            MAX_BODY_BYTES
        );
        let message = "the response body exceeds the limit of 1 MiB";
        assert_eq!(
            too_large(parse(&answer("", &past_cap))).as_deref(),
            Some(message)
        );
        let announced = format!("Content-Length: {}\r\n", MAX_BODY_BYTES + 1);
        assert_eq!(
            too_large(parse(&answer(&announced, b"x"))).as_deref(),
            Some(message)
        );
        let chunked = format!("{:x}\r\n", past_cap.len()).into_bytes();
        let chunked = [&chunked[..], &past_cap, b"\r\n0\r\n\r\n"].concat();
        let framing = "Transfer-Encoding: chunked\r\n";
        assert_eq!(
            too_large(parse(&answer(framing, &chunked))).as_deref(),
            Some(message)
        );
    }

    #[test]
    fn headers_past_the_cap_are_refused() {
        let filler = |bytes: usize| format!("X-Filler: {}\r\n", "x".repeat(bytes));
        let near_cap = answer(&filler(MAX_HEAD_BYTES - 100), b"");
        assert_eq!(parse(&near_cap).unwrap().status, 200);
        let message = "the response headers exceed the limit of 64 KiB";
        let past_cap = answer(&filler(MAX_HEAD_BYTES), b"");
        assert_eq!(too_large(parse(&past_cap)).as_deref(), Some(message));
        let endless = answer(&filler(10 * MAX_HEAD_BYTES), b"");
        let unfinished = &endless[..endless.len() - 2];
        assert_eq!(too_large(parse(unfinished)).as_deref(), Some(message));
    }

    #[test]
    fn reading_stops_at_the_content_length() {
        let mut stream = std::io::Read::chain(
            &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"[..],
            FailingReader,
        );
        assert_eq!(read_response(&mut stream).unwrap().body, b"hi");
    }

    /// A stream that fails every read: reading past what a response announced reaches it.
    struct FailingReader;

    impl Read for FailingReader {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("read past the announced end"))
        }
    }

    /// A plain TCP server on 127.0.0.1 that accepts one connection and sends it `answer` one
    /// byte every 50 ms (at most 10 s), or nothing at all when `answer` is empty.
    fn trickling_server(answer: &'static [u8]) -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut tcp, _) = listener.accept().unwrap();
            for byte in answer.iter().cycle().take(200) {
                std::thread::sleep(Duration::from_millis(50));
                if tcp.write_all(&[*byte]).is_err() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_secs(10));
        });
        address
    }

    #[test]
    fn a_trickling_server_is_cut_off_at_the_deadline() {
        let address = trickling_server(b"HTTP/1.1 200 OK\r\nX-Slow: yes\r\n");
        let started = Instant::now();
        let deadline = started + Duration::from_millis(500);
        let tcp = TcpStream::connect(address).unwrap();
        let error = read_response(&mut DeadlineStream { tcp, deadline }).unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(error.to_string(), "no complete answer in time");
        assert!(elapsed < Duration::from_millis(800), "{elapsed:?}");
    }

    #[test]
    fn a_silent_server_is_cut_off_at_the_deadline_during_the_handshake() {
        let address = trickling_server(b"");
        let url: HttpsUrl = format!("https://{address}/").parse().unwrap();
        let started = Instant::now();
        let error = get(&url, &Trust::Nothing, Duration::from_millis(500)).unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(error.to_string(), "no complete answer in time");
        assert!(elapsed < Duration::from_millis(800), "{elapsed:?}");
    }

    #[test]
    fn bodies_are_read_by_length_or_chunks() {
        let plain = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi").unwrap();
        assert_eq!((plain.status, plain.body.as_slice()), (200, &b"hi"[..]));
        let chunked = parse(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            (chunked.status, chunked.body.as_slice()),
            (404, &b"abcde"[..])
        );
        assert!(parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab").is_err());
        assert!(parse(b"garbage").is_err());
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
            let _ = parse(&raw);
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
                None => prop_assert_eq!(parse(&raw).map(|r| r.body).ok(), Some(body)),
                Some(at) => {
                    raw.truncate(at.index(raw.len()));
                    let _ = parse(&raw);
                }
            }
        }
    }
}
