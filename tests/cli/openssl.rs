//! `kubepki init` output checked by the openssl CLI, once per `--encryption-algorithm`.
//!
//! One table, [`CERTS`], holds what kubeadm writes for every certificate (file or kubeconfig):
//! issuer, role (which fixes key usages, EKU, basic constraints, validity and the verify
//! purposes), subject and SANs (`shared/reference/kubeadm-pki.md` §2–4). Each row is checked
//! with `openssl verify`, `x509`, `pkey`, `rsa`, `ec` and `asn1parse`; every mismatch is
//! collected so one failing run reports all of them. This module never reads certificates
//! with a Rust parser: openssl is the independent judge.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;

use crate::support::{TempTree, openssl};

/// One `--encryption-algorithm` value and what openssl must show for its keys and signatures.
struct Algorithm {
    name: &'static str,
    key: KeyKind,
    signature: &'static str,
}

/// The private-key type of an algorithm.
enum KeyKind {
    Rsa { bits: u32 },
    Ec { curve: &'static str, bits: u32 },
}

/// What a certificate is for: fixes key usages, EKU, CA flag, verify purposes and validity.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    Ca,
    Server,
    Client,
    ServerClient,
}

/// Where a certificate and its key live.
enum Source {
    /// `<pki>/<base>.crt` and `<pki>/<base>.key`.
    Pki(&'static str),
    /// The embedded client certificate and key of `<root>/<file>`.
    Kubeconfig(&'static str),
}

/// Expectations for one certificate, from the reference tables.
struct Expect {
    source: Source,
    /// The `<pki>` base of the issuing CA (the row's own base for a CA).
    issuer: &'static str,
    role: Role,
    /// Subject RDNs in certificate order (O before CN), as `(attribute, value)`.
    subject: &'static [(&'static str, &'static str)],
    /// subjectAltName entries in openssl's spelling; empty means the extension is absent.
    sans: &'static [&'static str],
}

const HOUR: i64 = 3600;
/// kubeadm back-dates NotBefore by 5 minutes: a leaf spans 8760h + 5m, a CA 87600h + 5m.
const BACKDATE: i64 = 5 * 60;
/// Slack for "≈" comparisons of instants and durations, in seconds.
const SLACK: i64 = 60;

const APISERVER_SANS: &[&str] = &[
    "DNS:cp1",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
    "IP Address:10.96.0.1",
    "IP Address:127.0.0.1",
];
const ETCD_SANS: &[&str] = &[
    "DNS:cp1",
    "DNS:localhost",
    "IP Address:127.0.0.1",
    "IP Address:::1",
];

/// Every certificate of a tree made by `TempTree::init` (node `cp1`, advertise 127.0.0.1).
const CERTS: &[Expect] = &[
    ca("ca", &[("CN", "kubernetes")], &["DNS:kubernetes"]),
    leaf(
        "apiserver",
        "ca",
        Role::Server,
        &[("CN", "kube-apiserver")],
        APISERVER_SANS,
    ),
    leaf(
        "apiserver-kubelet-client",
        "ca",
        Role::Client,
        &[("CN", "kube-apiserver-kubelet-client")],
        &[],
    ),
    ca(
        "front-proxy-ca",
        &[("CN", "front-proxy-ca")],
        &["DNS:front-proxy-ca"],
    ),
    leaf(
        "front-proxy-client",
        "front-proxy-ca",
        Role::Client,
        &[("CN", "front-proxy-client")],
        &[],
    ),
    ca("etcd/ca", &[("CN", "etcd-ca")], &["DNS:etcd-ca"]),
    leaf(
        "etcd/server",
        "etcd/ca",
        Role::ServerClient,
        &[("CN", "cp1")],
        ETCD_SANS,
    ),
    leaf(
        "etcd/peer",
        "etcd/ca",
        Role::ServerClient,
        &[("CN", "cp1")],
        ETCD_SANS,
    ),
    leaf(
        "etcd/healthcheck-client",
        "etcd/ca",
        Role::Client,
        &[("CN", "kube-etcd-healthcheck-client")],
        &[],
    ),
    leaf(
        "apiserver-etcd-client",
        "etcd/ca",
        Role::Client,
        &[("CN", "kube-apiserver-etcd-client")],
        &[],
    ),
    kubeconfig(
        "admin.conf",
        &[("O", "kubeadm:cluster-admins"), ("CN", "kubernetes-admin")],
    ),
    kubeconfig(
        "super-admin.conf",
        &[("O", "system:masters"), ("CN", "kubernetes-super-admin")],
    ),
    kubeconfig(
        "controller-manager.conf",
        &[("CN", "system:kube-controller-manager")],
    ),
    kubeconfig("scheduler.conf", &[("CN", "system:kube-scheduler")]),
    kubeconfig(
        "kubelet.conf",
        &[("O", "system:nodes"), ("CN", "system:node:cp1")],
    ),
];

const fn ca(
    base: &'static str,
    subject: &'static [(&'static str, &'static str)],
    sans: &'static [&'static str],
) -> Expect {
    Expect {
        source: Source::Pki(base),
        issuer: base,
        role: Role::Ca,
        subject,
        sans,
    }
}

const fn leaf(
    base: &'static str,
    issuer: &'static str,
    role: Role,
    subject: &'static [(&'static str, &'static str)],
    sans: &'static [&'static str],
) -> Expect {
    Expect {
        source: Source::Pki(base),
        issuer,
        role,
        subject,
        sans,
    }
}

const fn kubeconfig(
    file: &'static str,
    subject: &'static [(&'static str, &'static str)],
) -> Expect {
    Expect {
        source: Source::Kubeconfig(file),
        issuer: "ca",
        role: Role::Client,
        subject,
        sans: &[],
    }
}

impl Role {
    fn key_usage(self) -> &'static str {
        match self {
            Role::Ca => "Digital Signature, Key Encipherment, Certificate Sign",
            _ => "Digital Signature, Key Encipherment",
        }
    }

    fn ext_key_usage(self) -> Option<&'static str> {
        match self {
            Role::Ca => None,
            Role::Server => Some("TLS Web Server Authentication"),
            Role::Client => Some("TLS Web Client Authentication"),
            Role::ServerClient => {
                Some("TLS Web Server Authentication, TLS Web Client Authentication")
            }
        }
    }

    fn purposes(self) -> &'static [&'static str] {
        match self {
            Role::Ca => &["any"],
            Role::Server => &["sslserver"],
            Role::Client => &["sslclient"],
            Role::ServerClient => &["sslserver", "sslclient"],
        }
    }

    /// NotAfter − NotBefore, in seconds.
    fn lifetime(self) -> i64 {
        let hours = if self == Role::Ca { 87600 } else { 8760 };
        hours * HOUR + BACKDATE
    }
}

/// Mismatches found so far; the test fails once, listing all of them.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    fn check(&mut self, ok: bool, describe: impl FnOnce() -> String) {
        if !ok {
            self.0.push(describe());
        }
    }

    fn check_eq<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, actual: T, expected: T) {
        self.check(actual == expected, || {
            format!("{what}: got {actual:?}, want {expected:?}")
        });
    }
}

/// Everything one algorithm's run shares: the tree, the run's time window, a scratch dir.
struct Run<'a> {
    tree: TempTree,
    alg: &'a Algorithm,
    /// Unix seconds just before and just after `kubepki init`.
    started: i64,
    finished: i64,
    scratch: tempfile::TempDir,
}

/// A certificate and its private key as files openssl can read.
struct Pair {
    name: String,
    crt: PathBuf,
    key: PathBuf,
}

#[test]
fn rsa_2048() {
    check_tree(&Algorithm {
        name: "RSA-2048",
        key: KeyKind::Rsa { bits: 2048 },
        signature: RSA_SIG,
    });
}

#[test]
fn rsa_3072() {
    check_tree(&Algorithm {
        name: "RSA-3072",
        key: KeyKind::Rsa { bits: 3072 },
        signature: RSA_SIG,
    });
}

#[test]
fn rsa_4096() {
    check_tree(&Algorithm {
        name: "RSA-4096",
        key: KeyKind::Rsa { bits: 4096 },
        signature: RSA_SIG,
    });
}

#[test]
fn ecdsa_p256() {
    let key = KeyKind::Ec {
        curve: "prime256v1",
        bits: 256,
    };
    check_tree(&Algorithm {
        name: "ECDSA-P256",
        key,
        signature: "ecdsa-with-SHA256",
    });
}

#[test]
fn ecdsa_p384() {
    let key = KeyKind::Ec {
        curve: "secp384r1",
        bits: 384,
    };
    check_tree(&Algorithm {
        name: "ECDSA-P384",
        key,
        signature: "ecdsa-with-SHA384",
    });
}

const RSA_SIG: &str = "sha256WithRSAEncryption";

/// Runs `kubepki init` with `alg` and checks every file it wrote.
fn check_tree(alg: &Algorithm) {
    let tree = TempTree::new();
    let started = unix_now();
    tree.init(alg.name, &[]);
    let finished = unix_now();
    let scratch = tempfile::tempdir().expect("scratch dir");
    let run = Run {
        tree,
        alg,
        started,
        finished,
        scratch,
    };
    let mut findings = Findings::default();
    for expect in CERTS {
        check_cert(&run, expect, &mut findings);
    }
    check_service_account(&run, &mut findings);
    check_modes(&run.tree, &mut findings);
    assert!(
        findings.0.is_empty(),
        "{}: {} mismatch(es) with kubeadm:\n  {}",
        alg.name,
        findings.0.len(),
        findings.0.join("\n  ")
    );
}

fn check_cert(run: &Run, expect: &Expect, findings: &mut Findings) {
    let pair = match pair_files(run, expect, findings) {
        Ok(pair) => pair,
        Err(why) => return findings.0.push(why),
    };
    check_private_key(&pair.name, &pair.key, run.alg, findings);
    check_key_matches_cert(&pair, findings);
    check_verify(run, expect, &pair, findings);
    check_names(run, expect, &pair, findings);
    check_extensions(run, expect, &pair, findings);
    check_signature(run.alg, &pair, findings);
    check_validity(run, expect, &pair, findings);
}

/// The row's cert and key files; for a kubeconfig, its embedded data decoded into the scratch
/// dir, after checking that its CA data is `ca.crt`.
fn pair_files(run: &Run, expect: &Expect, findings: &mut Findings) -> Result<Pair, String> {
    let pki = run.tree.pki();
    let file = match expect.source {
        Source::Pki(base) => {
            return Ok(Pair {
                name: base.to_string(),
                crt: pki.join(format!("{base}.crt")),
                key: pki.join(format!("{base}.key")),
            });
        }
        Source::Kubeconfig(file) => file,
    };
    let config: serde_yaml::Value = serde_yaml::from_slice(&run.tree.read(file))
        .map_err(|e| format!("{file}: not YAML: {e}"))?;
    for list in ["clusters", "users"] {
        let count = config[list].as_sequence().map_or(0, Vec::len);
        findings.check_eq(&format!("{file}: number of {list}"), count, 1);
    }
    let ca_data = embedded(
        &config["clusters"][0]["cluster"],
        "certificate-authority-data",
        file,
    )?;
    findings.check(ca_data == run.tree.read("pki/ca.crt"), || {
        format!("{file}: certificate-authority-data differs from pki/ca.crt")
    });
    let user = &config["users"][0]["user"];
    let stem = run.scratch.path().join(file);
    let pair = Pair {
        name: file.to_string(),
        crt: stem.with_extension("crt"),
        key: stem.with_extension("key"),
    };
    write(&pair.crt, &embedded(user, "client-certificate-data", file)?);
    write(&pair.key, &embedded(user, "client-key-data", file)?);
    Ok(pair)
}

/// Base64-decodes the `field` of a kubeconfig map.
fn embedded(map: &serde_yaml::Value, field: &str, file: &str) -> Result<Vec<u8>, String> {
    let text = map[field]
        .as_str()
        .ok_or_else(|| format!("{file}: no {field}"))?;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("{file}: {field} is not base64: {e}"))
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// PEM label, single block, and the algorithm's parameters as openssl reports them.
fn check_private_key(name: &str, key: &Path, alg: &Algorithm, findings: &mut Findings) {
    let label = match alg.key {
        KeyKind::Rsa { .. } => "RSA PRIVATE KEY",
        KeyKind::Ec { .. } => "EC PRIVATE KEY",
    };
    check_pem_label(&format!("{name} key"), key, label, findings);
    let text = run_openssl(&["pkey", "-noout", "-text", "-in", path_str(key)]);
    match alg.key {
        KeyKind::Rsa { bits } => check_rsa_key(name, key, &text, bits, findings),
        KeyKind::Ec { curve, bits } => check_ec_key(name, key, &text, curve, bits, findings),
    }
}

fn check_pem_label(what: &str, path: &Path, label: &str, findings: &mut Findings) {
    let pem = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
    let begins: Vec<&str> = pem
        .lines()
        .filter(|line| line.starts_with("-----BEGIN "))
        .collect();
    let wanted = format!("-----BEGIN {label}-----");
    findings.check_eq(
        &format!("{what}: PEM blocks"),
        begins,
        vec![wanted.as_str()],
    );
}

fn check_rsa_key(
    name: &str,
    key: &Path,
    text: &Result<String, String>,
    bits: u32,
    findings: &mut Findings,
) {
    let check = run_openssl(&["rsa", "-check", "-noout", "-in", path_str(key)]);
    findings.check(
        check.as_deref().is_ok_and(|out| out.contains("RSA key ok")),
        || format!("{name} key: `openssl rsa -check` did not say ok: {check:?}"),
    );
    let header = format!("Private-Key: ({bits} bit, 2 primes)");
    for wanted in [header.as_str(), "publicExponent: 65537 (0x10001)"] {
        findings.check(text.as_deref().is_ok_and(|t| t.contains(wanted)), || {
            format!("{name} key: `openssl pkey -text` lacks {wanted:?}: {text:?}")
        });
    }
}

fn check_ec_key(
    name: &str,
    key: &Path,
    text: &Result<String, String>,
    curve: &str,
    bits: u32,
    findings: &mut Findings,
) {
    let header = format!("Private-Key: ({bits} bit)");
    findings.check(text.as_deref().is_ok_and(|t| t.contains(&header)), || {
        format!("{name} key: `openssl pkey -text` lacks {header:?}: {text:?}")
    });
    let ec = run_openssl(&["ec", "-noout", "-text", "-in", path_str(key)]);
    let oid = format!("ASN1 OID: {curve}");
    findings.check(ec.as_deref().is_ok_and(|t| t.contains(&oid)), || {
        format!("{name} key: `openssl ec -text` lacks {oid:?}: {ec:?}")
    });
    let asn1 = run_openssl(&["asn1parse", "-in", path_str(key)]).unwrap_or_else(|e| e);
    findings.check(sec1_layout_ok(&asn1, curve), || {
        format!("{name} key: not SEC1 v1 with [0] {curve} and [1] public key:\n{asn1}")
    });
}

/// SEC1 ECPrivateKey: version 1, `[0]` holding the named-curve OID, `[1]` the public key.
fn sec1_layout_ok(asn1: &str, curve: &str) -> bool {
    let lines: Vec<&str> = asn1.lines().collect();
    let top = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains("d=1") && l.contains(needle))
    };
    let version_1 = top("INTEGER").is_some_and(|i| lines[i].trim_end().ends_with(":01"));
    let params = top("cont [ 0 ]").is_some_and(|i| {
        lines
            .get(i + 1)
            .is_some_and(|l| l.contains("OBJECT") && l.trim_end().ends_with(&format!(":{curve}")))
    });
    version_1 && params && top("cont [ 1 ]").is_some()
}

/// `openssl pkey -pubout` of the key equals `openssl x509 -pubkey` of the certificate.
fn check_key_matches_cert(pair: &Pair, findings: &mut Findings) {
    let from_key = run_openssl(&["pkey", "-pubout", "-in", path_str(&pair.key)]);
    let from_cert = run_openssl(&["x509", "-pubkey", "-noout", "-in", path_str(&pair.crt)]);
    findings.check(from_key.is_ok() && from_key == from_cert, || {
        format!(
            "{}: key does not match certificate: {from_key:?} vs {from_cert:?}",
            pair.name
        )
    });
}

/// `openssl verify -x509_strict -purpose P -CAfile <issuer>.crt` for each purpose of the role.
fn check_verify(run: &Run, expect: &Expect, pair: &Pair, findings: &mut Findings) {
    let ca_file = run.tree.pki().join(format!("{}.crt", expect.issuer));
    for purpose in expect.role.purposes() {
        let args = [
            "verify",
            "-x509_strict",
            "-purpose",
            purpose,
            "-CAfile",
            path_str(&ca_file),
            path_str(&pair.crt),
        ];
        let out = run_openssl(&args);
        findings.check(
            out.as_deref().is_ok_and(|o| o.trim_end().ends_with(": OK")),
            || {
                format!(
                    "{}: verify -purpose {purpose} against {}.crt failed: {out:?}",
                    pair.name, expect.issuer
                )
            },
        );
    }
}

/// Subject as in the table, every value a PrintableString, issuer equal to the CA's subject.
fn check_names(run: &Run, expect: &Expect, pair: &Pair, findings: &mut Findings) {
    let typed: Vec<String> = expect
        .subject
        .iter()
        .map(|(attr, value)| format!("{attr}=PRINTABLESTRING:{value}"))
        .collect();
    let wanted_subject = format!("subject={}", typed.join(","));
    findings.check_eq(
        &format!("{}: subject", pair.name),
        name_line(&pair.crt, "-subject"),
        wanted_subject,
    );
    let ca_crt = run.tree.pki().join(format!("{}.crt", expect.issuer));
    let ca_subject = name_line(&ca_crt, "-subject").replacen("subject=", "issuer=", 1);
    findings.check_eq(
        &format!("{}: issuer", pair.name),
        name_line(&pair.crt, "-issuer"),
        ca_subject,
    );
}

fn name_line(crt: &Path, which: &str) -> String {
    let args = [
        "x509",
        "-noout",
        which,
        "-nameopt",
        "sep_comma_plus,show_type",
        "-in",
        path_str(crt),
    ];
    run_openssl(&args).unwrap_or_else(|e| e).trim().to_string()
}

/// One certificate extension as printed by `openssl x509 -ext`.
#[derive(Debug, PartialEq)]
struct Extension {
    critical: bool,
    value: String,
}

const EXTENSIONS: &str = "subjectAltName,keyUsage,extendedKeyUsage,basicConstraints,subjectKeyIdentifier,authorityKeyIdentifier";

/// The six extensions kubeadm sets, keyed by openssl's display name ("X509v3 Key Usage").
fn extensions(crt: &Path) -> BTreeMap<String, Extension> {
    let out = run_openssl(&["x509", "-noout", "-ext", EXTENSIONS, "-in", path_str(crt)])
        .unwrap_or_default();
    let mut found = BTreeMap::new();
    let mut current: Option<(String, Extension)> = None;
    for line in out.lines() {
        if line.starts_with(char::is_whitespace) {
            if let Some((_, ext)) = current.as_mut() {
                ext.value = format!("{} {}", ext.value, line.trim()).trim().to_string();
            }
        } else if let Some((name, flags)) = line.split_once(':') {
            found.extend(current.take());
            let critical = flags.trim() == "critical";
            current = Some((
                name.trim().to_string(),
                Extension {
                    critical,
                    value: String::new(),
                },
            ));
        }
    }
    found.extend(current);
    found
}

fn check_extensions(run: &Run, expect: &Expect, pair: &Pair, findings: &mut Findings) {
    let mut exts = extensions(&pair.crt);
    let mut take = |name: &str| exts.remove(&format!("X509v3 {name}"));
    let role = expect.role;
    let is_ca = role == Role::Ca;
    let named = |what: &str| format!("{}: {what}", pair.name);
    let usage = Extension {
        critical: true,
        value: role.key_usage().into(),
    };
    findings.check_eq(&named("keyUsage"), take("Key Usage"), Some(usage));
    let eku = role.ext_key_usage().map(|value| Extension {
        critical: false,
        value: value.into(),
    });
    findings.check_eq(&named("extendedKeyUsage"), take("Extended Key Usage"), eku);
    let basic = Extension {
        critical: true,
        value: if is_ca { "CA:TRUE" } else { "CA:FALSE" }.into(),
    };
    findings.check_eq(
        &named("basicConstraints"),
        take("Basic Constraints"),
        Some(basic),
    );
    let ski = take("Subject Key Identifier");
    findings.check(ski.is_some() == is_ca, || {
        format!(
            "{}: SKI present = {}, want {is_ca}",
            pair.name,
            ski.is_some()
        )
    });
    let aki = take("Authority Key Identifier").map(|ext| (ext.critical, key_id(&ext.value)));
    let issuer_crt = run.tree.pki().join(format!("{}.crt", expect.issuer));
    let issuer_ski = extensions(&issuer_crt)
        .remove("X509v3 Subject Key Identifier")
        .map(|ext| key_id(&ext.value));
    let wanted_aki = if is_ca {
        None
    } else {
        Some((false, issuer_ski.unwrap_or_default()))
    };
    findings.check_eq(
        &named("authorityKeyIdentifier (critical, keyid)"),
        aki,
        wanted_aki,
    );
    let sans =
        take("Subject Alternative Name").map(|ext| (ext.critical, normalize_sans(&ext.value)));
    let wanted_sans =
        (!expect.sans.is_empty()).then(|| (false, normalize_sans(&expect.sans.join(", "))));
    findings.check_eq(
        &named("subjectAltName (critical, entries)"),
        sans,
        wanted_sans,
    );
}

/// A key identifier without openssl 1.1's `keyid:` prefix.
fn key_id(value: &str) -> String {
    value.trim().trim_start_matches("keyid:").to_string()
}

/// SAN entries in order, with IP addresses in one spelling (openssl 3.0 prints `::1` long).
fn normalize_sans(value: &str) -> Vec<String> {
    value
        .split(", ")
        .map(
            |entry| match entry.strip_prefix("IP Address:").map(str::parse::<IpAddr>) {
                Some(Ok(ip)) => format!("IP Address:{ip}"),
                _ => entry.to_string(),
            },
        )
        .collect()
}

fn check_signature(alg: &Algorithm, pair: &Pair, findings: &mut Findings) {
    let text =
        run_openssl(&["x509", "-noout", "-text", "-in", path_str(&pair.crt)]).unwrap_or_default();
    let signature = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Signature Algorithm: "));
    findings.check_eq(
        &format!("{}: signature algorithm", pair.name),
        signature,
        Some(alg.signature),
    );
}

/// Lifetime ≈ 8760h+5m (leaf) or 87600h+5m (CA); NotBefore ≈ start − 5m, except kubeconfig
/// certs, which start exactly at the CA's NotBefore.
fn check_validity(run: &Run, expect: &Expect, pair: &Pair, findings: &mut Findings) {
    let (not_before, not_after) = validity(&pair.crt);
    let lifetime = not_after - not_before;
    findings.check((lifetime - expect.role.lifetime()).abs() <= SLACK, || {
        format!(
            "{}: lifetime {lifetime}s, want ≈ {}s",
            pair.name,
            expect.role.lifetime()
        )
    });
    if let Source::Kubeconfig(_) = expect.source {
        let (ca_not_before, _) = validity(&run.tree.pki().join("ca.crt"));
        findings.check_eq(
            &format!("{}: NotBefore (unix s) vs ca.crt's", pair.name),
            not_before,
            ca_not_before,
        );
    } else {
        let earliest = run.started - BACKDATE - SLACK;
        let latest = run.finished - BACKDATE + SLACK;
        findings.check((earliest..=latest).contains(&not_before), || {
            format!(
                "{}: NotBefore {not_before} outside run start − 5m [{earliest}, {latest}]",
                pair.name
            )
        });
    }
}

/// NotBefore and NotAfter in Unix seconds.
fn validity(crt: &Path) -> (i64, i64) {
    let args = [
        "x509",
        "-noout",
        "-startdate",
        "-enddate",
        "-dateopt",
        "iso_8601",
        "-in",
        path_str(crt),
    ];
    let out =
        run_openssl(&args).unwrap_or_else(|e| panic!("reading dates of {}: {e}", crt.display()));
    let field = |name: &str| {
        let line = out
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .expect("date line");
        iso_to_unix(line)
    };
    (field("notBefore="), field("notAfter="))
}

/// `2026-11-23 19:37:28Z` to Unix seconds.
fn iso_to_unix(iso: &str) -> i64 {
    let parts: Vec<u32> = iso
        .trim()
        .trim_end_matches('Z')
        .split(['-', ' ', ':'])
        .map(|p| p.parse().unwrap_or_else(|_| panic!("bad date {iso:?}")))
        .collect();
    let [year, month, day, hour, minute, second] = parts[..] else {
        panic!("bad date {iso:?}")
    };
    let month = time::Month::try_from(month as u8).expect("month");
    time::Date::from_calendar_date(year as i32, month, day as u8)
        .and_then(|date| date.with_hms(hour as u8, minute as u8, second as u8))
        .expect("valid date")
        .assume_utc()
        .unix_timestamp()
}

/// `sa.key` in the algorithm's format; `sa.pub` a PKIX `PUBLIC KEY` of the same key.
fn check_service_account(run: &Run, findings: &mut Findings) {
    let pki = run.tree.pki();
    let (key, public) = (pki.join("sa.key"), pki.join("sa.pub"));
    check_private_key("sa", &key, run.alg, findings);
    check_pem_label("sa.pub", &public, "PUBLIC KEY", findings);
    let from_key = run_openssl(&["pkey", "-pubout", "-in", path_str(&key)]);
    let from_pub = run_openssl(&["pkey", "-pubin", "-pubout", "-in", path_str(&public)]);
    findings.check(from_key.is_ok() && from_key == from_pub, || {
        format!("sa.pub is not the public key of sa.key: {from_pub:?} vs {from_key:?}")
    });
}

/// Keys, `sa.pub` and kubeconfigs 0600 (kubeadm writes `sa.pub` with its key writer),
/// certificates 0644, directories 0755.
fn check_modes(tree: &TempTree, findings: &mut Findings) {
    let mut wanted = vec![
        ("pki".to_string(), 0o755),
        ("pki/etcd".to_string(), 0o755),
        ("pki/sa.key".to_string(), 0o600),
        ("pki/sa.pub".to_string(), 0o600),
    ];
    for expect in CERTS {
        match expect.source {
            Source::Pki(base) => {
                wanted.push((format!("pki/{base}.crt"), 0o644));
                wanted.push((format!("pki/{base}.key"), 0o600));
            }
            Source::Kubeconfig(file) => wanted.push((file.to_string(), 0o600)),
        }
    }
    for (rel, mode) in wanted {
        let actual = std::fs::metadata(tree.root().join(&rel))
            .map(|meta| format!("{:o}", meta.permissions().mode() & 0o7777))
            .unwrap_or_else(|e| e.to_string());
        findings.check_eq(&format!("{rel}: mode"), actual, format!("{mode:o}"));
    }
}

/// Runs openssl: stdout when it exits 0, else its stderr and stdout.
fn run_openssl(args: &[&str]) -> Result<String, String> {
    let out = openssl(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "openssl {} failed: {}{stdout}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}
