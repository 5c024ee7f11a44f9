//! The recorded configuration (#21): `init` records the settings it used in
//! `<kubeconfig-dir>/kubepki-config.yaml`, and every command reads them by default. On a tree
//! issued for another host's name and address (node cp1 on 10.0.0.11 behind lb.example.com,
//! none of them this host's), `flags`, `audit`, `renew --reconcile --plan`, a re-run `init`
//! and host 2's `init` after `bundle import` answer the same with and without the node and
//! cluster flags; a flag that moves the node is refused, one that contradicts the record is
//! named; a tree without the record has its settings read from its files; and `--config`
//! takes the `kubeadm-config` ConfigMap manifest init writes.

use crate::support::{TempTree, assert_success, kubepki, openssl};
use std::fs;
use std::process::Output;

/// The node and cluster flags the tree of `issued_elsewhere` was made with.
const CLUSTER: [&str; 8] = [
    "--node-name",
    "cp1",
    "--apiserver-advertise-address",
    "10.0.0.11",
    "--control-plane-endpoint",
    "lb.example.com:6443",
    "--apiserver-cert-extra-sans",
    "api.example.com,10.9.9.9",
];

/// `kubepki <words> <tree's dirs> <extra>`.
fn run(tree: &TempTree, words: &[&str], extra: &[&str]) -> Output {
    let mut args: Vec<String> = words.iter().map(|s| s.to_string()).collect();
    args.extend(tree.dir_args());
    args.extend(extra.iter().map(|s| s.to_string()));
    kubepki(&args)
}

/// A tree `init` made for node cp1 on 10.0.0.11 behind lb.example.com:6443 (ECDSA, fast).
fn issued_elsewhere() -> TempTree {
    let tree = TempTree::new();
    let extra = [&CLUSTER[..], &["--encryption-algorithm", "ECDSA-P256"]].concat();
    assert_success(&run(&tree, &["init"], &extra), "init for cp1");
    tree
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The subjectAltName of the certificate `rel` below the tree's root, as openssl prints it.
fn sans(tree: &TempTree, rel: &str) -> String {
    let path = tree.root().join(rel).display().to_string();
    let out = openssl(&["x509", "-noout", "-ext", "subjectAltName", "-in", &path]);
    assert_success(&out, "openssl x509 -ext subjectAltName");
    stdout(&out)
}

/// The `server:` line of kubeconfig `name` of the tree.
fn server(tree: &TempTree, name: &str) -> String {
    let text = String::from_utf8(tree.read(name)).expect("UTF-8");
    let line = text.lines().find(|l| l.trim_start().starts_with("server:"));
    line.expect("a server line").trim().to_string()
}

/// Runs `words` on `tree` without and with the cluster flags (`--reconcile` takes them
/// too): the two answers (exit status and stdout) must be the same; returns the first.
fn same_with_and_without_flags(tree: &TempTree, words: &[&str]) -> Output {
    let without = run(tree, words, &[]);
    let with = run(tree, words, &CLUSTER);
    assert_eq!(
        (without.status.code(), stdout(&without)),
        (with.status.code(), stdout(&with)),
        "kubepki {words:?} without and with the flags\nstderr without: {}\nstderr with: {}",
        stderr(&without),
        stderr(&with)
    );
    without
}

#[test]
fn init_records_its_settings_without_any_secret() {
    let tree = issued_elsewhere();
    let record = fs::read_to_string(tree.root().join("kubepki-config.yaml")).expect("a record");
    for setting in [
        "apiVersion: kubeadm.k8s.io/v1beta4",
        "kind: InitConfiguration",
        "kind: ClusterConfiguration",
        "name: cp1",
        "advertiseAddress: 10.0.0.11",
        "controlPlaneEndpoint: lb.example.com:6443",
        "- api.example.com",
        "encryptionAlgorithm: ECDSA-P256",
    ] {
        assert!(record.contains(setting), "{setting} in\n{record}");
    }
    assert!(!record.contains("token"), "{record}");
    let validate = kubepki(&[
        "config",
        "validate",
        "--config",
        &tree
            .root()
            .join("kubepki-config.yaml")
            .display()
            .to_string(),
    ]);
    assert_success(&validate, "config validate of the record");
}

#[test]
fn a_tree_issued_for_another_host_answers_the_same_with_and_without_its_flags() {
    let tree = issued_elsewhere();
    let apiserver = stdout(&same_with_and_without_flags(
        &tree,
        &["flags", "kube-apiserver"],
    ));
    assert!(
        apiserver.contains("--advertise-address=10.0.0.11\n"),
        "{apiserver}"
    );
    let etcd = stdout(&same_with_and_without_flags(&tree, &["flags", "etcd"]));
    assert!(etcd.contains("--name=cp1\n"), "{etcd}");
    let audit = same_with_and_without_flags(&tree, &["certs", "audit"]);
    assert_eq!(audit.status.code(), Some(0), "{}", stdout(&audit));
    assert!(
        !stdout(&audit).contains("without a configuration"),
        "{}",
        stdout(&audit)
    );
    let plan = same_with_and_without_flags(&tree, &["certs", "renew", "--reconcile", "--plan"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stdout(&plan));
    let before = tree.pki_contents();
    same_with_and_without_flags(&tree, &["init"]);
    assert_eq!(
        tree.pki_contents(),
        before,
        "a re-run init changed the tree"
    );
}

#[test]
fn a_flag_that_moves_the_node_is_refused_and_one_that_contradicts_the_record_is_named() {
    let tree = issued_elsewhere();
    let before = tree.snapshot();
    for words in [&["flags", "etcd"][..], &["init"], &["certs", "audit"]] {
        let out = run(&tree, words, &["--node-name", "cp2"]);
        assert_eq!(out.status.code(), Some(1), "{words:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("--node-name cp2: this tree was made for cp1 (recorded in ")
                && err.contains("kubepki-config.yaml"),
            "{err}"
        );
    }
    assert!(
        tree.snapshot() == before,
        "a refused command changed the tree"
    );
    let moved = run(
        &tree,
        &["certs", "renew", "--reconcile", "--plan"],
        &["--node-name", "cp2"],
    );
    assert_eq!(moved.status.code(), Some(3), "{}", stderr(&moved));
    assert!(stdout(&moved).contains("etcd-server"), "{}", stdout(&moved));
    let other = run(
        &tree,
        &["flags", "kube-apiserver"],
        &["--service-cidr", "10.100.0.0/16"],
    );
    assert_success(&other, "flags with another service CIDR");
    assert!(
        stdout(&other).contains("--service-cluster-ip-range=10.100.0.0/16"),
        "{}",
        stdout(&other)
    );
    let said = stderr(&other);
    let named: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("--service-cidr 10.100.0.0/16 overrides 10.96.0.0/12"))
        .collect();
    assert_eq!(named.len(), 1, "{said}");
}

#[test]
fn host_2_after_bundle_import_makes_what_host_1_made_with_or_without_the_cluster_flags() {
    let first = issued_elsewhere();
    let key = stdout(&kubepki(&["certs", "certificate-key"]))
        .trim()
        .to_string();
    let bundle = first.root().join("bundle.yaml").display().to_string();
    let export = run(
        &first,
        &[
            "certs",
            "bundle",
            "export",
            "--certificate-key",
            &key,
            "-o",
            &bundle,
        ],
        &[],
    );
    assert_success(&export, "bundle export");
    let second = TempTree::new();
    let import = run(
        &second,
        &[
            "certs",
            "bundle",
            "import",
            "--certificate-key",
            &key,
            &bundle,
        ],
        &[],
    );
    assert_success(&import, "bundle import");
    assert!(
        stdout(&import).contains("Recorded the cluster's settings"),
        "{}",
        stdout(&import)
    );
    let with_flags = TempTree::copy_of(&second);
    let node = [
        "--node-name",
        "cp2",
        "--apiserver-advertise-address",
        "10.0.0.12",
    ];
    assert_success(&run(&second, &["init"], &node), "host 2 init");
    let cluster = [&node[..], &CLUSTER[4..]].concat();
    assert_success(
        &run(&with_flags, &["init"], &cluster),
        "host 2 init with the cluster flags",
    );
    let apiserver = sans(&second, "pki/apiserver.crt");
    for san in [
        "DNS:lb.example.com",
        "DNS:api.example.com",
        "IP Address:10.9.9.9",
    ] {
        assert!(apiserver.contains(san), "{san} in {apiserver}");
    }
    assert!(apiserver.contains("IP Address:10.0.0.12"), "{apiserver}");
    assert_eq!(apiserver, sans(&with_flags, "pki/apiserver.crt"));
    assert_eq!(
        server(&second, "admin.conf"),
        "server: https://lb.example.com:6443"
    );
    assert_eq!(
        server(&second, "admin.conf"),
        server(&with_flags, "admin.conf")
    );
    let etcd = stdout(&same_with_and_without_node(
        &second,
        &["flags", "etcd"],
        &node,
    ));
    assert!(etcd.contains("--name=cp2\n"), "{etcd}");
}

/// `same_with_and_without_flags` for host 2, whose node flags are `node`.
fn same_with_and_without_node(tree: &TempTree, words: &[&str], node: &[&str]) -> Output {
    let without = run(tree, words, &[]);
    let with = run(tree, words, node);
    assert_eq!(
        (without.status.code(), stdout(&without)),
        (with.status.code(), stdout(&with)),
        "{}",
        stderr(&with)
    );
    without
}

#[test]
fn a_tree_without_the_record_is_read_from_its_files_and_says_so() {
    let tree = issued_elsewhere();
    let record = tree.root().join("kubepki-config.yaml");
    fs::remove_file(&record).expect("removing the record");
    let etcd = run(&tree, &["flags", "etcd"], &[]);
    assert_success(&etcd, "flags etcd on a tree without its record");
    assert!(stdout(&etcd).contains("--name=cp1\n"), "{}", stdout(&etcd));
    let said = stderr(&etcd);
    assert!(
        said.contains("does not exist: the tree's settings are read from its files (node cp1, address 10.0.0.11, endpoint lb.example.com:6443)")
            && said.contains("kubepki init --cert-dir"),
        "{said}"
    );
    same_with_and_without_flags(&tree, &["flags", "kube-apiserver"]);
    let plan = same_with_and_without_flags(&tree, &["certs", "renew", "--reconcile", "--plan"]);
    assert_eq!(plan.status.code(), Some(0), "{}", stdout(&plan));
    let audit = same_with_and_without_flags(&tree, &["certs", "audit"]);
    assert_eq!(audit.status.code(), Some(0), "{}", stdout(&audit));
    assert!(!record.exists(), "a reading command wrote the record");
    assert_success(&run(&tree, &["init"], &[]), "init records the settings");
    let written = fs::read_to_string(&record).expect("the record, written by init");
    assert!(written.contains("name: cp1"), "{written}");
}

#[test]
fn config_takes_the_kubeadm_config_config_map_init_writes() {
    let first = issued_elsewhere();
    let config_map = first.root().join("bootstrap/kubeadm-config.yaml");
    let config = config_map.display().to_string();
    let second = TempTree::new();
    let node = [
        "--node-name",
        "cp2",
        "--apiserver-advertise-address",
        "10.0.0.12",
    ];
    let flags = run(
        &second,
        &["flags", "kube-apiserver", "--config", &config],
        &node,
    );
    assert_success(&flags, "flags --config <the kubeadm-config ConfigMap>");
    let init = run(&second, &["init", "--config", &config], &node);
    assert_success(&init, "init --config <the kubeadm-config ConfigMap>");
    assert_eq!(
        server(&second, "admin.conf"),
        "server: https://lb.example.com:6443"
    );
    let apiserver = sans(&second, "pki/apiserver.crt");
    assert!(apiserver.contains("DNS:api.example.com"), "{apiserver}");
    let not_kubeadm = second.root().join("other.yaml");
    fs::write(
        &not_kubeadm,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
    )
    .expect("write");
    let refused = run(
        &second,
        &[
            "flags",
            "etcd",
            "--config",
            &not_kubeadm.display().to_string(),
        ],
        &[],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("without a kubeadm-config ConfigMap"),
        "{}",
        stderr(&refused)
    );
}
