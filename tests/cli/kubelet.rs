//! `kubepki kubelet` from the command line, checked with openssl: the serving certificate
//! verifies for its node's name and addresses as a server (and not as a client), with
//! kubeadm's modes, replacing what was there with a backup; `check-expiration` and `renew`
//! find it through `--kubelet-cert-dir`; `kubelet config` writes what it prints;
//! `flags kube-apiserver --verify-kubelets` adds exactly `--kubelet-certificate-authority`.
//! (`tests/cli/tier/kubelet.rs` puts the same files before the real API server and kubelet;
//! refusals are in the bad-input table of `errors.rs`.)

use crate::support::{TempTree, assert_success, kubepki, openssl, require_tool};
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// `kubepki <args>` on `tree`.
fn run(tree: &TempTree, args: &[&str]) -> std::process::Output {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(tree.dir_args());
    kubepki(&all)
}

/// The one generation in `dir`.
pub fn generation(dir: &Path) -> std::path::PathBuf {
    let generations: Vec<_> = fs::read_dir(dir)
        .expect("a generations directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("kubepki-backup-"))
        })
        .collect();
    assert_eq!(generations.len(), 1, "{generations:?}");
    generations[0].clone()
}

/// `flock(1)` holding a directory's lock until dropped (its process group is killed: the
/// lock lives as long as the `sleep` that inherited it).
struct LockHolder(Child);

impl LockHolder {
    fn of(dir: &Path) -> LockHolder {
        let flock = require_tool("flock", "apt-get update && apt-get install -y util-linux");
        let mut child = Command::new(flock)
            .arg(dir)
            .args(["-c", "echo locked && exec sleep 30"])
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("flock");
        let mut said = String::new();
        let stdout = child.stdout.take().expect("flock's stdout");
        BufRead::read_line(&mut BufReader::new(stdout), &mut said).expect("flock");
        assert_eq!(said, "locked\n");
        LockHolder(child)
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("a file").permissions().mode() & 0o777
}

#[test]
fn the_serving_certificate_verifies_for_its_node_as_a_server_and_is_renewed() {
    let tree = TempTree::new();
    assert_success(&tree.init("RSA-2048", &[]), "kubepki init");
    let dir = tree.root().join("kubelet-pki");
    fs::create_dir(&dir).expect("the kubelet's directory");
    fs::write(dir.join("kubelet.crt"), "the kubelet's own").expect("a self-signed stand-in");
    let dir_arg = dir.display().to_string();
    let out = run(
        &tree,
        &[
            "kubelet",
            "serving-cert",
            "--node-name",
            "worker-1",
            "--node-ip",
            "10.0.0.21,fd00::21",
            "--out-dir",
            &dir_arg,
            "--backup-dir",
            &tree.root().join("backup").display().to_string(),
        ],
    );
    assert_success(&out, "kubepki kubelet serving-cert");
    let (cert, key) = (dir.join("kubelet.crt"), dir.join("kubelet.key"));
    assert_eq!((mode(&cert), mode(&key)), (0o644, 0o600));
    assert_eq!(
        fs::read(generation(&tree.root().join("backup")).join("kubelet-pki/kubelet.crt")).ok(),
        Some(b"the kubelet's own".to_vec()),
        "the replaced file, kept in a generation"
    );
    let ca = tree.pki().join("ca.crt");
    let (ca, cert_arg) = (ca.display().to_string(), cert.display().to_string());
    for check in [
        &["-verify_hostname", "worker-1"][..],
        &["-verify_ip", "10.0.0.21"],
        &["-verify_ip", "fd00::21"],
    ] {
        let mut args = vec!["verify", "-purpose", "sslserver", "-CAfile", &ca];
        args.extend(check);
        args.push(&cert_arg);
        assert_success(&openssl(&args), &format!("openssl verify {check:?}"));
    }
    for wrong in [
        &["-purpose", "sslserver", "-verify_ip", "10.0.0.22"][..],
        &["-purpose", "sslclient"],
    ] {
        let mut args = vec!["verify", "-CAfile", &ca];
        args.extend(wrong);
        args.push(&cert_arg);
        assert!(!openssl(&args).status.success(), "verified with {wrong:?}");
    }
    let subject = openssl(&["x509", "-noout", "-subject", "-in", &cert_arg]);
    assert_eq!(
        String::from_utf8_lossy(&subject.stdout).trim(),
        "subject=O = system:nodes, CN = system:node:worker-1"
    );
    let table = run(
        &tree,
        &["certs", "check-expiration", "--kubelet-cert-dir", &dir_arg],
    );
    assert_success(&table, "check-expiration");
    assert!(String::from_utf8_lossy(&table.stdout).contains("\nkubelet-serving "));
    let without = run(
        &tree,
        &[
            "certs",
            "check-expiration",
            "--kubelet-cert-dir",
            "/nonexistent",
        ],
    );
    assert!(!String::from_utf8_lossy(&without.stdout).contains("kubelet-serving"));
    let before = fs::read(&cert).expect("kubelet.crt");
    let renewed = run(
        &tree,
        &["certs", "renew", "all", "--kubelet-cert-dir", &dir_arg],
    );
    assert_success(&renewed, "certs renew all");
    assert_ne!(fs::read(&cert).expect("kubelet.crt"), before);
    let args = [
        "verify",
        "-purpose",
        "sslserver",
        "-CAfile",
        &ca,
        "-verify_ip",
        "fd00::21",
        &cert_arg,
    ];
    assert_success(&openssl(&args), "openssl verify of the renewed certificate");
    // Rolled back without --kubelet-cert-dir, the pair goes back where renew took it from.
    let before_key = fs::read(generation(&tree.root().join("tmp")).join("kubelet-pki/kubelet.key"));
    // The rollback writes there, so it takes that directory's lock too: held by another
    // program, the rollback gives up naming the directory and changes nothing.
    let renewed_cert = fs::read(&cert).ok();
    let holder = LockHolder::of(&dir);
    let refused = run(&tree, &["certs", "rollback", "--lock-timeout", "0"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    let locked = format!("kubepki: error: {dir_arg} is locked by another run (");
    assert!(stderr.contains(&locked), "{stderr}");
    assert_eq!(
        fs::read(&cert).ok(),
        renewed_cert,
        "a refused rollback wrote"
    );
    drop(holder);
    assert_success(&run(&tree, &["certs", "rollback"]), "certs rollback");
    assert_eq!(
        fs::read(&cert).ok(),
        Some(before),
        "kubelet.crt restored in its directory"
    );
    assert_eq!(
        fs::read(&key).ok(),
        before_key.ok(),
        "kubelet.key restored in its directory"
    );
    assert!(
        !Path::new("/var/lib/kubelet/pki/kubelet.crt").exists()
            || fs::read("/var/lib/kubelet/pki/kubelet.crt").ok() != fs::read(&cert).ok(),
        "nothing restored into the default kubelet directory"
    );
}

/// #22: `flags kubelet` is what kubeadm's drop-in gives the kubelet — its config file and
/// its kubeconfigs — and none of the deprecated flags whose settings `kubelet config` holds.
#[test]
fn flags_kubelet_is_kubeadms_drop_in() {
    let tree = TempTree::new();
    assert_success(&tree.init("ECDSA-P256", &[]), "kubepki init");
    for extra in [&[][..], &["--verify-kubelets"][..]] {
        let mut args = vec!["flags", "kubelet"];
        args.extend(extra);
        let out = run(&tree, &args);
        assert_success(&out, "kubepki flags kubelet");
        let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect();
        let root = tree.root().display();
        assert_eq!(
            lines,
            [
                format!("--bootstrap-kubeconfig={root}/bootstrap-kubelet.conf"),
                "--config=/var/lib/kubelet/config.yaml".to_string(),
                format!("--kubeconfig={root}/kubelet.conf"),
            ]
        );
    }
}

#[test]
fn kubelet_config_writes_what_it_prints_and_flags_verify_kubelets() {
    let tree = TempTree::new();
    assert_success(&tree.init("ECDSA-P256", &[]), "kubepki init");
    let printed = run(&tree, &["kubelet", "config", "--server-tls-bootstrap"]);
    assert_success(&printed, "kubelet config");
    let file = tree.root().join("kubelet-config.yaml");
    let file_arg = file.display().to_string();
    let written = run(
        &tree,
        &[
            "kubelet",
            "config",
            "--server-tls-bootstrap",
            "--out",
            &file_arg,
        ],
    );
    assert_success(&written, "kubelet config --out");
    assert_eq!(fs::read(&file).expect("written"), printed.stdout);
    assert_eq!(mode(&file), 0o644);
    let text = String::from_utf8_lossy(&printed.stdout);
    let ca = tree.pki().join("ca.crt");
    for line in [
        "readOnlyPort: 0\n".to_string(),
        "serverTLSBootstrap: true\n".into(),
        "rotateCertificates: true\n".into(),
        "tlsMinVersion: VersionTLS12\n".into(),
        "tlsCipherSuites:\n- TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n".into(),
        "- TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305\n".into(),
        format!("    clientCAFile: {}\n", ca.display()),
    ] {
        assert!(text.contains(&line), "{line:?} in\n{text}");
    }
    let suites = text.lines().filter(|l| l.starts_with("- TLS_")).count();
    assert_eq!(suites, 6, "{text}");
    assert!(!text.contains("CBC") && !text.contains("RC4"), "{text}");
    // its help says the mode it writes (#22)
    let help = kubepki(&["kubelet", "config", "--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("mode 0644"));
    let flags = |extra: &[&str]| {
        let mut args = vec!["flags", "kube-apiserver"];
        args.extend(extra);
        let out = run(&tree, &args);
        assert_success(&out, "kubepki flags kube-apiserver");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let (plain, verified) = (flags(&[]), flags(&["--verify-kubelets"]));
    let added: Vec<&String> = verified.iter().filter(|l| !plain.contains(l)).collect();
    assert_eq!(
        added,
        [&format!("--kubelet-certificate-authority={}", ca.display())]
    );
    assert_eq!(verified.len(), plain.len() + 1);
}
