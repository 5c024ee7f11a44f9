//! Bad input, one table: each case breaks a flag or a file of an initialised tree and
//! expects an exit status, one stderr line naming the flag or file, no panic, and the tree
//! (contents, modes, mtimes) exactly as it was.

use crate::support::{TempTree, kubepki};
use std::fs;
use std::path::Path;

/// How a case damages the tree before running `init` again.
type Damage = fn(&Path);

struct Case {
    name: &'static str,
    damage: Damage,
    flags: &'static [&'static str],
    exit: i32,
    says: &'static [&'static str],
}

fn nothing(_: &Path) {}

fn swap(root: &Path, a: &str, b: &str) {
    fs::copy(root.join(b), root.join(a)).unwrap();
}

const CASES: &[Case] = &[
    Case {
        name: "bad IP",
        damage: nothing,
        flags: &["--apiserver-advertise-address", "999.1.1.1"],
        exit: 2,
        says: &["--apiserver-advertise-address", "999.1.1.1"],
    },
    Case {
        name: "bad CIDR",
        damage: nothing,
        flags: &["--service-cidr", "10.96.0.0/99"],
        exit: 2,
        says: &["--service-cidr", "10.96.0.0/99"],
    },
    Case {
        name: "two CIDRs of one family",
        damage: nothing,
        flags: &["--service-cidr", "10.96.0.0/12,10.97.0.0/16"],
        exit: 2,
        says: &["--service-cidr", "dual-stack"],
    },
    Case {
        name: "unknown algorithm",
        damage: nothing,
        flags: &["--encryption-algorithm", "RSA-1024"],
        exit: 2,
        says: &["--encryption-algorithm", "RSA-1024"],
    },
    Case {
        name: "bad extra SAN",
        damage: nothing,
        flags: &["--apiserver-cert-extra-sans", "ok.example.com,bad_name"],
        exit: 2,
        says: &["--apiserver-cert-extra-sans", "bad_name"],
    },
    Case {
        name: "bad endpoint port",
        damage: nothing,
        flags: &["--control-plane-endpoint", "lb:99999"],
        exit: 2,
        says: &["--control-plane-endpoint"],
    },
    Case {
        name: "bad duration",
        damage: nothing,
        flags: &["--cert-validity", "10x"],
        exit: 2,
        says: &["--cert-validity", "10x"],
    },
    Case {
        name: "zero validity",
        damage: nothing,
        flags: &["--ca-validity", "0"],
        exit: 1,
        says: &["--ca-validity"],
    },
    Case {
        name: "bad node name",
        damage: nothing,
        flags: &["--node-name", "Node_1"],
        exit: 2,
        says: &["--node-name"],
    },
    Case {
        name: "bad bind port",
        damage: nothing,
        flags: &["--apiserver-bind-port", "0"],
        exit: 2,
        says: &["--apiserver-bind-port"],
    },
    Case {
        name: "corrupt certificate",
        damage: |r| fs::write(r.join("pki/apiserver.crt"), "garbage").unwrap(),
        flags: &[],
        exit: 1,
        says: &["pki/apiserver.crt", "not a valid certificate"],
    },
    Case {
        name: "truncated key",
        damage: |r| {
            let k = fs::read(r.join("pki/apiserver.key")).unwrap();
            fs::write(r.join("pki/apiserver.key"), &k[..k.len() / 2]).unwrap()
        },
        flags: &[],
        exit: 1,
        says: &["pki/apiserver.key", "not a valid private key"],
    },
    Case {
        name: "certificate in a key file",
        damage: |r| swap(r, "pki/apiserver.key", "pki/apiserver.crt"),
        flags: &[],
        exit: 1,
        says: &["pki/apiserver.key", "not a valid private key"],
    },
    Case {
        name: "key of another certificate",
        damage: |r| swap(r, "pki/apiserver.key", "pki/apiserver-kubelet-client.key"),
        flags: &[],
        exit: 1,
        says: &["pki/apiserver.key", "does not match"],
    },
    Case {
        name: "certificate without its key",
        damage: |r| fs::remove_file(r.join("pki/front-proxy-client.key")).unwrap(),
        flags: &[],
        exit: 1,
        says: &["pki/front-proxy-client.crt", "without its key"],
    },
    Case {
        name: "leaf of another CA",
        damage: |r| {
            swap(
                r,
                "pki/apiserver-kubelet-client.crt",
                "pki/front-proxy-client.crt",
            );
            swap(
                r,
                "pki/apiserver-kubelet-client.key",
                "pki/front-proxy-client.key",
            )
        },
        flags: &[],
        exit: 1,
        says: &["pki/apiserver-kubelet-client.crt", "not signed by ca"],
    },
    Case {
        name: "CA certificate that is not a CA",
        damage: |r| {
            swap(r, "pki/front-proxy-ca.crt", "pki/front-proxy-client.crt");
            swap(r, "pki/front-proxy-ca.key", "pki/front-proxy-client.key")
        },
        flags: &[],
        exit: 1,
        says: &["pki/front-proxy-ca.crt", "not a CA"],
    },
    Case {
        name: "CA key that does not match",
        damage: |r| swap(r, "pki/ca.key", "pki/etcd/ca.key"),
        flags: &[],
        exit: 1,
        says: &["pki/ca.key", "does not match"],
    },
    Case {
        name: "SAN the flags now require",
        damage: nothing,
        flags: &["--apiserver-cert-extra-sans", "new.example.com,10.9.9.9"],
        exit: 1,
        says: &["pki/apiserver.crt", "new.example.com, 10.9.9.9"],
    },
    Case {
        name: "kubeconfig of another CA",
        damage: |r| {
            let other = fs::read_to_string(r.join("pki/etcd/ca.crt")).unwrap();
            let ours = fs::read_to_string(r.join("pki/ca.crt")).unwrap();
            let b64 = |s: &str| base64_of(s);
            let conf = fs::read_to_string(r.join("admin.conf"))
                .unwrap()
                .replace(&b64(&ours), &b64(&other));
            fs::write(r.join("admin.conf"), conf).unwrap()
        },
        flags: &[],
        exit: 1,
        says: &["admin.conf", "wrong CA cert"],
    },
    Case {
        name: "kubeconfig that is not YAML",
        damage: |r| fs::write(r.join("scheduler.conf"), "{{{ not yaml").unwrap(),
        flags: &[],
        exit: 1,
        says: &["scheduler.conf", "not a valid kubeconfig"],
    },
    Case {
        name: "sa.pub of another key",
        damage: |r| {
            let other = fs::read(r.join("pki/sa.pub")).unwrap();
            let flipped: Vec<u8> = other
                .iter()
                .map(|b| if *b == b'A' { b'B' } else { *b })
                .collect();
            fs::write(r.join("pki/sa.pub"), flipped).unwrap()
        },
        flags: &[],
        exit: 1,
        says: &["pki/sa.pub"],
    },
    Case {
        name: "symlink at a key path",
        damage: |r| {
            fs::remove_file(r.join("pki/apiserver.key")).unwrap();
            std::os::unix::fs::symlink("/etc/hostname", r.join("pki/apiserver.key")).unwrap()
        },
        flags: &[],
        exit: 1,
        says: &["pki/apiserver.key", "symbolic link"],
    },
    Case {
        name: "cert dir below a file",
        damage: nothing,
        flags: &["--cert-dir", "/etc/hostname/pki"],
        exit: 1,
        says: &["/etc/hostname"],
    },
];

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn every_bad_input_is_one_line_and_changes_nothing() {
    let mut failures = Vec::new();
    for case in CASES {
        if let Err(problem) = run_case(case) {
            failures.push(format!("{}: {problem}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

fn run_case(case: &Case) -> Result<(), String> {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    (case.damage)(tree.root());
    let before = tree.snapshot();
    let args = tree.init_args("ECDSA-P256", case.flags);
    let out = kubepki(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().next().unwrap_or_default();
    if out.status.code() != Some(case.exit) {
        return Err(format!(
            "exit {:?}, expected {}; stderr: {stderr}",
            out.status.code(),
            case.exit
        ));
    }
    if case.exit == 1 && stderr.lines().count() != 1 {
        return Err(format!("expected one stderr line, got: {stderr}"));
    }
    if let Some(missing) = case.says.iter().find(|s| !first.contains(*s)) {
        return Err(format!("first stderr line lacks {missing:?}: {first}"));
    }
    if tree.snapshot() != before {
        return Err("the tree changed".into());
    }
    Ok(())
}

#[test]
fn an_expired_certificate_is_refused() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &["--cert-validity", "1s"]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let before = tree.snapshot();
    let args = tree.init_args("ECDSA-P256", &[]);
    let out = kubepki(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("pki/apiserver.crt: expired on"), "{stderr}");
    assert_eq!(tree.snapshot(), before);
}
