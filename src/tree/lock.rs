//! The advisory lock that keeps two writing runs off the same tree. Every command that writes
//! the tree takes an exclusive `flock` on each of its directories itself (opened read-only,
//! never through a symlink), in one fixed order so that two runs never wait on each other
//! crosswise, waiting up to `--lock-timeout`. Nothing is written: the tree holds only
//! kubeadm's files, and a run that gives up names the holder from `/proc` (`holder`). The
//! lock goes with the process, however it exits, so a killed run never leaves a stale lock.
//! This module owns the locking and nothing else.

use crate::duration::Duration;
use crate::tree::holder::describe_holder;
use crate::tree::store;
use anyhow::{Result, anyhow, bail};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Instant;

/// The default of `--lock-timeout`.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a waiting run sleeps between attempts, at most.
const LONGEST_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Exclusive locks on the directories of one tree, held until dropped.
#[must_use = "the tree is unlocked when this is dropped"]
pub struct TreeLock {
    _held: Vec<Flock<File>>,
}

impl TreeLock {
    /// Locks each of `dirs` (created if missing, refused if a symbolic link), waiting up to
    /// `timeout` for another run to finish; `on_wait` hears once per directory that this run
    /// waits, and for whom.
    pub fn acquire(dirs: &[&Path], timeout: Duration, on_wait: &dyn Fn(&str)) -> Result<TreeLock> {
        let mut paths = Vec::new();
        for dir in dirs {
            store::check_dir_not_link(dir)?;
            let dir = store::ensure_dir(dir, Path::new(""))?;
            let canonical = dir
                .canonicalize()
                .map_err(|e| anyhow!("{}: {e}", dir.display()))?;
            paths.push(canonical);
        }
        paths.sort();
        paths.dedup();
        let deadline = Instant::now() + std::time::Duration::from_secs(timeout.as_secs());
        let held = paths
            .iter()
            .map(|path| lock_one(path, deadline, timeout, on_wait))
            .collect::<Result<_>>()?;
        Ok(TreeLock { _held: held })
    }
}

/// Opens and locks the directory `dir`, waiting until `deadline`.
fn lock_one(
    dir: &Path,
    deadline: Instant,
    timeout: Duration,
    on_wait: &dyn Fn(&str),
) -> Result<Flock<File>> {
    let mut file = open_dir(dir)?;
    let mut pause = std::time::Duration::from_millis(5);
    let mut announced = false;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(held) => return Ok(held),
            Err((unlocked, Errno::EWOULDBLOCK)) => file = unlocked,
            Err((_, errno)) => bail!("locking {}: {}", dir.display(), std::io::Error::from(errno)),
        }
        if Instant::now() >= deadline {
            bail!(
                "{} is locked by another run ({}); gave up after waiting {timeout} \
                 (--lock-timeout)",
                dir.display(),
                describe_holder(&file)
            );
        }
        if !announced {
            on_wait(&format!(
                "waiting up to {timeout} for {} to release {}",
                describe_holder(&file),
                dir.display()
            ));
            announced = true;
        }
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(LONGEST_POLL);
    }
}

/// Opens the directory `dir` read-only for its lock, refusing a symlink at its path (which
/// `O_DIRECTORY | O_NOFOLLOW` answers with `ENOTDIR`, or `ELOOP`).
fn open_dir(dir: &Path) -> Result<File> {
    let is_symlink = || fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink());
    OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW).bits())
        .open(dir)
        .map_err(|e| match e.kind() {
            _ if is_symlink() => store::symlink_error(dir),
            ErrorKind::PermissionDenied => anyhow!(
                "{}: {e} (writing the tree needs its owner, usually root)",
                dir.display()
            ),
            _ => anyhow!("{}: {e}", dir.display()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acquire(dirs: &[&Path]) -> Result<TreeLock> {
        TreeLock::acquire(dirs, Duration::from_secs(0), &|_| {})
    }

    #[test]
    fn a_second_lock_gives_up_naming_the_directory_and_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = acquire(&[dir.path()]).unwrap();
        let err = acquire(&[dir.path()]).err().unwrap().to_string();
        let canonical = dir.path().canonicalize().unwrap();
        let expected = format!("{} is locked by another run (", canonical.display());
        assert!(err.starts_with(&expected), "{err}");
        // The holder is this test binary: found, and not taken for kubepki.
        let holder = format!(": pid {}, kubepki-", std::process::id());
        assert!(err.contains(&holder), "{err}");
        assert!(
            err.ends_with("gave up after waiting 0s (--lock-timeout)"),
            "{err}"
        );
        drop(held);
        assert!(acquire(&[dir.path()]).is_ok());
    }

    #[test]
    fn one_directory_named_twice_is_locked_once() {
        let dir = tempfile::tempdir().unwrap();
        let same = dir.path().join(".");
        assert!(acquire(&[dir.path(), &same]).is_ok());
    }

    #[test]
    fn locking_writes_nothing_in_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let _held = acquire(&[dir.path()]).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_symlink_swapped_in_for_the_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        let err = open_dir(&link).err().unwrap();
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }
}
