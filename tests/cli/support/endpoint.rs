//! A tiny HTTPS stand-in for kube-apiserver, for driving real `kubectl` against a kubepki tree.
//!
//! It serves `<pki>/apiserver.crt` + `apiserver.key`, demands a client certificate verified
//! against `<pki>/ca.crt` (rustls, aws-lc-rs provider), and speaks just enough HTTP/1.1
//! (one request per connection, `Connection: close`):
//!
//! - `GET /version` → a fixed v1.32.4 version document (the kubectl dispatcher asks for it to
//!   choose a client);
//! - `GET /identity` → `{"user": <CN>, "groups": [<O>...]}` of the verified client certificate;
//! - anything else → a 404 `Status`.
//!
//! Started with [`Endpoint::start_bootstrap`], it stands in for a cluster's API server towards
//! joining workers instead: client certificates become optional, and it also serves
//!
//! - `GET /api/v1/namespaces/kube-public/configmaps/cluster-info` → the ConfigMap of
//!   `<manifests>/cluster-info.yaml` as JSON, to anyone (re-read on every request);
//! - `GET /identity` with `Authorization: Bearer <id>.<secret>` → `system:bootstrap:<id>` in
//!   `system:bootstrappers` and the Secret's extra groups, when a `bootstrap-token-*.yaml` of
//!   `<manifests>` holds that token, is unexpired and has the authentication usage, as
//!   kube-apiserver's bootstrap-token authenticator decides (401 otherwise);
//! - `GET <path>` → a file of `<manifests>/files/<path>` (a discovery kubeconfig, say).
//!
//! Started with [`Endpoint::start_kubelet`], it stands in for a kubelet instead: it serves a
//! given certificate and key (the `kubelet serving-cert` pair) and demands a client
//! certificate of a given CA; `/identity` tells who the caller (kube-apiserver) was.
//!
//! Every request line, every identity served and every failed TLS handshake is recorded (and
//! request lines and handshake errors logged to stderr), so tests can check what the server saw. The server stops
//! when the [`Endpoint`] is dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use serde::{Deserialize, Serialize};

use super::bootstrap;

/// The `/version` answer: a v1.32 apiserver, so the kubectl dispatcher picks its 1.32 client.
const VERSION_JSON: &str = r#"{"major":"1","minor":"32","gitVersion":"v1.32.4","gitCommit":"","gitTreeState":"clean","buildDate":"2025-01-01T00:00:00Z","goVersion":"go1.23","compiler":"gc","platform":"linux/amd64"}"#;

/// How long one connection may stall before the server gives up on it.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The identity of a verified client certificate: its subject CN and O values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

/// What the server saw, shared between its threads and the test.
#[derive(Debug, Default)]
struct Seen {
    requests: Vec<String>,
    identities: Vec<Identity>,
    tls_errors: Vec<String>,
}

/// A running test endpoint; dropping it stops the accept loop.
pub struct Endpoint {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Endpoint {
    /// Serves on `listener` with the apiserver certificate of the tree whose cert dir is `pki`.
    pub fn start(listener: TcpListener, pki: &Path) -> Endpoint {
        Endpoint::serve_with(listener, server_config(pki, false), None)
    }

    /// Serves on `listener` with the apiserver certificate of `pki`, client certificates
    /// optional, and the bootstrap routes backed by the manifests in `manifests`.
    pub fn start_bootstrap(listener: TcpListener, pki: &Path, manifests: &Path) -> Endpoint {
        let manifests = Some(Arc::new(manifests.to_path_buf()));
        Endpoint::serve_with(listener, server_config(pki, true), manifests)
    }

    /// Stands in for a kubelet on `listener`: serves `cert` and `key`, demands a client
    /// certificate verified against `ca`.
    pub fn start_kubelet(listener: TcpListener, cert: &Path, key: &Path, ca: &Path) -> Endpoint {
        Endpoint::serve_with(listener, server_config_of(cert, key, ca, false), None)
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn serve_with(
        listener: TcpListener,
        config: ServerConfig,
        manifests: Option<Arc<PathBuf>>,
    ) -> Endpoint {
        let config = Arc::new(config);
        let addr = listener.local_addr().expect("listener address");
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let acceptor = {
            let (stop, seen) = (stop.clone(), seen.clone());
            std::thread::spawn(move || accept_loop(&listener, &config, &stop, &seen, &manifests))
        };
        Endpoint {
            addr,
            stop,
            seen,
            acceptor: Some(acceptor),
        }
    }

    /// Every request line received, in order.
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().expect("lock").requests.clone()
    }

    /// Every identity answered on `/identity`, in order.
    pub fn identities(&self) -> Vec<Identity> {
        self.seen.lock().expect("lock").identities.clone()
    }

    /// The errors of every TLS handshake that failed, in order.
    pub fn tls_errors(&self) -> Vec<String> {
        self.seen.lock().expect("lock").tls_errors.clone()
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the loop sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// TLS 1.2/1.3 with the tree's apiserver certificate and client auth against ca.crt,
/// mandatory unless `optional_client_auth`.
fn server_config(pki: &Path, optional_client_auth: bool) -> ServerConfig {
    server_config_of(
        &pki.join("apiserver.crt"),
        &pki.join("apiserver.key"),
        &pki.join("ca.crt"),
        optional_client_auth,
    )
}

/// TLS 1.2/1.3 with `cert` and `key`, and client auth against `ca`, mandatory unless
/// `optional_client_auth`.
fn server_config_of(
    cert: &Path,
    key: &Path,
    ca: &Path,
    optional_client_auth: bool,
) -> ServerConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in read_certs(ca) {
        roots.add(ca).expect("adding the CA to the client roots");
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let builder = if optional_client_auth {
        builder.allow_unauthenticated()
    } else {
        builder
    };
    let verifier = builder.build().expect("building the client verifier");
    let key = PrivateKeyDer::from_pem_file(key)
        .unwrap_or_else(|e| panic!("reading {}: {e:?}", key.display()));
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(read_certs(cert), key)
        .expect("a server certificate and its key")
}

/// All certificates of a PEM file.
fn read_certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect())
        .unwrap_or_else(|e| panic!("reading {}: {e:?}", path.display()))
}

/// Accepts until stopped, serving each connection on its own thread.
fn accept_loop(
    listener: &TcpListener,
    config: &Arc<ServerConfig>,
    stop: &AtomicBool,
    seen: &Arc<Mutex<Seen>>,
    manifests: &Option<Arc<PathBuf>>,
) {
    for tcp in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(tcp) = tcp else { continue };
        let (config, seen, manifests) = (config.clone(), seen.clone(), manifests.clone());
        std::thread::spawn(move || serve(tcp, config, &seen, manifests.as_deref()));
    }
}

/// Handshakes, reads one request and answers it; a failed handshake is recorded.
fn serve(
    mut tcp: TcpStream,
    config: Arc<ServerConfig>,
    seen: &Mutex<Seen>,
    manifests: Option<&PathBuf>,
) {
    let _ = tcp.set_read_timeout(Some(IO_TIMEOUT));
    let _ = tcp.set_write_timeout(Some(IO_TIMEOUT));
    let mut conn = ServerConnection::new(config).expect("server connection");
    if let Err(e) = handshake(&mut conn, &mut tcp) {
        eprintln!("endpoint: TLS handshake failed: {e}");
        seen.lock().expect("lock").tls_errors.push(e.to_string());
        return;
    }
    let cert_identity = peer_identity(&conn);
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let Some((request_line, bearer)) = read_request(&mut tls) else {
        return;
    };
    eprintln!("endpoint: {request_line}");
    seen.lock()
        .expect("lock")
        .requests
        .push(request_line.clone());
    let identity = cert_identity.or_else(|| {
        let (manifests, bearer) = (manifests?, bearer?);
        bootstrap::token_identity(manifests, &bearer)
    });
    let (status, body) = match manifests.and_then(|m| bootstrap::respond(m, &request_line)) {
        Some(answer) => answer,
        None => respond(&request_line, identity, seen),
    };

    let _ = write_response(&mut tls, status, &body);
}

/// Drives the TLS handshake to completion (or to its error).
fn handshake(conn: &mut ServerConnection, tcp: &mut TcpStream) -> std::io::Result<()> {
    while conn.is_handshaking() {
        conn.complete_io(tcp)?;
    }
    Ok(())
}

/// The verified client certificate's identity as kube-apiserver derives it: the (last) CN as the
/// user, the O values as the groups; `None` without a client certificate.
fn peer_identity(conn: &ServerConnection) -> Option<Identity> {
    let leaf = conn.peer_certificates().and_then(|c| c.first())?;
    let (_, cert) =
        x509_parser::parse_x509_certificate(leaf).expect("parsing the client certificate");
    let subject = cert.subject();
    let text = |attr: &x509_parser::x509::AttributeTypeAndValue| {
        attr.as_str().expect("UTF-8 name").to_string()
    };
    Some(Identity {
        user: subject
            .iter_common_name()
            .last()
            .map(text)
            .unwrap_or_default(),
        groups: subject.iter_organization().map(text).collect(),
    })
}

/// Reads the request head (through CRLFCRLF) and returns its request line and bearer token.
fn read_request(tls: &mut impl Read) -> Option<(String, Option<String>)> {
    let mut reader = BufReader::new(tls);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut bearer = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 || header == "\r\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                bearer = value.trim().strip_prefix("Bearer ").map(str::to_string);
            }
        }
    }
    Some((request_line.trim_end().to_string(), bearer))
}

/// The status and JSON body for a request line, recording it (and any identity served).
fn respond(
    request_line: &str,
    identity: Option<Identity>,
    seen: &Mutex<Seen>,
) -> (&'static str, String) {
    let mut seen = seen.lock().expect("lock");
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/version") => ("200 OK", VERSION_JSON.to_string()),
        ("GET", "/identity") => match identity {
            Some(identity) => {
                let body = serde_json::to_string(&identity).expect("identity JSON");
                seen.identities.push(identity);
                ("200 OK", body)
            }
            None => (
                "401 Unauthorized",
                status(401, "Unauthorized", "Unauthorized"),
            ),
        },
        _ => ("404 Not Found", not_found(target)),
    }
}

/// A Kubernetes-style 404 `Status` document.
pub fn not_found(target: &str) -> String {
    status(
        404,
        "NotFound",
        &format!("the server could not find the requested resource ({target})"),
    )
}

/// A Kubernetes-style failure `Status` document.
pub fn status(code: u16, reason: &str, message: &str) -> String {
    serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
    .to_string()
}

/// Writes a complete `Connection: close` JSON response and closes the TLS session.
fn write_response(
    tls: &mut rustls::StreamOwned<ServerConnection, TcpStream>,
    status: &str,
    body: &str,
) -> std::io::Result<()> {
    write!(
        tls,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    tls.conn.send_close_notify();
    tls.flush()
}
