//! An independent check of a tree on disk, for tests that kill or race kubepki: every
//! certificate that exists sits beside the key it matches and verifies against its CA. It
//! reads the files with x509-parser and aws-lc-rs directly, never with kubepki's own code.

use super::TempTree;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};
use base64::Engine;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use x509_parser::prelude::{FromDer, X509Certificate};

/// Certificate and key pairs under the cert dir (stem without extension) and their CA's stem.
pub const PAIRS: &[(&str, &str)] = &[
    ("ca", "ca"),
    ("apiserver", "ca"),
    ("apiserver-kubelet-client", "ca"),
    ("front-proxy-ca", "front-proxy-ca"),
    ("front-proxy-client", "front-proxy-ca"),
    ("etcd/ca", "etcd/ca"),
    ("etcd/server", "etcd/ca"),
    ("etcd/peer", "etcd/ca"),
    ("etcd/healthcheck-client", "etcd/ca"),
    ("apiserver-etcd-client", "etcd/ca"),
];

/// Kubeconfigs in the kubeconfig dir, all with a client certificate from the cluster CA.
pub const KUBECONFIGS: &[&str] = &[
    "admin.conf",
    "super-admin.conf",
    "kubelet.conf",
    "controller-manager.conf",
    "scheduler.conf",
];

/// Each kubeconfig `init` writes, with the user and groups of its client certificate (what
/// the API server must see).
pub const KUBECONFIG_IDENTITIES: [(&str, &str, &[&str]); 5] = [
    (
        "admin.conf",
        "kubernetes-admin",
        &["kubeadm:cluster-admins"],
    ),
    (
        "super-admin.conf",
        "kubernetes-super-admin",
        &["system:masters"],
    ),
    (
        "controller-manager.conf",
        "system:kube-controller-manager",
        &[],
    ),
    ("scheduler.conf", "system:kube-scheduler", &[]),
    ("kubelet.conf", "system:node:cp1", &["system:nodes"]),
];

/// The files, below the cert dir, that every control-plane host shares (kubeadm's
/// `certsToTransfer` with a local etcd).
pub const SHARED_FILES: [&str; 8] = [
    "ca.crt",
    "ca.key",
    "front-proxy-ca.crt",
    "front-proxy-ca.key",
    "etcd/ca.crt",
    "etcd/ca.key",
    "sa.key",
    "sa.pub",
];

/// Keys that must never change once written: the CA keys and the service-account key.
pub const STABLE_KEYS: &[&str] = &["ca.key", "front-proxy-ca.key", "etcd/ca.key", "sa.key"];

/// Suffix of a renewal's staged file, and the marker of a temp file (see `store.rs`).
const STAGED_SUFFIX: &str = ".kubepki-staged";
const TEMP_MARKER: &str = ".kubepki-tmp-";

/// What a check found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Broken invariants, one line each.
    pub problems: Vec<String>,
    /// Certificates and kubeconfigs present and sound.
    pub sound: usize,
    /// Pairs caught between a renewal's two renames: the new key in place, the new
    /// certificate staged beside it (allowed until the next writing command).
    pub pending: usize,
}

impl Findings {
    /// Whether the whole tree is present and sound: every pair and kubeconfig, no problem.
    pub fn complete(&self) -> bool {
        self.problems.is_empty()
            && self.pending == 0
            && self.sound == PAIRS.len() + KUBECONFIGS.len()
    }
}

/// Every certificate of `tree` sits beside its own key (a pair caught between its renames,
/// its new key in place and its certificate staged, counts as its staged certificate's),
/// whoever signed it: what holds at every instant of a rotation, when the CA that signs and
/// the one a file names may differ. One line per mismatch.
pub fn mismatched_keys(tree: &TempTree) -> Vec<String> {
    let mut problems = Vec::new();
    for (stem, _) in PAIRS {
        let pki = tree.pki();
        let Ok(cert) = std::fs::read(pki.join(format!("{stem}.crt"))) else {
            continue;
        };
        let key = std::fs::read(pki.join(format!("{stem}.key"))).unwrap_or_default();
        if let Err(problem) = key_matches(&cert, &key) {
            if !staged_cert_matches(&pki, stem, &key) {
                problems.push(format!("{stem}.crt: {problem}"));
            }
        }
    }
    for name in KUBECONFIGS {
        let Ok(text) = std::fs::read(tree.root().join(name)) else {
            continue;
        };
        let matched = embedded_credentials(&text).and_then(|(cert, key)| key_matches(&cert, &key));
        if let Err(problem) = matched {
            problems.push(format!("{name}: {problem}"));
        }
    }
    problems
}

/// Checks every pair and kubeconfig of `tree` that exists.
pub fn check_tree(tree: &TempTree) -> Findings {
    let mut findings = Findings::default();
    for (stem, ca) in PAIRS {
        check_pair(&tree.pki(), stem, ca, &mut findings);
    }
    for name in KUBECONFIGS {
        check_kubeconfig(tree, name, &mut findings);
    }
    findings
}

fn check_pair(pki: &Path, stem: &str, ca: &str, findings: &mut Findings) {
    let cert_path = pki.join(format!("{stem}.crt"));
    let Ok(cert_pem) = std::fs::read(&cert_path) else {
        return;
    };
    let key = std::fs::read(pki.join(format!("{stem}.key"))).unwrap_or_default();
    let verdict = verify(&cert_pem, &key, &pki.join(format!("{ca}.crt")));
    match verdict {
        Ok(()) => findings.sound += 1,
        Err(_) if staged_cert_matches(pki, stem, &key) => findings.pending += 1,
        Err(problem) => findings
            .problems
            .push(format!("{}: {problem}", cert_path.display())),
    }
}

/// Whether a staged certificate for `stem` exists and matches the key in place.
fn staged_cert_matches(pki: &Path, stem: &str, key: &[u8]) -> bool {
    let path = Path::new(stem);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let staged = pki
        .join(path.parent().unwrap_or(Path::new("")))
        .join(format!(".{name}.crt{STAGED_SUFFIX}"));
    std::fs::read(staged).is_ok_and(|cert| key_matches(&cert, key).is_ok())
}

fn check_kubeconfig(tree: &TempTree, name: &str, findings: &mut Findings) {
    let path = tree.root().join(name);
    let Ok(text) = std::fs::read(&path) else {
        return;
    };
    let credentials = embedded_credentials(&text);
    let verdict =
        credentials.and_then(|(cert, key)| verify(&cert, &key, &tree.pki().join("ca.crt")));
    match verdict {
        Ok(()) => findings.sound += 1,
        Err(problem) => findings
            .problems
            .push(format!("{}: {problem}", path.display())),
    }
}

/// The client certificate and key PEMs embedded in a kubeconfig.
fn embedded_credentials(text: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let doc: serde_yaml::Value =
        serde_yaml::from_slice(text).map_err(|e| format!("not YAML: {e}"))?;
    let user = &doc["users"][0]["user"];
    let field = |name: &str| {
        let data = user[name].as_str().ok_or(format!("no {name}"))?;
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| format!("{name}: {e}"))
    };
    Ok((field("client-certificate-data")?, field("client-key-data")?))
}

/// The certificate parses, matches `key`, and is signed by the CA certificate at `ca_path`.
fn verify(cert_pem: &[u8], key: &[u8], ca_path: &Path) -> Result<(), String> {
    key_matches(cert_pem, key)?;
    let ca_pem =
        std::fs::read(ca_path).map_err(|e| format!("its CA {}: {e}", ca_path.display()))?;
    let ca_der = cert_der(&ca_pem)?;
    let (_, ca) = X509Certificate::from_der(&ca_der).map_err(|e| format!("CA: {e}"))?;
    let der = cert_der(cert_pem)?;
    let (_, cert) = X509Certificate::from_der(&der).map_err(|e| format!("certificate: {e}"))?;
    cert.verify_signature(Some(ca.public_key()))
        .map_err(|e| format!("not signed by {}: {e}", ca_path.display()))
}

fn cert_der(pem: &[u8]) -> Result<Vec<u8>, String> {
    rustls_pki_types::CertificateDer::from_pem_slice(pem)
        .map(|der| der.to_vec())
        .map_err(|e| format!("no certificate PEM: {e:?}"))
}

/// Whether the private key PEM `key` is the key of the certificate PEM `cert_pem`.
pub fn key_matches(cert_pem: &[u8], key: &[u8]) -> Result<(), String> {
    let der = cert_der(cert_pem)?;
    let (_, cert) = X509Certificate::from_der(&der).map_err(|e| format!("certificate: {e}"))?;
    let cert_public = cert.public_key().subject_public_key.data.to_vec();
    let key_public = public_key_of(key)?;
    if cert_public == key_public {
        Ok(())
    } else {
        Err("the key beside it does not match".into())
    }
}

/// The public key (RSAPublicKey DER, or the EC point) of a PKCS#1 or SEC1 private key PEM.
fn public_key_of(key: &[u8]) -> Result<Vec<u8>, String> {
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("no key PEM: {e:?}"))?;
    match key {
        PrivateKeyDer::Pkcs1(der) => aws_lc_rs::rsa::KeyPair::from_der(der.secret_pkcs1_der())
            .map(|pair| pair.public_key().as_ref().to_vec())
            .map_err(|e| format!("RSA key: {e}")),
        PrivateKeyDer::Sec1(der) => [
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        ]
        .into_iter()
        .find_map(|alg| EcdsaKeyPair::from_private_key_der(alg, der.secret_sec1_der()).ok())
        .map(|pair| pair.public_key().as_ref().to_vec())
        .ok_or_else(|| "EC key: not P-256 or P-384".to_string()),
        _ => Err("not a PKCS#1 or SEC1 key, as kubeadm writes".into()),
    }
}

/// The stable keys present in `tree`, by file.
pub fn stable_keys(tree: &TempTree) -> BTreeMap<&'static str, Vec<u8>> {
    STABLE_KEYS
        .iter()
        .filter_map(|rel| Some((*rel, std::fs::read(tree.pki().join(rel)).ok()?)))
        .collect()
}

/// Temp and staged files anywhere below the tree's root.
pub fn leftovers(tree: &TempTree) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![tree.root().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            } else if name.contains(TEMP_MARKER) || name.ends_with(STAGED_SUFFIX) {
                found.push(entry.path());
            }
        }
    }
    found
}
