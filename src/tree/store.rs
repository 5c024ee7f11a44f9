//! The only code that writes under the cert and kubeconfig directories. Every write goes to
//! a temp file in the target directory, is fsynced, then linked into place without
//! clobbering (or renamed over, for replacements), and the directory is fsynced. Modes are
//! set explicitly, whatever the umask. Symlinks below a root are never followed.

use anyhow::{Context, Result, anyhow, bail};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::kill;
use nix::unistd::Pid;
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
/// Suffix of a staged (complete, fsynced) replacement waiting to be renamed into place.
const STAGED_SUFFIX: &str = ".kubepki-staged";

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
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .open(&path);
    match file {
        Ok(mut file) => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut bytes)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok(Some(bytes))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) if e.raw_os_error() == Some(Errno::ELOOP as i32) => Err(symlink_error(&path)),
        Err(e) => Err(anyhow!("{}: {e}", path.display())),
    }
}

/// Creates each file that does not exist yet, never replacing one. Every content is first
/// written to a fsynced temp file; then the private keys are linked into place and their
/// directories fsynced, then everything else (certificates, public keys, kubeconfigs). So a
/// certificate's name is never durable before its key's, at one directory fsync per
/// directory and wave rather than one per file.
pub fn create_all(files: &[FileWrite]) -> Result<()> {
    let mut temps = TempFiles(Vec::with_capacity(files.len()));
    for file in files {
        let dir = ensure_dir(&file.root, file.rel.parent().unwrap_or(Path::new("")))?;
        temps
            .0
            .push(write_temp(&dir, &file.path(), &file.content, file.mode)?);
    }
    let is_key = |file: &FileWrite| file.rel.extension().is_some_and(|e| e == "key");
    for keys_wave in [true, false] {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (file, temp) in files
            .iter()
            .zip(&temps.0)
            .filter(|(f, _)| is_key(f) == keys_wave)
        {
            link_new(temp, &file.path())?;
            let dir = parent_of(&file.path()).to_path_buf();
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        dirs.iter().try_for_each(|dir| sync_dir(dir))?;
    }
    Ok(())
}

/// Temp files of one `create_all`, removed when it ends, whether it succeeded or not.
struct TempFiles(Vec<PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for temp in &self.0 {
            let _ = fs::remove_file(temp);
        }
    }
}

/// Gives `temp`'s content the name `path` too, failing if `path` exists.
fn link_new(temp: &Path, path: &Path) -> Result<()> {
    match fs::hard_link(temp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            bail!("{} already exists; not overwriting it", path.display())
        }
        Err(e) => Err(anyhow!("{}: {e}", path.display())),
    }
}

/// Replaces a key and its certificate, never leaving a certificate beside a key it does not
/// match for longer than until the next run: both are staged (complete and fsynced) first,
/// then the key is renamed into place, then the certificate. A run killed between the two
/// renames leaves the staged certificate, which `complete_staged` moves into place.
pub fn replace_pair(key: &FileWrite, cert: &FileWrite) -> Result<()> {
    let dir = ensure_dir(&key.root, key.rel.parent().unwrap_or(Path::new("")))?;
    let staged_key = stage(&dir, key)?;
    let staged_cert = stage(&dir, cert)?;
    sync_dir(&dir)?;
    rename(&staged_key, &key.path())?;
    sync_dir(&dir)?;
    rename(&staged_cert, &cert.path())?;
    sync_dir(&dir)
}

/// Replaces (or creates) one file atomically: temp file, fsync, rename, fsync of the directory.
pub fn replace(file: &FileWrite) -> Result<()> {
    let dir = ensure_dir(&file.root, file.rel.parent().unwrap_or(Path::new("")))?;
    let path = file.path();
    let temp = write_temp(&dir, &path, &file.content, file.mode)?;
    rename(&temp, &path)?;
    sync_dir(&dir)
}

/// Replaces `file` unless it already holds exactly its content (so a no-op run leaves the
/// file, mtime included, alone). Returns whether it wrote.
pub fn replace_if_changed(file: &FileWrite) -> Result<bool> {
    if read_optional(&file.root, &file.rel)?.as_deref() == Some(file.content.as_slice()) {
        return Ok(false);
    }
    replace(file)?;
    Ok(true)
}

/// Writes a file outside the tree (a metrics file, `--output`) atomically with `mode`, into
/// a directory that must exist: kubepki creates no directory outside the tree.
pub fn write_outside(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("{}: not a file path", path.display()))?;
    if !parent_of(path).is_dir() {
        bail!("{}: no such directory", parent_of(path).display());
    }
    replace(&FileWrite {
        root: parent_of(path).to_path_buf(),
        rel: name.into(),
        content: content.to_vec(),
        mode,
    })
}

/// Copies `files` that exist into `backup` (created mode 0700), under their relative paths,
/// each mode 0600, fsynced. Returns the paths written.
pub fn backup(files: &[(PathBuf, PathBuf)], backup: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (source, rel) in files {
        let Some(content) = read_optional(
            parent_of(source),
            Path::new(source.file_name().unwrap_or_default()),
        )?
        else {
            continue;
        };
        let target = backup.join(rel);
        let dir = parent_of(&target).to_path_buf();
        fs::create_dir_all(&dir)
            .with_context(|| format!("creating backup directory {}", dir.display()))?;
        for created in [backup, &dir] {
            fs::set_permissions(created, fs::Permissions::from_mode(0o700))
                .with_context(|| format!("setting the mode of {}", created.display()))?;
        }
        let temp = write_temp(&dir, &target, &content, SECRET_MODE)?;
        rename(&temp, &target)?;
        sync_dir(&dir)?;
        written.push(target);
    }
    Ok(written)
}

/// Finishes replacements a killed run left half done in `root/rel` (refusing a symlink on
/// the way): a staged certificate whose key was already renamed goes into place; a staged
/// pair goes into place key first; a staged key alone (its certificate never staged) is
/// dropped. Returns the files completed.
pub fn complete_staged(root: &Path, rel: &Path) -> Result<Vec<PathBuf>> {
    check_no_links(root, rel)?;
    let dir = &root.join(rel);
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let staged: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n.ends_with(STAGED_SUFFIX))
        .collect();
    let mut completed = Vec::new();
    for name in staged
        .iter()
        .filter(|n| n.ends_with(&format!(".crt{STAGED_SUFFIX}")))
    {
        let live = &name[1..name.len() - STAGED_SUFFIX.len()];
        let key_name = format!(".{}.key{STAGED_SUFFIX}", live.trim_end_matches(".crt"));
        if staged.contains(&key_name) {
            rename(
                &dir.join(&key_name),
                &dir.join(&key_name[1..key_name.len() - STAGED_SUFFIX.len()]),
            )?;
            sync_dir(dir)?;
        }
        rename(&dir.join(name), &dir.join(live))?;
        sync_dir(dir)?;
        completed.push(dir.join(live));
    }
    for name in staged
        .iter()
        .filter(|n| n.ends_with(&format!(".key{STAGED_SUFFIX}")))
    {
        let _ = fs::remove_file(dir.join(name));
    }
    Ok(completed)
}

fn stage(dir: &Path, file: &FileWrite) -> Result<PathBuf> {
    let path = file.path();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staged = dir.join(format!(".{name}{STAGED_SUFFIX}"));
    let temp = write_temp(dir, &path, &file.content, file.mode)?;
    rename(&temp, &staged)?;
    Ok(staged)
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| {
        let _ = fs::remove_file(from);
        anyhow!("replacing {}: {e}", to.display())
    })
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
            .custom_flags(OFlag::O_NOFOLLOW.bits())
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

/// Removes temp files that kubepki processes which no longer run (killed mid-write) left in
/// `dir` or any directory below it, never following a symlink.
pub fn sweep_stale_temp_files_below(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            sweep_stale_temp_files_below(&entry.path());
        }
    }
    sweep_stale_temp_files(dir);
}

/// Removes temp files left in `dir` by a kubepki process that no longer runs.
fn sweep_stale_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((_, tail)) = name.split_once(TEMP_MARKER) else {
            continue;
        };
        let pid = tail.split('-').next().and_then(|p| p.parse::<i32>().ok());
        let alive = pid.is_some_and(|pid| kill(Pid::from_raw(pid), None).is_ok());
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

/// The error for a symlink found inside the tree.
pub fn symlink_error(path: &Path) -> anyhow::Error {
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
        assert!(
            err.to_string().contains("already exists; not overwriting"),
            "{err}"
        );
        assert_eq!(
            fs::read_dir(dir.path().join("etcd")).unwrap().count(),
            1,
            "temp file left"
        );
    }

    #[test]
    fn a_pair_caught_between_its_renames_is_rolled_forward() {
        let dir = tempfile::tempdir().unwrap();
        let pair = |content: &str| {
            let mut key = write(dir.path(), "etcd/peer.key", SECRET_MODE);
            let mut cert = write(dir.path(), "etcd/peer.crt", PUBLIC_MODE);
            key.content = format!("{content} key").into_bytes();
            cert.content = format!("{content} cert").into_bytes();
            (key, cert)
        };
        let (old_key, old_cert) = pair("old");
        replace_pair(&old_key, &old_cert).unwrap();
        let (new_key, new_cert) = pair("new");
        let etcd = dir.path().join("etcd");
        // Simulate a kill between the renames: new key in place, new cert still staged.
        let staged_cert = stage(&etcd, &new_cert).unwrap();
        replace(&new_key).unwrap();
        assert!(staged_cert.exists());
        let completed = complete_staged(dir.path(), Path::new("etcd")).unwrap();
        assert_eq!(completed, [etcd.join("peer.crt")]);
        assert_eq!(fs::read(etcd.join("peer.crt")).unwrap(), b"new cert");
        assert_eq!(fs::read_dir(&etcd).unwrap().count(), 2);
        // A staged key alone is dropped, leaving the live pair as it was.
        stage(&etcd, &old_key).unwrap();
        assert!(
            complete_staged(dir.path(), Path::new("etcd"))
                .unwrap()
                .is_empty()
        );
        assert_eq!(fs::read(etcd.join("peer.key")).unwrap(), b"new key");
        assert_eq!(fs::read_dir(&etcd).unwrap().count(), 2);
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
