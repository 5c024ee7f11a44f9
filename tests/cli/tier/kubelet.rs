//! The kubelet's side, against the real API server and the real kubelet binary:
//!
//! - apiserver → kubelet: a Rust TLS stand-in for a kubelet on this machine's address (not
//!   loopback, which the API server does not proxy to), serving the pair
//!   `kubepki kubelet serving-cert` wrote and demanding a client certificate of the cluster
//!   CA, is reached through `/api/v1/nodes/<name>/proxy/identity` (its Node's InternalIP and
//!   `daemonEndpoints.kubeletEndpoint.Port`), the API server started with
//!   `kubepki flags kube-apiserver --verify-kubelets`; the stand-in saw the API server as
//!   `apiserver-kubelet-client`. A second stand-in serving a self-signed certificate, as a
//!   kubelet makes for itself, is refused by the API server;
//! - the `kubepki kubelet config` file, with and without `--server-tls-bootstrap`, loaded by
//!   the real kubelet (strictly: no lenient fallback), validated, its TLS set up from the
//!   serving pair and its client CA read, as the kubelet's own log shows, up to the point
//!   where it would start work; stopped there by a flag combination it refuses;
//! - `kubepki kubelet repair` on the control-plane host: a `kubelet.conf` for another node
//!   with a fresh certificate authenticates as `system:node:<name>`.

use super::identities::identity;
use crate::support::controlplane::{ControlPlane, KUBELET};
use crate::support::endpoint::Endpoint;
use crate::support::proc::run_bounded;
use crate::support::{assert_success, openssl};
use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// How long the kubelet may take to load its configuration and stop.
const KUBELET_RUN: Duration = Duration::from_secs(60);
/// What the kubelet says when it stops where the proof wants it to: after loading,
/// validating and setting up TLS, before it touches the host.
const STOPPED_ON_PURPOSE: &str =
    "failed to run Kubelet: cannot exit on lock file contention: no lock file specified";

/// The stand-in's node in round `round`, reached through the API server with
/// `--kubelet-certificate-authority`: answers as itself, having seen
/// `kube-apiserver-kubelet-client`. Round 1 writes the serving pair; round 2 serves it as
/// `certs renew all` left it. Then one serving a self-signed certificate is refused.
pub fn apiserver_verifies_the_kubelet(plane: &ControlPlane, round: u32) {
    let dir = plane.kubelet_dir();
    let name = format!("kubelet-standin-{round}");
    if round == 1 {
        let out = plane.kubepki(&[
            "kubelet",
            "serving-cert",
            "--node-name",
            &name,
            "--node-ip",
            &kubelet_address().to_string(),
            "--out-dir",
            &dir.display().to_string(),
        ]);
        assert_success(&out, "kubepki kubelet serving-cert");
    }
    let ca = plane.tree.root().join("pki/ca.crt");
    let standin = kubelet_standin(&dir.join("kubelet.crt"), &dir.join("kubelet.key"), &ca);
    register_node(plane, &name, standin.addr().port());
    let answer = plane.kubectl_ok(
        &plane.kubeconfig("super-admin.conf"),
        &[
            "get",
            "--raw",
            &format!("/api/v1/nodes/{name}/proxy/identity"),
        ],
    );
    let seen: crate::support::endpoint::Identity =
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{answer:?}: {e}"));
    assert_eq!(
        (seen.user.as_str(), seen.groups.as_slice()),
        ("kube-apiserver-kubelet-client", &[][..]),
        "who the stand-in saw calling through /proxy"
    );
    let requests = standin.requests();
    assert!(
        requests.len() == 1 && requests[0].starts_with("GET /identity"),
        "what the stand-in was asked: {requests:?}"
    );
    self_signed_kubelet_refused(plane, round);
}

/// A stand-in serving a self-signed certificate for its address (what a kubelet makes for
/// itself): the API server refuses it, since it verifies kubelets against the cluster CA.
fn self_signed_kubelet_refused(plane: &ControlPlane, round: u32) {
    let dir = plane.scratch(&format!("self-signed-kubelet-{round}"));
    let (cert, key) = (dir.join("kubelet.crt"), dir.join("kubelet.key"));
    let made = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=self-signed-kubelet",
        "-addext",
        &format!("subjectAltName=IP:{}", kubelet_address()),
        "-keyout",
        &key.display().to_string(),
        "-out",
        &cert.display().to_string(),
    ]);
    assert_success(
        &made,
        "openssl req -x509 (a self-signed kubelet certificate)",
    );
    let ca = plane.tree.root().join("pki/ca.crt");
    let standin = kubelet_standin(&cert, &key, &ca);
    let name = format!("self-signed-kubelet-{round}");
    register_node(plane, &name, standin.addr().port());
    let out = plane.kubectl(
        &plane.kubeconfig("super-admin.conf"),
        &[
            "get",
            "--raw",
            &format!("/api/v1/nodes/{name}/proxy/identity"),
        ],
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("x509"),
        "the API server reached a self-signed kubelet: {} {said}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(standin.requests().is_empty(), "no request got through");
}

/// A kubelet stand-in on a free port of [`kubelet_address`].
fn kubelet_standin(cert: &Path, key: &Path, ca: &Path) -> Endpoint {
    let listener = TcpListener::bind((kubelet_address(), 0)).expect("a free port");
    Endpoint::start_kubelet(listener, cert, key, ca)
}

/// The address kubelet stand-ins listen on: this machine's IPv4 address on its default
/// route, since the API server (v1.3x) refuses to proxy to a loopback address ("address not
/// allowed"). Connecting a UDP socket sends nothing; it only picks the source address.
fn kubelet_address() -> Ipv4Addr {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("a UDP socket");
    let address = socket
        .connect((Ipv4Addr::new(203, 0, 113, 1), 9))
        .and_then(|()| socket.local_addr())
        .map(|a| a.ip());
    match address {
        Ok(IpAddr::V4(ip)) if !ip.is_loopback() && !ip.is_unspecified() => ip,
        other => panic!(
            "the kubelet proofs need a non-loopback IPv4 address on a default route (the API \
             server does not proxy to loopback); found {other:?}"
        ),
    }
}

/// A Node `name` whose status says its kubelet is at [`kubelet_address`]:`port` (status
/// is kept on create, so no kubelet has to post it).
fn register_node(plane: &ControlPlane, name: &str, port: u16) {
    let node = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "status": {
            "addresses": [{"type": "InternalIP", "address": kubelet_address().to_string()}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        },
    });
    let out = plane.kubectl_with_stdin(
        &plane.kubeconfig("super-admin.conf"),
        &["create", "-f", "-"],
        Some(node.to_string().as_bytes()),
    );
    assert_success(&out, &format!("kubectl create of Node {name}"));
}

/// The hardened configuration, as `kubepki kubelet config` writes it (with
/// `--server-tls-bootstrap` too), loaded strictly and validated by the real kubelet.
pub fn kubelet_loads_the_config(plane: &ControlPlane, round: u32) {
    let dir = plane.scratch(&format!("kubelet-config-{round}"));
    for bootstrap in [false, true] {
        let file = dir.join(format!("config-{bootstrap}.yaml"));
        let file_arg = file.display().to_string();
        let mut args = vec!["kubelet", "config", "--out", &file_arg];
        args.extend([
            "--node-name",
            "cp1",
            "--apiserver-advertise-address",
            "127.0.0.1",
        ]);
        if bootstrap {
            args.push("--server-tls-bootstrap");
        }
        let out = plane.kubepki(&args);
        assert_success(&out, "kubepki kubelet config");
        let serving = plane.kubelet_dir().join("kubelet.crt");
        assert!(
            serving.is_file(),
            "no serving pair in {}",
            serving.display()
        );
        let (loaded, log) = load_with_the_kubelet(plane, &file, &plane.kubelet_dir(), &dir);
        let ca = plane.tree.root().join("pki/ca.crt").display().to_string();
        let value = |path: &str| path.split('.').fold(&loaded, |v, key| &v[key]).clone();
        let yaml = |text: &str| serde_yaml::from_str::<serde_yaml::Value>(text).expect("YAML");
        for (field, wanted) in [
            ("authentication.anonymous.enabled", yaml("false")),
            ("authentication.webhook.enabled", yaml("true")),
            ("authorization.mode", yaml("Webhook")),
            ("authentication.x509.clientCAFile", yaml(&ca)),
            ("rotateCertificates", yaml("true")),
            ("clusterDNS", yaml("[10.96.0.10]")),
            ("tlsMinVersion", yaml("VersionTLS12")),
            (
                "tlsCipherSuites",
                yaml(
                    "[TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, \
                     TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, \
                     TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305]",
                ),
            ),
        ] {
            assert_eq!(
                value(field),
                wanted,
                "the kubelet's effective {field}:\n{loaded:?}"
            );
        }
        // Omitted when 0 (the port closed) and when false.
        let read_only = value("readOnlyPort");
        assert!(
            read_only.is_null() || read_only == yaml("0"),
            "the kubelet's effective readOnlyPort: {read_only:?}"
        );
        let tls_bootstrap = value("serverTLSBootstrap");
        assert_eq!(
            tls_bootstrap.as_bool().unwrap_or(false),
            bootstrap,
            "the kubelet's effective serverTLSBootstrap"
        );
        assert!(
            !log.contains("Using self-signed cert"),
            "the kubelet made itself a self-signed serving certificate instead of \
             using the pair in {}",
            plane.kubelet_dir().display()
        );
    }
}

/// Runs the kubelet with `config` and `--cert-dir cert_dir` until it stops on purpose;
/// returns its effective configuration as it logged it (YAML), and its log. A serving pair
/// in `cert_dir` is left as it was.
pub fn load_with_the_kubelet(
    plane: &ControlPlane,
    config: &Path,
    cert_dir: &Path,
    scratch: &Path,
) -> (serde_yaml::Value, String) {
    let before = std::fs::read(cert_dir.join("kubelet.crt")).ok();
    let mut command = Command::new(plane.binary(KUBELET));
    command
        .arg("--config")
        .arg(config)
        .arg("--cert-dir")
        .arg(cert_dir)
        .arg("--volume-plugin-dir")
        .arg(scratch.join("volume-plugins"))
        .args(["--exit-on-lock-contention", "--v=5"])
        // This machine's cgroup v1, which the kubelet refuses by default since v1.35: a
        // property of the host, not of the file under test.
        .arg("--fail-cgroupv1=false");
    let out = run_bounded(command, None, KUBELET_RUN);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    // A fatal line (v1.20), or the error the command's runner logs before it exits (v1.3x).
    let is_fatal = |line: &&str| {
        let mut chars = line.chars();
        let level = chars.next();
        let dated = chars.next().is_some_and(|c| c.is_ascii_digit());
        dated && (level == Some('F') || level == Some('E') && line.contains("\"command failed\""))
    };
    let fatal: Vec<&str> = log.lines().filter(is_fatal).collect();
    assert!(
        fatal.len() == 1 && fatal[0].contains(STOPPED_ON_PURPOSE),
        "the kubelet did not stop where it should, after loading {}: {fatal:?}\n{}",
        config.display(),
        log.lines().rev().take(30).collect::<Vec<_>>().join("\n")
    );
    assert!(
        !log.contains("lenient decoding"),
        "the kubelet read {} only leniently (unknown or duplicate fields)",
        config.display()
    );
    let after = std::fs::read(cert_dir.join("kubelet.crt")).ok();
    assert!(
        before.is_none() || after == before,
        "the kubelet replaced the serving certificate in {}",
        cert_dir.display()
    );
    // `"Effective KubeletConfiguration" config=<`, then the YAML one tab in, then ` >`.
    let yaml: String = log
        .lines()
        .skip_while(|line| !line.contains("\"Effective KubeletConfiguration\" config=<"))
        .skip(1)
        .take_while(|line| line.starts_with('\t'))
        .map(|line| format!("{}\n", &line[1..]))
        .collect();
    let effective: serde_yaml::Value = serde_yaml::from_str(&yaml)
        .unwrap_or_else(|e| panic!("the kubelet logged no configuration ({e}):\n{log}"));
    assert!(
        effective["kind"].as_str() == Some("KubeletConfiguration"),
        "the kubelet logged no configuration:\n{log}"
    );
    (effective, log)
}

/// `kubepki kubelet repair` on the control-plane host, for a node without a usable rotated
/// certificate there: the kubelet.conf it writes is `system:node:<name>`.
pub fn repair_on_the_control_plane(plane: &ControlPlane, round: u32) {
    let dir = plane.scratch(&format!("repair-{round}"));
    let empty = dir.join("kubelet-pki");
    std::fs::create_dir_all(&empty).expect("an empty kubelet directory");
    let output = dir.join("kubelet.conf");
    let name = format!("repaired-node-{round}");
    let out = plane.kubepki(&[
        "kubelet",
        "repair",
        "--node-name",
        &name,
        "--kubelet-cert-dir",
        &empty.display().to_string(),
        "--out",
        &output.display().to_string(),
    ]);
    assert_success(&out, "kubepki kubelet repair on the control-plane host");
    let expected = identity(&format!("system:node:{name}"), &["system:nodes"]);
    assert_eq!(
        plane.whoami(&output),
        expected,
        "the kubelet.conf repair wrote for {name}"
    );
}
