//! A hostile file system: symlinks planted in the tree are refused, never followed; keys and
//! kubeconfigs open to group or others are named (on reuse by `init`, by `renew` and by
//! `check-expiration`); every writing command works from a read-only working directory and
//! writes the same modes whatever the umask.

use crate::join::ControlPlane;
use crate::support::{TempTree, assert_success, kubepki};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

const TOKEN: &str = "abcdef.0123456789abcdef";

fn words(tree: &TempTree, words: &[&str]) -> Vec<String> {
    let words = words.iter().map(|s| s.to_string());
    words.chain(tree.dir_args()).collect()
}

/// `join` of `worker` by file discovery from the admin.conf of a running control plane.
fn join_args(worker: &TempTree, control_plane: &ControlPlane) -> Vec<String> {
    let file = control_plane.tree.root().join("admin.conf");
    let file = file.display().to_string();
    words(
        worker,
        &["join", "--discovery-file", &file, "--token", TOKEN],
    )
}

/// Every writing command (and check-expiration with a metrics file) on `tree`, then a join
/// of `worker` to `control_plane`; `out` is a directory for the files written elsewhere.
fn every_writer(
    tree: &TempTree,
    worker: &TempTree,
    control_plane: &ControlPlane,
    out: &Path,
) -> Vec<Vec<String>> {
    let metrics = out.join("kubepki.prom").display().to_string();
    let user = out.join("alice.conf").display().to_string();
    let check = ["certs", "check-expiration", "--metrics-file", &metrics];
    let user = [
        "kubeconfig",
        "user",
        "--client-name",
        "alice",
        "--out",
        &user,
    ];
    vec![
        tree.init_args("ECDSA-P256", &[]),
        words(tree, &["certs", "renew", "all"]),
        words(tree, &["token", "create"]),
        words(tree, &check),
        words(tree, &user),
        join_args(worker, control_plane),
    ]
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Runs kubepki with `args` in `cwd` under `umask`.
fn run_in(cwd: &Path, umask: libc::mode_t, args: &[String]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kubepki"));
    command.args(args).current_dir(cwd);
    // SAFETY: umask is async-signal-safe and touches only the child's own state.
    unsafe {
        command.pre_exec(move || {
            libc::umask(umask);
            Ok(())
        });
    }
    command.output().expect("running kubepki")
}

#[test]
fn every_writer_sets_its_modes_whatever_the_umask() {
    let control_plane = ControlPlane::new();
    for umask in [0o000, 0o077] {
        let (tree, worker, out) = (TempTree::new(), TempTree::new(), TempTree::new());
        for args in every_writer(&tree, &worker, &control_plane, out.root()) {
            assert_success(&run_in(tree.root(), umask, &args), &format!("{args:?}"));
        }
        let backup = std::fs::read_dir(tree.root().join("tmp"))
            .expect("backups")
            .flatten()
            .next()
            .expect("a backup")
            .path();
        let expected = [
            (tree.pki().join("ca.key"), 0o600),
            (tree.pki().join("etcd/peer.key"), 0o600),
            (tree.pki().join("sa.pub"), 0o600),
            (tree.pki().join("ca.crt"), 0o644),
            (tree.pki().join("etcd"), 0o755),
            (tree.root().join("admin.conf"), 0o600),
            (tree.root().join("bootstrap/cluster-info.yaml"), 0o600),
            (backup.clone(), 0o700),
            (backup.join("pki/apiserver.key"), 0o600),
            (backup.join("pki/apiserver.crt"), 0o600),
            (out.root().join("kubepki.prom"), 0o644),
            (out.root().join("alice.conf"), 0o600),
            (worker.pki().join("ca.crt"), 0o644),
            (worker.root().join("bootstrap-kubelet.conf"), 0o600),
        ];
        for (path, want) in expected {
            assert_eq!(
                mode(&path),
                want,
                "{} under umask {umask:03o}",
                path.display()
            );
        }
    }
}

#[test]
fn every_writer_works_from_a_read_only_working_directory() {
    // Nothing, root included, can create a file in /proc: a write to the working directory
    // (a stray temp file, a relative path) fails the command.
    let control_plane = ControlPlane::new();
    let (tree, worker, out) = (TempTree::new(), TempTree::new(), TempTree::new());
    for args in every_writer(&tree, &worker, &control_plane, out.root()) {
        assert_success(
            &run_in(Path::new("/proc"), 0o022, &args),
            &format!("{args:?}"),
        );
    }
}

#[test]
fn open_keys_are_named_by_init_renew_and_check_expiration() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let open = [
        ("pki/ca.key", 0o644),
        ("pki/etcd/peer.key", 0o640),
        ("admin.conf", 0o604),
    ];
    for (rel, mode) in open {
        std::fs::set_permissions(tree.root().join(rel), std::fs::Permissions::from_mode(mode))
            .expect("chmod");
    }
    let before = tree.snapshot();
    let check = words(&tree, &["certs", "check-expiration"]);
    let renew = words(&tree, &["certs", "renew", "all", "--expiring-within", "1h"]);
    for args in [tree.init_args("ECDSA-P256", &[]), check, renew] {
        let out = kubepki(&args);
        assert_success(&out, &format!("{args:?}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WARNING")).collect();
        assert_eq!(warnings.len(), open.len(), "{args:?}: {stderr}");
        for ((rel, mode), line) in open.iter().zip(&warnings) {
            let path = tree.root().join(rel).display().to_string();
            assert!(
                line.contains(&format!("{path} has mode {mode:04o}")),
                "{line}"
            );
            assert!(line.ends_with(&format!("(chmod 600 {path})")), "{line}");
        }
    }
    assert_eq!(tree.snapshot(), before, "a warning is not a chmod");
}

/// A tree, a directory outside it, and how a symlink is planted between them.
struct Planted {
    tree: TempTree,
    elsewhere: TempTree,
}

impl Planted {
    /// An initialised tree whose `rel` is replaced by a symlink to a copy elsewhere.
    fn new(rel: &str) -> Planted {
        let planted = Planted {
            tree: TempTree::new(),
            elsewhere: TempTree::new(),
        };
        planted.tree.init("ECDSA-P256", &[]);
        let inside = planted.tree.root().join(rel);
        let outside = planted.elsewhere.root().join("moved");
        std::fs::rename(&inside, &outside).expect("moving it out");
        symlink(&outside, &inside).expect("planting the symlink");
        planted
    }

    /// Runs `args`; expects exit 1, one line naming `rel` as a symbolic link, and nothing
    /// written on either side of the link.
    fn assert_refused(&self, args: &[String], rel: &str) {
        let (tree, elsewhere) = (self.tree.snapshot(), self.elsewhere.snapshot());
        let out = kubepki(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        let path = self.tree.root().join(rel).display().to_string();
        let line = format!("{path} is a symbolic link");
        assert!(
            stderr.lines().any(|l| l.contains(&line)),
            "{args:?}: {stderr}"
        );
        assert_eq!(self.tree.snapshot(), tree, "{args:?} wrote in the tree");
        assert_eq!(
            self.elsewhere.snapshot(),
            elsewhere,
            "{args:?} followed the link"
        );
    }
}

#[test]
fn symlinks_planted_in_the_tree_are_refused_not_followed() {
    // `renew all` renews the sound rows beside a broken one (#21): the row under the link
    // is named, so that nothing at all is written.
    for (rel, row) in [
        ("pki/apiserver.key", "apiserver"),
        ("pki/etcd", "etcd-server"),
        ("admin.conf", "admin.conf"),
    ] {
        let planted = Planted::new(rel);
        let tree = &planted.tree;
        planted.assert_refused(&tree.init_args("ECDSA-P256", &[]), rel);
        planted.assert_refused(&words(tree, &["certs", "renew", row]), rel);
    }
    let planted = Planted::new("pki/etcd");
    let tree = &planted.tree;
    planted.assert_refused(&words(tree, &["certs", "check-expiration"]), "pki/etcd");
    let control_plane = ControlPlane::new();
    let worker = Planted::new("pki/ca.crt");
    worker.assert_refused(&join_args(&worker.tree, &control_plane), "pki/ca.crt");
}

/// Runs kubepki with `args`, killing it if it still runs after 10 s: (exit code, stdout and
/// stderr), `None` for the code when it was killed.
fn run_bounded(args: &[String]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubepki"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting kubepki");
    let started = std::time::Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().expect("waiting") {
            break status.code();
        }
        if started.elapsed() > std::time::Duration::from_secs(10) {
            child.kill().expect("killing kubepki");
            child.wait().expect("reaping kubepki");
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let mut output = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut output)
        .expect("reading stdout");
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut output)
        .expect("reading stderr");
    (code, output)
}

#[test]
fn issue_25_a_fifo_or_a_huge_file_in_the_tree_is_refused_at_once() {
    let fifo = TempTree::new();
    fifo.init("ECDSA-P256", &[]);
    let ca = fifo.pki().join("ca.crt");
    std::fs::remove_file(&ca).expect("removing ca.crt");
    nix::unistd::mkfifo(&ca, nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("a FIFO");
    let huge = TempTree::new();
    huge.init("ECDSA-P256", &[]);
    let mut big = huge.read("pki/ca.crt");
    big.resize(2 << 20, b'\n');
    std::fs::write(huge.pki().join("ca.crt"), big).expect("a 2 MiB ca.crt");
    let cases = [
        (&fifo, "a FIFO, not a regular file"),
        (&huge, "larger than 1048576 bytes"),
    ];
    for (tree, why) in cases {
        let before = tree.snapshot();
        let check = words(tree, &["certs", "check-expiration"]);
        let renew = words(tree, &["certs", "renew", "all"]);
        let audit = words(tree, &["certs", "audit"]);
        for args in [tree.init_args("ECDSA-P256", &[]), check, renew, audit] {
            let (code, stderr) = run_bounded(&args);
            assert!(code.is_some(), "{args:?} still ran after 10 s");
            assert_ne!(code, Some(0), "{args:?}: {stderr}");
            let line = format!("{}: {why}", tree.pki().join("ca.crt").display());
            assert!(stderr.contains(&line), "{args:?}: {line:?} in {stderr}");
        }
        assert_eq!(tree.snapshot(), before, "nothing written");
    }
}

#[test]
fn issue_25_a_cert_dir_that_is_itself_a_symlink_is_refused() {
    let (tree, elsewhere) = (TempTree::new(), TempTree::new());
    tree.init("ECDSA-P256", &[]);
    let moved = elsewhere.root().join("pki");
    std::fs::rename(tree.pki(), &moved).expect("moving pki out");
    symlink(&moved, tree.pki()).expect("the link");
    let (before, outside) = (tree.snapshot(), elsewhere.snapshot());
    let check = words(&tree, &["certs", "check-expiration"]);
    let renew = words(&tree, &["certs", "renew", "all"]);
    let audit = words(&tree, &["certs", "audit"]);
    for args in [tree.init_args("ECDSA-P256", &[]), check, renew, audit] {
        let out = kubepki(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        let line = format!(
            "{} is a symbolic link (to {})",
            tree.pki().display(),
            moved.display()
        );
        assert!(stderr.contains(&line), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    assert_eq!(tree.snapshot(), before);
    assert_eq!(
        elsewhere.snapshot(),
        outside,
        "nothing written through the link"
    );
}
