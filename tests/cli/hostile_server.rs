//! `kubepki join` against hostile TLS servers on 127.0.0.1 (#12): one that answers `200` with
//! a body that never ends, one whose headers never end, and one that sends one byte a second.
//! The first fetch of `cluster-info` trusts no one, so anyone can be that server. Each run must
//! exit 1 with one stderr line within the discovery timeout (plus a small margin), write
//! nothing, and keep its peak memory small (its `VmHWM`, read every 5 ms). A watchdog kills
//! a run that outgrows either bound, so a failing run cannot take the machine down.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;

use crate::support::TempTree;
use crate::support::endpoint::Endpoint;

/// The discovery timeout every run is given.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(3);
/// How far past the discovery timeout a run may go before it counts as overrunning.
const MARGIN: Duration = Duration::from_secs(2);
/// The most resident memory a run may reach, in KiB (64 MiB).
const RSS_LIMIT_KIB: u64 = 64 * 1024;
/// How long a hostile connection goes on at most, whoever listens.
const SERVE_LIMIT: Duration = Duration::from_secs(60);
/// The head of a plausible answer, without a length: the body runs until the connection closes.
const OK_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n";
/// The cluster-info path token discovery asks for.
const CLUSTER_INFO_PATH: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";

/// How the server misbehaves once it has read a request.
#[derive(Clone, Copy, Debug)]
enum Hostility {
    /// `200 OK` and a body that never ends.
    EndlessBody,
    /// A status line, then headers that never end.
    EndlessHeaders,
    /// A plausible answer, one byte a second, then more body the same way.
    OneByteASecond,
}

impl Hostility {
    /// The bytes of the `n`-th write to the client, and the pause after it.
    fn write(self, n: usize) -> (Vec<u8>, Duration) {
        match self {
            Hostility::EndlessBody if n == 0 => (OK_HEAD.to_vec(), Duration::ZERO),
            Hostility::EndlessBody => (vec![b'x'; 64 * 1024], Duration::ZERO),
            Hostility::EndlessHeaders if n == 0 => {
                (b"HTTP/1.1 200 OK\r\n".to_vec(), Duration::ZERO)
            }
            Hostility::EndlessHeaders => {
                let filler = format!("X-Filler-{n}: {}\r\n", "x".repeat(1000));
                (filler.into_bytes(), Duration::ZERO)
            }
            Hostility::OneByteASecond => {
                let byte = OK_HEAD.get(n).copied().unwrap_or(b'x');
                (vec![byte], Duration::from_secs(1))
            }
        }
    }
}

/// A hostile HTTPS server on 127.0.0.1 serving the apiserver certificate of a kubepki tree;
/// dropping it stops the accept loop, and each connection ends within [`SERVE_LIMIT`].
struct HostileServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl HostileServer {
    /// Starts serving with `<pki>/apiserver.{crt,key}`, misbehaving as `hostility` says.
    fn start(pki: &Path, hostility: Hostility) -> HostileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
        let addr = listener.local_addr().expect("listener address");
        let config = server_config(pki);
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                for tcp in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(tcp) = tcp else { continue };
                    let (config, stop) = (config.clone(), stop.clone());
                    std::thread::spawn(move || serve(tcp, config, hostility, &stop));
                }
            })
        };
        HostileServer {
            addr,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// `https://127.0.0.1:PORT` with `path`.
    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the loop sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// TLS with the tree's apiserver certificate, no client authentication.
fn server_config(pki: &Path) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs = CertificateDer::pem_file_iter(pki.join("apiserver.crt"))
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .expect("reading apiserver.crt");
    let key = PrivateKeyDer::from_pem_file(pki.join("apiserver.key")).expect("apiserver.key");
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("apiserver.crt and apiserver.key as the server certificate");
    Arc::new(config)
}

/// Reads one request head, then misbehaves until the client goes away, the server is dropped
/// or [`SERVE_LIMIT`] passes.
fn serve(tcp: TcpStream, config: Arc<ServerConfig>, hostility: Hostility, stop: &AtomicBool) {
    let started = Instant::now();
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(5)));
    let Ok(conn) = ServerConnection::new(config) else {
        return;
    };
    let mut tls = StreamOwned::new(conn, tcp);
    if !read_request_head(&mut tls) {
        return;
    }
    for n in 0.. {
        if stop.load(Ordering::SeqCst) || started.elapsed() > SERVE_LIMIT {
            return;
        }
        let (bytes, pause) = hostility.write(n);
        if tls.write_all(&bytes).and_then(|()| tls.flush()).is_err() {
            return;
        }
        std::thread::sleep(pause);
    }
}

/// Reads up to the end of a request head (at most 16 KiB); false if there was none.
fn read_request_head(tls: &mut impl Read) -> bool {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buffer) {
            Ok(0) | Err(_) => return false,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
        }
        if head.len() > 16 * 1024 {
            return false;
        }
    }
    true
}

/// How a watched run of kubepki ended.
#[derive(Debug)]
struct Watched {
    /// The exit code, if it exited rather than being killed.
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    /// The highest `VmHWM` seen while it ran, in KiB. (Not `ru_maxrss`: the kernel counts in
    /// it the parent's memory at the fork, here that of the whole test binary.)
    peak_rss_kib: u64,
    /// Why the watchdog killed it, if it did.
    killed: Option<String>,
}

/// Runs kubepki with `args` (and `env`), reading its peak memory every 5 ms, and killing it
/// once it has run `time_limit` or its peak resident memory passes `rss_limit_kib`.
fn run_watched(
    args: &[String],
    env: &[(&str, PathBuf)],
    time_limit: Duration,
    rss_limit_kib: u64,
) -> Watched {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubepki"))
        .args(args)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting kubepki");
    let mut peak_rss_kib = 0;
    let mut killed = None;
    let status = loop {
        peak_rss_kib = peak_rss_kib.max(peak_rss_so_far(child.id()));
        if let Some(status) = child.try_wait().expect("waiting for kubepki") {
            break status;
        }
        let overrun = if peak_rss_kib > rss_limit_kib {
            Some(format!("its peak RSS reached {peak_rss_kib} KiB"))
        } else if started.elapsed() > time_limit {
            Some(format!("it still ran after {time_limit:?}"))
        } else {
            None
        };
        if let Some(why) = overrun {
            child.kill().expect("killing kubepki");
            killed = Some(why);
            break child.wait().expect("waiting for the killed kubepki");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Watched {
        code: status.code(),
        stdout: drain(child.stdout.take()),
        stderr: drain(child.stderr.take()),
        elapsed: started.elapsed(),
        peak_rss_kib,
        killed,
    }
}

/// All that is left to read from a child's pipe (it has ended, so this does not block).
fn drain(pipe: Option<impl Read>) -> String {
    let mut text = String::new();
    if let Some(mut pipe) = pipe {
        pipe.read_to_string(&mut text)
            .expect("reading kubepki's output");
    }
    text
}

/// `VmHWM` (peak resident set size, KiB) of a running process; 0 once it has ended.
fn peak_rss_so_far(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_default()
}

/// A control-plane tree whose apiserver certificate (for 127.0.0.1) the hostile server uses.
fn certificates() -> TempTree {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    tree
}

/// `join` arguments for token discovery against `server`, into `worker`.
fn token_join(server: &HostileServer, worker: &TempTree) -> Vec<String> {
    let mut args: Vec<String> = [
        "join",
        &server.addr.to_string(),
        "--token",
        "abcdef.0123456789abcdef",
        "--discovery-token-unsafe-skip-ca-verification",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(timeout_and_dirs(worker));
    args
}

/// `join` arguments for file discovery from `url`, into `worker`.
fn file_join(url: &str, worker: &TempTree) -> Vec<String> {
    let mut args: Vec<String> = [
        "join",
        "--discovery-file",
        url,
        "--token",
        "abcdef.0123456789abcdef",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(timeout_and_dirs(worker));
    args
}

fn timeout_and_dirs(worker: &TempTree) -> Vec<String> {
    let mut args = vec![
        "--discovery-timeout".to_string(),
        format!("{}s", DISCOVERY_TIMEOUT.as_secs()),
    ];
    args.extend(worker.dir_args());
    args
}

/// Runs `args` into `worker` under the watchdog and asserts the refusal: exit 1, one stderr
/// line holding every one of `reasons`, within the discovery timeout plus [`MARGIN`], memory
/// under [`RSS_LIMIT_KIB`], nothing written. Returns that stderr line.
fn assert_refused_in_bounds(
    worker: &TempTree,
    args: &[String],
    env: &[(&str, PathBuf)],
    reasons: &[&str],
) -> String {
    let before = worker.snapshot();
    let run = run_watched(args, env, DISCOVERY_TIMEOUT + MARGIN, RSS_LIMIT_KIB);
    eprintln!(
        "{args:?}: {:?} after {:?}, peak RSS {} KiB: {}",
        run.code,
        run.elapsed,
        run.peak_rss_kib,
        run.stderr.trim_end()
    );
    assert!(run.killed.is_none(), "killed, as {:?}: {run:?}", run.killed);
    assert!(
        run.elapsed < DISCOVERY_TIMEOUT + MARGIN,
        "too slow: {run:?}"
    );
    assert!(run.peak_rss_kib < RSS_LIMIT_KIB, "too big: {run:?}");
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "one line: {run:?}");
    for reason in reasons {
        assert!(run.stderr.contains(reason), "expected {reason:?}: {run:?}");
    }
    assert!(run.stdout.is_empty(), "{run:?}");
    assert_eq!(worker.snapshot(), before, "{args:?} wrote something");
    run.stderr
}

/// Asserts that an answer over a cap ended discovery at once rather than being asked again.
fn assert_not_retried(stderr: &str) {
    assert!(!stderr.contains("gave up after"), "retried: {stderr}");
}

#[test]
fn issue_12_an_endless_body_is_cut_off_at_the_cap() {
    let tree = certificates();
    let server = HostileServer::start(&tree.pki(), Hostility::EndlessBody);
    let worker = TempTree::new();
    let url = server.url(CLUSTER_INFO_PATH);
    let reasons = [url.as_str(), "the response body exceeds the limit of 1 MiB"];
    let stderr = assert_refused_in_bounds(&worker, &token_join(&server, &worker), &[], &reasons);
    assert_not_retried(&stderr);
}

#[test]
fn issue_12_endless_headers_are_cut_off_at_the_cap() {
    let tree = certificates();
    let server = HostileServer::start(&tree.pki(), Hostility::EndlessHeaders);
    let worker = TempTree::new();
    let url = server.url(CLUSTER_INFO_PATH);
    let reasons = [
        url.as_str(),
        "the response headers exceed the limit of 64 KiB",
    ];
    assert_refused_in_bounds(&worker, &token_join(&server, &worker), &[], &reasons);
}

#[test]
fn issue_12_a_server_sending_one_byte_a_second_is_cut_off_at_the_discovery_timeout() {
    let tree = certificates();
    let server = HostileServer::start(&tree.pki(), Hostility::OneByteASecond);
    let worker = TempTree::new();
    let url = server.url(CLUSTER_INFO_PATH);
    let reasons = [
        url.as_str(),
        "past the discovery timeout of 3s",
        "no complete answer in time",
    ];
    assert_refused_in_bounds(&worker, &token_join(&server, &worker), &[], &reasons);
}

#[test]
fn issue_12_a_discovery_file_url_is_capped_and_bounded_in_time_too() {
    let tree = certificates();
    let trust_the_server = [("SSL_CERT_FILE", tree.pki().join("ca.crt"))];
    let cases = [
        (
            Hostility::EndlessBody,
            "the response body exceeds the limit of 1 MiB",
        ),
        (Hostility::OneByteASecond, "no complete answer in time"),
    ];
    for (hostility, reason) in cases {
        let server = HostileServer::start(&tree.pki(), hostility);
        let worker = TempTree::new();
        let url = server.url("/discovery.conf");
        let args = file_join(&url, &worker);
        assert_refused_in_bounds(&worker, &args, &trust_the_server, &[&url, reason]);
    }
}

#[test]
fn issue_25_a_deeply_nested_cluster_info_is_refused_within_the_discovery_timeout() {
    let tree = certificates();
    let (id, secret) = ("abcdef", "0123456789abcdef");
    let depth = 150_000;
    let kubeconfig = format!("clusters: {}{}\n", "[".repeat(depth), "]".repeat(depth));
    let header = B64URL.encode(format!(r#"{{"alg":"HS256","kid":"{id}"}}"#));
    let input = format!("{header}.{}", B64URL.encode(&kubeconfig));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    let config_map = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cluster-info", "namespace": "kube-public"},
        "data": {
            "kubeconfig": kubeconfig,
            format!("jws-kubeconfig-{id}"): format!("{header}..{}", B64URL.encode(tag.as_ref())),
        },
    });
    let manifests = TempTree::new();
    std::fs::write(
        manifests.root().join("cluster-info.yaml"),
        config_map.to_string(),
    )
    .expect("written");
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    let addr = listener.local_addr().expect("address");
    let _server = Endpoint::start_bootstrap(listener, &tree.pki(), manifests.root());
    let worker = TempTree::new();
    let mut args: Vec<String> = [
        "join",
        &addr.to_string(),
        "--token",
        &format!("{id}.{secret}"),
        "--discovery-token-unsafe-skip-ca-verification",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(timeout_and_dirs(&worker));
    let reasons = ["collections nested more than 64 deep"];
    assert_refused_in_bounds(&worker, &args, &[], &reasons);
}
