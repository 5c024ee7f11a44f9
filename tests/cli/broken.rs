//! What commands do with a tree where one row is broken (#21): `certs renew all` renews
//! every sound row, reports the broken one, and fails at the end, so one hand-edited file
//! does not block every other renewal from cron.

use crate::support::{TempTree, kubepki};
use std::fs;

#[test]
fn issue_21_renew_all_renews_the_sound_rows_and_reports_the_broken_one() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    fs::copy(
        tree.pki().join("etcd/peer.key"),
        tree.pki().join("apiserver.key"),
    )
    .expect("a key of another row");
    let broken = tree.read("pki/apiserver.crt");
    let sound = tree.read("pki/front-proxy-client.crt");
    let admin = tree.read("admin.conf");
    let mut args: Vec<String> = ["certs", "renew", "all"].map(String::from).to_vec();
    args.extend(tree.dir_args());
    let out = kubepki(&args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(
        tree.read("pki/apiserver.crt"),
        broken,
        "the broken row was touched"
    );
    assert_ne!(
        tree.read("pki/front-proxy-client.crt"),
        sound,
        "a sound row not renewed"
    );
    assert_ne!(tree.read("admin.conf"), admin, "admin.conf not renewed");
    assert!(
        stdout.contains("certificate for serving the Kubernetes API NOT renewed, it is broken: ")
            && stdout.contains("does not match"),
        "{stdout}"
    );
    assert!(stdout.contains("Old files were backed up in"), "{stdout}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("kubepki: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("apiserver.key"), "{stderr}");
}
