//! How a batch of writes is made durable. `store` decides *what* must be durable before its
//! next step (contents before names, keys before certificates); this module makes it so with
//! as few calls as the filesystem allows: one `syncfs(2)` per filesystem, which flushes every
//! content and every name on it at once, where the filesystem is known to honour it; an
//! fsync of each file as it is written and of each changed directory otherwise.

use anyhow::{Context, Result, anyhow};
use nix::sys::statfs::{self, FsType};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Filesystems whose `syncfs` writes back every dirty page and inode and commits them (a
/// journal commit and a cache flush where there is a journal), so that it gives everything
/// an fsync of each file and directory would. FUSE, 9p, CIFS and NFS are left out: some
/// forward an fsync to their server but not a syncfs.
const SYNCFS_FLUSHES_ALL: &[FsType] = &[
    statfs::EXT4_SUPER_MAGIC, // ext2 and ext3 too: one magic number
    statfs::BTRFS_SUPER_MAGIC,
    statfs::F2FS_SUPER_MAGIC,
    statfs::OVERLAYFS_SUPER_MAGIC, // syncs its upper filesystem
    statfs::TMPFS_MAGIC,           // nothing to flush, nothing lost
    FsType(0x5846_5342),           // XFS (nix names it for glibc targets only)
];

/// How one batch makes what it wrote durable.
pub enum Flush {
    /// One `syncfs` per filesystem the batch writes to, each through a directory opened
    /// before the batch's first write: since Linux 5.8, syncfs reports a writeback error
    /// that happened on the filesystem after its descriptor was opened.
    Syncfs(Vec<Filesystem>),
    /// An fsync of each file as it is written and of each directory whose entries changed.
    /// Used for a single file, where it takes as many calls as syncfs without flushing other
    /// programs' data, and on filesystems not in `SYNCFS_FLUSHES_ALL`.
    EachFile,
}

/// A filesystem of a batch, held open through one of its directories.
pub struct Filesystem {
    dir: PathBuf,
    handle: File,
}

impl Flush {
    /// The cheapest safe way to make `files` writes into `dirs` durable.
    pub fn choose(dirs: &[PathBuf], files: usize) -> Result<Flush> {
        if files < 2 {
            return Ok(Flush::EachFile);
        }
        let mut filesystems: Vec<(u64, Filesystem)> = Vec::new();
        for dir in dirs {
            let handle = File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
            let kind = statfs::fstatfs(&handle)
                .map_err(|e| anyhow!("{}: {e}", dir.display()))?
                .filesystem_type();
            if !SYNCFS_FLUSHES_ALL.contains(&kind) {
                return Ok(Flush::EachFile);
            }
            let device = handle
                .metadata()
                .with_context(|| format!("reading {}", dir.display()))?
                .dev();
            if filesystems.iter().all(|(known, _)| *known != device) {
                let dir = dir.clone();
                filesystems.push((device, Filesystem { dir, handle }));
            }
        }
        Ok(Flush::Syncfs(
            filesystems.into_iter().map(|(_, fs)| fs).collect(),
        ))
    }

    /// Whether each file must be fsynced as soon as it is written.
    pub fn each_file(&self) -> bool {
        matches!(self, Flush::EachFile)
    }

    /// Makes durable everything written so far: file contents and names, the entries of
    /// `changed` directories among them.
    pub fn sync(&self, changed: &[PathBuf]) -> Result<()> {
        match self {
            Flush::Syncfs(filesystems) => filesystems.iter().try_for_each(|fs| {
                nix::unistd::syncfs(&fs.handle)
                    .map_err(|e| anyhow!("syncing the filesystem of {}: {e}", fs.dir.display()))
            }),
            Flush::EachFile => changed.iter().try_for_each(|dir| sync_dir(dir)),
        }
    }
}

/// Makes the entries of `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_is_synced_by_itself() {
        let dir = tempfile::tempdir().unwrap();
        let flush = Flush::choose(&[dir.path().into()], 1).unwrap();
        assert!(flush.each_file());
    }

    #[test]
    fn a_batch_syncs_each_filesystem_once() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("etcd");
        std::fs::create_dir(&sub).unwrap();
        let dirs = [dir.path().to_path_buf(), sub];
        let kind = statfs::statfs(dir.path()).unwrap().filesystem_type();
        let flush = Flush::choose(&dirs, 3).unwrap();
        match &flush {
            Flush::Syncfs(filesystems) => assert_eq!(filesystems.len(), 1),
            Flush::EachFile => assert!(!SYNCFS_FLUSHES_ALL.contains(&kind), "{kind:?}"),
        }
        flush.sync(&dirs).unwrap();
    }
}
