//! Shared test helpers: temporary trees, running the built `kubepki`, and external tools
//! (openssl, kubectl, etcd) that must be present — under `CI=true` a missing tool fails the
//! test with the command that installs it; it never skips silently.

#![allow(dead_code)]

pub mod apiclient;
pub mod audit;
pub mod bootstrap;
pub mod check;
pub mod controlplane;
pub mod endpoint;
pub mod proc;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary directory holding one kubepki tree: `<root>/pki` and kubeconfigs in `<root>`.
pub struct TempTree {
    dir: tempfile::TempDir,
}

impl TempTree {
    /// An empty tree.
    pub fn new() -> TempTree {
        TempTree {
            dir: tempfile::tempdir().expect("creating a temp dir"),
        }
    }

    /// A new tree holding a copy of every file and directory of `source` (modes kept).
    pub fn copy_of(source: &TempTree) -> TempTree {
        let tree = TempTree::new();
        copy_dir(source.root(), tree.root());
        tree
    }

    /// The kubeconfig directory (the tree's root).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The cert directory, `<root>/pki`.
    pub fn pki(&self) -> PathBuf {
        self.root().join("pki")
    }

    /// `--cert-dir` and `--kubeconfig-dir` for this tree.
    pub fn dir_args(&self) -> Vec<String> {
        vec![
            "--cert-dir".into(),
            self.pki().display().to_string(),
            "--kubeconfig-dir".into(),
            self.root().display().to_string(),
        ]
    }

    /// Runs `kubepki init` for node `cp1` advertising 127.0.0.1 with the given algorithm and
    /// extra arguments; panics with stderr if it fails.
    pub fn init(&self, algorithm: &str, extra: &[&str]) -> Output {
        let out = kubepki(&self.init_args(algorithm, extra));
        assert_success(&out, "kubepki init");
        out
    }

    /// The arguments of `kubepki init` for node `cp1` advertising 127.0.0.1 on this tree,
    /// with `algorithm` and `extra` arguments.
    pub fn init_args(&self, algorithm: &str, extra: &[&str]) -> Vec<String> {
        let mut args = vec!["init".to_string()];
        args.extend(self.dir_args());
        let node = [
            "--node-name",
            "cp1",
            "--apiserver-advertise-address",
            "127.0.0.1",
        ];
        args.extend(node.iter().map(|s| s.to_string()));
        args.extend(["--encryption-algorithm".to_string(), algorithm.to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// Runs `kubepki certs renew all` on this tree; panics with stderr if it fails.
    pub fn renew_all(&self) -> Output {
        let mut args = vec!["certs".to_string(), "renew".into(), "all".into()];
        args.extend(self.dir_args());
        let out = kubepki(&args);
        assert_success(&out, "kubepki certs renew all");
        out
    }

    /// Reads a file of the tree, relative to the root.
    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.root().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
    }

    /// The content of every file of the PKI tree, by path below the root: the cert dir and
    /// the kubeconfigs (not the generations in `tmp/`, nor what etcd or kubectl leave there).
    pub fn pki_contents(&self) -> BTreeMap<String, Vec<u8>> {
        let pki_or_kubeconfig =
            |rel: &str| rel.starts_with("pki/") || (rel.ends_with(".conf") && !rel.contains('/'));
        self.snapshot()
            .into_iter()
            .filter(|(rel, mode, _, _)| pki_or_kubeconfig(rel) && mode & 0o170000 == 0o100000)
            .map(|(rel, _, _, content)| (rel, content))
            .collect()
    }

    /// A digest of every file and directory below the root: relative path, mode, mtime and
    /// content. Equal digests mean nothing was written, not even a file then removed.
    pub fn snapshot(&self) -> Vec<(String, u32, std::time::SystemTime, Vec<u8>)> {
        use std::os::unix::fs::PermissionsExt;
        let mut entries = Vec::new();
        let mut stack = vec![self.root().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("read_dir") {
                let path = entry.expect("dir entry").path();
                let meta = std::fs::symlink_metadata(&path).expect("metadata");
                if meta.is_dir() {
                    stack.push(path.clone());
                }
                let content = if meta.is_file() {
                    std::fs::read(&path).expect("read")
                } else {
                    Vec::new()
                };
                let rel = path
                    .strip_prefix(self.root())
                    .expect("prefix")
                    .display()
                    .to_string();
                entries.push((
                    rel,
                    meta.permissions().mode(),
                    meta.modified().expect("mtime"),
                    content,
                ));
            }
        }
        entries.sort();
        entries
    }
}

/// The files whose content differs between two `pki_contents` (or that only one has).
pub fn changed(
    before: &BTreeMap<String, Vec<u8>>,
    after: &BTreeMap<String, Vec<u8>>,
) -> Vec<String> {
    let mut names: Vec<String> = before.keys().chain(after.keys()).cloned().collect();
    names.sort();
    names.dedup();
    names.retain(|rel| before.get(rel) != after.get(rel));
    names
}

/// Copies the files and directories below `from` into the existing directory `to`.
fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let path = entry.expect("dir entry").path();
        let target = to.join(path.file_name().expect("file name"));
        if path.is_dir() {
            std::fs::create_dir(&target).expect("creating a directory");
            std::fs::set_permissions(
                &target,
                std::fs::metadata(&path).expect("mode").permissions(),
            )
            .expect("setting a directory's mode");
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copying a file");
        }
    }
}

/// Runs the built `kubepki` binary with `args`.
pub fn kubepki<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubepki"))
        .args(args)
        .output()
        .expect("running kubepki")
}

/// Panics with the command's stdout and stderr unless it exited 0.
pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Returns the path of `tool` on PATH. When it is missing: under `CI=true` the test fails,
/// saying how to install it; elsewhere too (no silent skip), with the same advice.
pub fn require_tool(tool: &str, install: &str) -> PathBuf {
    if let Some(found) = find_tool(tool) {
        return found;
    }
    panic!(
        "`{tool}` is not installed; install it with: {install} (or run ./scripts/test, which does)"
    );
}

/// How to install what `python_with_cryptography` looks for.
pub const INSTALL_PYTHON_CRYPTOGRAPHY: &str =
    "apt-get update && apt-get install -y python3-cryptography python3-yaml";

/// A Python 3 that has `cryptography` (AES-GCM) and PyYAML: `python3` on PATH, else Debian's
/// `/usr/bin/python3`. When neither has both, the test fails saying how to install them.
pub fn python_with_cryptography() -> PathBuf {
    let candidates = find_tool("python3")
        .into_iter()
        .chain([PathBuf::from("/usr/bin/python3")]);
    let imports = "import cryptography.hazmat.primitives.ciphers.aead, yaml";
    for python in candidates {
        let works = Command::new(&python).args(["-c", imports]).output();
        if works.is_ok_and(|out| out.status.success()) {
            return python;
        }
    }
    panic!(
        "no python3 with the `cryptography` and `yaml` modules; install them with: \
         {INSTALL_PYTHON_CRYPTOGRAPHY} (or run ./scripts/test, which does)"
    );
}

/// The path of `tool` on PATH, if it is there.
fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}

/// Runs openssl with `args`, returning its output (not asserting success).
pub fn openssl<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    let bin = require_tool("openssl", "apt-get update && apt-get install -y openssl");
    Command::new(bin)
        .args(args)
        .output()
        .expect("running openssl")
}

/// The cluster CA's pin as openssl computes it: SHA-256 of the DER SubjectPublicKeyInfo.
pub fn ca_pin(tree: &TempTree) -> String {
    let ca = tree.pki().join("ca.crt").display().to_string();
    let pubkey = openssl(&["x509", "-in", &ca, "-noout", "-pubkey"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let pem = dir.path().join("pub.pem");
    std::fs::write(&pem, &pubkey.stdout).expect("writing the public key");
    let der = openssl(&[
        "pkey",
        "-pubin",
        "-in",
        &pem.display().to_string(),
        "-outform",
        "DER",
    ]);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der.stdout);
    format!(
        "sha256:{}",
        digest
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}
