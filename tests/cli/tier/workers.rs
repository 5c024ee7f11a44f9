//! A worker's way in, against the real API server and controllers: `kubepki token create`,
//! the controller manager's bootstrap signer signing cluster-info for the new token (the
//! same signature kubepki computes), `kubepki join`, a kubelet's CSR sent with
//! `bootstrap-kubelet.conf`, auto-approved and signed by the controllers, and the node's
//! certificate authenticating as `system:node:<name>` from a `kubelet.conf` that points at
//! `kubelet-client-current.pem`, as the kubelet writes it. And kube-proxy's kubeconfig from
//! its ConfigMap, with a ServiceAccount token, holding `system:node-proxier`'s rights.

use super::controllers::request_token;
use super::identities::identity;
use crate::support::controlplane::ControlPlane;
use crate::support::proc::run_bounded;
use crate::support::{assert_success, openssl};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long the controllers may take to sign cluster-info or a CSR.
const CONTROLLER_WAIT: Duration = Duration::from_secs(90);
/// Where a pod finds its ServiceAccount token and CA, as kube-proxy's kubeconfig names them.
const POD_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
const POD_CA: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

/// A joined node: its name and the kubeconfig of its signed client certificate.
pub struct Node {
    /// The node name.
    pub name: String,
    /// `kubelet.conf` pointing at `kubelet-client-current.pem`.
    pub kubeconfig: PathBuf,
    /// `bootstrap-kubelet.conf`, which `join` wrote.
    pub bootstrap: PathBuf,
}

/// A new token, signed by the bootstrap signer; `kubepki join` with it; the kubelet's CSR;
/// the node's certificate.
pub fn join_a_worker(plane: &ControlPlane, round: u32) -> Node {
    let (token, id) = signed_token(plane, &round.to_string());
    let name = format!("worker-{round}");
    let worker = plane.scratch(&name);
    join(plane, &worker, &token, &name);
    assert_eq!(
        std::fs::read(worker.join("pki/ca.crt")).ok(),
        Some(admin_ca(plane)),
        "the worker's ca.crt against what admin.conf trusts"
    );
    let bootstrap = worker.join("bootstrap-kubelet.conf");
    let expected = identity(
        &format!("system:bootstrap:{id}"),
        &[
            "system:bootstrappers",
            "system:bootstrappers:kubeadm:default-node-token",
        ],
    );
    assert_eq!(plane.whoami(&bootstrap), expected, "bootstrap-kubelet.conf");
    let pem = kubelet_client_certificate(plane, &worker, &bootstrap, &name);
    let kubeconfig = repaired_kubelet_conf(&worker, &name, &pem);
    Node {
        kubeconfig,
        bootstrap,
        name,
    }
}

/// Every node's certificate so far (those of earlier rounds too) is its node.
pub fn nodes_authenticate(plane: &ControlPlane, nodes: &[Node]) {
    for node in nodes {
        let expected = identity(&format!("system:node:{}", node.name), &["system:nodes"]);
        assert_eq!(
            plane.whoami(&node.kubeconfig),
            expected,
            "{}'s kubelet.conf",
            node.name
        );
    }
}

/// `kubepki token create` into a directory of its own; only its Secret is applied, and the
/// bootstrap signer (as `system:serviceaccount:kube-system:bootstrap-signer`, per the audit
/// log) adds to the cluster's cluster-info the very signature kubepki computed. Returns the
/// token and its id. `label` names the scratch directory (`token-<label>`).
pub fn signed_token(plane: &ControlPlane, label: &str) -> (String, String) {
    let dir = plane.scratch(&format!("token-{label}"));
    let dir_arg = dir.display().to_string();
    let out = plane.kubepki(&["token", "create", "--manifests-dir", &dir_arg]);
    assert_success(&out, "kubepki token create");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout
        .lines()
        .find(|l| is_token(l))
        .expect("a token on stdout")
        .to_string();
    let id = token[..6].to_string();
    let secret = dir.join(format!("bootstrap-token-{id}.yaml"));
    let admin = plane.kubeconfig("super-admin.conf");
    plane.kubectl_ok(&admin, &["apply", "-f", &secret.display().to_string()]);
    let key = format!("jws-kubeconfig-{id}");
    let kubepki_jws = cluster_info_value(
        &std::fs::read(dir.join("cluster-info.yaml")).expect("cluster-info.yaml"),
        &key,
    );
    let signed = plane.wait(
        &format!("the bootstrap signer's {key}"),
        CONTROLLER_WAIT,
        |p| {
            let jsonpath = format!("jsonpath={{.data.{key}}}");
            let args = [
                "-n",
                "kube-public",
                "get",
                "configmap",
                "cluster-info",
                "-o",
                &jsonpath,
            ];
            let value = String::from_utf8_lossy(&p.kubectl(&admin, &args).stdout).into_owned();
            if value.is_empty() {
                Err("not signed yet".to_string())
            } else {
                Ok(value)
            }
        },
    );
    assert_eq!(
        Some(signed),
        kubepki_jws,
        "the bootstrap signer's {key} against kubepki's"
    );
    let signer = plane.audit().events().into_iter().rev().find(|e| {
        e.verb == "update" && e.path() == "/api/v1/namespaces/kube-public/configmaps/cluster-info"
    });
    let signer = signer.map(|e| e.identity.user);
    assert_eq!(
        signer.as_deref(),
        Some("system:serviceaccount:kube-system:bootstrap-signer")
    );
    (token, id)
}

/// The value of `key` in a cluster-info ConfigMap manifest.
fn cluster_info_value(yaml: &[u8], key: &str) -> Option<String> {
    let config: serde_yaml::Value = serde_yaml::from_slice(yaml).expect("a ConfigMap");
    config["data"][key].as_str().map(str::to_string)
}

fn is_token(line: &str) -> bool {
    let ok = |part: &str, len| {
        part.len() == len
            && part
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    };
    matches!(line.split_once('.'), Some((id, secret)) if ok(id, 6) && ok(secret, 16))
}

/// What admin.conf trusts (`certificate-authority-data`): the cluster CA, and during a
/// rotation the CA coming or going too, which `cluster-info` publishes and `join` writes.
fn admin_ca(plane: &ControlPlane) -> Vec<u8> {
    let config: serde_yaml::Value =
        serde_yaml::from_slice(&plane.tree.read("admin.conf")).expect("a kubeconfig");
    let data = config["clusters"][0]["cluster"]["certificate-authority-data"]
        .as_str()
        .expect("certificate-authority-data");
    BASE64.decode(data).expect("base64")
}

/// `kubepki join` against the real API server, pinned to every CA `ca-cert-hash` prints
/// (one a line: two during a rotation of the cluster CA), into `worker`.
fn join(plane: &ControlPlane, worker: &Path, token: &str, name: &str) {
    let pins = plane.kubepki(&["certs", "ca-cert-hash"]);
    assert_success(&pins, "kubepki certs ca-cert-hash");
    let pins = String::from_utf8_lossy(&pins.stdout).into_owned();
    let mut command = Command::new(env!("CARGO_BIN_EXE_kubepki"));
    command.args(["join", &plane.server().to_string(), "--token", token]);
    for pin in pins.lines() {
        command.args(["--discovery-token-ca-cert-hash", pin]);
    }
    command
        .args(["--node-name", name])
        .args(["--discovery-timeout", "60s", "--cert-dir"])
        .arg(worker.join("pki"))
        .arg("--kubeconfig-dir")
        .arg(worker);
    let out = run_bounded(command, None, Duration::from_secs(90));
    assert_success(&out, "kubepki join against the API server");
}

/// What a kubelet does on its first start: an ECDSA P-256 key, a CSR for
/// `system:node:<name>` in `system:nodes` sent with `bootstrap-kubelet.conf`, approved by
/// the controllers (`AutoApproved`) and signed; written as `kubelet-client-current.pem`
/// (certificate, then key). Returns that file.
fn kubelet_client_certificate(
    plane: &ControlPlane,
    worker: &Path,
    bootstrap: &Path,
    name: &str,
) -> PathBuf {
    let pki = worker.join("kubelet/pki");
    std::fs::create_dir_all(&pki).expect("the kubelet's pki directory");
    let (key, csr) = (pki.join("kubelet.key"), pki.join("kubelet.csr"));
    let key_arg = key.display().to_string();
    let made = openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        &key_arg,
    ]);
    assert_success(&made, "openssl ecparam -genkey");
    let subject = format!("/O=system:nodes/CN=system:node:{name}");
    let csr_arg = csr.display().to_string();
    let made = openssl(&[
        "req", "-new", "-key", &key_arg, "-subj", &subject, "-out", &csr_arg,
    ]);
    assert_success(&made, "openssl req -new");
    let csr_name = format!("node-csr-{name}");
    let manifest = format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: {csr_name}\nspec:\n  request: {}\n  signerName: kubernetes.io/kube-apiserver-client-kubelet\n  usages: [digital signature, key encipherment, client auth]\n",
        BASE64.encode(std::fs::read(&csr).expect("the CSR"))
    );
    let out =
        plane.kubectl_with_stdin(bootstrap, &["create", "-f", "-"], Some(manifest.as_bytes()));
    assert_success(
        &out,
        "kubectl create of the kubelet's CSR with bootstrap-kubelet.conf",
    );
    let jsonpath = "jsonpath={.status.conditions[0].type}/{.status.conditions[0].reason} {.status.certificate}";
    let answer = plane.wait(
        &format!("CSR {csr_name} approved and signed"),
        CONTROLLER_WAIT,
        |p| {
            let out = p.kubectl(bootstrap, &["get", "csr", &csr_name, "-o", jsonpath]);
            let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            match text.split_once(' ') {
                Some((condition, cert)) if !cert.is_empty() => {
                    Ok((condition.to_string(), cert.to_string()))
                }
                _ => Err(format!("{text:?} {}", String::from_utf8_lossy(&out.stderr))),
            }
        },
    );
    assert_eq!(
        answer.0, "Approved/AutoApproved",
        "CSR {csr_name}'s condition"
    );
    let cert = BASE64.decode(answer.1).expect("a base64 certificate");
    let dated = pki.join("kubelet-client-2026-01-01-00-00-00.pem");
    let key_pem = std::fs::read(&key).expect("the kubelet's key");
    std::fs::write(&dated, [cert, key_pem].concat()).expect("kubelet-client-<time>.pem");
    let pem = pki.join("kubelet-client-current.pem");
    std::os::unix::fs::symlink(&dated, &pem).expect("kubelet-client-current.pem");
    pem
}

/// `kubepki kubelet repair` on the joined worker, whose `kubelet.conf` is broken (as one
/// whose embedded certificate expired is): it is backed up and rewritten as the kubelet
/// writes it after TLS bootstrapping, with bootstrap-kubelet.conf's server and CA and
/// `client-certificate` and `client-key` both naming `pem`; it is then `system:node:<name>`
/// (checked by `nodes_authenticate`).
fn repaired_kubelet_conf(worker: &Path, name: &str, pem: &Path) -> PathBuf {
    let path = worker.join("kubelet.conf");
    std::fs::write(&path, "broken: [").expect("a broken kubelet.conf");
    let backups = worker.join("backups");
    let mut command = Command::new(env!("CARGO_BIN_EXE_kubepki"));
    command
        .args(["kubelet", "repair", "--node-name", name, "--cert-dir"])
        .arg(worker.join("pki"))
        .arg("--kubeconfig-dir")
        .arg(worker)
        .arg("--kubelet-cert-dir")
        .arg(worker.join("kubelet/pki"))
        .arg("--backup-dir")
        .arg(&backups);
    let out = run_bounded(command, None, Duration::from_secs(30));
    assert_success(&out, "kubepki kubelet repair on the worker");
    let generation = crate::kubelet::generation(&backups);
    assert_eq!(
        std::fs::read(generation.join("kubelet.conf"))
            .ok()
            .as_deref(),
        Some(&b"broken: ["[..]),
        "the broken kubelet.conf, kept in a generation"
    );
    let config: serde_yaml::Value =
        serde_yaml::from_slice(&std::fs::read(&path).expect("kubelet.conf")).expect("YAML");
    let bootstrap: serde_yaml::Value = serde_yaml::from_slice(
        &std::fs::read(worker.join("bootstrap-kubelet.conf")).expect("bootstrap-kubelet.conf"),
    )
    .expect("YAML");
    let pem = pem.display().to_string();
    let user = &config["users"][0];
    let cluster = &config["clusters"][0];
    let layout = (
        config["current-context"].as_str(),
        config["contexts"][0]["context"]["namespace"].as_str(),
        cluster["name"].as_str(),
        user["name"].as_str(),
        user["user"]["client-certificate"].as_str(),
        user["user"]["client-key"].as_str(),
    );
    assert_eq!(
        layout,
        (
            Some("default-context"),
            Some("default"),
            Some("default-cluster"),
            Some("default-auth"),
            Some(pem.as_str()),
            Some(pem.as_str())
        ),
        "kubelet.conf's layout, as the kubelet writes it"
    );
    assert_eq!(
        cluster["cluster"], bootstrap["clusters"][0]["cluster"],
        "server and CA from bootstrap-kubelet.conf"
    );
    path
}

/// kube-proxy's `kubeconfig.conf` from its ConfigMap, with a token of its ServiceAccount
/// and the CA a pod is given (`kube-root-ca.crt`) at the paths it names: it is
/// `system:serviceaccount:kube-system:kube-proxy`, may do what `system:node-proxier` allows
/// and no more.
pub fn kube_proxy(plane: &ControlPlane, round: u32) {
    let admin = plane.kubeconfig("super-admin.conf");
    let args = [
        "-n",
        "kube-system",
        "get",
        "configmap",
        "kube-proxy",
        "-o",
        "jsonpath={.data.kubeconfig\\.conf}",
    ];
    let conf = plane.kubectl_ok(&admin, &args);
    assert!(
        conf.contains(POD_TOKEN) && conf.contains(POD_CA),
        "kube-proxy's kubeconfig.conf:\n{conf}"
    );
    let dir = plane.scratch(&format!("kube-proxy-{round}"));
    std::fs::write(
        dir.join("token"),
        request_token(plane, "kube-system", "kube-proxy"),
    )
    .expect("token");
    let args = [
        "-n",
        "kube-system",
        "get",
        "configmap",
        "kube-root-ca.crt",
        "-o",
        "jsonpath={.data.ca\\.crt}",
    ];
    std::fs::write(dir.join("ca.crt"), plane.kubectl_ok(&admin, &args)).expect("ca.crt");
    let conf = conf
        .replace(POD_TOKEN, &dir.join("token").display().to_string())
        .replace(POD_CA, &dir.join("ca.crt").display().to_string());
    let kubeconfig = dir.join("kubeconfig.conf");
    std::fs::write(&kubeconfig, conf).expect("kubeconfig.conf");
    let expected = identity(
        "system:serviceaccount:kube-system:kube-proxy",
        &[
            "system:serviceaccounts",
            "system:serviceaccounts:kube-system",
        ],
    );
    assert_eq!(
        plane.whoami(&kubeconfig),
        expected,
        "kube-proxy's kubeconfig with its token"
    );
    let rights = [
        ("list", "endpoints", "yes"),
        ("watch", "services", "yes"),
        ("get", "nodes", "yes"),
        ("list", "endpointslices.discovery.k8s.io", "yes"),
        ("create", "events", "yes"),
        ("list", "secrets", "no"),
        ("create", "pods", "no"),
    ];
    for (verb, resource, want) in rights {
        let out = plane.kubectl(&kubeconfig, &["auth", "can-i", verb, resource, "-A"]);
        let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(answer, want, "kube-proxy: can-i {verb} {resource}");
    }
    plane.kubectl_ok(&kubeconfig, &["get", "endpoints", "-A"]);
}
