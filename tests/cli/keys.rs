//! Never lose a key (#25): the generation of a forced `certs bundle import` outlives
//! `--keep` and goes only when named; outputs (`--metrics-file`, `bundle export -o`,
//! `kubeconfig user --output`) never replace a file of the tree, nor anything else without
//! `--force` (a metrics file only when it is one kubepki wrote); `certs rollback` refuses to
//! put back what the CA on disk after it did not sign (a generation older than a rotation,
//! or a tampered one); `rotate-ca trust` refuses a new CA that ends too soon, and `sign`
//! says when it caps; `bundle import` refuses while a rotation is under way. Every refusal:
//! exit 1, one line, the tree byte-identical.

use crate::support::{TempTree, assert_success, kubepki, openssl};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

const ALGORITHM: &str = "ECDSA-P256";

fn run(tree: &TempTree, args: &[&str]) -> Output {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(tree.dir_args());
    kubepki(&all)
}

fn run_ok(tree: &TempTree, args: &[&str]) -> Output {
    let out = run(tree, args);
    assert_success(&out, &format!("{args:?}"));
    out
}

/// Runs `args`, which must fail with exit 1 and one line on stderr saying each of `says`,
/// leaving the tree byte-identical. Returns stderr.
fn refused(tree: &TempTree, args: &[&str], says: &[&str]) -> String {
    let before = tree.snapshot();
    let out = run(tree, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
    for part in says {
        assert!(stderr.contains(part), "{args:?}: {stderr:?} lacks {part:?}");
    }
    assert_eq!(tree.snapshot(), before, "{args:?} changed the tree");
    stderr
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A new certificate key.
fn new_key() -> String {
    let out = kubepki(&["certs", "certificate-key"]);
    assert_success(&out, "certs certificate-key");
    stdout(&out).trim().to_string()
}

/// `tree`'s bundle, sealed with `key`, in a file outside it.
fn bundle_of(tree: &TempTree, key: &str, outside: &Path) -> PathBuf {
    let file = outside.join("kubeadm-certs.yaml");
    let path = file.display().to_string();
    run_ok(
        tree,
        &[
            "certs",
            "bundle",
            "export",
            "--certificate-key",
            key,
            "-o",
            &path,
        ],
    );
    file
}

/// The generations of `tree` (`certs generations -o json`): (id, command).
fn generations(tree: &TempTree) -> Vec<(String, String)> {
    let out = run_ok(tree, &["certs", "generations", "-o", "json"]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    listed["generations"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|g| {
            let text = |field: &str| g[field].as_str().expect("a string").to_string();
            (text("id"), text("command"))
        })
        .collect()
}

#[test]
fn a_forced_import_keeps_the_replaced_ca_keys_beyond_keep_until_removed_by_name() {
    let tree = TempTree::new();
    tree.init(ALGORITHM, &[]);
    // Another host's bundle with the same cluster and etcd CAs (so that renew still signs
    // apiserver), another front-proxy CA and service-account key pair.
    let other = TempTree::new();
    fs::create_dir_all(other.pki().join("etcd")).expect("a cert dir");
    for shared in ["ca.crt", "ca.key", "etcd/ca.crt", "etcd/ca.key"] {
        fs::copy(tree.pki().join(shared), other.pki().join(shared)).expect("a copy");
    }
    other.init(ALGORITHM, &[]);
    let outside = tempfile::tempdir().expect("a temp dir");
    let key = new_key();
    let bundle = bundle_of(&other, &key, outside.path());
    let old_ca_key = tree.read("pki/front-proxy-ca.key");
    let old_sa_key = tree.read("pki/sa.key");
    let file = bundle.display().to_string();
    let imported = run_ok(
        &tree,
        &[
            "certs",
            "bundle",
            "import",
            &file,
            "--certificate-key",
            &key,
            "--force",
        ],
    );
    assert_eq!(
        tree.read("pki/front-proxy-ca.key"),
        other.read("pki/front-proxy-ca.key"),
        "{imported:?}"
    );
    let [(import_id, command)] = generations(&tree).try_into().expect("one generation");
    assert_eq!(command, "certs bundle import");
    let mut last = None;
    for _ in 0..6 {
        last = Some(run_ok(
            &tree,
            &["certs", "renew", "apiserver", "--keep", "5"],
        ));
    }
    let said = stdout(&last.expect("a renewal"));
    let listed = generations(&tree);
    assert_eq!(listed.len(), 6, "the newest 5 and the import: {listed:?}");
    assert_eq!(listed[0], (import_id.clone(), command.clone()));
    assert!(
        said.contains(&format!("kubepki-backup-{import_id} beyond --keep"))
            && said.contains("it holds the replaced key of front-proxy-ca, sa")
            && said.contains(&format!(
                "certs generations --remove kubepki-backup-{import_id}"
            )),
        "{said}"
    );
    // The import can still be undone: the CA key and sa.key come back byte for byte.
    let rolled_back = run_ok(&tree, &["certs", "rollback", "--to", &import_id]);
    assert_eq!(
        tree.read("pki/front-proxy-ca.key"),
        old_ca_key,
        "{}",
        stdout(&rolled_back)
    );
    assert_eq!(tree.read("pki/sa.key"), old_sa_key);
    let removed = run_ok(&tree, &["certs", "generations", "--remove", &import_id]);
    assert!(
        stdout(&removed).contains("it held the replaced key of front-proxy-ca, sa"),
        "{}",
        stdout(&removed)
    );
    assert!(
        !generations(&tree).iter().any(|(id, _)| *id == import_id),
        "removed when named"
    );
    refused(
        &tree,
        &["certs", "generations", "--remove", &import_id],
        &["--remove", "no such generation"],
    );
}

#[test]
fn outputs_never_replace_a_file_of_the_tree_nor_another_without_force() {
    let tree = TempTree::new();
    tree.init(ALGORITHM, &[]);
    let key = new_key();
    let ca_key = tree.pki().join("ca.key").display().to_string();
    let admin = tree.root().join("admin.conf").display().to_string();
    let check =
        |path: &str| ["certs", "check-expiration", "--metrics-file", path].map(String::from);
    let export = |path: &str, extra: &[&str]| {
        let args = [
            "certs",
            "bundle",
            "export",
            "--certificate-key",
            &key,
            "--out",
            path,
        ];
        args.iter()
            .chain(extra)
            .map(|a| a.to_string())
            .collect::<Vec<String>>()
    };
    let refuse = |args: &[String], says: &[&str]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&tree, &args, says);
    };
    let succeed = |args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_ok(&tree, &args);
    };
    refuse(
        &check(&ca_key),
        &["--metrics-file", "ca.key", "a directory of the tree"],
    );
    refuse(&export(&ca_key, &[]), &["--out", "a directory of the tree"]);
    refuse(
        &export(&ca_key, &["--force"]),
        &["--out", "a directory of the tree"],
    );
    let user = [
        "kubeconfig",
        "user",
        "--client-name",
        "eve",
        "--out",
        &admin,
        "--force",
    ];
    refuse(
        &user.map(String::from),
        &["--out", "admin.conf", "a kubeconfig of the tree"],
    );
    // Outside the tree: create-only unless --force; a metrics file is replaced only when
    // it is one kubepki wrote.
    let outside = tempfile::tempdir().expect("a temp dir");
    let notes = outside.path().join("notes.txt");
    fs::write(&notes, "mine\n").expect("a file");
    let notes_arg = notes.display().to_string();
    refuse(
        &check(&notes_arg),
        &["--metrics-file", "not a metrics file kubepki wrote"],
    );
    refuse(
        &export(&notes_arg, &[]),
        &["notes.txt exists; pass --force to replace it"],
    );
    assert_eq!(fs::read(&notes).expect("kept"), b"mine\n");
    succeed(&export(&notes_arg, &["--force"]));
    assert!(
        fs::read_to_string(&notes)
            .expect("replaced")
            .contains("kubeadm-certs")
    );
    let metrics = outside.path().join("kubepki.prom").display().to_string();
    succeed(&check(&metrics));
    succeed(&check(&metrics));
    let text = fs::read_to_string(&metrics).expect("written");
    assert!(
        text.contains("kubepki_certificate_expiration_timestamp_seconds{"),
        "{text}"
    );
}

/// A stranger's tree, for a certificate from another cluster.
fn stranger() -> TempTree {
    let tree = TempTree::new();
    tree.init(ALGORITHM, &[]);
    tree
}

/// The directory of `tree`'s newest generation.
fn newest_generation(tree: &TempTree) -> PathBuf {
    let (id, _) = generations(tree).pop().expect("a generation");
    tree.root().join("tmp").join(format!("kubepki-backup-{id}"))
}

#[test]
fn a_rollback_refuses_what_the_ca_after_it_did_not_sign() {
    let tree = TempTree::new();
    tree.init(ALGORITHM, &[]);
    tree.renew_all();
    for stage in ["trust", "sign", "finish"] {
        run_ok(&tree, &["certs", "rotate-ca", "ca", stage]);
    }
    let stderr = refused(
        &tree,
        &["certs", "rollback"],
        &[
            "is not signed by the CA",
            "predates a replacement of the ca CA",
            "certs rotate-ca ca",
            "--force",
        ],
    );
    assert!(
        stderr.contains("pki/ca.crt holds after the rollback"),
        "{stderr}"
    );
    // A generation holding a consistent pair from another cluster.
    let tampered = TempTree::new();
    tampered.init(ALGORITHM, &[]);
    run_ok(&tampered, &["certs", "renew", "front-proxy-client"]);
    let generation = newest_generation(&tampered);
    let other = stranger();
    for ext in ["key", "crt"] {
        let rel = format!("pki/front-proxy-client.{ext}");
        fs::write(generation.join(&rel), other.read(&rel)).expect("tampering");
    }
    refused(
        &tampered,
        &["certs", "rollback"],
        &[
            "front-proxy-client from generation",
            "is not signed by the CA",
        ],
    );
    // --force restores it anyway, and says so nowhere else: the operator asked.
    run_ok(&tampered, &["certs", "rollback", "--force"]);
    assert_eq!(
        tampered.read("pki/front-proxy-client.crt"),
        other.read("pki/front-proxy-client.crt")
    );
}

/// A CA valid for `hours` hours, made by init in a tree of its own, as `--from` takes it.
fn short_lived_ca(hours: u32) -> TempTree {
    let tree = TempTree::new();
    tree.init(ALGORITHM, &["--ca-validity", &format!("{hours}h")]);
    tree
}

#[test]
fn rotate_ca_refuses_a_new_ca_that_ends_too_soon_and_sign_says_when_it_caps() {
    let tree = TempTree::new();
    tree.init(ALGORITHM, &[]);
    refused(
        &tree,
        &["certs", "rotate-ca", "ca", "trust", "--ca-validity", "2h"],
        &["the new ca CA ends", "before the current one", "--force"],
    );
    let short = short_lived_ca(2);
    let from = short.pki().display().to_string();
    refused(
        &tree,
        &["certs", "rotate-ca", "ca", "trust", "--from", &from],
        &["the new ca CA ends", "before the current one"],
    );
    // A CA that outlives the current one but not --cert-validity from now.
    let brief = TempTree::new();
    brief.init(ALGORITHM, &["--ca-validity", "1h"]);
    let later = short_lived_ca(5);
    let later_from = later.pki().display().to_string();
    refused(
        &brief,
        &["certs", "rotate-ca", "ca", "trust", "--from", &later_from],
        &["within --cert-validity 8760h", "--force"],
    );
    run_ok(
        &brief,
        &[
            "certs",
            "rotate-ca",
            "ca",
            "trust",
            "--from",
            &later_from,
            "--force",
        ],
    );
    let signed = run_ok(&brief, &["certs", "rotate-ca", "ca", "sign"]);
    let said = stderr(&signed);
    assert!(
        said.contains("valid only until") && said.contains("when their CA \"ca\" ends"),
        "{said}"
    );
    let text = openssl(&[
        "x509",
        "-noout",
        "-enddate",
        "-in",
        &brief.pki().join("apiserver.crt").display().to_string(),
    ]);
    let ca_end = openssl(&[
        "x509",
        "-noout",
        "-enddate",
        "-in",
        &later.pki().join("ca.crt").display().to_string(),
    ]);
    assert_eq!(stdout(&text), stdout(&ca_end), "capped to the new CA's end");
}

#[test]
fn bundle_import_refuses_while_a_rotation_is_under_way() {
    let tree = TempTree::new();
    tree.init(ALGORITHM, &[]);
    let other = stranger();
    let outside = tempfile::tempdir().expect("a temp dir");
    let key = new_key();
    let file = bundle_of(&other, &key, outside.path())
        .display()
        .to_string();
    let import = [
        "certs",
        "bundle",
        "import",
        &file,
        "--certificate-key",
        &key,
        "--force",
    ];
    run_ok(&tree, &["certs", "rotate-ca", "etcd-ca", "trust"]);
    refused(
        &tree,
        &import,
        &[
            "the rotation of etcd-ca is under way",
            "finish the rotation first",
            "certs rotate-ca etcd-ca sign",
        ],
    );
    run_ok(&tree, &["certs", "rotate-ca", "etcd-ca", "sign"]);
    refused(&tree, &import, &["certs rotate-ca etcd-ca finish"]);
    run_ok(&tree, &["certs", "rotate-ca", "etcd-ca", "finish"]);
    run_ok(&tree, &import);
}

#[test]
fn a_forged_rollback_mark_stops_every_writer_and_stays() {
    let tree = TempTree::new();
    tree.init(ALGORITHM, &[]);
    run_ok(&tree, &["certs", "renew", "apiserver"]);
    let mark = tree.root().join("tmp/kubepki-rollback.pending");
    let marks = [
        tree.pki().display().to_string(),
        "tmp/kubepki-backup-20260101T000000Z".to_string(),
        newest_generation(&tree).display().to_string(),
    ];
    let says = [
        "not the absolute path of a generation directory",
        "not the absolute path of a generation directory",
        "a generation of `certs renew`, not of a rollback",
    ];
    for (named, said) in marks.iter().zip(says) {
        fs::write(&mark, named).expect("a mark");
        for writer in [&["certs", "renew", "all"][..], &["token", "create"]] {
            refused(
                &tree,
                writer,
                &[
                    "kubepki-rollback.pending: the mark of an interrupted rollback",
                    said,
                ],
            );
        }
        assert_eq!(fs::read_to_string(&mark).expect("kept"), *named);
    }
}
