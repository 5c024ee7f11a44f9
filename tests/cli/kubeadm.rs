//! Real kubeadm (the release `scripts/upstream/go.mod` pins, built by
//! `scripts/kubernetes-tier`) as the reference for what kubepki writes (#23), offline:
//!
//! - `kubeadm init phase certs all` and `init phase kubeconfig all`, run with one kubeadm
//!   configuration (v1beta4) whose `certificatesDir` and `--kubeconfig-dir` are under a
//!   temporary directory, against `kubepki init --config` of the same file: every file's
//!   presence and mode, every certificate's subject, issuer, signature and key algorithm,
//!   key size or curve, validity period, extensions (critical flags, key usages, extended key
//!   usages, basic constraints, SANs, key identifiers), every key file's PEM form, and every
//!   kubeconfig's layout (clusters, servers, contexts, users, embedded data) must be the
//!   same; with and without a `controlPlaneEndpoint`, on RSA-2048 and ECDSA-P256.
//! - `kubeadm certs check-expiration` and `certs renew all` on a kubepki tree: kubeadm reads
//!   every kubepki certificate, key and kubeconfig and re-signs the leaves with kubepki's
//!   CAs, and `kubepki certs audit` finds nothing on the tree kubeadm renewed, nor on the
//!   tree kubeadm wrote.

use crate::support::controlplane::{KUBEADM, kubernetes_bin};
use crate::support::proc::run_bounded;
use crate::support::{assert_success, kubepki};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use x509_parser::prelude::{FromDer, X509Certificate};

/// How long one kubeadm run may take (RSA key generation on a loaded machine).
const KUBEADM_TIMEOUT: Duration = Duration::from_secs(120);
/// The node and addresses of the reference configuration.
const NODE: &str = "cp1";
const ADVERTISE: &str = "192.0.2.10";
/// A control-plane endpoint, for the variant that has one.
const ENDPOINT: &str = "cluster.example.test:6443";

#[test]
fn kubepki_writes_what_kubeadm_writes_rsa_2048_with_a_control_plane_endpoint() {
    same_as_kubeadm("RSA-2048", Some(ENDPOINT));
}

#[test]
fn kubepki_writes_what_kubeadm_writes_ecdsa_p256_without_a_control_plane_endpoint() {
    same_as_kubeadm("ECDSA-P256", None);
}

#[test]
fn kubepki_writes_what_kubeadm_writes_ecdsa_p256_with_a_control_plane_endpoint() {
    same_as_kubeadm("ECDSA-P256", Some(ENDPOINT));
}

#[test]
fn kubepki_writes_what_kubeadm_writes_rsa_2048_without_a_control_plane_endpoint() {
    same_as_kubeadm("RSA-2048", None);
}

#[test]
fn kubeadm_checks_and_renews_a_kubepki_tree_and_kubepki_audits_kubeadms() {
    for algorithm in ["RSA-2048", "ECDSA-P256"] {
        // kubeadm's certs commands read kubeconfigs only from /etc/kubernetes: they run
        // chrooted (`--rootfs`) into a root whose /etc/kubernetes is the kubepki tree.
        let work = tempfile::tempdir().expect("a work directory");
        let root = work.path().join("root");
        let tree = root.join("etc/kubernetes");
        let host_config = work.path().join("kubepki-config.yaml");
        let pki = tree.join("pki").display().to_string();
        write_config(&host_config, &pki, algorithm, Some(ENDPOINT));
        kubepki_init(&host_config, &tree);
        let chroot_config = root.join("kubeadm-config.yaml");
        write_config(
            &chroot_config,
            "/etc/kubernetes/pki",
            algorithm,
            Some(ENDPOINT),
        );
        let rootfs = root.display().to_string();
        let chrooted = |command: &[&str]| {
            let mut args = vec!["--rootfs", &rootfs];
            args.extend(command);
            args.extend(["--config", "/kubeadm-config.yaml"]);
            kubeadm(&args)
        };
        let table = stdout(
            &chrooted(&["certs", "check-expiration"]),
            "kubeadm certs check-expiration",
        );
        expiration_table_lists_everything(&table, algorithm);

        let before = std::fs::read(tree.join("pki/apiserver.crt")).expect("apiserver.crt");
        stdout(
            &chrooted(&["certs", "renew", "all"]),
            "kubeadm certs renew all",
        );
        let after = std::fs::read(tree.join("pki/apiserver.crt")).expect("apiserver.crt");
        assert_ne!(
            before, after,
            "{algorithm}: kubeadm renewed no apiserver.crt"
        );
        audit_is_clean(&host_config, &tree, "the kubepki tree kubeadm renewed");

        let kubeadm_root = work.path().join("kubeadm");
        let kubeadm_config = work.path().join("kubeadm-config.yaml");
        let kubeadm_pki = kubeadm_root.join("pki").display().to_string();
        write_config(&kubeadm_config, &kubeadm_pki, algorithm, Some(ENDPOINT));
        std::fs::create_dir_all(&kubeadm_root).expect("a tree root");
        kubeadm_init_phases(&kubeadm_config, &kubeadm_root);
        audit_is_clean(&kubeadm_config, &kubeadm_root, "the tree kubeadm wrote");
    }
}

/// kubeadm's and kubepki's trees for one configuration, described field by field, are the
/// same; else every difference, one a line.
fn same_as_kubeadm(algorithm: &str, endpoint: Option<&str>) {
    let work = tempfile::tempdir().expect("a work directory");
    let kubeadm_root = work.path().join("kubeadm");
    let kubepki_root = work.path().join("kubepki");
    let kubeadm_config = work.path().join("kubeadm-config.yaml");
    let kubepki_config = work.path().join("kubepki-config.yaml");
    let pki = |root: &Path| root.join("pki").display().to_string();
    write_config(&kubeadm_config, &pki(&kubeadm_root), algorithm, endpoint);
    write_config(&kubepki_config, &pki(&kubepki_root), algorithm, endpoint);
    std::fs::create_dir_all(&kubeadm_root).expect("a tree root");
    kubeadm_init_phases(&kubeadm_config, &kubeadm_root);
    kubepki_init(&kubepki_config, &kubepki_root);
    let reference = describe_tree(&kubeadm_root);
    let ours = describe_tree(&kubepki_root);
    assert!(
        reference.len() > 100,
        "kubeadm's tree described in only {} fields:\n{reference:#?}",
        reference.len()
    );
    let differences = differences(&reference, &ours);
    assert!(
        differences.is_empty(),
        "{algorithm}, control-plane endpoint {endpoint:?}: kubepki's tree differs from kubeadm's \
         in {} fields (field: kubeadm | kubepki):\n{}",
        differences.len(),
        differences.join("\n")
    );
    let kubelet_server = reference.get("kubelet.conf clusters[0].cluster.server");
    eprintln!(
        "{algorithm}, endpoint {endpoint:?}: kubeadm's kubelet.conf server {kubelet_server:?}"
    );
}

/// Writes `file`: the kubeadm configuration both tools are given, node `cp1` advertising
/// 192.0.2.10, extra SANs for the API server and etcd, `certificatesDir` `pki`.
fn write_config(file: &Path, pki: &str, algorithm: &str, endpoint: Option<&str>) {
    let endpoint = endpoint
        .map(|e| format!("controlPlaneEndpoint: {e}\n"))
        .unwrap_or_default();
    let version = kubeadm_version();
    let text = format!(
        "apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: {ADVERTISE}
  bindPort: 6443
nodeRegistration:
  name: {NODE}
  criSocket: unix:///var/run/containerd/containerd.sock
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: {version}
clusterName: kubernetes
{endpoint}certificatesDir: {pki}
networking:
  serviceSubnet: 10.96.0.0/12
  dnsDomain: cluster.local
apiServer:
  certSANs:
  - api.example.test
  - 198.51.100.7
etcd:
  local:
    serverCertSANs:
    - etcd.example.test
    peerCertSANs:
    - 198.51.100.8
encryptionAlgorithm: {algorithm}
"
    );
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).expect("the configuration's directory");
    }
    std::fs::write(file, text).expect("the configuration");
}

/// `kubeadm version -o short`: the release the configuration names.
fn kubeadm_version() -> String {
    let out = kubeadm(&["version", "-o", "short"]);
    stdout(&out, "kubeadm version").trim().to_string()
}

/// `kubeadm init phase certs all` and `init phase kubeconfig all` with `config`, the
/// kubeconfigs in `root`.
fn kubeadm_init_phases(config: &Path, root: &Path) {
    let config = config.display().to_string();
    let root = root.display().to_string();
    let certs = ["init", "phase", "certs", "all", "--config", &config];
    stdout(&kubeadm(&certs), "kubeadm init phase certs all");
    let kubeconfigs = [
        "init",
        "phase",
        "kubeconfig",
        "all",
        "--config",
        &config,
        "--kubeconfig-dir",
        &root,
    ];
    stdout(&kubeadm(&kubeconfigs), "kubeadm init phase kubeconfig all");
}

/// `kubepki init --config` with the same file, the kubeconfigs in `root`.
fn kubepki_init(config: &Path, root: &Path) {
    std::fs::create_dir_all(root).expect("a tree root");
    let config = config.display().to_string();
    let root_arg = root.display().to_string();
    let out = kubepki(&["init", "--config", &config, "--kubeconfig-dir", &root_arg]);
    assert_success(&out, "kubepki init --config");
}

/// Runs the built kubeadm with `args`, bounded in time, never touching the host's
/// /etc/kubernetes (every command here names its directories or runs chrooted).
fn kubeadm(args: &[&str]) -> Output {
    let mut command = Command::new(kubernetes_bin().join(KUBEADM));
    command.args(args);
    run_bounded(command, None, KUBEADM_TIMEOUT)
}

/// stdout of a run that must succeed.
fn stdout(out: &Output, what: &str) -> String {
    assert_success(out, what);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// kubeadm's expiration table names every certificate and kubeconfig, each with its CA and
/// a residual time of about a year (364d), the CAs about ten years; none is missing or
/// unreadable.
fn expiration_table_lists_everything(table: &str, algorithm: &str) {
    let rows = [
        ("admin.conf", "ca"),
        ("apiserver", "ca"),
        ("apiserver-etcd-client", "etcd-ca"),
        ("apiserver-kubelet-client", "ca"),
        ("controller-manager.conf", "ca"),
        ("etcd-healthcheck-client", "etcd-ca"),
        ("etcd-peer", "etcd-ca"),
        ("etcd-server", "etcd-ca"),
        ("front-proxy-client", "front-proxy-ca"),
        ("scheduler.conf", "ca"),
        ("super-admin.conf", "ca"),
    ];
    for (name, ca) in rows {
        let line = table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{algorithm}: no row {name} in kubeadm's table:\n{table}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        assert!(
            words.contains(&ca) && words.contains(&"364d") && words.last() == Some(&"no"),
            "{algorithm}: kubeadm's row of {name} (CA {ca}, 364d, not externally managed):\n{table}"
        );
    }
    for ca in ["ca", "etcd-ca", "front-proxy-ca"] {
        let line = table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(ca))
            .unwrap_or_else(|| panic!("{algorithm}: no CA row {ca} in kubeadm's table:\n{table}"));
        assert!(
            line.contains("9y") && line.trim_end().ends_with("no"),
            "{algorithm}: kubeadm's row of CA {ca} (9y left, not external):\n{table}"
        );
    }
    let lowered = table.to_lowercase();
    assert!(
        !lowered.contains("missing") && !lowered.contains("invalid"),
        "{algorithm}: kubeadm's table reports something missing or invalid:\n{table}"
    );
}

/// `kubepki certs audit --config` finds nothing on the tree at `root` (exit 0).
fn audit_is_clean(config: &Path, root: &Path, what: &str) {
    let config = config.display().to_string();
    let root_arg = root.display().to_string();
    let pki = root.join("pki").display().to_string();
    let out = kubepki(&[
        "certs",
        "audit",
        "--config",
        &config,
        "--cert-dir",
        &pki,
        "--kubeconfig-dir",
        &root_arg,
    ]);
    assert_success(&out, &format!("kubepki certs audit of {what}"));
}

/// Every field where `reference` and `ours` differ, as `field: reference | ours`.
fn differences(
    reference: &BTreeMap<String, String>,
    ours: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut fields: Vec<&String> = reference.keys().chain(ours.keys()).collect();
    fields.sort();
    fields.dedup();
    let none = "(absent)".to_string();
    fields
        .into_iter()
        .filter(|f| reference.get(*f) != ours.get(*f))
        .map(|f| {
            let a = reference.get(f).unwrap_or(&none);
            let b = ours.get(f).unwrap_or(&none);
            format!("{f}: {a} | {b}")
        })
        .collect()
}

/// The tree at `root` as `field -> value`: every file's mode, every certificate's fields,
/// every key's PEM form, every kubeconfig's layout. Values that must differ between two
/// trees (key material, serials, signatures, times) are left out; the validity period is
/// kept in minutes.
fn describe_tree(root: &Path) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    // kubepki's additions: `bootstrap/` (the cluster objects kubeadm creates through the API)
    // and `kubepki-config.yaml` (the settings the tree was issued for; kubeadm keeps them
    // only in the cluster's kubeadm-config ConfigMap).
    let bootstrap = root.join("bootstrap");
    let record = root.join("kubepki-config.yaml");
    for path in files(root)
        .into_iter()
        .filter(|p| !p.starts_with(&bootstrap) && *p != record)
    {
        let rel = path
            .strip_prefix(root)
            .expect("below the root")
            .display()
            .to_string();
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o7777;
        fields.insert(format!("{rel} mode"), format!("{mode:o}"));
        let bytes = std::fs::read(&path).expect("a file of the tree");
        if rel.ends_with(".crt") {
            describe_certificate(&rel, &pem_body(&bytes, "CERTIFICATE"), &mut fields);
        } else if rel.ends_with(".key") || rel.ends_with(".pub") {
            fields.insert(format!("{rel} pem"), pem_form(&bytes));
        } else if rel.ends_with(".conf") {
            describe_kubeconfig(&rel, &bytes, &mut fields);
        }
    }
    fields
}

/// Every file below `dir`, recursively, in a stable order.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("an entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// A PEM file's form: its labels and the size of each decoded block (which tells PKCS#1
/// from PKCS#8 and SEC1, and an RSA-2048 key from a P-256 one).
fn pem_form(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut form = Vec::new();
    let mut label = None;
    let mut body = String::new();
    for line in text.lines() {
        if let Some(begin) = line.strip_prefix("-----BEGIN ") {
            label = Some(begin.trim_end_matches('-').to_string());
            body.clear();
        } else if line.starts_with("-----END ") {
            let size = base64_len(&body);
            form.push(format!(
                "{} ({size} bytes)",
                label.take().unwrap_or_default()
            ));
        } else {
            body.push_str(line.trim());
        }
    }
    let size_free: Vec<String> = form
        .iter()
        .map(|f| {
            // DER sizes of RSA keys vary by a byte or two with their numbers: keep the label
            // and the size to the nearest 16 bytes.
            let (label, rest) = f.split_once(" (").unwrap_or((f, ""));
            let size: usize = rest.trim_end_matches(" bytes)").parse().unwrap_or_default();
            format!("{label} (~{} bytes)", size.div_ceil(16) * 16)
        })
        .collect();
    size_free.join(", ")
}

/// The length of base64 `text` decoded.
fn base64_len(text: &str) -> usize {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map(|d| d.len())
        .unwrap_or_default()
}

/// The DER of the first `label` block of a PEM file.
fn pem_body(bytes: &[u8], label: &str) -> Vec<u8> {
    use base64::Engine as _;
    let text = String::from_utf8_lossy(bytes);
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body: String = text
        .split(&begin)
        .nth(1)
        .and_then(|rest| rest.split(&end).next())
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap_or_default()
}

/// A certificate's fields under `name`.
fn describe_certificate(name: &str, der: &[u8], fields: &mut BTreeMap<String, String>) {
    let mut put = |field: &str, value: String| {
        fields.insert(format!("{name} {field}"), value);
    };
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        put("parse", "not a certificate".into());
        return;
    };
    put("version", format!("{:?}", cert.version()));
    put("subject", cert.subject().to_string());
    put("issuer", cert.issuer().to_string());
    put(
        "signature algorithm",
        cert.signature_algorithm.algorithm.to_id_string(),
    );
    let spki = cert.public_key();
    put("key algorithm", spki.algorithm.algorithm.to_id_string());
    let parameters = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|oid| oid.to_id_string())
        .unwrap_or_else(|| "none".into());
    put("key parameters", parameters);
    let size = match spki.parsed() {
        Ok(key) => key.key_size().to_string(),
        Err(_) => "unparsed".into(),
    };
    put("key size", size);
    let validity = cert.validity();
    let seconds = validity.not_after.timestamp() - validity.not_before.timestamp();
    put("validity (minutes)", ((seconds + 30) / 60).to_string());
    put(
        "serial positive and at most 20 bytes",
        (cert.raw_serial().len() <= 20 && cert.raw_serial().first().is_some_and(|b| *b < 0x80))
            .to_string(),
    );
    let mut oids = Vec::new();
    for ext in cert.extensions() {
        let oid = ext.oid.to_id_string();
        oids.push(oid.clone());
        put(
            &format!("extension {oid} critical"),
            ext.critical.to_string(),
        );
        let value = match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                format!("{} bytes", id.0.len())
            }
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(aki) => format!(
                "key id {:?} bytes, issuer {}, serial {}",
                aki.key_identifier.as_ref().map(|k| k.0.len()),
                aki.authority_cert_issuer.is_some(),
                aki.authority_cert_serial.is_some()
            ),
            x509_parser::extensions::ParsedExtension::SubjectAlternativeName(san) => {
                let mut names: Vec<String> =
                    san.general_names.iter().map(|n| n.to_string()).collect();
                names.sort();
                names.join(", ")
            }
            parsed => format!("{parsed:?}"),
        };
        put(&format!("extension {oid}"), value);
    }
    oids.sort();
    put("extensions", oids.join(" "));
}

/// A kubeconfig's layout under `name`: every scalar by its path, the embedded data
/// described (a certificate by its fields, a key by its PEM form) rather than compared.
fn describe_kubeconfig(name: &str, bytes: &[u8], fields: &mut BTreeMap<String, String>) {
    let Ok(value) = serde_yaml::from_slice::<serde_yaml::Value>(bytes) else {
        fields.insert(format!("{name} parse"), "not YAML".into());
        return;
    };
    walk(name, "", &value, fields);
}

/// Records every scalar of `value` below `path`.
fn walk(name: &str, path: &str, value: &serde_yaml::Value, fields: &mut BTreeMap<String, String>) {
    use base64::Engine as _;
    use serde_yaml::Value;
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::Mapping(map) => {
            if map.is_empty() {
                fields.insert(format!("{name} {path}"), "{}".into());
            }
            for (key, child) in map {
                let key = key.as_str().unwrap_or("?");
                walk(name, &join(key), child, fields);
            }
        }
        Value::Sequence(items) => {
            fields.insert(format!("{name} {path} length"), items.len().to_string());
            for (i, child) in items.iter().enumerate() {
                walk(name, &format!("{path}[{i}]"), child, fields);
            }
        }
        Value::String(text) if path.ends_with("-data") => {
            let pem = base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap_or_default();
            if path.ends_with("client-certificate-data") {
                describe_certificate(
                    &format!("{name} {path}"),
                    &pem_body(&pem, "CERTIFICATE"),
                    fields,
                );
            } else if path.ends_with("certificate-authority-data") {
                let der = pem_body(&pem, "CERTIFICATE");
                let subject = X509Certificate::from_der(&der)
                    .map(|(_, c)| c.subject().to_string())
                    .unwrap_or_else(|_| "not a certificate".into());
                fields.insert(format!("{name} {path}"), format!("the CA {subject}"));
            } else {
                fields.insert(format!("{name} {path}"), pem_form(&pem));
            }
        }
        Value::String(text) => {
            fields.insert(format!("{name} {path}"), text.clone());
        }
        other => {
            fields.insert(format!("{name} {path}"), format!("{other:?}"));
        }
    }
}
