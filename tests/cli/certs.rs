//! `kubepki certs check-expiration|renew|ca-cert-hash|certificate-key` on real trees, checked
//! against openssl's reading of the same files.

use crate::support::{TempTree, assert_success, kubepki, openssl};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Output;

fn certs(tree: &TempTree, args: &[&str]) -> Output {
    let mut all: Vec<String> = vec!["certs".into()];
    all.extend(args.iter().map(|s| s.to_string()));
    all.extend(tree.dir_args());
    kubepki(&all)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A tree whose leaves expire in 2 hours and CAs in 72 hours.
fn short_lived_tree() -> TempTree {
    let tree = TempTree::new();
    tree.init(
        "ECDSA-P256",
        &["--cert-validity", "2h", "--ca-validity", "72h"],
    );
    tree
}

/// openssl's NotAfter of a certificate file, as `Mon DD, YYYY HH:MM UTC`.
fn openssl_expiry(path: &std::path::Path) -> String {
    let out = openssl(&[
        "x509",
        "-in",
        &path.display().to_string(),
        "-noout",
        "-enddate",
        "-dateopt",
        "iso_8601",
    ]);
    let iso = text(&out.stdout);
    let iso = iso.trim().trim_start_matches("notAfter=");
    let when = time::PrimitiveDateTime::parse(
        &iso[..19],
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
    .expect(iso);
    when.format(time::macros::format_description!(
        "[month repr:short] [day], [year] [hour]:[minute] UTC"
    ))
    .unwrap()
}

#[test]
fn check_expiration_tables_match_openssl() {
    let tree = short_lived_tree();
    let out = certs(&tree, &["check-expiration"]);
    assert_success(&out, "check-expiration");
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0],
        "CERTIFICATE                EXPIRES                  RESIDUAL TIME   CERTIFICATE AUTHORITY   EXTERNALLY MANAGED"
    );
    let leaf = openssl_expiry(&tree.pki().join("apiserver.crt"));
    assert_eq!(
        lines[2],
        format!(
            "apiserver                  {leaf}   1h              ca                      no      "
        )
    );
    let ca = openssl_expiry(&tree.pki().join("etcd/ca.crt"));
    assert_eq!(lines[13], "");
    assert_eq!(
        lines[14],
        "CERTIFICATE AUTHORITY   EXPIRES                  RESIDUAL TIME   EXTERNALLY MANAGED"
    );
    assert_eq!(
        lines[16],
        format!("etcd-ca                 {ca}   2d              no      ")
    );
    let names: Vec<&str> = lines[1..13]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "admin.conf",
            "apiserver",
            "apiserver-etcd-client",
            "apiserver-kubelet-client",
            "controller-manager.conf",
            "etcd-healthcheck-client",
            "etcd-peer",
            "etcd-server",
            "front-proxy-client",
            "kubelet.conf",
            "scheduler.conf",
            "super-admin.conf"
        ]
    );
}

#[test]
fn check_expiration_json_and_yaml_are_kubeadms_structure() {
    let tree = short_lived_tree();
    let json: serde_json::Value =
        serde_json::from_slice(&certs(&tree, &["check-expiration", "-o", "json"]).stdout)
            .expect("JSON");
    let yaml: serde_json::Value =
        serde_yaml::from_slice(&certs(&tree, &["check-expiration", "-o", "yaml"]).stdout)
            .expect("YAML");
    for info in [&json, &yaml] {
        assert_eq!(info["kind"], "CertificateExpirationInfo");
        assert_eq!(info["apiVersion"], "output.kubeadm.k8s.io/v1alpha3");
        let front = info["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "front-proxy-client")
            .unwrap();
        assert_eq!(front["caName"], "front-proxy-ca");
        assert_eq!(
            (
                front["missing"].as_bool(),
                front["externallyManaged"].as_bool()
            ),
            (Some(false), Some(false))
        );
        let residual = front["residualTime"].as_i64().unwrap();
        assert!((7200 - 120..=7200).contains(&residual), "{residual}");
        let ca = &info["certificateAuthorities"][0];
        assert_eq!(ca["name"], "ca");
        assert!(ca.get("caName").is_none());
        assert!(ca["expirationDate"].as_str().unwrap().ends_with('Z'));
    }
}

#[test]
fn fail_within_exits_3_at_the_boundary() {
    let tree = short_lived_tree();
    let code = |window: &str| {
        certs(&tree, &["check-expiration", "--fail-within", window])
            .status
            .code()
    };
    assert_eq!(code("1h"), Some(0));
    let out = certs(&tree, &["check-expiration", "--fail-within", "3h"]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("apiserver") && !stderr.contains("etcd-ca"),
        "{stderr}"
    );
    assert_eq!(code("71h"), Some(3));
    let out = certs(&tree, &["check-expiration", "--fail-within", "73h"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("etcd-ca"));
}

#[test]
fn missing_and_external_are_reported_not_fatal() {
    let tree = short_lived_tree();
    fs::remove_file(tree.root().join("super-admin.conf")).unwrap();
    fs::remove_file(tree.pki().join("etcd/ca.key")).unwrap();
    let out = certs(&tree, &["check-expiration"]);
    assert_success(&out, "check-expiration with a missing file");
    let table = text(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.trim_end() == "!MISSING! super-admin.conf"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("etcd-peer ") && l.ends_with("yes     ")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("apiserver ") && l.ends_with("no      ")),
        "{table}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&certs(&tree, &["check-expiration", "-o", "json"]).stdout).unwrap();
    let missing = json["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "super-admin.conf")
        .unwrap();
    assert_eq!(missing["missing"], true);
}

#[test]
fn metrics_file_holds_the_same_facts() {
    let tree = short_lived_tree();
    let metrics = tree.root().join("metrics/kubepki.prom");
    fs::create_dir_all(metrics.parent().unwrap()).unwrap();
    let out = certs(
        &tree,
        &[
            "check-expiration",
            "--metrics-file",
            &metrics.display().to_string(),
        ],
    );
    assert_success(&out, "check-expiration --metrics-file");
    let prom = fs::read_to_string(&metrics).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&certs(&tree, &["check-expiration", "-o", "json"]).stdout).unwrap();
    let date = json["certificates"][1]["expirationDate"].as_str().unwrap();
    let epoch = time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp();
    assert!(prom.contains(&format!("kubepki_certificate_expiration_timestamp_seconds{{name=\"apiserver\",ca=\"ca\"}} {epoch}\n")), "{prom}");
    assert!(prom.contains("kubepki_certificate_is_ca{name=\"etcd-ca\",ca=\"etcd-ca\"} 1\n"));
    assert!(
        prom.contains("kubepki_certificate_externally_managed{name=\"admin.conf\",ca=\"ca\"} 0\n")
    );
    assert!(prom.contains("# TYPE kubepki_certificate_missing gauge\n"));
    assert_eq!(
        fs::metadata(&metrics).unwrap().permissions().mode() & 0o777,
        0o644
    );
    assert_eq!(
        fs::read_dir(metrics.parent().unwrap()).unwrap().count(),
        1,
        "temp file left"
    );
}

/// Subject and SANs of a certificate file, as openssl prints them.
fn identity(path: &std::path::Path) -> String {
    text(
        &openssl(&[
            "x509",
            "-in",
            &path.display().to_string(),
            "-noout",
            "-subject",
            "-ext",
            "subjectAltName",
        ])
        .stdout,
    )
}

const LEAVES: &[&str] = &[
    "apiserver",
    "apiserver-kubelet-client",
    "front-proxy-client",
    "etcd/server",
    "etcd/peer",
    "etcd/healthcheck-client",
    "apiserver-etcd-client",
];
const UNTOUCHED: &[&str] = &[
    "pki/ca.crt",
    "pki/ca.key",
    "pki/front-proxy-ca.crt",
    "pki/front-proxy-ca.key",
    "pki/etcd/ca.crt",
    "pki/etcd/ca.key",
    "pki/sa.key",
    "pki/sa.pub",
];

#[test]
fn renew_reissues_every_leaf_keeps_identities_and_backs_up() {
    let tree = TempTree::new();
    tree.init(
        "ECDSA-P256",
        &["--apiserver-cert-extra-sans", "api.example.com,10.1.2.3"],
    );
    let before: Vec<(Vec<u8>, Vec<u8>, String)> = LEAVES
        .iter()
        .map(|l| {
            (
                tree.read(&format!("pki/{l}.crt")),
                tree.read(&format!("pki/{l}.key")),
                identity(&tree.pki().join(format!("{l}.crt"))),
            )
        })
        .collect();
    let untouched: Vec<Vec<u8>> = UNTOUCHED.iter().map(|f| tree.read(f)).collect();
    let admin = tree.read("admin.conf");
    let out = tree.renew_all();
    let stdout = text(&out.stdout);
    assert_eq!(stdout.matches(" renewed\n").count(), 12, "{stdout}");
    assert!(stdout.contains("kube-apiserver: apiserver, apiserver-kubelet-client, front-proxy-client, apiserver-etcd-client"), "{stdout}");
    let pki = tree.pki();
    for (leaf, (old_cert, old_key, old_identity)) in LEAVES.iter().zip(&before) {
        let cert = pki.join(format!("{leaf}.crt"));
        assert_ne!(
            &tree.read(&format!("pki/{leaf}.crt")),
            old_cert,
            "{leaf} not re-issued"
        );
        assert_ne!(
            &tree.read(&format!("pki/{leaf}.key")),
            old_key,
            "{leaf} kept its key"
        );
        assert_eq!(
            &identity(&cert),
            old_identity,
            "{leaf} changed subject or SANs"
        );
        let ca = if leaf.starts_with("etcd/") || *leaf == "apiserver-etcd-client" {
            "etcd/ca.crt"
        } else if *leaf == "front-proxy-client" {
            "front-proxy-ca.crt"
        } else {
            "ca.crt"
        };
        let verify = openssl(&[
            "verify",
            "-CAfile",
            &pki.join(ca).display().to_string(),
            &cert.display().to_string(),
        ]);
        assert!(verify.status.success(), "{leaf}: {}", text(&verify.stderr));
    }
    assert_eq!(
        UNTOUCHED.iter().map(|f| tree.read(f)).collect::<Vec<_>>(),
        untouched,
        "a CA or sa file changed"
    );
    let backup = fs::read_dir(tree.root().join("tmp"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(
        fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(fs::read(backup.join("admin.conf")).unwrap(), admin);
    assert_eq!(
        fs::read(backup.join("pki/apiserver.crt")).unwrap(),
        before[0].0
    );
    assert_eq!(
        fs::read(backup.join("pki/etcd/peer.key")).unwrap(),
        before[4].1
    );
    let snapshot = tree.snapshot();
    let out = certs(&tree, &["renew", "all", "--expiring-within", "30d"]);
    assert_success(&out, "no-op renew");
    assert!(
        text(&out.stdout).contains("Nothing to renew"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(tree.snapshot(), snapshot, "a no-op renew wrote something");
}

#[test]
fn renew_only_what_is_due() {
    let tree = short_lived_tree();
    let out = certs(
        &tree,
        &[
            "renew",
            "apiserver",
            "admin.conf",
            "--expiring-within",
            "1h",
        ],
    );
    assert_success(&out, "renew not due");
    assert_eq!(
        text(&out.stdout)
            .matches("not due (expires in 1h), skipped")
            .count(),
        2
    );
    let old = tree.read("pki/apiserver.crt");
    let out = certs(
        &tree,
        &[
            "renew",
            "apiserver",
            "admin.conf",
            "--expiring-within",
            "3h",
        ],
    );
    assert_success(&out, "renew due");
    assert_eq!(text(&out.stdout).matches(" renewed\n").count(), 2);
    assert_ne!(tree.read("pki/apiserver.crt"), old);
    let json: serde_json::Value =
        serde_json::from_slice(&certs(&tree, &["check-expiration", "-o", "json"]).stdout).unwrap();
    let residual = |name: &str| {
        json["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["residualTime"]
            .as_i64()
            .unwrap()
    };
    let ca_residual = json["certificateAuthorities"][0]["residualTime"]
        .as_i64()
        .unwrap();
    // Renewed for the default 8760h, but no certificate outlives its CA (72h here, #17).
    for renewed in ["apiserver", "admin.conf"] {
        assert!(residual(renewed) > 71 * 3600, "{renewed}");
        assert!(
            residual(renewed) <= ca_residual,
            "{renewed} outlives its CA"
        );
    }
    assert!(residual("scheduler.conf") < 7200);
}

#[test]
fn a_kubelet_conf_pointing_at_its_rotated_cert_is_left_alone() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let rotated = tree.root().join("kubelet-client-current.pem");
    let creds: serde_yaml::Value = serde_yaml::from_slice(&tree.read("kubelet.conf")).unwrap();
    let user = &creds["users"][0]["user"];
    use base64::Engine;
    let decode = |key: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(user[key].as_str().unwrap())
            .unwrap()
    };
    fs::write(
        &rotated,
        [decode("client-certificate-data"), decode("client-key-data")].concat(),
    )
    .unwrap();
    let path = rotated.display().to_string();
    let conf = format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: https://127.0.0.1:6443\n  name: default-cluster\ncontexts:\n- context:\n    cluster: default-cluster\n    namespace: default\n    user: default-auth\n  name: default-context\ncurrent-context: default-context\nkind: Config\nusers:\n- name: default-auth\n  user:\n    client-certificate: {path}\n    client-key: {path}\n",
        creds["clusters"][0]["cluster"]["certificate-authority-data"]
            .as_str()
            .unwrap()
    );
    fs::write(tree.root().join("kubelet.conf"), &conf).unwrap();
    let out = certs(&tree, &["renew", "kubelet.conf"]);
    assert_success(&out, "renew kubelet.conf");
    assert!(
        text(&out.stdout).contains(&format!(
            "kubelet.conf: left alone, it points at the kubelet's own rotated certificate {path}"
        )),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        fs::read_to_string(tree.root().join("kubelet.conf")).unwrap(),
        conf
    );
    let table = text(&certs(&tree, &["check-expiration"]).stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("kubelet.conf ") && l.contains("364d")),
        "{table}"
    );
}

#[test]
fn an_external_ca_makes_its_certs_not_renewable() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    fs::remove_file(tree.pki().join("etcd/ca.key")).unwrap();
    let peer = tree.read("pki/etcd/peer.crt");
    let apiserver = tree.read("pki/apiserver.crt");
    let out = certs(&tree, &["renew", "all"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("certificate for etcd nodes to communicate with each other can't be renewed: its CA \"etcd-ca\" is external"), "{stdout}");
    assert_eq!(tree.read("pki/etcd/peer.crt"), peer);
    assert_ne!(tree.read("pki/apiserver.crt"), apiserver);
}

#[test]
fn a_pair_caught_between_its_renames_is_completed_by_the_next_command() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let donor = TempTree::new();
    fs::create_dir_all(donor.pki()).unwrap();
    for rel in [
        "pki/ca.crt",
        "pki/ca.key",
        "pki/apiserver.crt",
        "pki/apiserver.key",
    ] {
        fs::copy(tree.root().join(rel), donor.root().join(rel)).unwrap();
    }
    assert_success(
        &certs(&donor, &["renew", "apiserver"]),
        "renew in the donor tree",
    );
    fs::copy(
        donor.pki().join("apiserver.key"),
        tree.pki().join("apiserver.key"),
    )
    .unwrap();
    fs::copy(
        donor.pki().join("apiserver.crt"),
        tree.pki().join(".apiserver.crt.kubepki-staged"),
    )
    .unwrap();
    let args = tree.init_args("ECDSA-P256", &[]);
    assert_success(&kubepki(&args), "init after an interrupted renew");
    assert_eq!(
        tree.read("pki/apiserver.crt"),
        donor.read("pki/apiserver.crt")
    );
    assert!(!tree.pki().join(".apiserver.crt.kubepki-staged").exists());
}

#[test]
fn ca_cert_hash_equals_openssls_and_certificate_keys_are_random() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let out = certs(&tree, &["ca-cert-hash"]);
    assert_success(&out, "ca-cert-hash");
    assert_eq!(text(&out.stdout).trim(), crate::support::ca_pin(&tree));
    let key = |_| {
        text(&kubepki(&["certs", "certificate-key"]).stdout)
            .trim()
            .to_string()
    };
    let (a, b) = (key(0), key(1));
    assert!(
        a.len() == 64
            && a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{a}"
    );
    assert_ne!(a, b);
}

#[test]
fn completion_scripts_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let out = kubepki(&["completion", shell]);
        assert_success(&out, shell);
        let script = text(&out.stdout);
        assert!(
            script.contains("kubepki") && script.contains("check-expiration"),
            "{shell}"
        );
    }
}
