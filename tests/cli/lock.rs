//! Concurrency: writing commands hold an advisory lock on the tree, so ten runs started at
//! once never interleave: one `init` creates, the others wait and reuse; mixed writers each
//! see a whole tree; a run that waits longer than `--lock-timeout` exits 1 naming the holder.
//! The lock is a `flock` on each directory itself: the tree holds no file of kubepki's.

use crate::join::ControlPlane;
use crate::support::check::{check_tree, leftovers, stable_keys};
use crate::support::{TempTree, assert_success, require_tool};
use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs started at once in each test.
const RUNS: usize = 10;

fn spawn(args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kubepki"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting kubepki")
}

/// Starts every run of `runs` at once and waits for them all.
fn run_together(runs: &[Vec<String>]) -> Vec<Output> {
    let children: Vec<Child> = runs.iter().map(|args| spawn(args)).collect();
    children
        .into_iter()
        .map(|child| child.wait_with_output().expect("waiting for kubepki"))
        .collect()
}

fn words(tree: &TempTree, words: &[&str]) -> Vec<String> {
    let words = words.iter().map(|s| s.to_string());
    words.chain(tree.dir_args()).collect()
}

/// The init steps of a JSON report whose action is `action`.
fn steps_with(out: &Output, action: &str) -> usize {
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("init -o json");
    let steps = report["steps"].as_array().expect("steps");
    steps.iter().filter(|s| s["action"] == action).count()
}

fn waited(outputs: &[Output]) -> usize {
    let says_waiting = |o: &&Output| String::from_utf8_lossy(&o.stderr).contains("[lock] waiting");
    outputs.iter().filter(says_waiting).count()
}

#[test]
fn ten_inits_at_once_make_one_tree() {
    let tree = TempTree::new();
    let init = tree.init_args("RSA-2048", &["-o", "json"]);
    let outputs = run_together(&vec![init; RUNS]);
    for out in &outputs {
        assert_success(out, "one of ten inits");
    }
    let creators: Vec<usize> = outputs.iter().map(|o| steps_with(o, "create")).collect();
    assert_eq!(
        creators.iter().filter(|&&n| n > 0).count(),
        1,
        "exactly one run creates: {creators:?}"
    );
    let reusers = outputs
        .iter()
        .filter(|o| steps_with(o, "create") == 0)
        .count();
    assert_eq!(reusers, RUNS - 1);
    assert!(waited(&outputs) >= 1, "no run waited: they did not overlap");
    assert!(check_tree(&tree).complete(), "{:?}", check_tree(&tree));
    assert!(leftovers(&tree).is_empty());
}

#[test]
fn ten_mixed_writers_at_once_each_see_a_whole_tree() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let keys = stable_keys(&tree);
    let renew_all = words(&tree, &["certs", "renew", "all", "--keep", "10"]);
    let renew_one = words(&tree, &["certs", "renew", "apiserver", "--keep", "10"]);
    let token = words(&tree, &["token", "create"]);
    let init = tree.init_args("ECDSA-P256", &[]);
    let runs = [
        &renew_all, &init, &token, &renew_one, &renew_all, &init, &token, &renew_all, &renew_one,
        &renew_all,
    ];
    assert_eq!(runs.len(), RUNS);
    let outputs = run_together(&runs.map(Vec::clone));
    for out in &outputs {
        assert_success(out, "one of ten writers");
    }
    assert!(waited(&outputs) >= 1, "no run waited: they did not overlap");
    assert!(check_tree(&tree).complete(), "{:?}", check_tree(&tree));
    assert!(leftovers(&tree).is_empty());
    assert_eq!(stable_keys(&tree), keys, "a CA or sa key changed");
    let backups = std::fs::read_dir(tree.root().join("tmp"))
        .expect("backups")
        .count();
    assert_eq!(backups, 6, "each of the 6 renewals keeps its own backup");
}

/// The generation a renewal says it kept.
fn kept_in(out: &Output) -> PathBuf {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("Old files were backed up in "))
        .unwrap_or_else(|| panic!("no generation named: {stdout}"));
    PathBuf::from(line.split(" (").next().unwrap_or_default())
}

#[test]
fn two_trees_renewing_at_once_into_one_backup_dir_never_share_a_generation() {
    const PAIRS: usize = 40;
    let trees = [TempTree::new(), TempTree::new()];
    for tree in &trees {
        tree.init("ECDSA-P256", &[]);
    }
    let shared = tempfile::tempdir().expect("a backup dir");
    let dir = shared.path().display().to_string();
    let renew = |tree: &TempTree| {
        let args = [
            "certs",
            "renew",
            "all",
            "--backup-dir",
            &dir,
            "--keep",
            "1000",
        ];
        words(tree, &args)
    };
    let mut kept = BTreeSet::new();
    for round in 0..PAIRS {
        let keys = trees
            .each_ref()
            .map(|tree| String::from_utf8_lossy(&tree.read("pki/apiserver.key")).into_owned());
        let outputs = run_together(&[renew(&trees[0]), renew(&trees[1])]);
        let mut paths = Vec::new();
        for (out, key) in outputs.iter().zip(keys) {
            assert_success(out, &format!("round {round}: one of two renewals"));
            let path = kept_in(out);
            assert_eq!(
                std::fs::read_to_string(path.join("pki/apiserver.key")).ok(),
                Some(key),
                "round {round}: {} holds another tree's key",
                path.display()
            );
            paths.push(path);
        }
        assert_ne!(
            paths[0], paths[1],
            "round {round}: one generation for two runs"
        );
        kept.extend(paths);
    }
    assert_eq!(kept.len(), 2 * PAIRS);
    let listed = std::fs::read_dir(shared.path())
        .expect("the backup dir")
        .count();
    assert_eq!(listed, 2 * PAIRS, "one generation per run, nothing else");
}

#[test]
fn ten_joins_at_once_write_one_worker_tree() {
    let control_plane = ControlPlane::new();
    let worker = TempTree::new();
    let discovery = control_plane.tree.root().join("admin.conf");
    let discovery = discovery.display().to_string();
    let token = "abcdef.0123456789abcdef";
    let join = words(
        &worker,
        &["join", "--discovery-file", &discovery, "--token", token],
    );
    for out in run_together(&vec![join; RUNS]) {
        assert_success(&out, "one of ten joins");
    }
    assert_eq!(
        worker.read("pki/ca.crt"),
        control_plane.tree.read("pki/ca.crt")
    );
    let kubeconfig: serde_yaml::Value =
        serde_yaml::from_slice(&worker.read("bootstrap-kubelet.conf")).expect("a kubeconfig");
    assert_eq!(
        kubeconfig["users"][0]["user"]["token"].as_str(),
        Some(token)
    );
    assert!(leftovers(&worker).is_empty());
}

/// Whether the process `pid` holds a `flock` on the directory `dir`, as `/proc/locks` says.
fn holds_flock(dir: &Path, pid: u32) -> bool {
    let inode = std::fs::metadata(dir).expect("the locked directory").ino();
    let locks = std::fs::read_to_string("/proc/locks").expect("reading /proc/locks");
    let file_suffix = format!(":{inode}");
    locks.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        matches!(fields.as_slice(), [_, "FLOCK", _, _, holder, file, ..]
            if *holder == pid.to_string() && file.ends_with(&file_suffix))
    })
}

/// Waits until the process `pid` holds the lock of the directory `dir`.
fn wait_for_holder(dir: &Path, pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !holds_flock(dir, pid) {
        assert!(
            Instant::now() < deadline,
            "pid {pid} never locked {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `certs renew all --lock-timeout 1s` on a locked tree; returns its one error line.
fn renew_gives_up(tree: &TempTree) -> String {
    let snapshot = tree.snapshot();
    let started = Instant::now();
    let renew = words(tree, &["certs", "renew", "all", "--lock-timeout", "1s"]);
    let out = spawn(&renew).wait_with_output().expect("renew");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(started.elapsed() >= Duration::from_secs(1), "gave up early");
    assert_eq!(
        tree.snapshot(),
        snapshot,
        "a run that gave up wrote something"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "a waiting note, then the error: {stderr}");
    assert!(
        lines[0].starts_with("[lock] waiting up to 1s for "),
        "{stderr}"
    );
    let expected = format!(
        "kubepki: error: {} is locked by another run (",
        tree.root().display()
    );
    assert!(lines[1].starts_with(&expected), "{stderr}");
    assert!(
        lines[1].ends_with("gave up after waiting 1s (--lock-timeout)"),
        "{stderr}"
    );
    lines[1].to_string()
}

#[test]
fn a_run_that_waits_too_long_names_the_holder() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let slow = TempTree::new();
    let mut init = spawn(&slow.init_args("RSA-4096", &[]));
    wait_for_holder(slow.root(), init.id());
    let error = renew_gives_up(&slow);
    assert!(
        error.contains(&format!("(pid {}, kubepki init, since ", init.id())),
        "{error}"
    );
    assert!(init.wait().expect("init").success());
    let flock = require_tool("flock", "apt-get update && apt-get install -y util-linux");
    let mut other = Command::new(flock)
        .arg(tree.root())
        .args(["-c", "echo locked && exec sleep 30"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("flock");
    let mut said = String::new();
    let stdout = other.stdout.take().expect("flock's stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut said).expect("flock");
    assert_eq!(said, "locked\n");
    let error = renew_gives_up(&tree);
    let named = format!(
        "(a process that did not say who it is: pid {}, flock)",
        other.id()
    );
    assert!(error.contains(&named), "{error}");
    let _ = other.kill();
    let _ = other.wait();
}

/// Every path below `root`, relative to it, directories included.
fn paths_below(root: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            }
            let rel = entry.path().strip_prefix(root).expect("below root").into();
            found.insert(rel);
        }
    }
    found
}

/// The files a kubepki run says it wrote: `init -o json`'s files and manifests, and the
/// `Wrote <path>` lines of the token commands; relative to `root`.
fn said_written(root: &Path, init: &Output, token: &Output) -> BTreeSet<PathBuf> {
    let report: serde_json::Value = serde_json::from_slice(&init.stdout).expect("init -o json");
    let steps = report["steps"].as_array().expect("steps").iter();
    let files = steps.flat_map(|step| step["files"].as_array().expect("files").clone());
    let mut manifests = report["manifests"].as_array().expect("manifests").clone();
    // The tree's recorded configuration (#21), which init reports apart.
    manifests.push(report["recorded"].clone());
    let token_lines = String::from_utf8_lossy(&token.stderr).into_owned();
    let wrote = token_lines
        .lines()
        .filter_map(|l| l.split_once(" Wrote "))
        .map(|(_, p)| p.into());
    files
        .chain(manifests)
        .filter_map(|path| path.as_str().map(String::from))
        .chain(wrote)
        .map(|path| {
            Path::new(&path)
                .strip_prefix(root)
                .expect("in the tree")
                .into()
        })
        .collect()
}

/// Whether `path` (relative to the root) is one of `written` or a directory holding one;
/// below `tmp/kubepki-backup-<time>/` (renew's generations, where kubeadm keeps its own
/// backups), whether it mirrors one or is the generation's record.
fn expected(path: &Path, written: &BTreeSet<PathBuf>) -> bool {
    let rel: PathBuf = match path.strip_prefix("tmp") {
        Err(_) => path.to_path_buf(),
        Ok(below_tmp) => {
            let mut parts = below_tmp.iter();
            match parts.next().map(|backup| backup.to_string_lossy()) {
                None => return true,
                Some(backup) if backup.starts_with("kubepki-backup-") => parts.collect(),
                Some(_) => return false,
            }
        }
    };
    if path.starts_with("tmp") && rel == Path::new("kubepki-generation.json") {
        return true;
    }
    rel.as_os_str().is_empty() || written.iter().any(|file| file.starts_with(&rel))
}

#[test]
fn init_renew_and_token_leave_no_file_of_their_own_in_the_tree() {
    let tree = TempTree::new();
    let init = crate::support::kubepki(&tree.init_args("ECDSA-P256", &["-o", "json"]));
    assert_success(&init, "init");
    tree.renew_all();
    let token = crate::support::kubepki(&words(&tree, &["token", "create"]));
    assert_success(&token, "token create");
    let written = said_written(tree.root(), &init, &token);
    let token_secret = |p: &PathBuf| {
        p.to_string_lossy()
            .starts_with("bootstrap/bootstrap-token-")
    };
    assert!(written.contains(Path::new("pki/ca.key")), "{written:?}");
    assert!(written.iter().any(token_secret), "{written:?}");
    let unexpected: Vec<PathBuf> = paths_below(tree.root())
        .into_iter()
        .filter(|path| {
            let hidden = path.iter().any(|n| n.to_string_lossy().starts_with('.'));
            hidden || !expected(path, &written)
        })
        .collect();
    assert!(unexpected.is_empty(), "not kubeadm's: {unexpected:?}");
}
