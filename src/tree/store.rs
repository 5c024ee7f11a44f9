//! The only code that writes under the cert and kubeconfig directories. Every write goes to
//! a temp file in the target directory, is made durable, then linked into place without
//! clobbering (or renamed over, for replacements), and the new name is made durable. Files
//! written together form a `Batch`: all their temp files first, then one sync for all of
//! them (`flush`: one `syncfs` per filesystem), then each wave of names and one sync after
//! it, rather than an fsync per file and directory. Modes are set explicitly, whatever the
//! umask. Symlinks below a root are never followed.

use super::TreeDirs;
use super::flush::{self, Flush};
use crate::net::file::{self, Links, ReadError};
use anyhow::{Context, Result, anyhow, bail};
use nix::fcntl::OFlag;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Mode of private keys and kubeconfigs.
pub const SECRET_MODE: u32 = 0o600;
/// Mode of certificates.
pub const PUBLIC_MODE: u32 = 0o644;
/// Mode of directories kubepki creates.
pub const DIR_MODE: u32 = 0o755;
/// Mode of backup directories: they hold copies of private keys.
const BACKUP_DIR_MODE: u32 = 0o700;

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

/// Reads `root/rel` if it exists, refusing symlinks anywhere below `root`, anything but a
/// regular file (a FIFO would hang the command, a device never end) and more than
/// `MAX_FILE_BYTES`.
pub fn read_optional(root: &Path, rel: &Path) -> Result<Option<Vec<u8>>> {
    let path = root.join(rel);
    check_no_links(root, rel)?;
    match file::read_regular(&path, Links::Refuse, file::MAX_FILE_BYTES) {
        Ok(bytes) => Ok(bytes),
        Err(ReadError::Symlink) => Err(symlink_error(&path)),
        Err(e) => Err(anyhow!("{}: {e}", path.display())),
    }
}

/// Creates each file that does not exist yet, never replacing one: `create_all_and_replace`
/// with nothing to replace.
pub fn create_all(files: &[FileWrite]) -> Result<()> {
    create_all_and_replace(files, &[]).map(drop)
}

/// Creates each of `files` that does not exist yet, never replacing one, and replaces those of
/// `replacements` whose content differs from the file on disk, in one batch: every content
/// goes to a temp file and one sync makes them all durable; then the private keys are linked
/// into place and synced; then everything else (certificates, public keys, kubeconfigs) is
/// linked and the replacements renamed over, and synced. So no name is durable before its
/// content, and a certificate's name never before its key's, at three syncs for a whole tree
/// (see `Batch`). Returns the replacements written.
pub fn create_all_and_replace(
    files: &[FileWrite],
    replacements: &[FileWrite],
) -> Result<Vec<PathBuf>> {
    let changed = changed_files(replacements)?;
    let mut batch = Batch::new(files.iter().chain(changed.iter().copied()), DIR_MODE)?;
    let temps = files
        .iter()
        .map(|file| batch.write(file))
        .collect::<Result<Vec<_>>>()?;
    let replacing = changed
        .iter()
        .map(|file| batch.write(file))
        .collect::<Result<Vec<_>>>()?;
    batch.sync()?;
    let is_key = |file: &FileWrite| file.rel.extension().is_some_and(|e| e == "key");
    for keys_wave in [true, false] {
        for (file, temp) in files
            .iter()
            .zip(&temps)
            .filter(|(f, _)| is_key(f) == keys_wave)
        {
            batch.link(*temp, &file.path())?;
        }
        if !keys_wave {
            for (file, temp) in changed.iter().zip(&replacing) {
                batch.rename_temp(*temp, &file.path())?;
            }
        }
        batch.sync()?;
    }
    Ok(changed.iter().map(|file| file.path()).collect())
}

/// Those of `files` that do not already hold exactly their content, to write in a batch of
/// the caller's (`replace_many` replaces whatever it is given).
pub fn differing(files: Vec<FileWrite>) -> Result<Vec<FileWrite>> {
    let mut differ = Vec::new();
    for file in files {
        if read_optional(&file.root, &file.rel)?.as_deref() != Some(file.content.as_slice()) {
            differ.push(file);
        }
    }
    Ok(differ)
}

/// Those of `files` that do not already hold exactly their content.
fn changed_files(files: &[FileWrite]) -> Result<Vec<&FileWrite>> {
    let mut changed = Vec::new();
    for file in files {
        if read_optional(&file.root, &file.rel)?.as_deref() != Some(file.content.as_slice()) {
            changed.push(file);
        }
    }
    Ok(changed)
}

/// Replaces (or creates) key and certificate pairs, and whole files, in one batch, never
/// leaving a certificate beside a key it does not match for longer than until the next run:
/// every pair is staged (complete and durable under its staged names) first; then every key
/// is renamed into place, with the whole files, and synced; then every certificate. A run
/// killed between the two waves leaves staged certificates, which `complete_staged` moves
/// into place.
pub fn replace_many(pairs: &[(&FileWrite, &FileWrite)], files: &[&FileWrite]) -> Result<()> {
    let all = pairs.iter().flat_map(|(key, cert)| [*key, *cert]);
    let mut batch = Batch::new(all.chain(files.iter().copied()), DIR_MODE)?;
    let mut temps = Vec::with_capacity(pairs.len());
    for (key, cert) in pairs {
        temps.push((batch.write(key)?, batch.write(cert)?));
    }
    let whole = files
        .iter()
        .map(|file| batch.write(file))
        .collect::<Result<Vec<_>>>()?;
    batch.sync()?;
    let mut staged = Vec::with_capacity(pairs.len());
    for ((key, cert), (key_temp, cert_temp)) in pairs.iter().zip(temps) {
        staged.push((batch.stage(key_temp, key)?, batch.stage(cert_temp, cert)?));
    }
    batch.sync()?;
    for ((key, _), (staged_key, _)) in pairs.iter().zip(&staged) {
        batch.rename(staged_key, &key.path())?;
    }
    for (file, temp) in files.iter().zip(whole) {
        batch.rename_temp(temp, &file.path())?;
    }
    batch.sync()?;
    for ((_, cert), (_, staged_cert)) in pairs.iter().zip(&staged) {
        batch.rename(staged_cert, &cert.path())?;
    }
    batch.sync()
}

/// Replaces (or creates) one file atomically: temp file, fsync, rename, fsync of the directory.
pub fn replace(file: &FileWrite) -> Result<()> {
    replace_many(&[], &[file])
}

/// Replaces, in one batch, those of `files` that do not already hold exactly their content
/// (so a no-op run leaves every file, mtime included, alone). Returns the paths written.
pub fn replace_changed(files: &[FileWrite]) -> Result<Vec<PathBuf>> {
    create_all_and_replace(&[], files)
}

/// Removes each of `files` that exists (refusing a symlink on the way), then makes the
/// removals durable. Returns the paths removed.
pub fn remove_all(files: &[(PathBuf, PathBuf)]) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for (root, rel) in files {
        check_no_links(root, rel)?;
        let path = root.join(rel);
        match fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => bail!("removing {}: {e}", path.display()),
        }
    }
    let mut dirs: Vec<&Path> = removed.iter().map(|path| parent_of(path)).collect();
    dirs.dedup();
    for dir in dirs {
        flush::sync_dir(dir)?;
    }
    Ok(removed)
}

/// Removes each directory `root/rel` of `dirs` (deepest first, as given) that exists and is
/// empty, then makes that durable; a directory that still holds something is left alone.
/// Returns the directories removed.
pub fn remove_empty_dirs(root: &Path, dirs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for rel in dirs {
        check_no_links(root, rel)?;
        let dir = root.join(rel);
        match fs::remove_dir(&dir) {
            Ok(()) => {
                flush::sync_dir(parent_of(&dir))?;
                removed.push(dir);
            }
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::DirectoryNotEmpty) => {}
            Err(e) => bail!("removing directory {}: {e}", dir.display()),
        }
    }
    Ok(removed)
}

/// Creates the directory `root/name` (mode 0700; `root` and its missing ancestors too)
/// only when nothing has that name yet: true when this call created it, false when the name
/// was taken. The name is taken in one step (`mkdir`), so two runs never both get it; the
/// directories it creates are durable before it returns.
pub fn claim_dir(root: &Path, name: &Path) -> Result<bool> {
    let mut created = Vec::new();
    make_dirs(root, Path::new(""), BACKUP_DIR_MODE, &mut created)?;
    let dir = root.join(name);
    let claimed = match fs::create_dir(&dir) {
        Ok(()) => {
            fs::set_permissions(&dir, fs::Permissions::from_mode(BACKUP_DIR_MODE))
                .with_context(|| format!("setting the mode of {}", dir.display()))?;
            created.push(dir);
            true
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => false,
        Err(e) => bail!("creating directory {}: {e}", dir.display()),
    };
    for created in &created {
        flush::sync_dir(parent_of(created))?;
    }
    Ok(claimed)
}

/// Whether a replacement of `root/rel` waits staged beside it (a run killed between the
/// renames of a pair, which the next writing command completes).
pub fn is_staged(root: &Path, rel: &Path) -> bool {
    fs::symlink_metadata(staged_path(&root.join(rel))).is_ok()
}

/// Writes a file outside the tree `dirs` (a metrics file, `--output`: `flag` names it)
/// atomically with `mode`, into a directory that must exist: kubepki creates no directory
/// outside the tree. A path that names a file of the tree is refused
/// (`TreeDirs::refuse_output`); an existing file is replaced only when `replace` says so.
pub fn write_outside(
    dirs: &TreeDirs,
    flag: &str,
    path: &Path,
    content: &[u8],
    mode: u32,
    replace: bool,
) -> Result<()> {
    dirs.refuse_output(flag, path)?;
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("{}: not a file path", path.display()))?;
    if !parent_of(path).is_dir() {
        bail!("{}: no such directory", parent_of(path).display());
    }
    let file = FileWrite {
        root: parent_of(path).to_path_buf(),
        rel: name.into(),
        content: content.to_vec(),
        mode,
    };
    match replace {
        true => self::replace(&file),
        false => create_all(std::slice::from_ref(&file)),
    }
}

/// Copies `files` that exist into `backup` (created mode 0700), under their relative paths,
/// each mode 0600, in one batch made durable before it returns; then writes `records`
/// (relative path, content) there, made durable after every copy, so that a record
/// vouches for a whole backup; when there is nothing to copy or record, nothing (not even
/// the directory). Returns the paths of the copies.
pub fn backup(
    files: &[(PathBuf, PathBuf)],
    backup: &Path,
    records: &[(PathBuf, Vec<u8>)],
) -> Result<Vec<PathBuf>> {
    let mut copies = Vec::new();
    for (source, rel) in files {
        let name = Path::new(source.file_name().unwrap_or_default());
        if let Some(content) = read_optional(parent_of(source), name)? {
            copies.push(FileWrite {
                root: backup.to_path_buf(),
                rel: rel.clone(),
                content,
                mode: SECRET_MODE,
            });
        }
    }
    let record_writes: Vec<FileWrite> = records
        .iter()
        .map(|(rel, content)| FileWrite {
            root: backup.to_path_buf(),
            rel: rel.clone(),
            content: content.clone(),
            mode: SECRET_MODE,
        })
        .collect();
    if copies.is_empty() && record_writes.is_empty() {
        return Ok(Vec::new());
    }
    let mut batch = Batch::new(copies.iter().chain(&record_writes), BACKUP_DIR_MODE)?;
    let paths: Vec<PathBuf> = copies.iter().map(FileWrite::path).collect();
    for private in paths.iter().map(|path| parent_of(path)).chain([backup]) {
        fs::set_permissions(private, fs::Permissions::from_mode(BACKUP_DIR_MODE))
            .with_context(|| format!("setting the mode of {}", private.display()))?;
    }
    let temps = copies
        .iter()
        .chain(&record_writes)
        .map(|copy| batch.write(copy))
        .collect::<Result<Vec<_>>>()?;
    batch.sync()?;
    let (copy_temps, record_temps) = temps.split_at(copies.len());
    for (path, temp) in paths.iter().zip(copy_temps) {
        batch.rename_temp(*temp, path)?;
    }
    batch.sync()?;
    for (record, temp) in record_writes.iter().zip(record_temps) {
        batch.rename_temp(*temp, &record.path())?;
    }
    batch.sync()?;
    Ok(paths)
}

/// Removes `root/rel` (a file) if it exists, refusing a link on the way, and makes the
/// removal durable.
pub fn remove(root: &Path, rel: &Path) -> Result<()> {
    check_no_links(root, rel)?;
    let path = root.join(rel);
    match fs::remove_file(&path) {
        Ok(()) => flush::sync_dir(parent_of(&path)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow!("removing {}: {e}", path.display())),
    }
}

/// Removes the directory `root/rel` and everything below it, `first` (a file below it)
/// before the rest, never following a link.
pub fn remove_dir(root: &Path, rel: &Path, first: &Path) -> Result<()> {
    check_no_links(root, rel)?;
    let dir = root.join(rel);
    match fs::remove_file(dir.join(first)) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => bail!("removing {}: {e}", dir.join(first).display()),
    }
    fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))
}

/// Files written together and made durable together, wave by wave.
///
/// Why the order is crash-safe: a name is given to a content (linked, or renamed from a temp
/// or staged name) only after a `sync` that followed the content's write, so no name is ever
/// durable before its content; and every wave of names (keys, then the rest; staged names,
/// then keys, then certificates) ends with a `sync` before the next wave starts, so no name
/// of a later wave is durable before all those of the earlier ones. The sync is one
/// `syncfs` per filesystem, or fsyncs of each file and changed directory (`Flush`); either
/// gives every durability the per-file fsyncs gave, in a handful of calls. Directories the
/// batch creates are durable from its first sync on, before any name is given inside them.
struct Batch {
    flush: Flush,
    /// Temp files still under their temp names, removed when the batch ends.
    temps: Vec<Option<PathBuf>>,
    /// Directories whose entries changed since the last sync.
    changed: Vec<PathBuf>,
    /// Whether anything was written since the last sync.
    unsynced: bool,
}

/// A temp file of a `Batch`: its index.
#[derive(Clone, Copy)]
struct Temp(usize);

impl Batch {
    /// A batch writing `files`: their directories made sure of (missing ones created with
    /// `dir_mode`, symlinks refused, stale temp files swept), and the way to sync chosen.
    fn new<'a>(files: impl Iterator<Item = &'a FileWrite>, dir_mode: u32) -> Result<Batch> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut created = Vec::new();
        let mut count = 0;
        for file in files {
            count += 1;
            let rel_dir = file.rel.parent().unwrap_or(Path::new(""));
            if !dirs.contains(&file.root.join(rel_dir)) {
                dirs.push(make_dirs(&file.root, rel_dir, dir_mode, &mut created)?);
            }
        }
        created.append(&mut unsynced_dirs());
        let mut changed: Vec<PathBuf> = Vec::new();
        for dir in created.iter().map(|dir| parent_of(dir).to_path_buf()) {
            if !changed.contains(&dir) {
                changed.push(dir);
            }
        }
        // The filesystems to sync: those written to, and those of the new directories.
        dirs.extend(changed.iter().cloned());
        Ok(Batch {
            flush: Flush::choose(&dirs, count)?,
            temps: Vec::with_capacity(count),
            unsynced: !changed.is_empty(),
            changed,
        })
    }

    /// Writes `file`'s content and mode to a new temp file beside it.
    fn write(&mut self, file: &FileWrite) -> Result<Temp> {
        let path = file.path();
        let durable_now = self.flush.each_file();
        let temp = write_temp(
            parent_of(&path),
            &path,
            &file.content,
            file.mode,
            durable_now,
        )?;
        self.temps.push(Some(temp));
        self.unsynced |= !durable_now;
        Ok(Temp(self.temps.len() - 1))
    }

    /// Makes durable everything the batch did so far; nothing when it did nothing since.
    fn sync(&mut self) -> Result<()> {
        if self.unsynced {
            self.flush.sync(&self.changed)?;
        }
        self.changed.clear();
        self.unsynced = false;
        Ok(())
    }

    /// Gives `temp`'s content the name `path` too, failing if `path` exists.
    fn link(&mut self, temp: Temp, path: &Path) -> Result<()> {
        let from = self.temps[temp.0]
            .as_deref()
            .ok_or_else(|| anyhow!("internal error: temp file already renamed"))?;
        link_new(from, path)?;
        self.changed_entries_of(path);
        Ok(())
    }

    /// Renames `temp` to `path`.
    fn rename_temp(&mut self, temp: Temp, path: &Path) -> Result<()> {
        let from = self.temps[temp.0]
            .take()
            .ok_or_else(|| anyhow!("internal error: temp file already renamed"))?;
        self.rename(&from, path)
    }

    /// Renames `temp` to `file`'s staged name, beside it; returns that name.
    fn stage(&mut self, temp: Temp, file: &FileWrite) -> Result<PathBuf> {
        let staged = staged_path(&file.path());
        self.rename_temp(temp, &staged)?;
        Ok(staged)
    }

    /// Renames `from` to `to`, removing `from` if that fails.
    fn rename(&mut self, from: &Path, to: &Path) -> Result<()> {
        rename(from, to)?;
        self.changed_entries_of(to);
        Ok(())
    }

    fn changed_entries_of(&mut self, path: &Path) {
        let dir = parent_of(path).to_path_buf();
        if !self.changed.contains(&dir) {
            self.changed.push(dir);
        }
        self.unsynced = true;
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        for temp in self.temps.iter().flatten() {
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
            flush::sync_dir(dir)?;
        }
        rename(&dir.join(name), &dir.join(live))?;
        flush::sync_dir(dir)?;
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

/// The name under which a replacement of `path` waits, complete and durable, to be renamed
/// into place: `.NAME.kubepki-staged` beside it.
fn staged_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent_of(path).join(format!(".{name}{STAGED_SUFFIX}"))
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| {
        let _ = fs::remove_file(from);
        anyhow!("replacing {}: {e}", to.display())
    })
}

/// Writes `content` to a fresh temp file beside `path`, with `mode`; fsynced if `fsync`
/// (otherwise its batch's next sync makes it durable).
fn write_temp(dir: &Path, path: &Path, content: &[u8], mode: u32, fsync: bool) -> Result<PathBuf> {
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
        if fsync { out.sync_all() } else { Ok(()) }
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&temp);
        anyhow!("writing {}: {e}", path.display())
    })?;
    Ok(temp)
}

/// Makes sure `root/rel` is a directory (creating missing ones with mode 0755) and that no
/// component below `root` is a symlink. Returns its path. The directories it creates become
/// durable with the next batch's first sync, before any name is given inside them.
pub fn ensure_dir(root: &Path, rel: &Path) -> Result<PathBuf> {
    let mut created = Vec::new();
    let dir = make_dirs(root, rel, DIR_MODE, &mut created)?;
    unsynced_dirs().extend(created);
    Ok(dir)
}

/// Directories `ensure_dir` created whose names are not durable yet. Rather than fsync each
/// one's parent at once (the lock creates a fresh tree's directories before anything else),
/// the next `Batch` takes them over and its first sync makes them durable, together with its
/// temp files. A run that writes nothing after leaves only empty directories, which lose
/// nothing if a crash loses them.
static UNSYNCED_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn unsynced_dirs() -> MutexGuard<'static, Vec<PathBuf>> {
    UNSYNCED_DIRS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Makes sure `root/rel` is a directory, creating missing ones (`root`'s ancestors included)
/// with `mode` and adding them to `created`; their names are not durable until the caller
/// syncs their parents. Refuses a symlink below `root`, sweeps stale temp files from the
/// directory. Returns its path.
fn make_dirs(root: &Path, rel: &Path, mode: u32, created: &mut Vec<PathBuf>) -> Result<PathBuf> {
    let mut dir = root.to_path_buf();
    make_dir(&dir, mode, created)?;
    for component in rel.components() {
        dir.push(component);
        make_dir(&dir, mode, created)?;
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

fn make_dir(dir: &Path, mode: u32, created: &mut Vec<PathBuf>) -> Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => {
            created.push(dir.to_path_buf());
            fs::set_permissions(dir, fs::Permissions::from_mode(mode))
                .with_context(|| format!("setting the mode of {}", dir.display()))
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => match fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => Ok(()),
            _ => bail!("{} exists and is not a directory", dir.display()),
        },
        Err(e) if e.kind() == ErrorKind::NotFound && dir.parent().is_some() => {
            make_dir(parent_of(dir), mode, created)?;
            make_dir(dir, mode, created)
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

/// Refuses a tree directory (`--cert-dir`, `--kubeconfig-dir`, the kubelet's) that is
/// itself a symbolic link: every check below it would hold for wherever it points.
pub fn check_dir_not_link(dir: &Path) -> Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => {
            let target = fs::read_link(dir)
                .map(|t| t.display().to_string())
                .unwrap_or_else(|_| "?".into());
            bail!(
                "{} is a symbolic link (to {target}); kubepki does not follow links to the PKI \
                 tree: name the directory itself",
                dir.display()
            )
        }
        _ => Ok(()),
    }
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

    /// Stages `file` as `replace_many` does, and stops there.
    fn stage(file: &FileWrite) -> PathBuf {
        let mut batch = Batch::new(std::iter::once(file), DIR_MODE).unwrap();
        let temp = batch.write(file).unwrap();
        batch.sync().unwrap();
        batch.stage(temp, file).unwrap()
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
        replace_many(&[(&old_key, &old_cert)], &[]).unwrap();
        let (new_key, new_cert) = pair("new");
        let etcd = dir.path().join("etcd");
        // Simulate a kill between the renames: new key in place, new cert still staged.
        let staged_cert = stage(&new_cert);
        replace(&new_key).unwrap();
        assert!(staged_cert.exists());
        let completed = complete_staged(dir.path(), Path::new("etcd")).unwrap();
        assert_eq!(completed, [etcd.join("peer.crt")]);
        assert_eq!(fs::read(etcd.join("peer.crt")).unwrap(), b"new cert");
        assert_eq!(fs::read_dir(&etcd).unwrap().count(), 2);
        // A staged key alone is dropped, leaving the live pair as it was.
        stage(&old_key);
        assert!(
            complete_staged(dir.path(), Path::new("etcd"))
                .unwrap()
                .is_empty()
        );
        assert_eq!(fs::read(etcd.join("peer.key")).unwrap(), b"new key");
        assert_eq!(fs::read_dir(&etcd).unwrap().count(), 2);
    }

    #[test]
    fn an_unchanged_file_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "bootstrap/cluster-info.yaml", SECRET_MODE);
        let replace_if_changed = |file: &FileWrite| {
            !replace_changed(std::slice::from_ref(file))
                .unwrap()
                .is_empty()
        };
        assert!(replace_if_changed(&file));
        let path = file.path();
        let written = fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!replace_if_changed(&file));
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), written);
        let changed = FileWrite {
            content: b"y".to_vec(),
            ..file
        };
        assert!(replace_if_changed(&changed));
        assert_eq!(fs::read(&path).unwrap(), b"y");
        assert_eq!(fs::read_dir(parent_of(&path)).unwrap().count(), 1);
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
