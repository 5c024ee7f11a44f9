//! Generations: the backups that every writing renewal (plain or reconcile), every forced
//! `certs bundle import` and every rollback keep. A generation is a directory
//! `kubepki-backup-<UTC time>[.N]` in the generations directory (by default
//! `<kubeconfig-dir>/tmp`, where kubeadm keeps its own backups), holding copies of the files
//! a run replaced under their tree paths (`pki/...`, `admin.conf`) and a record of when, by
//! which command and what changed; the record is written once every copy is durable, so a
//! directory without one is not a generation (an interrupted run's). Each directory is
//! claimed by creating it, so two runs never share one; pruning never removes one that holds
//! a CA's or `sa`'s key. A rollback restores generations' copies pair-safely and is itself
//! kept as a generation; while it runs, a mark names it (absolute), so that the next writing
//! run finishes a rollback that was killed, restoring only from generations beside it.
//! Writes only through `store`.

use super::TreeDirs;
use super::store::{self, FileWrite};
use crate::cluster::kubeconfig::Kubeconfig;
use crate::pki::inspect::CertInfo;
use crate::pki::{keys, pem};
use crate::profile::{Kind, Profile, Scope, by_cert_name};
use anyhow::{Context, Result, anyhow, bail};
use rcgen::PublicKeyData;
use rustls_pki_types::SubjectPublicKeyInfoDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use time::OffsetDateTime;

/// The default generations directory, below the kubeconfig dir.
const DEFAULT_SUBDIR: &str = "tmp";
/// The name of a generation's directory: this, then its id.
const PREFIX: &str = "kubepki-backup-";
/// A generation's record, in its directory.
const RECORD: &str = "kubepki-generation.json";
/// The mark of a rollback under way, in the default generations directory; it holds the
/// path of the rollback's own generation.
const PENDING: &str = "kubepki-rollback.pending";
/// The directory of the cert dir's copies in a generation.
const CERTS_SUBDIR: &str = "pki";
/// The directory of the kubelet's certificate directory's copies in a generation.
const KUBELET_SUBDIR: &str = "kubelet-pki";
/// The command recorded in a rollback's own generation.
pub const ROLLBACK_COMMAND: &str = "certs rollback";
/// How many generations are kept by default.
pub const DEFAULT_KEEP: usize = 5;

/// `<kubeconfig-dir>/tmp`, where generations are kept unless `--backup-dir` says otherwise.
pub fn default_dir(dirs: &TreeDirs) -> PathBuf {
    dirs.kubeconfig_dir.join(DEFAULT_SUBDIR)
}

/// What a generation records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// When the run replaced the files, RFC 3339 UTC.
    pub time: String,
    /// The command that replaced them, e.g. `certs renew --reconcile`.
    pub command: String,
    /// The rows whose files it holds, as they were before the run, with what it changed.
    pub rows: Vec<RowChange>,
    /// Where the kubelet rows' files were (the kubelet's certificate directory, made
    /// absolute), when it holds any: a rollback puts them back there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_cert_dir: Option<PathBuf>,
}

/// One row of a generation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowChange {
    /// The row's certificate name (`apiserver`, `admin.conf`).
    pub name: String,
    /// What the run changed, one line.
    pub change: String,
    /// For a rollback: the generation it restored the row from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<PathBuf>,
}

/// A generation found on disk.
#[derive(Clone, Debug)]
pub struct Generation {
    /// Its id: the directory name after `kubepki-backup-` (`20261123T020000Z`, `...Z.1`).
    pub id: String,
    /// Its directory.
    pub path: PathBuf,
    /// Its record.
    pub record: Record,
}

impl Generation {
    /// Whether `wanted` names it: its id or its directory's name.
    pub fn is(&self, wanted: &str) -> bool {
        self.id == wanted || format!("{PREFIX}{}", self.id) == wanted
    }
}

/// The generations in `dir`, oldest first, each named by its canonical path (what a
/// rollback records as its source); none when `dir` does not exist. Directories without a
/// readable record are not generations and are left out.
pub fn list(dir: &Path) -> Result<Vec<Generation>> {
    let candidates = candidates(dir)?;
    let Some(base) = candidates.first().and_then(|_| dir.canonicalize().ok()) else {
        return Ok(Vec::new());
    };
    let mut found: Vec<Generation> = candidates
        .into_iter()
        .filter_map(|(id, path)| {
            let record = read_record(&path).ok()?;
            let path = base.join(path.file_name()?);
            Some(Generation { id, path, record })
        })
        .collect();
    found.sort_by_key(|g| order(&g.id));
    Ok(found)
}

/// Every `kubepki-backup-*` directory in `dir` (never through a link), with its id.
fn candidates(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => bail!("{}: {e}", dir.display()),
    };
    Ok(entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = name.strip_prefix(PREFIX)?.to_string();
            Some((id, e.path()))
        })
        .collect())
}

/// The order of ids: by time, then by the `.N` of runs within one second.
fn order(id: &str) -> (String, u64) {
    match id.split_once('.') {
        Some((stamp, n)) => (stamp.to_string(), n.parse().unwrap_or(u64::MAX)),
        None => (id.to_string(), 0),
    }
}

/// Reads the record of the generation at `path`.
pub fn read_record(path: &Path) -> Result<Record> {
    let bytes = store::read_optional(path, Path::new(RECORD))?
        .ok_or_else(|| anyhow!("{}: no {RECORD}: not a whole generation", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a generation record", path.join(RECORD).display()))
}

/// A new generation's directory in `dir`, created (mode 0700, empty) by this call:
/// `kubepki-backup-<UTC time>`, or with `.1`, `.2`, ... when that name is taken. Each name
/// is taken by creating it (never checked, then created), so that no backup is ever written
/// over another: not by two runs in one second, nor by two runs sharing a `--backup-dir`.
pub fn new_path(dir: &Path, now: OffsetDateTime) -> Result<PathBuf> {
    let base = format!("{PREFIX}{}", stamp(now)?);
    let mut name = base.clone();
    let mut suffix = 0;
    while !store::claim_dir(dir, Path::new(&name))? {
        suffix += 1;
        name = format!("{base}.{suffix}");
    }
    Ok(dir.join(name))
}

fn stamp(now: OffsetDateTime) -> Result<String> {
    Ok(now.format(time::macros::format_description!(
        "[year][month][day]T[hour][minute][second]Z"
    ))?)
}

/// A row's files and where their copies go in a generation: (file, path below it).
fn copies(dirs: &TreeDirs, row: &Profile) -> Vec<(PathBuf, PathBuf)> {
    let under = match row.scope {
        Scope::ControlPlane => CERTS_SUBDIR,
        Scope::Kubelet => KUBELET_SUBDIR,
    };
    match row.kind {
        Kind::Kubeconfig(_) => vec![(dirs.kubeconfig_dir.join(row.file), row.file.into())],
        _ => [row.key_file(), row.cert_file(), row.pub_file()]
            .into_iter()
            .flatten()
            .map(|rel| (dirs.root_of(row).join(&rel), Path::new(under).join(rel)))
            .collect(),
    }
}

/// Keeps the current files of `rows` as the new generation `path` (see `new_path`),
/// recorded as made by `command` at `now`, each row with what the run changes; durable
/// before it returns.
pub fn keep(
    dirs: &TreeDirs,
    path: &Path,
    now: OffsetDateTime,
    command: &str,
    rows: &[(&Profile, RowChange)],
) -> Result<()> {
    let record = Record {
        time: now
            .replace_nanosecond(0)?
            .format(&time::format_description::well_known::Rfc3339)?,
        command: command.to_string(),
        rows: rows.iter().map(|(_, change)| change.clone()).collect(),
        kubelet_cert_dir: match rows.iter().any(|(row, _)| row.scope == Scope::Kubelet) {
            true => Some(std::path::absolute(&dirs.kubelet_dir)?),
            false => None,
        },
    };
    let files: Vec<(PathBuf, PathBuf)> =
        rows.iter().flat_map(|(row, _)| copies(dirs, row)).collect();
    let json = serde_json::to_vec_pretty(&record)?;
    store::backup(&files, path, &[(RECORD.into(), json)])?;
    Ok(())
}

/// What pruning did: the generations removed, and those older than the newest `keep` that
/// it left because they hold keys that exist nowhere else.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// The generations removed.
    pub removed: Vec<PathBuf>,
    /// The generations beyond `keep` left in place, each with its CA and key-pair rows.
    pub held: Vec<Held>,
}

/// A generation that `--keep` never removes: it holds a CA's or the service-account key pair's
/// replaced key (a forced `certs bundle import`, a rollback of one), maybe its only copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// Its directory.
    pub path: PathBuf,
    /// The rows it holds whose keys are not re-issued by renew: CAs and `sa`.
    pub keys: Vec<String>,
}

impl Generation {
    /// The CA and key-pair rows it holds (whose keys only this copy may still have).
    pub fn held_keys(&self) -> Vec<String> {
        self.record
            .rows
            .iter()
            .filter(|change| {
                by_cert_name(&change.name)
                    .is_none_or(|row| matches!(row.kind, Kind::Ca | Kind::KeyPair))
            })
            .map(|change| change.name.clone())
            .collect()
    }
}

/// Removes the oldest generations of `dir` beyond the newest `keep`, except those that hold
/// a CA's or the service-account key pair's key (`Generation::held_keys`): those go only when
/// asked by name (`remove`). A directory without a record (an interrupted run's) is never
/// removed.
pub fn prune(dir: &Path, keep: usize) -> Result<Pruned> {
    let generations = list(dir)?;
    let excess = generations.len().saturating_sub(keep);
    let mut pruned = Pruned::default();
    for generation in &generations[..excess] {
        let keys = generation.held_keys();
        match keys.is_empty() {
            true => {
                remove_generation(dir, generation)?;
                pruned.removed.push(generation.path.clone());
            }
            false => pruned.held.push(Held {
                path: generation.path.clone(),
                keys,
            }),
        }
    }
    Ok(pruned)
}

/// Removes `generation`, one of `dir`'s: its record first, so that what a crash leaves of it
/// is no generation.
pub fn remove_generation(dir: &Path, generation: &Generation) -> Result<()> {
    let name = generation.path.file_name().unwrap_or_default();
    store::remove_dir(dir, Path::new(name), Path::new(RECORD))
}

/// Where each row to restore comes from: the generation directory holding its copies.
pub type RestorePlan = Vec<(&'static Profile, PathBuf)>;

/// The rows of a plan whose copies differ from the files now, with the writes that put the
/// copies back; every copy is checked (a pair's key against its certificate, a
/// kubeconfig's YAML), so that a bad one fails before anything is written.
pub fn prepare(dirs: &TreeDirs, plan: &RestorePlan) -> Result<Vec<Restore>> {
    let mut prepared = Vec::new();
    for (row, generation) in plan {
        let files = restored_files(dirs, row, generation)?;
        if !same_as_now(&files)? {
            prepared.push(Restore {
                row,
                from: generation.clone(),
                files,
            });
        }
    }
    Ok(prepared)
}

/// One row to put back: from which generation, and its writes (key then certificate, or
/// the kubeconfig).
pub struct Restore {
    /// The row.
    pub row: &'static Profile,
    /// The generation holding its copies.
    pub from: PathBuf,
    files: Vec<FileWrite>,
}

impl Restore {
    /// What it puts back: the certificate of a CA or leaf row, the kubeconfig of a kubeconfig
    /// row; `None` for a key pair.
    pub fn restored_pem(&self) -> Option<&[u8]> {
        match (self.row.kind, self.files.as_slice()) {
            (Kind::Kubeconfig(_), [file]) => Some(&file.content),
            (Kind::Ca | Kind::Leaf, [_, cert]) => Some(&cert.content),
            _ => None,
        }
    }
}

/// `dirs` with the kubelet's certificate directory that the plan's kubelet row was kept
/// from, when it has one and its generation recorded the directory: where it goes back.
pub fn with_recorded_kubelet_dir(dirs: &TreeDirs, plan: &RestorePlan) -> Result<TreeDirs> {
    for (row, generation) in plan {
        if row.scope == Scope::Kubelet {
            if let Some(dir) = read_record(generation)?.kubelet_cert_dir {
                return Ok(TreeDirs {
                    kubelet_dir: dir,
                    ..dirs.clone()
                });
            }
        }
    }
    Ok(dirs.clone())
}

/// Puts the prepared rows back pair-safely, in one batch (`store::replace_many`).
pub fn put_back(prepared: &[Restore]) -> Result<()> {
    let pairs: Vec<(&FileWrite, &FileWrite)> = prepared
        .iter()
        .filter_map(|r| match r.files.as_slice() {
            [key, cert] => Some((key, cert)),
            _ => None,
        })
        .collect();
    let wholes: Vec<&FileWrite> = prepared
        .iter()
        .filter_map(|r| match r.files.as_slice() {
            [file] => Some(file),
            _ => None,
        })
        .collect();
    match prepared.is_empty() {
        true => Ok(()),
        false => store::replace_many(&pairs, &wholes),
    }
}

/// The writes that put row's copies in `generation` back: key and certificate, key and
/// public key, or the kubeconfig, checked.
fn restored_files(dirs: &TreeDirs, row: &Profile, generation: &Path) -> Result<Vec<FileWrite>> {
    let read = |rel: &Path| -> Result<Vec<u8>> {
        store::read_optional(generation, rel)?.ok_or_else(|| {
            anyhow!(
                "{}: missing from the generation, which cannot be restored",
                generation.join(rel).display()
            )
        })
    };
    let copies = copies(dirs, row);
    match (row.kind, copies.as_slice()) {
        (Kind::Kubeconfig(_), [(_, rel)]) => {
            let yaml = read(rel)?;
            Kubeconfig::parse(&yaml).with_context(|| generation.join(rel).display().to_string())?;
            Ok(vec![dirs.kubeconfig_write(row, yaml)])
        }
        (Kind::Ca | Kind::Leaf, [(_, key_rel), (_, cert_rel)]) => {
            let (key, cert) = (read(key_rel)?, read(cert_rel)?);
            check_pair(&generation.join(key_rel), &key, &cert)?;
            Ok(vec![dirs.key_write(row, key), dirs.cert_write(row, cert)])
        }
        (Kind::KeyPair, [(_, key_rel), (_, public_rel)]) => {
            let (key, public) = (read(key_rel)?, read(public_rel)?);
            check_public(&generation.join(public_rel), &key, &public)?;
            Ok(vec![
                dirs.key_write(row, key),
                dirs.public_key_write(row, public),
            ])
        }
        _ => bail!("{} is never kept in a generation", row.cert_name()),
    }
}

/// A copied public key must be its copied private key's.
fn check_public(public_path: &Path, key: &[u8], public: &[u8]) -> Result<()> {
    let key = keys::from_pem(key)?;
    let public = SubjectPublicKeyInfoDer::from_pem_slice(public)
        .map_err(|e| anyhow!("{}: {}", public_path.display(), pem::describe(&e)))?;
    match public.as_ref() == key.subject_public_key_info().as_slice() {
        true => Ok(()),
        false => bail!(
            "{}: does not match the private key beside it",
            public_path.display()
        ),
    }
}

/// A copied key must be its copied certificate's.
fn check_pair(key_path: &Path, key: &[u8], cert: &[u8]) -> Result<()> {
    let info = pem::first_certificate(cert).and_then(CertInfo::parse)?;
    let public = keys::public_key_of(key).with_context(|| key_path.display().to_string())?;
    match public == info.public_key {
        true => Ok(()),
        false => bail!(
            "{}: does not match the certificate beside it",
            key_path.display()
        ),
    }
}

/// Whether every file already holds its content.
fn same_as_now(files: &[FileWrite]) -> Result<bool> {
    for file in files {
        if store::read_optional(&file.root, &file.rel)?.as_deref() != Some(file.content.as_slice())
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Marks a rollback under way, once its generation `generation` is claimed and before it is
/// kept: once that has its record, the rollback is finished by whichever run comes next,
/// from whatever working directory (the mark holds the absolute path). Durable before it
/// returns.
pub fn mark_rollback(dirs: &TreeDirs, generation: &Path) -> Result<()> {
    let generation = generation
        .canonicalize()
        .with_context(|| format!("{}: its absolute path", generation.display()))?;
    store::replace(&FileWrite {
        root: default_dir(dirs),
        rel: PENDING.into(),
        content: generation.as_os_str().as_bytes().to_vec(),
        mode: store::SECRET_MODE,
    })
}

/// Clears the mark of a finished rollback.
pub fn unmark_rollback(dirs: &TreeDirs) -> Result<()> {
    store::remove(&default_dir(dirs), Path::new(PENDING))
}

/// Whether `path` can be a generation's directory: absolute, plain (no `.` or `..`), named
/// `kubepki-backup-*`, and a directory (not a link).
fn is_generation_dir(path: &Path) -> bool {
    let plain = path
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    let named = path
        .file_name()
        .is_some_and(|name| name.as_bytes().starts_with(PREFIX.as_bytes()));
    path.is_absolute() && plain && named && path.symlink_metadata().is_ok_and(|meta| meta.is_dir())
}

/// The restore plan of a rollback's own generation: each row from where it was restored,
/// which must be another generation of the same generations directory (a record naming
/// any other directory is refused, never restored from).
pub fn plan_of(generation: &Path, record: &Record) -> Result<RestorePlan> {
    record
        .rows
        .iter()
        .map(|change| {
            let row = by_cert_name(&change.name).ok_or_else(|| {
                anyhow!("{}: unknown row {:?}", generation.display(), change.name)
            })?;
            let from = change.restored_from.clone().ok_or_else(|| {
                anyhow!("{}: {} has no source", generation.display(), change.name)
            })?;
            let sibling = from.parent().is_some() && from.parent() == generation.parent();
            if !(sibling && is_generation_dir(&from) && read_record(&from).is_ok()) {
                bail!(
                    "{}: {} was restored from {}, which is no generation beside it",
                    generation.join(RECORD).display(),
                    change.name,
                    from.display()
                );
            }
            Ok((row, from))
        })
        .collect()
}

/// Finishes a rollback a killed run left marked: restores what its generation records
/// (again: what was already restored is left alone) and clears the mark; a rollback killed
/// before its generation had a record never began, and only its mark is cleared. A mark
/// that names no generation directory (not absolute, or not a `kubepki-backup-*`
/// directory), or a generation that is no rollback's, stops with an error and stays, so
/// that nothing is restored from an unknown place. Returns the rows it replaced; none when
/// no rollback was under way.
pub fn complete_rollback(dirs: &TreeDirs) -> Result<Vec<&'static Profile>> {
    let Some(mark) = store::read_optional(&default_dir(dirs), Path::new(PENDING))? else {
        return Ok(Vec::new());
    };
    let mark_path = default_dir(dirs).join(PENDING);
    let refused = |why: String| {
        anyhow!(
            "{}: the mark of an interrupted rollback {why}; check the tree with `kubepki certs \
             audit`, then remove this file",
            mark_path.display()
        )
    };
    let generation = PathBuf::from(std::ffi::OsStr::from_bytes(&mark));
    if !is_generation_dir(&generation) {
        return Err(refused(format!(
            "names {:?}, which is not the absolute path of a generation directory",
            generation
        )));
    }
    if store::read_optional(&generation, Path::new(RECORD))?.is_none() {
        unmark_rollback(dirs)?;
        return Ok(Vec::new());
    }
    let record = read_record(&generation)
        .map_err(|e| refused(format!("names a generation that cannot be read: {e:#}")))?;
    if record.command != ROLLBACK_COMMAND {
        return Err(refused(format!(
            "names {}, a generation of `{}`, not of a rollback",
            generation.display(),
            record.command
        )));
    }
    let plan = plan_of(&generation, &record).map_err(|e| refused(format!("{e:#}")))?;
    let prepared = prepare(&with_recorded_kubelet_dir(dirs, &plan)?, &plan)?;
    put_back(&prepared)?;
    unmark_rollback(dirs)?;
    Ok(prepared.into_iter().map(|r| r.row).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::by_name;
    use crate::testtree::{TestTree, ecdsa_spec};
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn change(name: &str) -> RowChange {
        RowChange {
            name: name.into(),
            change: "renewed".into(),
            restored_from: None,
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn a_generation_holds_copies_and_a_record_and_never_overwrites_another() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        let dir = default_dir(&tree.dirs);
        let rows = [
            (by_name("apiserver").expect("a row"), change("apiserver")),
            (by_name("admin").expect("a row"), change("admin.conf")),
        ];
        let kept = |rows: &[(&Profile, RowChange)]| {
            let path = new_path(&dir, spec.now).expect("a path");
            keep(&tree.dirs, &path, spec.now, "certs renew", rows).expect("kept");
            path
        };
        let first = kept(&rows);
        let second = kept(&rows[..1]);
        assert_eq!(second, PathBuf::from(format!("{}.1", first.display())));
        assert_eq!(
            fs::read(first.join("pki/apiserver.key")).expect("a copy"),
            fs::read(&tree.files_of("apiserver")[0]).expect("the key")
        );
        assert!(first.join("admin.conf").is_file());
        assert_eq!(
            (mode(&first), mode(&first.join("pki/apiserver.crt"))),
            (0o700, 0o600)
        );
        let listed = list(&dir).expect("listed");
        let ids: Vec<&str> = listed.iter().map(|g| g.id.as_str()).collect();
        let stamp =
            first.file_name().expect("a name").to_string_lossy()[PREFIX.len()..].to_string();
        assert_eq!(ids, [stamp.clone(), format!("{stamp}.1")]);
        assert_eq!(
            listed[0].record.rows,
            [change("apiserver"), change("admin.conf")]
        );
        assert_eq!(listed[0].record.command, "certs renew");
        assert!(listed[1].is(&format!("{PREFIX}{stamp}.1")) && listed[1].is(&format!("{stamp}.1")));
    }

    #[test]
    fn pruning_keeps_the_newest_and_leaves_directories_without_a_record() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        let dir = default_dir(&tree.dirs);
        let rows = [(by_name("apiserver").expect("a row"), change("apiserver"))];
        let interrupted = dir.join(format!("{PREFIX}20000101T000000Z"));
        fs::create_dir_all(interrupted.join("pki")).expect("a directory");
        let kept: Vec<PathBuf> = (0..4)
            .map(|n| {
                let when = spec.now + time::Duration::seconds(n);
                let path = new_path(&dir, when).expect("a path");
                keep(&tree.dirs, &path, when, "certs renew", &rows).expect("kept");
                path
            })
            .collect();
        let removed = prune(&dir, 2).expect("pruned");
        assert_eq!(removed.removed, [kept[0].clone(), kept[1].clone()]);
        let left: Vec<PathBuf> = list(&dir)
            .expect("listed")
            .into_iter()
            .map(|g| g.path)
            .collect();
        assert_eq!(left, kept[2..]);
        assert!(interrupted.exists(), "not a generation: never removed");
    }

    #[test]
    fn each_name_is_claimed_by_one_call_even_before_anything_is_kept_there() {
        let tree = TestTree::empty();
        let dir = default_dir(&tree.dirs);
        let now = ecdsa_spec(&[]).now;
        let first = new_path(&dir, now).expect("a path");
        let second = new_path(&dir, now).expect("a path");
        assert_ne!(first, second, "two runs in one second, nothing kept yet");
        assert_eq!(second, PathBuf::from(format!("{}.1", first.display())));
        assert_eq!((mode(&first), mode(&second)), (0o700, 0o700));
    }

    #[test]
    fn pruning_never_removes_a_generation_holding_a_ca_or_sa_key() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        let dir = default_dir(&tree.dirs);
        let keep_rows = |n: i64, names: &[&str]| {
            let when = spec.now + time::Duration::seconds(n);
            let rows: Vec<(&Profile, RowChange)> = names
                .iter()
                .map(|name| (by_name(name).expect("a row"), change(name)))
                .collect();
            let path = new_path(&dir, when).expect("a path");
            keep(&tree.dirs, &path, when, "certs bundle import", &rows).expect("kept");
            path
        };
        let imported = keep_rows(0, &["ca", "sa"]);
        let renewed: Vec<PathBuf> = (1..4).map(|n| keep_rows(n, &["apiserver"])).collect();
        let pruned = prune(&dir, 1).expect("pruned");
        assert_eq!(pruned.removed, renewed[..2]);
        assert_eq!(
            pruned.held,
            [Held {
                path: imported.clone(),
                keys: vec!["ca".into(), "sa".into()],
            }]
        );
        assert!(imported.join(RECORD).is_file() && imported.join("pki/ca.key").is_file());
        let again = prune(&dir, 1).expect("pruned");
        assert!(again.removed.is_empty() && again.held.len() == 1);
    }

    /// A tree with a generation of `apiserver` (renewed), and a rollback's own generation
    /// beside it that restores `apiserver` from it, marked under way.
    fn marked_rollback(tree: &TestTree) -> (PathBuf, PathBuf) {
        let now = ecdsa_spec(&[]).now;
        let dir = default_dir(&tree.dirs);
        let row = by_name("apiserver").expect("a row");
        let renewed = new_path(&dir, now).expect("a path");
        keep(
            &tree.dirs,
            &renewed,
            now,
            "certs renew",
            &[(row, change("apiserver"))],
        )
        .expect("kept");
        let own = new_path(&dir, now).expect("a path");
        let restored = RowChange {
            restored_from: Some(renewed.clone()),
            ..change("apiserver")
        };
        mark_rollback(&tree.dirs, &own).expect("marked");
        keep(&tree.dirs, &own, now, ROLLBACK_COMMAND, &[(row, restored)]).expect("kept");
        (renewed, own)
    }

    #[test]
    fn a_mark_or_a_source_naming_no_generation_beside_it_is_refused_and_kept() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        let mark = default_dir(&tree.dirs).join(PENDING);
        let (_, own) = marked_rollback(&tree);
        let before = tree.contents();
        let refusal = |tree: &TestTree| {
            complete_rollback(&tree.dirs)
                .expect_err("refused")
                .to_string()
        };
        // A relative mark: found from no other working directory, so never trusted.
        fs::write(&mark, "tmp/kubepki-backup-20260101T000000Z").expect("a mark");
        let error = refusal(&tree);
        assert!(
            error.contains("not the absolute path of a generation directory")
                && error.contains("remove this file"),
            "{error}"
        );
        // A mark naming any directory.
        fs::write(&mark, tree.dirs.cert_dir.as_os_str().as_bytes()).expect("a mark");
        assert!(refusal(&tree).contains("not the absolute path of a generation"));
        // A rollback's generation restoring from a directory outside the generations.
        let elsewhere = tempfile::tempdir().expect("a temp dir");
        let forged = elsewhere.path().join(format!("{PREFIX}20260101T000000Z"));
        fs::create_dir_all(forged.join("pki")).expect("a directory");
        for file in ["pki/ca.key", "pki/ca.crt"] {
            fs::copy(own.join("pki/apiserver.key"), forged.join(file)).expect("a copy");
        }
        let mut record = read_record(&own).expect("a record");
        record.rows[0].restored_from = Some(forged.clone());
        fs::write(own.join(RECORD), serde_json::to_vec(&record).expect("json")).expect("forged");
        fs::write(&mark, own.as_os_str().as_bytes()).expect("a mark");
        let error = refusal(&tree);
        assert!(
            error.contains("which is no generation beside it"),
            "{error}"
        );
        assert_eq!(tree.contents(), before, "nothing restored");
        assert!(mark.is_file(), "the mark stays until someone looks");
    }

    #[test]
    fn a_mark_is_absolute_whatever_the_working_directory() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        let dir = default_dir(&tree.dirs);
        let own = new_path(&dir, spec.now).expect("a path");
        let relative = own
            .strip_prefix(std::env::current_dir().expect("a cwd"))
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| pathdiff(&own));
        assert!(relative.is_relative());
        mark_rollback(&tree.dirs, &relative).expect("marked");
        let mark = fs::read(dir.join(PENDING)).expect("the mark");
        assert_eq!(Path::new(std::ffi::OsStr::from_bytes(&mark)), own);
    }

    /// `path` relative to the working directory, through `..` as needed.
    fn pathdiff(path: &Path) -> PathBuf {
        let cwd = std::env::current_dir().expect("a cwd");
        let ups = cwd.components().count() - 1;
        let mut relative: PathBuf = std::iter::repeat_n("..", ups).collect();
        relative.push(path.strip_prefix("/").expect("absolute"));
        relative
    }

    #[test]
    fn a_bad_copy_is_refused_before_anything_is_written() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        let dir = default_dir(&tree.dirs);
        let row = by_name("front-proxy-client").expect("a row");
        let generation = new_path(&dir, spec.now).expect("a path");
        keep(
            &tree.dirs,
            &generation,
            spec.now,
            "certs renew",
            &[(row, change(row.name))],
        )
        .expect("kept");
        fs::copy(
            &tree.files_of("apiserver")[0],
            generation.join("pki/front-proxy-client.key"),
        )
        .expect("copying");
        tree.remove("front-proxy-client", |_| true);
        let error = prepare(&tree.dirs, &vec![(row, generation.clone())])
            .err()
            .expect("refused")
            .to_string();
        assert!(
            error.ends_with("front-proxy-client.key: does not match the certificate beside it"),
            "{error}"
        );
        assert!(!tree.files_of("front-proxy-client")[1].exists());
    }
}
