//! The only code that writes under the cert and kubeconfig directories. Every write goes to
//! a temp file in the target directory, is fsynced, then linked into place without
//! clobbering (or renamed over, for replacements), and the directory is fsynced. Modes are
//! set explicitly, whatever the umask. Symlinks below a root are never followed.

use anyhow::{Context, Result, anyhow, bail};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Mode of private keys and kubeconfigs.
pub const SECRET_MODE: u32 = 0o600;
/// Mode of certificates.
pub const PUBLIC_MODE: u32 = 0o644;
/// Mode of directories kubepki creates.
pub const DIR_MODE: u32 = 0o755;

const TEMP_MARKER: &str = ".kubepki-tmp-";

/// A file kubepki writes: its place, content and mode.
#[derive(Clone)]
pub struct FileWrite {
    /// The directory the user named (`--cert-dir` or `--kubeconfig-dir`).
    pub root: PathBuf,
    /// The path below `root`, e.g. `etcd/ca.key`.
    pub rel: PathBuf,
    /// The bytes to write.
    pub content: Vec<u8>,
    /// The file mode.
    pub mode: u32,
}

impl FileWrite {
    /// The full path.
    pub fn path(&self) -> PathBuf {
        self.root.join(&self.rel)
    }
}

/// Reads `root/rel` if it exists, refusing symlinks anywhere below `root`.
pub fn read_optional(root: &Path, rel: &Path) -> Result<Option<Vec<u8>>> {
    let path = root.join(rel);
    check_no_links(root, rel)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path);
    match file {
        Ok(mut file) => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut bytes)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok(Some(bytes))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(symlink_error(&path)),
        Err(e) => Err(anyhow!("{}: {e}", path.display())),
    }
}

/// Creates each file that does not exist yet, in order; fails (having written the files
/// before it) if one exists. Each file is durable before the next is started, so a key
/// written before its certificate is on disk before the certificate is.
pub fn create_all(files: &[FileWrite]) -> Result<()> {
    for file in files {
        create_new(file)?;
    }
    Ok(())
}

fn create_new(file: &FileWrite) -> Result<()> {
    let path = file.path();
    let dir = ensure_dir(&file.root, file.rel.parent().unwrap_or(Path::new("")))?;
    let temp = write_temp(&dir, &path, &file.content, file.mode)?;
    let linked = fs::hard_link(&temp, &path);
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            bail!(
                "{} appeared while kubepki was writing; not overwriting it",
                path.display()
            )
        }
        Err(e) => return Err(anyhow!("{}: {e}", path.display())),
    }
    sync_dir(&dir)
}

/// Writes `content` to a fresh temp file beside `path`, with `mode`, fsynced.
fn write_temp(dir: &Path, path: &Path, content: &[u8], mode: u32) -> Result<PathBuf> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(
        ".{name}{TEMP_MARKER}{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(SECRET_MODE)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)?;
        out.set_permissions(fs::Permissions::from_mode(mode))?;
        out.write_all(content)?;
        out.sync_all()
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&temp);
        anyhow!("writing {}: {e}", path.display())
    })?;
    Ok(temp)
}

/// Makes sure `root/rel` is a directory (creating missing ones with mode 0755) and that no
/// component below `root` is a symlink. Returns its path.
pub fn ensure_dir(root: &Path, rel: &Path) -> Result<PathBuf> {
    let mut dir = root.to_path_buf();
    make_dir(&dir)?;
    for component in rel.components() {
        dir.push(component);
        make_dir(&dir)?;
        if fs::symlink_metadata(&dir)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false)
        {
            return Err(symlink_error(&dir));
        }
    }
    sweep_stale_temp_files(&dir);
    Ok(dir)
}

fn make_dir(dir: &Path) -> Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => {
            fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
                .with_context(|| format!("setting the mode of {}", dir.display()))?;
            sync_dir(parent_of(dir))
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => match fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => Ok(()),
            _ => bail!("{} exists and is not a directory", dir.display()),
        },
        Err(e) if e.kind() == ErrorKind::NotFound && dir.parent().is_some() => {
            make_dir(parent_of(dir))?;
            make_dir(dir)
        }
        Err(e) => Err(anyhow!("creating directory {}: {e}", dir.display())),
    }
}

/// Refuses a path whose components below `root` (the file included) are symlinks.
fn check_no_links(root: &Path, rel: &Path) -> Result<()> {
    let mut path = root.to_path_buf();
    for component in rel.components() {
        path.push(component);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => return Err(symlink_error(&path)),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

/// Removes temp files left by a kubepki process that no longer runs (killed mid-write).
fn sweep_stale_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((_, tail)) = name.split_once(TEMP_MARKER) else {
            continue;
        };
        let pid = tail
            .split('-')
            .next()
            .and_then(|p| p.parse::<libc::pid_t>().ok());
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let alive = pid.is_some_and(|pid| unsafe { libc::kill(pid, 0) } == 0);
        if !alive {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The parent directory, `.` for a relative path of one component.
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))
}

fn symlink_error(path: &Path) -> anyhow::Error {
    anyhow!(
        "{} is a symbolic link; kubepki does not follow links inside the PKI tree",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, mode: u32) -> FileWrite {
        FileWrite {
            root: root.into(),
            rel: rel.into(),
            content: b"x".to_vec(),
            mode,
        }
    }

    #[test]
    fn creates_with_explicit_modes_and_never_clobbers() {
        let dir = tempfile::tempdir().unwrap();
        create_all(&[write(dir.path(), "etcd/ca.key", SECRET_MODE)]).unwrap();
        let meta = fs::metadata(dir.path().join("etcd/ca.key")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(dir.path().join("etcd"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o755
        );
        let err = create_all(&[write(dir.path(), "etcd/ca.key", SECRET_MODE)]).unwrap_err();
        assert!(err.to_string().contains("not overwriting"), "{err}");
        assert_eq!(
            fs::read_dir(dir.path().join("etcd")).unwrap().count(),
            1,
            "temp file left"
        );
    }

    #[test]
    fn symlinks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("etcd")).unwrap();
        assert!(create_all(&[write(dir.path(), "etcd/ca.key", SECRET_MODE)]).is_err());
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("ca.key")).unwrap();
        let err = read_optional(dir.path(), Path::new("ca.key")).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    }
}
