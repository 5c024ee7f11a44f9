//! `certs rotate-ca` from the command line, checked with openssl (#14): every CA and the
//! service-account key through trust, sign and finish, where after each stage every
//! certificate verifies against what its readers trust, every kubeconfig's client
//! certificate against its own embedded CA bundle, and `status -o json` reads the phase;
//! a second run writes nothing and `--dry-run` lists exactly what the run then changes;
//! the commands that understand bundles (ca-cert-hash, token create, check-expiration,
//! renew, flags) during a rotation; a second host taking the same new CA with `--from`;
//! and the refusals (out of order, a bundle edited into an unknown shape, a CA key that
//! matches none of its certificates, usage errors): exit 1 (2), one line, the tree
//! byte-identical.

use crate::support::{TempTree, assert_success, check, kubepki, openssl};
use base64::Engine as _;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

const ALGORITHM: &str = "ECDSA-P256";

/// What rotates, the files (below the root) that hold what its readers trust, and the
/// certificates it signs with their files.
const ROWS: [(&str, &str, &[&str]); 4] = [
    (
        "ca",
        "pki/ca-bundle.crt",
        &["pki/apiserver", "pki/apiserver-kubelet-client"],
    ),
    (
        "front-proxy-ca",
        "pki/front-proxy-ca.crt",
        &["pki/front-proxy-client"],
    ),
    (
        "etcd-ca",
        "pki/etcd/ca.crt",
        &[
            "pki/etcd/server",
            "pki/etcd/peer",
            "pki/etcd/healthcheck-client",
            "pki/apiserver-etcd-client",
        ],
    ),
    ("sa", "pki/sa.pub", &[]),
];

fn rotate(tree: &TempTree, args: &[&str]) -> Output {
    let mut all = vec!["certs".to_string(), "rotate-ca".into()];
    all.extend(args.iter().map(|a| a.to_string()));
    all.extend(tree.dir_args());
    kubepki(&all)
}

fn rotate_ok(tree: &TempTree, args: &[&str]) -> Output {
    let out = rotate(tree, args);
    assert_success(&out, &format!("rotate-ca {args:?}"));
    out
}

/// `status -o json` of one row.
fn status(tree: &TempTree, row: &str) -> Value {
    let out = rotate_ok(tree, &[row, "status", "-o", "json"]);
    let all: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    all["rotations"][0].clone()
}

/// The number of PEM blocks of a file of the tree.
fn blocks(tree: &TempTree, rel: &str) -> usize {
    String::from_utf8_lossy(&tree.read(rel))
        .matches("-----BEGIN")
        .count()
}

/// openssl verifies `cert` against the bundle `ca_file` (which may hold two CAs).
fn verifies(ca_file: &Path, cert: &Path) -> Result<(), String> {
    let out = openssl(&[
        "verify".as_ref(),
        "-CAfile".as_ref(),
        ca_file.as_os_str(),
        cert.as_os_str(),
    ]);
    match out.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

/// Every kubeconfig's client certificate verifies against the CA bundle it embeds, and
/// that bundle has `expected` certificates.
fn kubeconfigs_verify(tree: &TempTree, expected: usize) {
    let dir = tempfile::tempdir().expect("a temp dir");
    for name in check::KUBECONFIGS {
        let config: Value = serde_yaml::from_slice(&tree.read(name)).expect("a kubeconfig");
        let decode = |value: &Value| {
            base64::engine::general_purpose::STANDARD
                .decode(value.as_str().expect("data"))
                .expect("base64")
        };
        let ca = decode(&config["clusters"][0]["cluster"]["certificate-authority-data"]);
        let cert = decode(&config["users"][0]["user"]["client-certificate-data"]);
        let (ca_file, cert_file) = (dir.path().join("ca.pem"), dir.path().join("cert.pem"));
        std::fs::write(&ca_file, &ca).expect("writing");
        std::fs::write(&cert_file, &cert).expect("writing");
        let count = String::from_utf8_lossy(&ca).matches("BEGIN").count();
        assert_eq!(count, expected, "{name}'s certificate-authority-data");
        verifies(&ca_file, &cert_file).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// After a stage of `row`: its signed certificates verify against its trust file and
/// against its signer alone; the trust file holds `count` blocks.
fn check_row(tree: &TempTree, row: &str, trust: &str, signed: &[&str], count: usize) {
    assert_eq!(blocks(tree, trust), count, "{row}: {trust}");
    let signer = match row {
        "ca" => tree.pki().join("ca.crt"),
        _ => tree.root().join(trust),
    };
    for stem in signed {
        let cert = tree.root().join(format!("{stem}.crt"));
        verifies(&tree.root().join(trust), &cert).unwrap_or_else(|e| panic!("{stem}: {e}"));
        let first = tempfile::NamedTempFile::new().expect("a temp file");
        let signer_pem = String::from_utf8_lossy(&std::fs::read(&signer).expect("the signer"))
            .split_inclusive("-----END CERTIFICATE-----\n")
            .next()
            .unwrap_or_default()
            .to_string();
        std::fs::write(first.path(), signer_pem).expect("writing");
        verifies(first.path(), &cert).unwrap_or_else(|e| panic!("{stem} by the signer: {e}"));
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn every_ca_and_the_service_account_key_through_every_stage() {
    let tree = TempTree::new();
    tree.init(ALGORITHM, &[]);
    for (row, trust, signed) in ROWS {
        for (stage, phase, count) in [
            ("trust", "trusted", 2),
            ("sign", "signed", 2),
            ("finish", "idle", 1),
        ] {
            // sa's finish within 24h of sign needs --force (see sa_finish_waits_a_day_after_sign)
            let run = |extra: &[&str]| {
                let mut args = vec![row, stage];
                if (row, stage) == ("sa", "finish") {
                    args.push("--force");
                }
                args.extend(extra);
                rotate_ok(&tree, &args)
            };
            let planned = run(&["--dry-run", "-o", "json"]);
            let planned: Value = serde_json::from_slice(&planned.stdout).expect("JSON");
            let before = tree.snapshot();
            let ran = run(&["-o", "json"]);
            let ran: Value = serde_json::from_slice(&ran.stdout).expect("JSON");
            for list in ["created", "replaced", "removed"] {
                assert_eq!(
                    planned[list], ran[list],
                    "{row} {stage}: --dry-run's {list}"
                );
            }
            assert_ne!(tree.snapshot(), before, "{row} {stage} wrote nothing");
            let after = tree.snapshot();
            run(&[]);
            assert_eq!(tree.snapshot(), after, "{row} {stage} again wrote");
            let found = status(&tree, row);
            assert_eq!(found["phase"], phase, "{row} after {stage}: {found}");
            assert_eq!(found["complete"], true, "{row} after {stage}: {found}");
            let check_trust = if row == "ca" && stage == "finish" {
                "pki/ca.crt"
            } else {
                trust
            };
            check_row(&tree, row, check_trust, signed, count);
            if row == "ca" {
                kubeconfigs_verify(&tree, count);
            }
            if stage == "trust" {
                let pending = tree.pki().join("next");
                let key = pending.join(format!(
                    "{}.key",
                    match row {
                        "etcd-ca" => "etcd/ca",
                        "front-proxy-ca" => "front-proxy-ca",
                        other => other,
                    }
                ));
                assert_eq!(mode(&key), 0o600, "{}", key.display());
            }
            if stage == "sign" {
                let backup = ran["backupDir"].as_str().expect("a backup");
                assert_eq!(mode(Path::new(backup)), 0o700);
                assert!(
                    !tree.pki().join("next").exists(),
                    "next/ is gone after sign"
                );
            }
        }
    }
    assert_eq!(mode(&tree.pki().join("sa.pub")), 0o600);
    assert_eq!(mode(&tree.pki().join("ca-bundle.crt")), 0o644);
    let init = kubepki(&tree.init_args(ALGORITHM, &[]));
    assert_success(&init, "init after the rotations");
}

#[test]
fn commands_that_read_the_tree_understand_a_rotation() {
    let tree = TempTree::new();
    tree.init(ALGORITHM, &[]);
    rotate_ok(
        &tree,
        &["ca", "trust", "--encryption-algorithm", "ECDSA-P384"],
    );
    let with_dirs = |words: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        args.extend(tree.dir_args());
        args
    };
    let pins = kubepki(&with_dirs(&["certs", "ca-cert-hash"]));
    assert_success(&pins, "ca-cert-hash");
    let pins = String::from_utf8_lossy(&pins.stdout).into_owned();
    assert_eq!(pins.lines().count(), 2, "{pins}");
    let openssl_pin = crate::support::ca_pin(&tree);
    assert_eq!(
        pins.lines().next(),
        Some(openssl_pin.as_str()),
        "the signer's first"
    );
    let created = kubepki(&with_dirs(&["token", "create", "--print-join-command"]));
    assert_success(&created, "token create");
    let printed = String::from_utf8_lossy(&created.stdout).into_owned();
    for pin in pins.lines() {
        assert!(
            printed.contains(&format!("--discovery-token-ca-cert-hash {pin}")),
            "{printed}"
        );
    }
    let info: Value =
        serde_yaml::from_slice(&tree.read("bootstrap/cluster-info.yaml")).expect("cluster-info");
    let kubeconfig: Value =
        serde_yaml::from_str(info["data"]["kubeconfig"].as_str().expect("a kubeconfig"))
            .expect("cluster-info's kubeconfig");
    let published = base64::engine::general_purpose::STANDARD
        .decode(
            kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"]
                .as_str()
                .expect("CA data"),
        )
        .expect("base64");
    assert_eq!(
        published,
        tree.read("pki/ca-bundle.crt"),
        "cluster-info publishes the bundle"
    );
    let expiry = kubepki(&with_dirs(&["certs", "check-expiration", "-o", "json"]));
    assert_success(&expiry, "check-expiration");
    let expiry: Value = serde_json::from_slice(&expiry.stdout).expect("JSON");
    let cas: Vec<&str> = expiry["certificateAuthorities"]
        .as_array()
        .expect("CAs")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(cas.contains(&"ca (also trusted)"), "{cas:?}");
    let renewed = kubepki(&with_dirs(&["certs", "renew", "all"]));
    assert_success(&renewed, "renew all during a rotation");
    kubeconfigs_verify(&tree, 2);
    let found = status(&tree, "ca");
    assert_eq!(
        (found["phase"].as_str(), found["complete"].as_bool()),
        (Some("trusted"), Some(true))
    );
    let config = kubepki(&with_dirs(&["kubelet", "config", "--node-name", "cp1"]));
    assert_success(&config, "kubelet config");
    let bundle = tree.pki().join("ca-bundle.crt").display().to_string();
    assert!(String::from_utf8_lossy(&config.stdout).contains(&format!("clientCAFile: {bundle}\n")));
    rotate_ok(&tree, &["ca", "sign"]);
    assert_eq!(status(&tree, "ca")["signer"]["algorithm"], "ECDSA-P384");
    check_row(&tree, "ca", "pki/ca-bundle.crt", &["pki/apiserver"], 2);
}

/// #22: `status` says since when a stage holds, and the service-account key's `finish`
/// sooner than 24 h after `sign` is refused (one line, nothing written) unless `--force`.
#[test]
fn sa_finish_waits_a_day_after_sign() {
    let tree = TempTree::new();
    tree.init(ALGORITHM, &[]);
    assert!(
        status(&tree, "sa").get("since").is_none(),
        "idle has no since"
    );
    rotate_ok(&tree, &["sa", "trust"]);
    let trusted = status(&tree, "sa");
    let since = trusted["since"]
        .as_str()
        .expect("since, once trusted")
        .to_string();
    let since = time::OffsetDateTime::parse(&since, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");
    let age = time::OffsetDateTime::now_utc() - since;
    assert!(
        age >= time::Duration::ZERO && age < time::Duration::minutes(5),
        "{age}"
    );
    let text = rotate_ok(&tree, &["sa", "status"]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("sa: trusted (since "),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
    rotate_ok(&tree, &["sa", "sign"]);
    assert!(status(&tree, "sa")["since"].is_string());
    assert_refused(
        &tree,
        &["sa", "finish"],
        1,
        &["sa: sign ran 0h00m ago", "run finish after", "--force"],
    );
    assert_refused(&tree, &["sa", "finish", "--dry-run"], 1, &["--force"]);
    rotate_ok(&tree, &["sa", "finish", "--force"]);
    assert_eq!(status(&tree, "sa")["phase"], "idle");
}

#[test]
fn an_external_ca_is_shown_and_left_alone() {
    let tree = TempTree::new();
    tree.init(ALGORITHM, &[]);
    std::fs::remove_file(tree.pki().join("front-proxy-ca.key")).expect("an external CA");
    let shown = rotate_ok(&tree, &["status"]);
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(
        shown.contains("front-proxy-ca: its key is absent (an external CA)"),
        "{shown}"
    );
    assert_refused(
        &tree,
        &["front-proxy-ca", "trust"],
        1,
        &["front-proxy-ca.key is missing: a rotation needs the key that signs"],
    );
}

#[test]
fn a_second_host_takes_the_same_new_ca_from_the_first_ones_next_directory() {
    let first = TempTree::new();
    first.init(ALGORITHM, &[]);
    let second = TempTree::new();
    for shared in [
        "ca.crt",
        "ca.key",
        "sa.key",
        "sa.pub",
        "front-proxy-ca.crt",
        "front-proxy-ca.key",
    ] {
        std::fs::create_dir_all(second.pki()).expect("pki");
        std::fs::copy(first.pki().join(shared), second.pki().join(shared)).expect("copy");
    }
    std::fs::create_dir_all(second.pki().join("etcd")).expect("etcd");
    for shared in ["etcd/ca.crt", "etcd/ca.key"] {
        std::fs::copy(first.pki().join(shared), second.pki().join(shared)).expect("copy");
    }
    second.init(ALGORITHM, &["--node-name", "cp2"]);
    let next = first.pki().join("next").display().to_string();
    for row in ["ca", "etcd-ca", "sa"] {
        rotate_ok(&first, &[row, "trust"]);
        rotate_ok(&second, &[row, "trust", "--from", &next]);
        let pending = |tree: &TempTree| status(tree, row)["other"]["pin"].clone();
        assert_eq!(pending(&first), pending(&second), "{row}: one new CA");
        rotate_ok(&first, &[row, "sign"]);
        rotate_ok(&second, &[row, "sign"]);
    }
    assert_eq!(first.read("pki/ca.crt"), second.read("pki/ca.crt"));
    assert_eq!(
        first.read("pki/etcd/ca.key"),
        second.read("pki/etcd/ca.key")
    );
    assert_eq!(first.read("pki/sa.pub"), second.read("pki/sa.pub"));
    let peer = second.pki().join("etcd/peer.crt");
    verifies(&first.pki().join("etcd/ca.crt"), &peer).expect("cp2's peer, by cp1's bundle");
}

/// The tree must be exactly as it was, and the command must have said one line.
fn assert_refused(tree: &TempTree, args: &[&str], exit: i32, says: &[&str]) {
    let before = tree.snapshot();
    let out = rotate(tree, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(exit), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
    for part in says {
        assert!(stderr.contains(part), "{args:?}: {stderr:?} lacks {part:?}");
    }
    assert!(
        out.stdout.is_empty(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(tree.snapshot(), before, "{args:?} changed the tree");
}

#[test]
fn stages_out_of_order_unknown_shapes_and_strange_keys_are_refused_writing_nothing() {
    let tree = TempTree::new();
    tree.init(ALGORITHM, &[]);
    assert_refused(
        &tree,
        &["ca", "sign"],
        1,
        &[
            "ca: sign is out of order: no rotation is under way",
            "rotate-ca ca trust",
        ],
    );
    assert_refused(&tree, &["ca"], 2, &["which stage"]);
    assert_refused(&tree, &["status", "trust"], 2, &["takes no stage"]);
    assert_refused(
        &tree,
        &["ca", "sign", "--from", "/tmp"],
        2,
        &["--from DIR goes with the trust stage"],
    );
    assert_refused(
        &tree,
        &["ca", "trust", "--from", "/nonexistent"],
        1,
        &["/nonexistent/ca.key is missing"],
    );
    rotate_ok(&tree, &["etcd-ca", "trust"]);
    assert_refused(
        &tree,
        &["etcd-ca", "finish"],
        1,
        &["finish is out of order", "rotate-ca etcd-ca sign"],
    );
    let bundle = tree.pki().join("etcd/ca.crt");
    let two = std::fs::read(&bundle).expect("the bundle");
    let third = tree.read("pki/front-proxy-ca.crt");
    std::fs::write(&bundle, [two.clone(), third].concat()).expect("a third certificate");
    assert_refused(
        &tree,
        &["etcd-ca", "sign"],
        1,
        &[
            "etcd/ca.crt",
            "its certificate 3",
            "subject differs",
            "edited by hand?",
        ],
    );
    let shown = rotate(&tree, &["status"]);
    let stderr = String::from_utf8_lossy(&shown.stderr).into_owned();
    assert_eq!(shown.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let stdout = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(
        stdout.contains("etcd-ca: cannot be told: ") && stdout.contains("ca: idle"),
        "{stdout}"
    );
    std::fs::write(&bundle, &two).expect("restoring");
    let key = tree.pki().join("etcd/ca.key");
    let kept = std::fs::read(&key).expect("the key");
    std::fs::copy(tree.pki().join("front-proxy-ca.key"), &key).expect("another key");
    assert_refused(
        &tree,
        &["etcd-ca", "sign"],
        1,
        &["etcd/ca.key", "matches none of the 2 certificate(s)"],
    );
    std::fs::write(&key, kept).expect("restoring");
    rotate_ok(&tree, &["etcd-ca", "sign"]);
    assert_refused(
        &tree,
        &["etcd-ca", "trust"],
        1,
        &["trust is out of order", "rotate-ca etcd-ca finish"],
    );
    let ca = tree.pki().join("ca.crt");
    let one = std::fs::read(&ca).expect("ca.crt");
    std::fs::write(&ca, [one.clone(), one.clone()].concat()).expect("a hand-made bundle");
    assert_refused(
        &tree,
        &["ca", "trust"],
        1,
        &["ca.crt", "--cluster-signing-cert-file", "ca-bundle.crt"],
    );
    std::fs::write(&ca, &one).expect("restoring");
    let stranger = TempTree::new();
    stranger.init(ALGORITHM, &[]);
    std::fs::write(
        tree.pki().join("ca-bundle.crt"),
        [one, stranger.read("pki/ca.crt")].concat(),
    )
    .expect("another cluster's CA in the bundle");
    assert_refused(&tree, &["ca", "trust"], 1, &["ca-bundle.crt"]);
}
