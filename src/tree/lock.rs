//! The advisory lock that keeps two writing runs off the same tree. Every command that writes
//! the tree takes an exclusive `flock` on a `.kubepki.lock` file in each of its directories
//! (in one fixed order, so two runs never wait on each other crosswise), waiting up to
//! `--lock-timeout`. The holder writes who it is into the file so that a run that gives up can
//! say who holds it. The lock is released when the process exits, however it exits, so a
//! killed run never leaves a stale lock. This module owns the lock files and nothing else.

use crate::duration::Duration;
use crate::tree::store;
use anyhow::{Result, anyhow, bail};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Instant;
use time::OffsetDateTime;

/// The lock file's name in each directory of the tree.
pub const LOCK_FILE: &str = ".kubepki.lock";

/// The default of `--lock-timeout`.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a waiting run sleeps between attempts, at most.
const LONGEST_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Exclusive locks on the directories of one tree, held until dropped.
#[must_use = "the tree is unlocked when this is dropped"]
pub struct TreeLock {
    files: Vec<File>,
}

impl Drop for TreeLock {
    /// Clears the holder's line before the lock goes, so that nobody is named after it.
    fn drop(&mut self) {
        for file in &self.files {
            let _ = file.set_len(0);
        }
    }
}

impl TreeLock {
    /// Locks each of `dirs` (created if missing), waiting up to `timeout` for another run to
    /// finish; `on_wait` hears once per directory that this run waits, and why. `command`
    /// (e.g. `certs renew`) is recorded for runs that wait on this one.
    pub fn acquire(
        dirs: &[&Path],
        timeout: Duration,
        command: &str,
        on_wait: &dyn Fn(&str),
    ) -> Result<TreeLock> {
        let mut paths = Vec::new();
        for dir in dirs {
            let dir = store::ensure_dir(dir, Path::new(""))?;
            let canonical = dir
                .canonicalize()
                .map_err(|e| anyhow!("{}: {e}", dir.display()))?;
            paths.push(canonical.join(LOCK_FILE));
        }
        paths.sort();
        paths.dedup();
        let deadline = Instant::now() + std::time::Duration::from_secs(timeout.as_secs());
        let holder = holder_line(command);
        let files = paths
            .iter()
            .map(|path| lock_one(path, deadline, timeout, &holder, on_wait))
            .collect::<Result<_>>()?;
        Ok(TreeLock { files })
    }
}

/// Opens and locks one lock file, then records `holder` in it.
fn lock_one(
    path: &Path,
    deadline: Instant,
    timeout: Duration,
    holder: &str,
    on_wait: &dyn Fn(&str),
) -> Result<File> {
    let mut file = open_lock_file(path)?;
    let mut pause = std::time::Duration::from_millis(5);
    let mut announced = false;
    loop {
        match try_lock(&file) {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => bail!("locking {}: {e}", path.display()),
        }
        let who = current_holder(&mut file);
        if Instant::now() >= deadline {
            bail!(
                "{} is locked by another run ({who}); gave up after waiting {timeout} \
                 (--lock-timeout)",
                path.display()
            );
        }
        if !announced {
            on_wait(&format!(
                "waiting up to {timeout} for {who} to release {}",
                path.display()
            ));
            announced = true;
        }
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(LONGEST_POLL);
    }
    record_holder(&mut file, holder).map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
    Ok(file)
}

/// Takes an exclusive `flock` on `file` without waiting: `Ok(false)` when another open file
/// holds it. (`File::try_lock` would do, but needs Rust 1.89; the MSRV is 1.85.)
fn try_lock(file: &File) -> std::io::Result<bool> {
    // SAFETY: flock on a file descriptor this function borrows for the call's duration.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(false),
        _ => Err(error),
    }
}

/// Opens (creating) a lock file, mode 0600 whatever the umask, without following a symlink
/// at its path.
fn open_lock_file(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(store::SECRET_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => store::symlink_error(path),
            _ if e.kind() == ErrorKind::PermissionDenied => anyhow!(
                "{}: {e} (writing the tree needs its owner, usually root)",
                path.display()
            ),
            _ => anyhow!("{}: {e}", path.display()),
        })?;
    let mode = file.metadata().map(|m| m.permissions().mode() & 0o777);
    if mode.is_ok_and(|mode| mode != store::SECRET_MODE) {
        file.set_permissions(std::fs::Permissions::from_mode(store::SECRET_MODE))
            .map_err(|e| anyhow!("setting the mode of {}: {e}", path.display()))?;
    }
    Ok(file)
}

/// This run, as recorded in a lock it holds: `pid 42, kubepki certs renew, since <time>`.
fn holder_line(command: &str) -> String {
    let since = OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    format!(
        "pid {}, kubepki {command}, since {since}",
        std::process::id()
    )
}

/// Who holds the lock, as its holder recorded it, or a placeholder when the line is missing
/// or stale (a holder that is not kubepki, or a killed run whose process is gone).
fn current_holder(file: &mut File) -> String {
    let mut recorded = String::new();
    let read = file
        .rewind()
        .and_then(|()| file.take(200).read_to_string(&mut recorded));
    let line = read.ok().and_then(|_| recorded.lines().next());
    match line.filter(|line| recorded_pid(line).is_some_and(is_alive)) {
        Some(line) => line.to_string(),
        None => "a process that did not say who it is".to_string(),
    }
}

/// The pid of a holder line, `pid 42, ...`.
fn recorded_pid(line: &str) -> Option<libc::pid_t> {
    line.strip_prefix("pid ")?.split(',').next()?.parse().ok()
}

fn is_alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks whether the process exists.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

fn record_holder(file: &mut File, holder: &str) -> std::io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(format!("{holder}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_waits_then_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held =
            TreeLock::acquire(&[dir.path()], Duration::from_secs(0), "init", &|_| {}).unwrap();
        let err = TreeLock::acquire(
            &[dir.path()],
            Duration::from_secs(0),
            "certs renew",
            &|_| {},
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains(&format!("pid {}, kubepki init", std::process::id())),
            "{err}"
        );
        assert!(
            err.contains(".kubepki.lock is locked by another run"),
            "{err}"
        );
        drop(held);
        assert!(
            TreeLock::acquire(
                &[dir.path()],
                Duration::from_secs(0),
                "certs renew",
                &|_| {}
            )
            .is_ok()
        );
    }

    #[test]
    fn one_directory_named_twice_is_locked_once() {
        let dir = tempfile::tempdir().unwrap();
        let same = dir.path().join(".");
        let held = TreeLock::acquire(
            &[dir.path(), &same],
            Duration::from_secs(0),
            "init",
            &|_| {},
        );
        assert!(held.is_ok());
    }

    #[test]
    fn a_symlink_at_the_lock_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, dir.path().join(LOCK_FILE)).unwrap();
        let err = TreeLock::acquire(&[dir.path()], Duration::from_secs(0), "init", &|_| {})
            .err()
            .unwrap();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(!target.exists());
    }
}
