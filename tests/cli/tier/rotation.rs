//! `certs rotate-ca` on a running control plane (#14): the cluster CA (to ECDSA-P256 from
//! the tree's RSA-2048, proving `--encryption-algorithm`), the front-proxy CA, the etcd CA
//! and the service-account key pair go through `trust`, `sign` and `finish` together, each
//! stage followed by a rolling restart of exactly the components kubepki printed, started
//! with what `kubepki flags` prints then. After every stage:
//!
//! - `kubepki flags` points the trust flags where the stage says (ca-bundle.crt during,
//!   ca.crt after), and `kube-root-ca.crt` is what the controller manager's
//!   `--root-ca-file` holds;
//! - every kubeconfig authenticates as its user, and the API server's certificate is
//!   accepted by a client trusting only the current bundle;
//! - the controller manager signs a new node's CSR (after `kubepki join` pinned to every CA
//!   `ca-cert-hash` prints), with the CA that signs at that stage;
//! - what the old CAs and key signed before the rotation (a user's client certificate, the
//!   front proxy's certificate, the API server's etcd client certificate, a node's kubelet
//!   certificate, a token Secret's and a TokenRequest token) is accepted until `finish`
//!   and refused after it, while the new ones are accepted.

use super::controllers::{bearer_whoami, request_token, secret_token};
use super::identities::{self, identity};
use super::workers::{self, Node};
use crate::support::controlplane::{Component, ControlPlane};
use crate::support::endpoint::Identity;
use crate::support::{assert_success, openssl, require_tool};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// What rotates, in the order each stage runs them, and the extra arguments of `trust`.
const ROTATED: [(&str, &[&str]); 4] = [
    ("ca", &["--encryption-algorithm", "ECDSA-P256"]),
    ("front-proxy-ca", &[]),
    ("etcd-ca", &[]),
    ("sa", &[]),
];
/// How long the controller manager may take to publish the root CA again.
const CONTROLLER_WAIT: Duration = Duration::from_secs(90);
/// The user of the client certificate the old cluster CA signed.
const OLD_USER: &str = "rotation-witness";

/// What the old CAs and key signed before the rotation, kept to be tried at every stage.
struct Witnesses {
    user_cert: Vec<u8>,
    user_key: Vec<u8>,
    proxy_cert: Vec<u8>,
    proxy_key: Vec<u8>,
    etcd_client: (PathBuf, PathBuf),
    tokens: Vec<(&'static str, String)>,
}

/// Runs the rotation on a control plane of its own.
pub fn run(plane: &mut ControlPlane) {
    let admin = plane.kubeconfig("super-admin.conf");
    let manifests = plane.tree.root().join("bootstrap").display().to_string();
    plane.kubectl_ok(&admin, &["apply", "-f", &manifests]);
    let old = witnesses(plane);
    let mut nodes: Vec<(Node, bool)> = Vec::new();
    for (round, stage) in ["trust", "sign", "finish"].into_iter().enumerate() {
        let restarts = run_stage(plane, stage);
        eprintln!("[rotation] {stage}: restarting {restarts:?}");
        plane.restart_components(&restarts);
        check_flags(plane, stage);
        identities::kubeconfigs(plane);
        server_accepted(plane);
        root_ca_published(plane);
        let round = u32::try_from(round).unwrap_or_default() + 10;
        let node = workers::join_a_worker(plane, round);
        node_signed_by_signer(plane, &node);
        nodes.push((node, stage == "trust"));
        old_ones(plane, &old, &nodes, stage == "finish");
        new_tokens(plane);
    }
    let status = plane.kubepki(&["certs", "rotate-ca", "status", "-o", "json"]);
    assert_success(&status, "rotate-ca status");
    let status: Value = serde_json::from_slice(&status.stdout).expect("JSON");
    let status = &status["rotations"];
    for entry in status.as_array().expect("an array") {
        assert_eq!(entry["phase"], "idle", "{entry}");
    }
    assert_eq!(status[0]["signer"]["algorithm"], "ECDSA-P256");
}

/// Runs `stage` for every rotated row; applies `cluster-info` when it changed; returns the
/// components kubepki said to restart (the kubelet aside: the tier runs none).
fn run_stage(plane: &ControlPlane, stage: &str) -> Vec<Component> {
    let mut restarts = Vec::new();
    for (row, trust_args) in ROTATED {
        let mut args = vec!["certs", "rotate-ca", row, stage, "-o", "json"];
        if stage == "trust" {
            args.extend(trust_args);
        }
        if (row, stage) == ("sa", "finish") {
            args.push("--force"); // the tier's tokens are minutes old; #22's guard waits 24h
        }
        let out = plane.kubepki(&args);
        assert_success(&out, &format!("rotate-ca {row} {stage}"));
        let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        for restart in report["restarts"].as_array().expect("restarts") {
            let name = restart["component"].as_str().unwrap_or_default();
            let component = Component::ALL.into_iter().find(|c| c.name() == name);
            match component {
                Some(component) if !restarts.contains(&component) => restarts.push(component),
                Some(_) => {}
                None => assert_eq!(name, "kubelet", "a component the tier does not know"),
            }
        }
        let cluster_info = plane.tree.root().join("bootstrap/cluster-info.yaml");
        let replaced = report["replaced"].as_array().expect("replaced");
        if replaced.iter().any(|p| p.as_str() == cluster_info.to_str()) {
            let admin = plane.kubeconfig("super-admin.conf");
            plane.kubectl_ok(
                &admin,
                &["apply", "-f", &cluster_info.display().to_string()],
            );
        }
    }
    restarts
}

/// Takes what the old CAs and key signed: a user kubeconfig, the front proxy's and the etcd
/// client's certificates, a token Secret's token and a TokenRequest token.
fn witnesses(plane: &ControlPlane) -> Witnesses {
    let dir = plane.scratch("old");
    let conf = dir.join("old-user.conf");
    let out = plane.kubepki(&[
        "kubeconfig",
        "user",
        "--client-name",
        OLD_USER,
        "--org",
        "system:masters",
        "--out",
        &conf.display().to_string(),
    ]);
    assert_success(&out, "kubepki kubeconfig user");
    let config: Value =
        serde_yaml::from_slice(&std::fs::read(&conf).expect("kubeconfig")).expect("a kubeconfig");
    let decode = |key: &str| {
        use base64::Engine as _;
        let data = config["users"][0]["user"][key].as_str().expect("embedded");
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64")
    };
    let etcd_cert = dir.join("apiserver-etcd-client.crt");
    let etcd_key = dir.join("apiserver-etcd-client.key");
    std::fs::write(&etcd_cert, plane.tree.read("pki/apiserver-etcd-client.crt")).expect("copy");
    std::fs::write(&etcd_key, plane.tree.read("pki/apiserver-etcd-client.key")).expect("copy");
    Witnesses {
        user_cert: decode("client-certificate-data"),
        user_key: decode("client-key-data"),
        proxy_cert: plane.tree.read("pki/front-proxy-client.crt"),
        proxy_key: plane.tree.read("pki/front-proxy-client.key"),
        etcd_client: (etcd_cert, etcd_key),
        tokens: vec![
            ("the token Secret of default/default", secret_token(plane)),
            (
                "a TokenRequest token",
                request_token(plane, "default", "default"),
            ),
        ],
    }
}

/// The file readers of the cluster CA trust at `stage`'s end: the bundle until finish.
fn cluster_trust(plane: &ControlPlane, stage: &str) -> PathBuf {
    match stage {
        "finish" => plane.tree.pki().join("ca.crt"),
        _ => plane.tree.pki().join("ca-bundle.crt"),
    }
}

/// `kubepki flags` names the bundle for every trust flag of the cluster CA until finish,
/// ca.crt after it, and ca.crt (one certificate) for the controller manager's signer.
fn check_flags(plane: &ControlPlane, stage: &str) {
    let trust = cluster_trust(plane, stage).display().to_string();
    let ca = plane.tree.pki().join("ca.crt").display().to_string();
    for (component, flags) in [
        ("kube-apiserver", &["--client-ca-file"][..]),
        (
            "kube-controller-manager",
            &["--client-ca-file", "--root-ca-file"],
        ),
    ] {
        let args = plane.launch_args(match component {
            "kube-apiserver" => Component::Apiserver,
            _ => Component::ControllerManager,
        });
        for flag in flags {
            assert!(
                args.contains(&format!("{flag}={trust}")),
                "{component} {flag} after {stage}: {args:?}"
            );
        }
        if component == "kube-controller-manager" {
            assert!(args.contains(&format!("--cluster-signing-cert-file={ca}")));
        }
    }
    let signing = std::fs::read_to_string(&ca).expect("ca.crt");
    assert_eq!(signing.matches("BEGIN CERTIFICATE").count(), 1, "ca.crt");
}

/// The API server's certificate is accepted by a client that trusts only the current
/// bundle, and it is the `apiserver.crt` of the tree.
fn server_accepted(plane: &ControlPlane) {
    let trust = std::fs::read(cluster_trust_now(plane)).expect("the trust file");
    let answer = plane.client_trusting(&trust, None).get("/version", &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let served = answer.server_cert;
    let on_disk = plane.tree.read("pki/apiserver.crt");
    let on_disk = rustls::pki_types::pem::PemObject::from_pem_slice(&on_disk)
        .map(|c: rustls::pki_types::CertificateDer| c.to_vec())
        .expect("a certificate");
    assert!(served == on_disk, "the API server serves apiserver.crt");
}

/// The file `kubepki flags` names for the API server's `--client-ca-file` now.
fn cluster_trust_now(plane: &ControlPlane) -> PathBuf {
    let args = plane.launch_args(Component::Apiserver);
    let value = args
        .iter()
        .find_map(|a| a.strip_prefix("--client-ca-file="))
        .expect("--client-ca-file");
    PathBuf::from(value)
}

/// `kube-root-ca.crt` in `default` becomes what the controller manager's `--root-ca-file`
/// holds.
fn root_ca_published(plane: &ControlPlane) {
    let expected = std::fs::read_to_string(cluster_trust_now(plane)).expect("the trust file");
    let admin = plane.kubeconfig("super-admin.conf");
    plane.wait(
        "kube-root-ca.crt to follow the root CA file",
        CONTROLLER_WAIT,
        |p| {
            let args = [
                "get",
                "configmap",
                "kube-root-ca.crt",
                "-o",
                "jsonpath={.data.ca\\.crt}",
            ];
            let out = p.kubectl(&admin, &args);
            let published = String::from_utf8_lossy(&out.stdout).into_owned();
            match published == expected {
                true => Ok(()),
                false => Err(format!(
                    "{} certificate(s)",
                    published.matches("BEGIN").count()
                )),
            }
        },
    );
}

/// The node's certificate, from the controller manager's CSR signer, verifies with
/// `ca.crt`: the CA that signs at this stage.
fn node_signed_by_signer(plane: &ControlPlane, node: &Node) {
    let pem = plane
        .scratch(&node.name)
        .join("kubelet/pki/kubelet-client-current.pem");
    let ca = plane.tree.pki().join("ca.crt");
    let out = openssl(&[
        "verify".as_ref(),
        "-CAfile".as_ref(),
        ca.as_os_str(),
        pem.as_os_str(),
    ]);
    assert_success(
        &out,
        &format!("openssl verify of {}'s certificate", node.name),
    );
}

/// What the old CAs and key signed is accepted until finish, refused after it; nodes
/// joined after trust (their certificate from the new CA) stay accepted.
fn old_ones(plane: &ControlPlane, old: &Witnesses, nodes: &[(Node, bool)], finished: bool) {
    let trust = std::fs::read(cluster_trust_now(plane)).expect("the trust file");
    let user = plane.client_trusting(&trust, Some((&old.user_cert, &old.user_key)));
    let probe = "/api/v1/namespaces/default/configmaps/kubepki-rotation-old-user";
    let answer = user.get(probe, &[]);
    match finished {
        false => {
            let seen = plane.whoami_by(|path| {
                user.get(path, &[]);
            });
            assert_eq!(
                seen,
                identity(OLD_USER, &["system:masters"]),
                "the old user"
            );
        }
        true => assert_eq!(
            answer.status, 401,
            "the old user after finish: {}",
            answer.body
        ),
    }
    let headers = [("X-Remote-User", "rotation-proxied")];
    let proxy = plane.client_trusting(&trust, Some((&old.proxy_cert, &old.proxy_key)));
    match finished {
        false => {
            let seen = plane.whoami_by(|path| {
                proxy.get(path, &headers);
            });
            assert_eq!(seen.user, "rotation-proxied", "the old front proxy");
        }
        true => {
            let answer = proxy.get(probe, &headers);
            assert_eq!(
                answer.status, 401,
                "the old front proxy after finish: {}",
                answer.body
            );
        }
    }
    identities::front_proxy(plane);
    let etcd = etcd_get(plane, &old.etcd_client);
    assert_eq!(etcd.is_ok(), !finished, "the old etcd client: {etcd:?}");
    let current = (
        plane.tree.pki().join("apiserver-etcd-client.crt"),
        plane.tree.pki().join("apiserver-etcd-client.key"),
    );
    etcd_get(plane, &current).expect("the current etcd client");
    for (what, token) in &old.tokens {
        let answer = plane.client_trusting(&trust, None).get(
            "/api/v1/namespaces/default/configmaps",
            &[("Authorization", &format!("Bearer {token}"))],
        );
        match finished {
            false => assert_eq!(
                bearer_whoami(plane, token).user,
                "system:serviceaccount:default:default",
                "{what}"
            ),
            true => assert_eq!(answer.status, 401, "{what} after finish: {}", answer.body),
        }
    }
    for (node, by_old_ca) in nodes {
        let expected = identity(&format!("system:node:{}", node.name), &["system:nodes"]);
        let out = plane.kubectl(&node.kubeconfig, &["get", "--raw", "/version"]);
        match finished && *by_old_ca {
            false => assert_eq!(plane.whoami(&node.kubeconfig), expected, "{}", node.name),
            true => assert!(
                !out.status.success(),
                "{}'s certificate from the old CA after finish",
                node.name
            ),
        }
    }
}

/// A token issued now (by the new key once sign ran) authenticates.
fn new_tokens(plane: &ControlPlane) {
    let token = request_token(plane, "default", "default");
    let seen: Identity = bearer_whoami(plane, &token);
    assert_eq!(seen.user, "system:serviceaccount:default:default");
}

/// `etcdctl get` of the API server's default namespace as the client `cert`/`key`,
/// trusting the tree's etcd CA file; its output on failure.
fn etcd_get(plane: &ControlPlane, (cert, key): &(PathBuf, PathBuf)) -> Result<(), String> {
    let etcdctl = require_tool(
        "etcdctl",
        "apt-get update && apt-get install -y etcd-client",
    );
    let out = crate::support::proc::run_bounded(
        {
            let mut command = Command::new(etcdctl);
            command
                .env("ETCDCTL_API", "3")
                .args(["--endpoints", &plane.etcd_url()])
                .arg("--cacert")
                .arg(plane.tree.pki().join("etcd/ca.crt"))
                .arg("--cert")
                .arg(cert)
                .arg("--key")
                .arg(key)
                .args(["--dial-timeout", "3s", "--command-timeout", "5s"])
                .args(["get", "/registry/namespaces/default", "--keys-only"]);
            command
        },
        None,
        Duration::from_secs(30),
    );
    match out.status.success() && !out.stdout.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}
