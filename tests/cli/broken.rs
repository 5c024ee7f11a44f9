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

/// `kubepki certs <words> <tree's dirs>`.
fn certs(tree: &TempTree, words: &[&str]) -> std::process::Output {
    let mut args: Vec<String> = ["certs"]
        .iter()
        .chain(words)
        .map(|s| s.to_string())
        .collect();
    args.extend(tree.dir_args());
    kubepki(&args)
}

#[test]
fn issue_21_a_ca_near_its_end_is_an_audit_finding_and_renew_does_not_reissue_to_the_same_end() {
    let soon = TempTree::new();
    soon.init("ECDSA-P256", &["--ca-validity", "60d"]);
    let audit = certs(&soon, &["audit"]);
    let text = String::from_utf8_lossy(&audit.stdout);
    assert_eq!(audit.status.code(), Some(3), "{text}");
    let ending: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("error    ca-ending-soon "))
        .collect();
    assert_eq!(ending.len(), 3, "the three CAs: {text}");
    assert!(
        ending[0].contains("/pki/ca.crt: the CA ends on ")
            && ending[0].contains("rotate it (kubepki certs rotate-ca ca trust)"),
        "{text}"
    );
    let year = TempTree::new();
    year.init("ECDSA-P256", &["--ca-validity", "200d"]);
    let audit = certs(&year, &["audit"]);
    let text = String::from_utf8_lossy(&audit.stdout);
    assert_eq!(audit.status.code(), Some(0), "warnings only: {text}");
    assert_eq!(text.matches("warning  ca-ending ").count(), 3, "{text}");
    // Every leaf already ends with its CA: re-issuing it would end on the same day.
    let before = soon.pki_contents();
    let renew = certs(&soon, &["renew", "all", "--expiring-within", "90d"]);
    let text = String::from_utf8_lossy(&renew.stdout);
    assert_eq!(renew.status.code(), Some(0), "{text}");
    assert_eq!(
        soon.pki_contents(),
        before,
        "renew re-issued to the same end: {text}"
    );
    assert!(
        text.contains(
            "certificate for serving the Kubernetes API: not renewed, a new certificate would end no later than this one: its CA \"ca\" ends on "
        ),
        "{text}"
    );
    assert!(!text.contains(" renewed\n"), "{text}");
}

#[test]
fn issue_21_a_leaf_of_the_ca_going_away_is_its_ca_for_init_renew_and_reconcile_alike() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let old = [
        tree.read("pki/apiserver.crt"),
        tree.read("pki/apiserver.key"),
    ];
    for stage in ["trust", "sign"] {
        let out = certs(&tree, &["rotate-ca", "ca", stage]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "rotate-ca ca {stage}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Mid-rotation, a leaf the old CA signed (put back by hand) verifies for every reader.
    fs::write(tree.pki().join("apiserver.crt"), &old[0]).expect("writing");
    fs::write(tree.pki().join("apiserver.key"), &old[1]).expect("writing");
    let mut init: Vec<String> = tree.init_args("ECDSA-P256", &["--dry-run"]);
    init.retain(|a| !a.is_empty());
    let planned = kubepki(&init);
    let said = String::from_utf8_lossy(&planned.stdout);
    assert_eq!(
        planned.status.code(),
        Some(0),
        "init: {said}{}",
        String::from_utf8_lossy(&planned.stderr)
    );
    let plan = certs(&tree, &["renew", "--reconcile", "--plan"]);
    assert_ne!(
        plan.status.code(),
        Some(1),
        "reconcile: {}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let audit = certs(&tree, &["audit"]);
    let text = String::from_utf8_lossy(&audit.stdout);
    assert!(!text.contains("not-signed-by-ca"), "audit: {text}");
    let renew = certs(&tree, &["renew", "apiserver"]);
    assert_eq!(
        renew.status.code(),
        Some(0),
        "renew: {}",
        String::from_utf8_lossy(&renew.stderr)
    );
}

#[test]
fn issue_21_reconcile_plan_plans_every_row_and_marks_the_broken_one() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    fs::copy(
        tree.pki().join("etcd/peer.key"),
        tree.pki().join("apiserver.key"),
    )
    .expect("a key of another row");
    let endpoint = ["--control-plane-endpoint", "lb.example.com:6443"];
    let plan = certs(
        &tree,
        &[&["renew", "--reconcile", "--plan"][..], &endpoint].concat(),
    );
    let text = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(
        plan.status.code(),
        Some(3),
        "{text}{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    assert!(
        text.contains("[reconcile] apiserver: BROKEN, left as it is: ")
            && text.contains("apiserver.key: does not match"),
        "{text}"
    );
    assert!(
        text.contains("[reconcile] admin.conf: "),
        "the other rows planned: {text}"
    );
    let before = tree.read("pki/apiserver.crt");
    let admin = tree.read("admin.conf");
    let applied = certs(&tree, &[&["renew", "--reconcile"][..], &endpoint].concat());
    assert_eq!(applied.status.code(), Some(1));
    assert_eq!(
        tree.read("pki/apiserver.crt"),
        before,
        "the broken row was touched"
    );
    assert_ne!(
        tree.read("admin.conf"),
        admin,
        "admin.conf was not reconciled"
    );
}

#[test]
fn issue_21_audit_knows_a_rotations_own_files() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let trust = certs(&tree, &["rotate-ca", "ca", "trust"]);
    assert_eq!(
        trust.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&trust.stderr)
    );
    assert!(tree.pki().join("ca-bundle.crt").is_file() && tree.pki().join("next/ca.key").is_file());
    let audit = certs(&tree, &["audit"]);
    let text = String::from_utf8_lossy(&audit.stdout);
    assert!(!text.contains("stray-file"), "{text}");
    assert!(
        !text.contains("kubeconfig-extra-ca"),
        "the bundle is trusted mid-rotation: {text}"
    );
    for stage in ["sign", "finish"] {
        let out = certs(&tree, &["rotate-ca", "ca", stage]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let audit = certs(&tree, &["audit"]);
        let text = String::from_utf8_lossy(&audit.stdout);
        assert!(
            !text.contains("kubeconfig-extra-ca"),
            "after {stage}: {text}"
        );
    }
    let stray = tree.pki().join("apiserver.crt.old");
    fs::write(&stray, "left by hand").expect("writing");
    let audit = certs(&tree, &["audit"]);
    let text = String::from_utf8_lossy(&audit.stdout);
    assert_eq!(text.matches("stray-file").count(), 1, "{text}");
}
