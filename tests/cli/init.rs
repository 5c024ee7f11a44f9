//! `kubepki init` and its phases as a user sees them: what is written, what is reused
//! byte-for-byte, what is completed after a crash, external-CA mode, dry-run and JSON.

use crate::support::{TempTree, assert_success, kubepki, openssl};
use std::fs;
use std::os::unix::fs::PermissionsExt;

/// Every file a full init writes, relative to the tree's root.
const TREE: &[&str] = &[
    "pki/ca.crt",
    "pki/ca.key",
    "pki/apiserver.crt",
    "pki/apiserver.key",
    "pki/apiserver-kubelet-client.crt",
    "pki/apiserver-kubelet-client.key",
    "pki/front-proxy-ca.crt",
    "pki/front-proxy-ca.key",
    "pki/front-proxy-client.crt",
    "pki/front-proxy-client.key",
    "pki/etcd/ca.crt",
    "pki/etcd/ca.key",
    "pki/etcd/server.crt",
    "pki/etcd/server.key",
    "pki/etcd/peer.crt",
    "pki/etcd/peer.key",
    "pki/etcd/healthcheck-client.crt",
    "pki/etcd/healthcheck-client.key",
    "pki/apiserver-etcd-client.crt",
    "pki/apiserver-etcd-client.key",
    "pki/sa.key",
    "pki/sa.pub",
    "admin.conf",
    "super-admin.conf",
    "controller-manager.conf",
    "scheduler.conf",
    "kubelet.conf",
];

fn init_args(tree: &TempTree, extra: &[&str]) -> Vec<String> {
    tree.init_args("ECDSA-P256", extra)
}

fn phase(tree: &TempTree, group: &str, name: &str) -> std::process::Output {
    let mut args = init_args(tree, &[]);
    args.splice(
        1..1,
        ["phase".to_string(), group.to_string(), name.to_string()],
    );
    kubepki(&args)
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn full_init_writes_the_whole_tree_with_kubeadms_modes() {
    let tree = TempTree::new();
    let out = tree.init("ECDSA-P256", &[]);
    for rel in TREE {
        let mode = fs::metadata(tree.root().join(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}"))
            .permissions()
            .mode()
            & 0o777;
        let secret = rel.ends_with(".key") || rel.ends_with(".conf") || rel.ends_with(".pub");
        assert_eq!(mode, if secret { 0o600 } else { 0o644 }, "{rel}");
    }
    for dir in ["pki", "pki/etcd"] {
        assert_eq!(
            fs::metadata(tree.root().join(dir))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o755
        );
    }
    let text = stdout(&out);
    let pin = crate::support::ca_pin(&tree);
    assert!(
        text.contains(&format!("--discovery-token-ca-cert-hash {pin}")),
        "{text}"
    );
    assert!(!text.contains("PRIVATE KEY"), "a key was printed");
}

#[test]
fn rerun_reuses_everything_byte_identical_mtime_too() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let before = tree.snapshot();
    let out = kubepki(&init_args(&tree, &[]));
    assert_success(&out, "second init");
    assert_eq!(tree.snapshot(), before);
    let text = stdout(&out);
    assert_eq!(
        text.matches("Using the existing").count()
            + text.matches("Using existing kubeconfig").count(),
        16,
        "{text}"
    );
    assert!(!text.contains("Generating"), "{text}");
}

#[test]
fn phases_write_only_their_piece() {
    let tree = TempTree::new();
    let out = phase(&tree, "certs", "apiserver");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("init phase certs ca"),
        "{out:?}"
    );
    assert!(present(&tree).is_empty(), "a refused phase created files");
    assert_success(&phase(&tree, "certs", "ca"), "phase certs ca");
    assert_eq!(present(&tree), ["pki/ca.crt", "pki/ca.key"]);
    assert_success(&phase(&tree, "certs", "apiserver"), "phase certs apiserver");
    assert_eq!(
        present(&tree),
        [
            "pki/ca.crt",
            "pki/ca.key",
            "pki/apiserver.crt",
            "pki/apiserver.key"
        ]
    );
    assert_success(
        &phase(&tree, "kubeconfig", "admin"),
        "phase kubeconfig admin",
    );
    assert!(tree.root().join("admin.conf").exists() && !tree.root().join("kubelet.conf").exists());
    assert_success(&phase(&tree, "certs", "all"), "phase certs all");
    assert_eq!(present(&tree).len(), 23);
    assert_success(&phase(&tree, "kubeconfig", "all"), "phase kubeconfig all");
    assert_eq!(present(&tree).len(), TREE.len());
    let bad = phase(&tree, "certs", "nope");
    assert_eq!(bad.status.code(), Some(2));
}

fn present(tree: &TempTree) -> Vec<&'static str> {
    TREE.iter()
        .copied()
        .filter(|rel| tree.root().join(rel).exists())
        .collect()
}

#[test]
fn dry_run_writes_nothing_and_json_lists_every_row() {
    let tree = TempTree::new();
    let out = kubepki(&init_args(&tree, &["--dry-run", "-o", "json"]));
    assert_success(&out, "dry run");
    assert!(!tree.pki().exists());
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let steps = plan["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 16);
    assert!(steps.iter().all(|s| s["action"] == "create"));
    assert_eq!(plan["dryRun"], true);
    assert_eq!(steps[1]["name"], "apiserver");
    assert_eq!(
        steps[1]["ips"],
        serde_json::json!(["10.96.0.1", "127.0.0.1"])
    );
    tree.init("ECDSA-P256", &[]);
    let out = kubepki(&init_args(&tree, &["-o", "json"]));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        result["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["action"] == "reuse")
    );
    assert_eq!(result["caCertHash"], crate::support::ca_pin(&tree));
}

#[test]
fn leftovers_of_a_crash_are_completed_without_touching_keys() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let keys: Vec<Vec<u8>> = ["pki/apiserver.key", "pki/sa.key"]
        .iter()
        .map(|k| tree.read(k))
        .collect();
    fs::remove_file(tree.pki().join("apiserver.crt")).unwrap();
    fs::remove_file(tree.pki().join("sa.pub")).unwrap();
    let out = kubepki(&init_args(&tree, &[]));
    assert_success(&out, "completing init");
    assert_eq!(
        stdout(&out).matches("Completing").count(),
        2,
        "{}",
        stdout(&out)
    );
    assert_eq!(
        vec![tree.read("pki/apiserver.key"), tree.read("pki/sa.key")],
        keys
    );
    let pki = tree.pki().display().to_string();
    assert_eq!(
        pubkey(&format!("{pki}/apiserver.crt"), "x509"),
        pubkey(&format!("{pki}/apiserver.key"), "pkey")
    );
    assert_eq!(
        tree.read("pki/sa.pub"),
        openssl(&["pkey", "-in", &format!("{pki}/sa.key"), "-pubout"]).stdout
    );
}

fn pubkey(path: &str, kind: &str) -> Vec<u8> {
    let out = match kind {
        "x509" => openssl(&["x509", "-in", path, "-noout", "-pubkey"]),
        _ => openssl(&["pkey", "-in", path, "-pubout"]),
    };
    assert!(out.status.success(), "{path}: {out:?}");
    out.stdout
}

#[test]
fn a_ca_key_without_its_certificate_gets_a_certificate_never_a_new_key() {
    let tree = TempTree::new();
    assert_success(&phase(&tree, "certs", "ca"), "phase certs ca");
    let key = tree.read("pki/ca.key");
    fs::remove_file(tree.pki().join("ca.crt")).unwrap();
    assert_success(&kubepki(&init_args(&tree, &[])), "init after losing ca.crt");
    assert_eq!(tree.read("pki/ca.key"), key);
    let pki = tree.pki().display().to_string();
    assert_eq!(
        pubkey(&format!("{pki}/ca.crt"), "x509"),
        pubkey(&format!("{pki}/ca.key"), "pkey")
    );
}

#[test]
fn external_ca_reuses_leaves_and_refuses_to_create_missing_ones() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    fs::remove_file(tree.pki().join("ca.key")).unwrap();
    let before = tree.snapshot();
    let out = kubepki(&init_args(&tree, &["--dry-run"]));
    assert_success(&out, "external CA dry run");
    assert!(stdout(&out).contains("external CA"), "{}", stdout(&out));
    assert_success(&kubepki(&init_args(&tree, &[])), "init with external CA");
    assert_eq!(tree.snapshot(), before);
    fs::remove_file(tree.pki().join("apiserver.crt")).unwrap();
    fs::remove_file(tree.pki().join("apiserver.key")).unwrap();
    let before = tree.snapshot();
    let out = kubepki(&init_args(&tree, &[]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("apiserver.crt is missing and the CA key") && err.contains("ca.key is needed"),
        "{err}"
    );
    assert_eq!(tree.snapshot(), before);
}

#[test]
fn ipv6_dual_stack_and_endpoint_reach_sans_and_kubeconfigs() {
    let tree = TempTree::new();
    let args = init_args(
        &tree,
        &[
            "--apiserver-advertise-address",
            "fd00::10",
            "--service-cidr",
            "fd00:10:96::/112,10.96.0.0/12",
            "--control-plane-endpoint",
            "[fd00::1]:7443",
        ],
    );
    assert_success(&kubepki(&args), "IPv6 init");
    let sans = openssl(&[
        "x509",
        "-in",
        &tree.pki().join("apiserver.crt").display().to_string(),
        "-noout",
        "-ext",
        "subjectAltName",
    ]);
    let sans = String::from_utf8_lossy(&sans.stdout);
    assert!(sans.contains("IP Address:FD00:10:96:0:0:0:0:1, IP Address:FD00:0:0:0:0:0:0:10, IP Address:FD00:0:0:0:0:0:0:1"), "{sans}");
    let admin = String::from_utf8_lossy(&tree.read("admin.conf")).into_owned();
    assert!(admin.contains("server: https://[fd00::1]:7443"), "{admin}");
    let scheduler = String::from_utf8_lossy(&tree.read("scheduler.conf")).into_owned();
    assert!(
        scheduler.contains("server: https://[fd00::10]:6443"),
        "{scheduler}"
    );
}

#[test]
fn node_name_and_advertise_address_default_to_host_facts() {
    let tree = TempTree::new();
    let mut args = vec![
        "init".to_string(),
        "--dry-run".into(),
        "-o".into(),
        "json".into(),
    ];
    args.extend(tree.dir_args());
    let out = kubepki(&args);
    assert_success(&out, "init with host defaults");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_lowercase();
    let apiserver = &plan["steps"][1];
    assert!(
        apiserver["dnsNames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == hostname.as_str()),
        "{apiserver}"
    );
    let advertise: std::net::IpAddr = apiserver["ips"][1].as_str().unwrap().parse().unwrap();
    assert!(!advertise.is_loopback(), "{advertise}");
}

#[test]
fn a_host_without_a_non_loopback_address_fails_clearly() {
    let unshare =
        crate::support::require_tool("unshare", "apt-get update && apt-get install -y util-linux");
    let tree = TempTree::new();
    let out = std::process::Command::new(unshare)
        .args([
            "-n",
            env!("CARGO_BIN_EXE_kubepki"),
            "init",
            "--node-name",
            "cp1",
        ])
        .args(tree.dir_args())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "kubepki: error: this host has no non-loopback address; pass --apiserver-advertise-address"
    );
    assert!(!tree.pki().exists());
}
