//! Durability order: what a power cut at any instant would leave. A kill (`crash.rs`) loses
//! nothing the kernel already has; a power cut loses whatever was not synced. So the writing
//! commands (init, renew, rollback, token create, join, each stage of rotate-ca) run under strace, and its write, name and sync calls are replayed against a model
//! of what is durable: `syncfs` makes everything durable, an fsync the content of its file
//! or the names in its directory. The rules, checked at every call:
//! - no name is given (link, rename) to content that is not durable yet;
//! - a certificate is not named before its key's name is durable; a key is not renamed into
//!   place before its staged certificate's name is durable (`complete_staged` relies on it);
//! - nothing in the tree is replaced before the backups made for it are durable;
//! - when the command exits, every name it gave (directories included) is durable.

use crate::join::{ControlPlane, printed_join};
use crate::support::{TempTree, assert_success, require_tool};
use crate::token::token;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The calls traced: writes, names and syncs.
const TRACED: &str =
    "trace=write,linkat,rename,renameat2,unlink,mkdir,mkdirat,fsync,fdatasync,syncfs";

/// One traced call that matters to durability.
#[derive(Debug)]
enum Call {
    /// Content written to this file.
    Write(PathBuf),
    /// fsync or fdatasync of this file or directory.
    Fsync(PathBuf),
    /// syncfs: the whole filesystem (the test tree has one).
    Syncfs,
    /// A name given: `to` now names what `from` named (`from` kept by a link).
    Name {
        from: PathBuf,
        to: PathBuf,
        link: bool,
    },
    /// A name removed.
    Unlink(PathBuf),
    /// A directory created: a name given, which must be durable by the exit too.
    Mkdir(PathBuf),
}

/// Runs kubepki with `args` under strace; returns its calls in order.
fn traced(args: &[String]) -> Vec<Call> {
    let strace = require_tool("strace", "apt-get update && apt-get install -y strace");
    let log = tempfile::NamedTempFile::new().expect("a log file");
    let out = Command::new(strace)
        .args(["-f", "-qq", "-y", "-s", "0", "-e", TRACED, "-o"])
        .arg(log.path())
        .arg(env!("CARGO_BIN_EXE_kubepki"))
        .args(args)
        .output()
        .expect("running strace");
    assert_success(&out, &format!("kubepki {args:?} under strace"));
    let text = std::fs::read_to_string(log.path()).expect("reading the strace log");
    joined_lines(&text)
        .iter()
        .filter_map(|l| parse(l))
        .collect()
}

/// The log's lines, each call whole: a call another thread interrupted (`<unfinished ...>`)
/// is joined with its `<... resumed>` rest.
fn joined_lines(text: &str) -> Vec<String> {
    let mut pending: HashMap<&str, String> = HashMap::new();
    let mut lines = Vec::new();
    for line in text.lines() {
        let (pid, call) = line.split_once(' ').unwrap_or(("", line));
        let call = call.trim_start();
        if let Some(start) = call.strip_suffix(" <unfinished ...>") {
            pending.insert(pid, start.to_string());
        } else if let Some((_, rest)) = call.split_once(" resumed>") {
            lines.push(pending.remove(pid).unwrap_or_default() + rest);
        } else {
            lines.push(call.to_string());
        }
    }
    lines
}

/// The call on one line of strace output, if it succeeded and matters.
fn parse(line: &str) -> Option<Call> {
    let (call, result) = line.rsplit_once(" = ")?;
    if result.starts_with('-') {
        return None;
    }
    let (name, args) = call.split_once('(')?;
    let fd_path = || {
        let start = args.find('<')? + 1;
        Some(PathBuf::from(
            &args[start..start + args[start..].find('>')?],
        ))
    };
    let strings: Vec<PathBuf> = args
        .split('"')
        .skip(1)
        .step_by(2)
        .map(PathBuf::from)
        .collect();
    let named = |link| {
        let [from, to] = [strings.first()?, strings.get(1)?].map(Clone::clone);
        Some(Call::Name { from, to, link })
    };
    match name {
        "write" => fd_path().map(Call::Write),
        "fsync" | "fdatasync" => fd_path().map(Call::Fsync),
        "syncfs" => Some(Call::Syncfs),
        "linkat" => named(true),
        "rename" | "renameat2" => named(false),
        "unlink" => strings.first().cloned().map(Call::Unlink),
        "mkdir" | "mkdirat" => strings.first().cloned().map(Call::Mkdir),
        _ => None,
    }
}

/// What a replay knows: which contents and names are durable.
#[derive(Default)]
struct Disk {
    /// Files written in this run (by current name), and whether their content is durable.
    contents: HashMap<PathBuf, bool>,
    /// Names given in this run, and whether each is durable.
    names: HashMap<PathBuf, bool>,
    /// Counts of fsync and syncfs calls.
    fsyncs: usize,
    syncfs: usize,
}

impl Disk {
    /// Replays `calls`; returns every broken rule, one line each.
    fn replay(&mut self, calls: &[Call]) -> Vec<String> {
        let mut problems = Vec::new();
        for (n, call) in calls.iter().enumerate() {
            if let Err(problem) = self.apply(call) {
                problems.push(format!("call {n} {call:?}: {problem}"));
            }
        }
        let undurable = self.names.iter().filter(|(_, durable)| !**durable);
        problems
            .extend(undurable.map(|(name, _)| format!("{} not durable at exit", name.display())));
        problems
    }

    fn apply(&mut self, call: &Call) -> Result<(), String> {
        match call {
            Call::Write(file) => {
                self.contents.insert(file.clone(), false);
            }
            Call::Fsync(path) => {
                self.fsyncs += 1;
                if let Some(durable) = self.contents.get_mut(path) {
                    *durable = true;
                }
                for (_, durable) in self
                    .names
                    .iter_mut()
                    .filter(|(n, _)| n.parent() == Some(path))
                {
                    *durable = true;
                }
            }
            Call::Syncfs => {
                self.syncfs += 1;
                self.contents.values_mut().for_each(|d| *d = true);
                self.names.values_mut().for_each(|d| *d = true);
            }
            Call::Name { from, to, link } => {
                self.check_name(from, to)?;
                let content = self.contents.get(from).copied();
                if !link {
                    self.contents.remove(from);
                    self.names.remove(from);
                }
                if let Some(durable) = content {
                    self.contents.insert(to.clone(), durable);
                }
                self.names.insert(to.clone(), false);
            }
            Call::Unlink(path) => {
                self.contents.remove(path);
                self.names.remove(path);
            }
            Call::Mkdir(path) => {
                self.names.insert(path.clone(), false);
            }
        }
        Ok(())
    }

    /// The rules for giving the name `to` to what `from` names.
    fn check_name(&self, from: &Path, to: &Path) -> Result<(), String> {
        if self.contents.get(from) == Some(&false) {
            return Err("named before its content is durable".into());
        }
        for before in must_be_durable_before(to, self.names.keys()) {
            if self.names.get(&before) == Some(&false) {
                return Err(format!("named before {} is durable", before.display()));
            }
        }
        Ok(())
    }
}

/// The names (of those given in this run, `given`) that must be durable before `to` is given.
fn must_be_durable_before<'a>(to: &Path, given: impl Iterator<Item = &'a PathBuf>) -> Vec<PathBuf> {
    let name = to.file_name().unwrap_or_default().to_string_lossy();
    let dir = to.parent().unwrap_or(Path::new(""));
    let is_backup = |path: &Path| path.to_string_lossy().contains("kubepki-backup-");
    let mut before = Vec::new();
    if name.starts_with('.') || is_backup(to) {
        return before; // a temp or staged name, or a copy: none of them read as the tree
    }
    if let Some(stem) = name.strip_suffix(".crt") {
        before.push(dir.join(format!("{stem}.key")));
    }
    if let Some(stem) = name.strip_suffix(".key") {
        before.push(dir.join(format!(".{stem}.crt.kubepki-staged")));
    }
    before.extend(given.filter(|name| is_backup(name)).cloned());
    before
}

/// Runs `args` under strace and asserts every rule; prints the sync calls it made.
fn assert_durable_order(what: &str, args: &[String]) {
    let calls = traced(args);
    let mut disk = Disk::default();
    let problems = disk.replay(&calls);
    assert!(problems.is_empty(), "{what}: {problems:#?}");
    assert!(!disk.names.is_empty(), "{what}: no name given: {calls:#?}");
    eprintln!(
        "{what}: {} names given, each in order; {} fsync, {} syncfs",
        disk.names.len(),
        disk.fsyncs,
        disk.syncfs
    );
}

#[test]
fn init_never_names_what_a_power_cut_could_lose() {
    let tree = TempTree::new();
    assert_durable_order("init", &tree.init_args("ECDSA-P256", &[]));
    // A tree whose directories do not exist yet: the lock creates them.
    let fresh = tree.root().join("fresh");
    let dirs = [fresh.join("pki"), fresh].map(|dir| dir.display().to_string());
    let mut args = tree.init_args("ECDSA-P256", &[]);
    args.splice(
        1..5,
        ["--cert-dir", &dirs[0], "--kubeconfig-dir", &dirs[1]].map(String::from),
    );
    assert_durable_order("init of a new tree", &args);
}

#[test]
fn renew_and_token_create_never_name_what_a_power_cut_could_lose() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let with_dirs = |words: &[&str]| -> Vec<String> {
        let words = words.iter().map(|s| s.to_string());
        words.chain(tree.dir_args()).collect()
    };
    assert_durable_order("renew all", &with_dirs(&["certs", "renew", "all"]));
    assert_durable_order("renew one", &with_dirs(&["certs", "renew", "apiserver"]));
    assert_durable_order("rollback", &with_dirs(&["certs", "rollback"]));
    assert_durable_order("token create", &with_dirs(&["token", "create"]));
}

#[test]
fn every_stage_of_a_rotation_never_names_what_a_power_cut_could_lose() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    for row in ["ca", "etcd-ca", "sa"] {
        for stage in ["trust", "sign", "finish"] {
            let mut args: Vec<String> = ["certs", "rotate-ca", row, stage].map(String::from).into();
            args.extend(tree.dir_args());
            if (row, stage) == ("sa", "finish") {
                args.push("--force".into()); // within 24h of sign
            }
            assert_durable_order(&format!("rotate-ca {row} {stage}"), &args);
        }
    }
}

#[test]
fn join_never_names_what_a_power_cut_could_lose() {
    let control_plane = ControlPlane::new();
    let out = token(&control_plane.tree, &["create", "--print-join-command"]);
    assert_success(&out, "token create --print-join-command");
    // The worker's directories do not exist: the lock creates them, then one file at a time.
    let worker = TempTree::new();
    let etc = worker.root().join("etc/kubernetes");
    let dirs = [etc.join("pki"), etc].map(|dir| dir.display().to_string());
    let mut args = vec!["join".to_string()];
    args.extend(printed_join(&out.stdout));
    args.extend(["--cert-dir", &dirs[0], "--kubeconfig-dir", &dirs[1]].map(String::from));
    assert_durable_order("join", &args);
}

#[test]
fn the_replay_catches_a_name_given_too_early() {
    let path = |p: &str| PathBuf::from(p);
    let write_then_link = |sync: Option<Call>| {
        let mut calls = vec![Call::Write(path("/t/.ca.key.tmp"))];
        calls.extend(sync);
        calls.push(Call::Name {
            from: path("/t/.ca.key.tmp"),
            to: path("/t/ca.key"),
            link: true,
        });
        calls.push(Call::Syncfs);
        Disk::default().replay(&calls)
    };
    assert_eq!(write_then_link(None).len(), 1);
    assert!(write_then_link(Some(Call::Syncfs)).is_empty());
    assert!(write_then_link(Some(Call::Fsync(path("/t/.ca.key.tmp")))).is_empty());
    let cert_too_early = [
        Call::Name {
            from: path("/t/a"),
            to: path("/t/ca.key"),
            link: false,
        },
        Call::Name {
            from: path("/t/b"),
            to: path("/t/ca.crt"),
            link: false,
        },
        Call::Fsync(path("/t")),
    ];
    assert_eq!(Disk::default().replay(&cert_too_early).len(), 1);
}
