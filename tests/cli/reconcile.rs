//! `certs renew --reconcile`, `certs generations` and `certs rollback` through the binary.
//! A kubeadm 1.28-like RSA tree (admin.conf in `system:masters`) meets a configuration with
//! a new control-plane endpoint and new SANs, then ECDSA-P256 leaves: each `--plan` shows
//! exactly those diffs and exits 3, each apply changes exactly those files, a second `--plan`
//! shows nothing, and the tree passes `audit`, `openssl verify`, a real etcd cluster and the
//! real kubectl (through the new endpoint's name). Rolling back restores the files byte for
//! byte; a reused `--backup-dir` never overwrites an earlier backup.

use crate::audit::audit;
use crate::etcd::check_cluster_on;
use crate::kubectl::{Cluster, assert_identities};
use crate::support::check::check_tree;
use crate::support::{TempTree, assert_success, changed, kubepki, openssl};
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `kubepki <words>` on `tree`.
fn run(tree: &TempTree, words: &[&str]) -> Output {
    let mut args: Vec<String> = words.iter().map(|s| s.to_string()).collect();
    args.extend(tree.dir_args());
    kubepki(&args)
}

/// A kubeadm configuration for node cp1 on 127.0.0.1:`port`, reached as localhost:`port`,
/// with two extra API server SANs.
fn configuration(tree: &TempTree, port: u16) -> String {
    let path = tree.root().join("kubeadm.yaml");
    let yaml = format!(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  \
         advertiseAddress: 127.0.0.1\n  bindPort: {port}\nnodeRegistration:\n  name: cp1\n---\n\
         apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
         controlPlaneEndpoint: localhost:{port}\napiServer:\n  certSANs: [api.example.com, 10.0.0.5]\n"
    );
    std::fs::write(&path, yaml).expect("writing the configuration");
    path.display().to_string()
}

/// Replaces admin.conf with one in `system:masters`, as kubeadm wrote it before 1.29.
fn old_admin_conf(tree: &TempTree) {
    let new = tree.root().join("admin.old");
    let out = run(
        tree,
        &[
            "kubeconfig",
            "user",
            "--client-name",
            "kubernetes-admin",
            "--org",
            "system:masters",
            "--out",
            &new.display().to_string(),
        ],
    );
    assert_success(&out, "kubeconfig user");
    std::fs::rename(&new, tree.root().join("admin.conf")).expect("renaming");
}

/// Every certificate verifies against its CA for its purpose, as openssl sees it.
fn openssl_verifies(tree: &TempTree) {
    let pki = tree.pki();
    let checks = [
        ("apiserver", "ca", "sslserver"),
        ("apiserver-kubelet-client", "ca", "sslclient"),
        ("front-proxy-client", "front-proxy-ca", "sslclient"),
        ("etcd/server", "etcd/ca", "sslserver"),
        ("etcd/peer", "etcd/ca", "sslclient"),
        ("etcd/healthcheck-client", "etcd/ca", "sslclient"),
        ("apiserver-etcd-client", "etcd/ca", "sslclient"),
    ];
    for (cert, ca, purpose) in checks {
        let path = |stem: &str| pki.join(format!("{stem}.crt")).display().to_string();
        let out = openssl(&[
            "verify",
            "-purpose",
            purpose,
            "-CAfile",
            &path(ca),
            &path(cert),
        ]);
        assert_success(&out, &format!("openssl verify -purpose {purpose} {cert}"));
    }
    let host = openssl(&[
        "x509",
        "-noout",
        "-checkhost",
        "localhost",
        "-in",
        &pki.join("apiserver.crt").display().to_string(),
    ]);
    assert!(
        text(&host.stdout).contains("does match certificate"),
        "{}",
        text(&host.stdout)
    );
}

#[test]
fn the_four_changes_are_planned_applied_and_checked_by_their_consumers() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("an address").port();
    let tree = TempTree::new();
    tree.init("RSA-2048", &["--apiserver-bind-port", &port.to_string()]);
    old_admin_conf(&tree);
    let config = configuration(&tree, port);
    let original = tree.pki_contents();
    let reconcile = ["certs", "renew", "--reconcile", "--config", &config];
    let plan = run(&tree, &[&reconcile[..], &["--plan"]].concat());
    assert_eq!(plan.status.code(), Some(3), "{}", text(&plan.stderr));
    let (old, new) = (
        format!("https://127.0.0.1:{port}"),
        format!("https://localhost:{port}"),
    );
    let expected = format!(
        "[reconcile] apiserver: re-issue with a new key\n    + DNS:api.example.com\n    \
         + DNS:localhost\n    + IP:10.0.0.5\n[reconcile] admin.conf: re-issue with a new key\n    \
         - O:system:masters\n    + O:kubeadm:cluster-admins\n    - server: {old}\n    \
         + server: {new}\n[reconcile] super-admin.conf: point at the configured server, \
         certificate kept\n    - server: {old}\n    + server: {new}\n\nPlan: 3 to change, 9 \
         unchanged. Nothing was written (--plan).\n"
    );
    assert_eq!(text(&plan.stdout), expected);
    assert_eq!(
        changed(&original, &tree.pki_contents()),
        [""; 0],
        "--plan wrote nothing"
    );
    assert_success(&run(&tree, &reconcile), "renew --reconcile");
    let first = tree.pki_contents();
    let files = [
        "admin.conf",
        "pki/apiserver.crt",
        "pki/apiserver.key",
        "super-admin.conf",
    ];
    assert_eq!(changed(&original, &first), files);
    let again = run(&tree, &[&reconcile[..], &["--plan"]].concat());
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(text(&again.stdout), "Nothing to change: 12 unchanged.\n");

    let ecdsa = [&reconcile[..], &["--encryption-algorithm", "ECDSA-P256"]].concat();
    let plan = run(&tree, &[&ecdsa[..], &["--plan", "-o", "json"]].concat());
    assert_eq!(plan.status.code(), Some(3));
    let document: serde_json::Value = serde_json::from_slice(&plan.stdout).expect("JSON");
    let rows = document["rows"].as_array().expect("rows");
    assert_eq!(document["changes"], 12);
    for row in rows {
        let diff =
            serde_json::json!([{"field": "key", "removed": ["RSA-2048"], "added": ["ECDSA-P256"]}]);
        assert_eq!(row["diff"], diff, "{}", row["name"]);
    }
    assert_success(
        &run(&tree, &ecdsa),
        "renew --reconcile --encryption-algorithm ECDSA-P256",
    );
    let switched = tree.pki_contents();
    let leaves = changed(&first, &switched);
    assert_eq!(leaves.len(), 7 * 2 + 5, "{leaves:?}");
    assert!(
        !leaves
            .iter()
            .any(|f| f.contains("ca.") || f.contains("sa.")),
        "{leaves:?}"
    );
    let again = run(&tree, &[&ecdsa[..], &["--plan"]].concat());
    assert_eq!(
        (again.status.code(), text(&again.stdout)),
        (Some(0), "Nothing to change: 12 unchanged.\n".into())
    );

    let audited = audit(
        &tree,
        &["--config", &config, "--encryption-algorithm", "ECDSA-P256"],
    );
    assert_success(&audited, "audit after reconcile");
    assert!(
        text(&audited.stdout).starts_with("No findings"),
        "{}",
        text(&audited.stdout)
    );
    assert!(check_tree(&tree).complete(), "{:?}", check_tree(&tree));
    openssl_verifies(&tree);
    check_cluster_on(&tree, "ECDSA-P256");
    let cluster = Cluster::serving(tree, listener);
    assert_identities(&cluster, "ECDSA-P256 after reconcile");
    let tree = &cluster.tree;

    let back = run(tree, &["certs", "rollback"]);
    assert_success(&back, "rollback");
    assert_eq!(
        tree.pki_contents(),
        first,
        "the algorithm switch undone, byte for byte"
    );
    let listed = run(tree, &["certs", "generations", "-o", "json"]);
    let generations: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    let list = generations["generations"].as_array().expect("generations");
    let commands: Vec<&str> = list
        .iter()
        .map(|g| g["command"].as_str().expect("a command"))
        .collect();
    assert_eq!(
        commands,
        [
            "certs renew --reconcile",
            "certs renew --reconcile",
            "certs rollback"
        ]
    );
    let oldest = list[0]["id"].as_str().expect("an id");
    assert_success(
        &run(tree, &["certs", "rollback", "--to", oldest]),
        "rollback --to",
    );
    assert_eq!(
        tree.pki_contents(),
        original,
        "the whole reconcile undone, byte for byte"
    );
}

#[test]
fn a_reused_backup_dir_keeps_every_backup() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let dir = tree.root().join("backups");
    let dir_arg = dir.display().to_string();
    let original = tree.read("pki/apiserver.crt");
    let renew = ["certs", "renew", "apiserver", "--backup-dir", &dir_arg];
    assert_success(&run(&tree, &renew), "renew");
    let renewed = tree.read("pki/apiserver.crt");
    assert_success(&run(&tree, &renew), "renew again, same --backup-dir");
    let mut backups: Vec<_> = std::fs::read_dir(&dir)
        .expect("the backup dir")
        .map(|e| e.expect("an entry").path())
        .collect();
    backups.sort();
    assert_eq!(backups.len(), 2, "{backups:?}");
    let copy = |backup: &Path| std::fs::read(backup.join("pki/apiserver.crt")).expect("a copy");
    assert_eq!((copy(&backups[0]), copy(&backups[1])), (original, renewed));
    let listed = run(&tree, &["certs", "generations", "--backup-dir", &dir_arg]);
    assert_success(&listed, "generations");
    let listing = text(&listed.stdout);
    assert!(
        listing.starts_with(&format!("Generations in {dir_arg}, newest first:\n")),
        "{listing}"
    );
    assert_eq!(
        listing
            .matches("  certs renew\n  apiserver  renewed\n")
            .count(),
        2,
        "{listing}"
    );
}
