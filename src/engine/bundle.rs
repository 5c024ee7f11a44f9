//! `certs bundle export|import`: the shared rows of the table (the CAs and the
//! service-account key pair, `Profile::is_shared`) carried between control-plane hosts in
//! kubeadm's `kubeadm-certs` format (`cluster::bundle`). Export reads them through the reader,
//! checked, and seals them. Import opens a bundle, checks every entry and what it would sit
//! beside, decides per file (create, keep, replace), and only then writes, through the store:
//! a refusal writes nothing. The bundle also carries the cluster's recorded settings (its
//! `ClusterConfiguration`, an entry kubeadm's join ignores), which import records on a host
//! that has none, so that its `init` makes what the first host's did. Prints nothing.

use crate::cluster::bundle::{Bundle, OpenFailure, entry_name};
use crate::config::{InitConfig, publish};
use crate::engine::rotate::state::Phase;
use crate::engine::rotate::{self, Standing};
use crate::pki::inspect::CertInfo;
use crate::pki::seal::CertificateKey;
use crate::pki::{keys, pem};
use crate::profile::{
    EXTERNAL_ETCD_BUNDLE_ENTRIES, Kind, PENDING_DIR, PROFILES, Profile, rotatable_rows, shared_rows,
};
use crate::tree::generations::{self, RowChange};
use crate::tree::problem::{EntryFault, Problem};
use crate::tree::reader::{self, BundleFile, Checked};
use crate::tree::store::{self, FileWrite};
use crate::tree::{RECORD_FILE, TreeDirs};
use anyhow::{Result, anyhow, bail};
use rcgen::{KeyPair, PublicKeyData};
use rustls_pki_types::SubjectPublicKeyInfoDer;
use rustls_pki_types::pem::PemObject;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// What `export` sealed.
pub struct Export {
    /// The bundle.
    pub bundle: Bundle,
    /// The files sealed into it.
    pub sealed: Vec<PathBuf>,
    /// Shared files the tree does not have, sealed as empty entries (as kubeadm does): the
    /// key of an external CA, say.
    pub absent: Vec<PathBuf>,
    /// The recorded configuration whose cluster settings were sealed too, if any.
    pub settings: Option<PathBuf>,
}

/// Seals the tree's shared files with `key`; with an external etcd, without the etcd CA and
/// with kubeadm's (empty) external etcd entries instead. Every CA certificate and the
/// service-account pair must be there (a CA key may be absent: an external CA); each CA must
/// be a CA whose key, when present, is its own, and `sa.pub` must be `sa.key`'s.
pub fn export(dirs: &TreeDirs, external_etcd: bool, key: &CertificateKey) -> Result<Export> {
    reader::require_tree(dirs)?;
    let (mut files, mut sealed, mut absent) = (Vec::new(), Vec::new(), Vec::new());
    for row in shared_rows(external_etcd) {
        check_shared_row(dirs, row)?;
        for (index, rel) in row.cert_dir_files().into_iter().enumerate() {
            let content = reader::read_file(&dirs.cert_dir, &rel)?;
            let optional = index == 0 && row.kind == Kind::Ca;
            if content.is_none() && !optional {
                bail!(
                    "{}: absent, though a bundle must carry every CA certificate and the \
                     service-account key pair (import refuses one without them)",
                    dirs.cert_dir.join(&rel).display()
                );
            }
            match content {
                Some(_) => sealed.push(dirs.cert_dir.join(&rel)),
                None => absent.push(dirs.cert_dir.join(&rel)),
            }
            files.push((rel.to_string_lossy().into_owned(), content));
        }
    }
    let (record, mut settings) = (dirs.record_file(), None);
    if let Some(text) = reader::read_file(&dirs.kubeconfig_dir, Path::new(RECORD_FILE))? {
        let text =
            String::from_utf8(text).map_err(|_| anyhow!("{}: not UTF-8 text", record.display()))?;
        if let Some(shared) = publish::shared_configuration(&text)? {
            files.push((RECORD_FILE.to_string(), Some(shared.into_bytes())));
            settings = Some(record);
        }
    }
    if external_etcd {
        files.extend(
            EXTERNAL_ETCD_BUNDLE_ENTRIES
                .iter()
                .map(|e| (e.to_string(), None)),
        );
    }
    Ok(Export {
        bundle: Bundle::seal(&files, key)?,
        sealed,
        absent,
        settings,
    })
}

/// A shared row on disk must be sound to be sent to other hosts (absent files are fine).
fn check_shared_row(dirs: &TreeDirs, row: &Profile) -> Checked<()> {
    match row.kind {
        Kind::Ca => match reader::read_ca(dirs, row) {
            Err(Problem::CaMissing(_)) => Ok(()),
            found => found.map(drop),
        },
        _ => {
            let pair = reader::read_key_pair(dirs, row)?;
            match (&pair.key, &pair.public_pem) {
                (Some(key), Some(public)) => pair.check_public(&key.load()?, public),
                (None, Some(_)) => Err(Problem::PublicWithoutKey {
                    public: pair.public_path.clone(),
                    key: pair.key_path.clone(),
                }),
                _ => Ok(()),
            }
        }
    }
}

/// What import does with one file of the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileAction {
    /// Absent: written.
    Create,
    /// Already holds exactly the bundle's content: left alone.
    Keep,
    /// Holds something else: replaced with `--force` (backed up first), else refused.
    Replace,
}

/// One file the bundle holds, and what import does with it.
pub struct FilePlan {
    /// The write it would be.
    pub write: FileWrite,
    /// What happens to it.
    pub action: FileAction,
    /// The bundle's entry for it.
    pub entry: String,
}

/// Import's decisions, made before anything is written.
pub struct ImportPlan {
    /// Per shared row the bundle holds files of: those files, key first.
    rows: Vec<(&'static Profile, Vec<FilePlan>)>,
    /// Entries with content that kubepki does not write (an external etcd's files).
    pub skipped: Vec<String>,
    /// The cluster's settings the bundle carries, when this host records none yet.
    settings: Option<String>,
}

impl ImportPlan {
    /// Every file, in table order, key first.
    pub fn files(&self) -> impl Iterator<Item = &FilePlan> {
        self.rows.iter().flat_map(|(_, files)| files)
    }

    /// The refusal of each file the tree holds differently, certificates first: the first
    /// one names what tells another cluster's material best.
    fn conflicts(&self) -> Vec<Problem> {
        let is_key = |f: &&FilePlan| f.write.rel.extension().is_some_and(|e| e == "key");
        let (keys, others): (Vec<&FilePlan>, Vec<&FilePlan>) = self.files().partition(is_key);
        others
            .into_iter()
            .chain(keys)
            .filter(|f| f.action == FileAction::Replace)
            .map(|f| Problem::DiffersFromBundle {
                path: f.write.path(),
                entry: f.entry.clone(),
            })
            .collect()
    }
}

/// A bundle opened and checked on its own: every entry kubeadm's join needs is there and
/// opens, and every content is what its entry must hold.
pub struct OpenedBundle {
    /// The bundle file, for messages.
    name: PathBuf,
    /// Per shared row the bundle has entries for: their contents.
    rows: Vec<Contents>,
    /// Entries with content that kubepki does not write (an external etcd's files).
    skipped: Vec<String>,
    /// The cluster's settings the bundle carries (checked), if any.
    settings: Option<String>,
}

/// Opens `file` with `key` and checks it whole, without looking at the tree: a wrong key, a
/// cut or altered file, or content that is not what its entry must hold is refused here. It
/// must have every entry kubeadm's join needs on this host: the etcd CA's with a local etcd,
/// the external etcd's entries with `external_etcd`.
pub fn open_bundle(
    file: &BundleFile,
    key: &CertificateKey,
    external_etcd: bool,
) -> Checked<OpenedBundle> {
    let path = &file.name;
    let bundle = Bundle::parse(&file.bytes).map_err(|error| Problem::NotABundle {
        path: path.clone(),
        error,
    })?;
    let rows = rows_in(&bundle, path, external_etcd)?;
    let opened = bundle.open(key).map_err(|failure| match failure {
        OpenFailure::WrongKey => Problem::WrongCertificateKey(path.clone()),
        OpenFailure::Damaged(entry) => Problem::DamagedBundle {
            path: path.clone(),
            entry,
        },
    })?;
    if opened.values().all(Vec::is_empty) {
        return Err(Problem::EmptyBundle(path.clone()));
    }
    let mut rows: Vec<Contents> = rows.into_iter().map(|r| Contents::of(r, &opened)).collect();
    for contents in &mut rows {
        contents.reencode(path)?;
    }
    for contents in &rows {
        contents.check(path)?;
    }
    check_roles(&rows, path)?;
    let settings = settings_of(path, &opened)?;
    let known: Vec<String> = PROFILES
        .iter()
        .filter(|row| row.is_shared())
        .flat_map(|row| row.cert_dir_files())
        .map(|rel| entry_name(&rel.to_string_lossy()))
        .collect();
    let skipped = opened
        .iter()
        .filter(|(name, content)| !content.is_empty() && !known.contains(name))
        .filter(|(name, _)| name.as_str() != RECORD_FILE)
        .map(|(name, _)| name.clone())
        .collect();
    Ok(OpenedBundle {
        name: path.clone(),
        rows,
        skipped,
        settings,
    })
}

/// The cluster's settings the opened bundle carries, read strictly as a configuration.
fn settings_of(path: &Path, opened: &BTreeMap<String, Vec<u8>>) -> Checked<Option<String>> {
    let Some(content) = opened.get(RECORD_FILE).filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    let entry = PathBuf::from(format!("{} (entry {RECORD_FILE})", path.display()));
    let refused = |error: anyhow::Error| Problem::Unreadable(format!("{error:#}"));
    let text = String::from_utf8(content.clone())
        .map_err(|_| refused(anyhow!("{}: not UTF-8 text", entry.display())))?;
    InitConfig::parse(&entry, &text).map_err(refused)?;
    Ok(Some(text))
}

/// Decides what happens to each file of the tree the opened bundle holds, refusing a CA
/// certificate that would end up beside a key of the tree that is not its own. Reads only.
pub fn plan_import(dirs: &TreeDirs, opened: OpenedBundle) -> Checked<ImportPlan> {
    let mut rows = Vec::new();
    for contents in &opened.rows {
        contents.check_existing_key(dirs, &opened.name)?;
        rows.push((contents.row, contents.plan(dirs)?));
    }
    let recorded = reader::read_file(&dirs.kubeconfig_dir, Path::new(RECORD_FILE))?;
    Ok(ImportPlan {
        rows,
        skipped: opened.skipped,
        settings: opened.settings.filter(|_| recorded.is_none()),
    })
}

/// The shared rows for this host's etcd; a bundle without an entry kubeadm's join would
/// need here (kubeadm's `DownloadCerts` over `certsToTransfer`) is incomplete. So a bundle
/// made for an external etcd never leaves a host with a local one to make an etcd CA of its
/// own.
fn rows_in(bundle: &Bundle, path: &Path, external_etcd: bool) -> Checked<Vec<&'static Profile>> {
    let rows: Vec<&'static Profile> = shared_rows(external_etcd).collect();
    let external = EXTERNAL_ETCD_BUNDLE_ENTRIES
        .iter()
        .filter(|_| external_etcd)
        .map(|e| e.to_string());
    let missing: Vec<String> = rows
        .iter()
        .flat_map(|row| row.cert_dir_files())
        .map(|rel| entry_name(&rel.to_string_lossy()))
        .chain(external)
        .filter(|entry| !bundle.has(entry))
        .collect();
    match missing.is_empty() {
        true => Ok(rows),
        false => Err(Problem::IncompleteBundle {
            path: path.to_path_buf(),
            missing,
        }),
    }
}

/// One file of a row as the bundle holds it.
struct Bundled {
    /// Its path below the cert dir.
    rel: PathBuf,
    /// Its entry in the bundle.
    entry: String,
    /// Its content; empty when the bundle's entry is.
    content: Vec<u8>,
}

/// One shared row's files as the bundle holds them, key first.
struct Contents {
    row: &'static Profile,
    files: Vec<Bundled>,
}

impl Contents {
    fn of(row: &'static Profile, opened: &BTreeMap<String, Vec<u8>>) -> Contents {
        let files = row
            .cert_dir_files()
            .into_iter()
            .map(|rel| {
                let entry = entry_name(&rel.to_string_lossy());
                let content = opened.get(&entry).cloned().unwrap_or_default();
                Bundled {
                    rel,
                    entry,
                    content,
                }
            })
            .collect();
        Contents { row, files }
    }

    /// Each content as exactly one PEM block of the type its entry must hold, re-encoded
    /// from what it decodes to: nothing else of the entry (a second block, a private key after
    /// a certificate, trailing data) is ever written.
    fn reencode(&mut self, path: &Path) -> Checked<()> {
        let kind = self.row.kind;
        for (index, file) in self.files.iter_mut().enumerate() {
            if file.content.is_empty() {
                continue;
            }
            let labels: &[&str] = match (index, kind) {
                (0, _) => pem::PRIVATE_KEY_LABELS,
                (_, Kind::Ca) => &["CERTIFICATE"],
                _ => &["PUBLIC KEY"],
            };
            let (label, der) =
                pem::sole_block(&file.content, labels).map_err(|e| Problem::BadBundleEntry {
                    path: path.to_path_buf(),
                    entry: file.entry.clone(),
                    fault: EntryFault::NotOneBlock(format!("{e:#}")),
                })?;
            file.content = pem::encode(&label, &der).into_bytes();
        }
        Ok(())
    }

    /// The key (first) and the certificate or public key.
    fn key_and_other(&self) -> Option<(&Bundled, &Bundled)> {
        match self.files.as_slice() {
            [key, other] => Some((key, other)),
            _ => None,
        }
    }

    /// Every content is what its entry must hold, and a key goes with its companion.
    fn check(&self, path: &Path) -> Checked<()> {
        let Some((key_file, other)) = self.key_and_other() else {
            return Ok(());
        };
        let (key_entry, key_pem) = (&key_file.entry, &key_file.content);
        let (other_entry, other_pem) = (&other.entry, &other.content);
        let fault = |entry: &String, fault| Problem::BadBundleEntry {
            path: path.to_path_buf(),
            entry: entry.clone(),
            fault,
        };
        let cert = match (self.row.kind, other_pem.is_empty()) {
            (Kind::Ca, false) => Some(ca_cert(other_pem).map_err(|f| fault(other_entry, f))?),
            _ => None,
        };
        let key = match key_pem.is_empty() {
            true => None,
            false => Some(
                keys::from_pem(key_pem)
                    .map_err(|e| fault(key_entry, EntryFault::NotKey(format!("{e:#}"))))?,
            ),
        };
        match (self.row.kind, key, cert) {
            (Kind::Ca, Some(_), None) => {
                Err(fault(key_entry, EntryFault::Alone(other_entry.clone())))
            }
            (Kind::Ca, Some(key), Some(cert)) if !cert.matches_key(&key) => {
                Err(fault(key_entry, EntryFault::Mismatch(other_entry.clone())))
            }
            (Kind::KeyPair, key, _) if !other_pem.is_empty() => {
                check_public(key.as_ref(), other_pem, key_entry).map_err(|f| fault(other_entry, f))
            }
            _ => Ok(()),
        }
    }

    /// A CA certificate the bundle brings without its key must not end up beside a key of
    /// the tree that is not its own.
    fn check_existing_key(&self, dirs: &TreeDirs, path: &Path) -> Checked<()> {
        let Some((key, cert)) = self.key_and_other() else {
            return Ok(());
        };
        if self.row.kind != Kind::Ca || !key.content.is_empty() || cert.content.is_empty() {
            return Ok(());
        }
        let Some(existing) = reader::read_file(&dirs.cert_dir, &key.rel)? else {
            return Ok(());
        };
        let belongs = match (keys::public_key_of(&existing), ca_cert(&cert.content)) {
            (Ok(public), Ok(cert)) => public == cert.public_key,
            _ => false,
        };
        match belongs {
            true => Ok(()),
            false => Err(Problem::BadBundleEntry {
                path: path.to_path_buf(),
                entry: cert.entry.clone(),
                fault: EntryFault::ExistingKeyMismatch(dirs.cert_dir.join(&key.rel)),
            }),
        }
    }

    /// What happens to each file with content: created, kept, or replaced.
    fn plan(&self, dirs: &TreeDirs) -> Checked<Vec<FilePlan>> {
        let mut planned = Vec::new();
        for (index, file) in self.files.iter().enumerate() {
            if file.content.is_empty() {
                continue;
            }
            let action = match reader::read_file(&dirs.cert_dir, &file.rel)? {
                None => FileAction::Create,
                Some(existing) if existing == file.content => FileAction::Keep,
                Some(_) => FileAction::Replace,
            };
            let content = file.content.clone();
            let write = match (index, self.row.kind) {
                (0, _) => dirs.key_write(self.row, content),
                (_, Kind::Ca) => dirs.cert_write(self.row, content),
                _ => dirs.public_key_write(self.row, content),
            };
            planned.push(FilePlan {
                write,
                action,
                entry: file.entry.clone(),
            });
        }
        Ok(planned)
    }
}

/// Every entry in its role: each CA certificate present (a host without one would make a
/// new CA at its next `init`: another cluster), with its row's subject (so the cluster and
/// etcd CAs cannot be swapped: kubeadm's format binds no entry to its name), the CAs
/// distinct, and the service-account key pair present.
fn check_roles(rows: &[Contents], path: &Path) -> Checked<()> {
    let fault = |entry: &String, fault| Problem::BadBundleEntry {
        path: path.to_path_buf(),
        entry: entry.clone(),
        fault,
    };
    let mut seen: Vec<(Vec<u8>, &String)> = Vec::new();
    for contents in rows {
        for file in contents.files.iter().skip(1) {
            if file.content.is_empty() {
                return Err(fault(&file.entry, EntryFault::Empty));
            }
        }
        let Some((key, other)) = contents.key_and_other() else {
            continue;
        };
        if contents.row.kind != Kind::Ca {
            if key.content.is_empty() {
                return Err(fault(&key.entry, EntryFault::Empty));
            }
            continue;
        }
        let cert = ca_cert(&other.content).map_err(|f| fault(&other.entry, f))?;
        let expected = contents.row.common_name_of("");
        if cert.cn != expected {
            return Err(fault(
                &other.entry,
                EntryFault::WrongCa {
                    expected,
                    found: cert.cn,
                },
            ));
        }
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == cert.public_key) {
            return Err(fault(&other.entry, EntryFault::SameCa((*first).clone())));
        }
        seen.push((cert.public_key, &other.entry));
    }
    Ok(())
}

/// `pem` as a CA certificate.
fn ca_cert(pem: &[u8]) -> Result<CertInfo, EntryFault> {
    let cert = pem::first_certificate(pem)
        .and_then(CertInfo::parse)
        .map_err(|e| EntryFault::NotCertificate(format!("{e:#}")))?;
    match cert.is_ca {
        true => Ok(cert),
        false => Err(EntryFault::NotCa),
    }
}

/// `public_pem` must be the public half of `key`, the entry `key_entry`.
fn check_public(
    key: Option<&KeyPair>,
    public_pem: &[u8],
    key_entry: &str,
) -> Result<(), EntryFault> {
    let Some(key) = key else {
        return Err(EntryFault::Alone(key_entry.to_string()));
    };
    let public = SubjectPublicKeyInfoDer::from_pem_slice(public_pem)
        .map_err(|e| EntryFault::NotPublicKey(pem::describe(&e)))?;
    match public.as_ref() == key.subject_public_key_info().as_slice() {
        true => Ok(()),
        false => Err(EntryFault::Mismatch(key_entry.to_string())),
    }
}

/// What import did.
pub struct Imported {
    /// Files written that were absent.
    pub created: Vec<PathBuf>,
    /// Files that already held the bundle's content.
    pub kept: Vec<PathBuf>,
    /// Files that differed, replaced (`--force`) after a backup.
    pub replaced: Vec<PathBuf>,
    /// The generation that holds the replaced rows' files as they were, when anything was
    /// replaced.
    pub generation: Option<PathBuf>,
    /// Whether a CA was replaced: what it signed no longer verifies.
    pub replaced_ca: bool,
    /// Entries with content that kubepki does not write.
    pub skipped: Vec<String>,
    /// The recorded configuration written from the bundle's settings, if it was.
    pub recorded: Option<PathBuf>,
}

/// Carries out `plan`. A file of the tree that differs from the bundle is refused, naming
/// it, unless `force`; then the rows of every such file are first kept as a new generation
/// in `generations_dir` (so `certs rollback` undoes the import). Keys are written before
/// their certificates (a CA replaced whole is staged as a pair).
pub fn import(
    plan: ImportPlan,
    force: bool,
    dirs: &TreeDirs,
    generations_dir: &Path,
    now: OffsetDateTime,
) -> Result<Imported> {
    refuse_during_rotation(dirs)?;
    let conflicts = plan.conflicts();
    if let (Some(first), false) = (conflicts.first(), force) {
        return Err(match conflicts.len() - 1 {
            0 => first.clone().into(),
            more => anyhow!("{first} (and {more} more file(s) that differ)"),
        });
    }
    let paths = |action: FileAction| -> Vec<PathBuf> {
        plan.files()
            .filter(|f| f.action == action)
            .map(|f| f.write.path())
            .collect()
    };
    let (created, kept, replaced) = (
        paths(FileAction::Create),
        paths(FileAction::Keep),
        paths(FileAction::Replace),
    );
    let replaced_ca = plan.rows.iter().any(|(row, files)| {
        row.kind == Kind::Ca && files.iter().any(|f| f.action == FileAction::Replace)
    });
    let generation = match replaced.is_empty() {
        true => {
            write_new(&plan)?;
            None
        }
        false => Some(replace(&plan, dirs, generations_dir, now)?),
    };
    let recorded = match &plan.settings {
        Some(shared) => Some(record(dirs, shared)?),
        None => None,
    };
    Ok(Imported {
        created,
        kept,
        replaced,
        generation,
        replaced_ca,
        skipped: plan.skipped,
        recorded,
    })
}

/// Refuses an import while a rotation of a CA (or of `sa`) is under way: what it would
/// write replaces what the rotation is moving, in a shape no stage reads again.
fn refuse_during_rotation(dirs: &TreeDirs) -> Result<()> {
    let rows: Vec<&'static Profile> = rotatable_rows().collect();
    for (row, standing) in rotate::status(dirs, &rows) {
        let Standing::Read(state) = standing else {
            continue;
        };
        let under_way = match state.phase {
            Phase::Idle if state.pending.exists() => format!(
                "trust began: a new one waits in {}",
                dirs.cert_dir.join(PENDING_DIR).display()
            ),
            Phase::Idle => continue,
            _ => state.describe(),
        };
        let next = dirs.command(&format!(
            "certs rotate-ca {} {}",
            row.name,
            state.next_stage().name()
        ));
        return Err(anyhow!(
            "the rotation of {} is under way ({under_way}); an import would replace what it \
             moves: finish the rotation first (`{next}`, then the stages after it), then import",
            row.name
        ));
    }
    Ok(())
}

/// Records the bundle's `shared` settings as this host's configuration, with its cert dir.
fn record(dirs: &TreeDirs, shared: &str) -> Result<PathBuf> {
    let cert_dir = std::path::absolute(&dirs.cert_dir)
        .map_err(|e| anyhow!("{}: {e}", dirs.cert_dir.display()))?;
    let write = FileWrite {
        root: dirs.kubeconfig_dir.clone(),
        rel: RECORD_FILE.into(),
        content: publish::host_configuration(shared, &cert_dir)?.into_bytes(),
        mode: store::SECRET_MODE,
    };
    store::create_all(std::slice::from_ref(&write))?;
    Ok(write.path())
}

/// Writes the absent files, never replacing one.
fn write_new(plan: &ImportPlan) -> Result<()> {
    let new: Vec<FileWrite> = plan
        .files()
        .filter(|f| f.action == FileAction::Create)
        .map(|f| f.write.clone())
        .collect();
    store::create_all(&new)
}

/// Keeps the rows with files that differ as a new generation, then writes every file to
/// write in one batch: a CA whose key and certificate both change as a staged pair,
/// anything else whole. Returns the generation.
fn replace(
    plan: &ImportPlan,
    dirs: &TreeDirs,
    generations_dir: &Path,
    now: OffsetDateTime,
) -> Result<PathBuf> {
    let replaced: Vec<(&Profile, RowChange)> = plan
        .rows
        .iter()
        .filter(|(_, files)| files.iter().any(|f| f.action == FileAction::Replace))
        .map(|(row, _)| {
            let change = RowChange {
                name: row.cert_name().to_string(),
                change: "replaced by the bundle's".to_string(),
                restored_from: None,
            };
            (*row, change)
        })
        .collect();
    let generation = generations::new_path(generations_dir, now)?;
    generations::keep(dirs, &generation, now, "certs bundle import", &replaced)?;
    let (mut pairs, mut whole) = (Vec::new(), Vec::new());
    for (row, files) in &plan.rows {
        let changing: Vec<&FileWrite> = files
            .iter()
            .filter(|f| f.action != FileAction::Keep)
            .map(|f| &f.write)
            .collect();
        match (row.kind, changing.as_slice()) {
            (Kind::Ca, [key, cert]) => pairs.push((*key, *cert)),
            _ => whole.extend(changing),
        }
    }
    store::replace_many(&pairs, &whole)?;
    Ok(generation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testtree::{TestTree, ecdsa_spec};
    use std::fs;

    fn key() -> CertificateKey {
        "5a".repeat(32).parse().expect("a key")
    }

    /// The bundle of a whole new tree, as a file named `bundle.yaml`.
    fn exported(tree: &TestTree, external_etcd: bool) -> BundleFile {
        let export = export(&tree.dirs, external_etcd, &key()).expect("exported");
        let yaml = export.bundle.secret_yaml().expect("yaml");
        BundleFile {
            name: "bundle.yaml".into(),
            bytes: yaml.into_bytes(),
        }
    }

    fn refusal(tree: &TestTree, file: &BundleFile) -> Problem {
        let opened = open_bundle(file, &key(), false);
        match opened.and_then(|opened| plan_import(&tree.dirs, opened)) {
            Ok(_) => panic!("{} was not refused", String::from_utf8_lossy(&file.bytes)),
            Err(problem) => problem,
        }
    }

    #[test]
    fn an_imported_tree_holds_the_shared_files_and_init_reuses_them() {
        let spec = ecdsa_spec(&[]);
        let first = TestTree::written(&spec);
        let file = exported(&first, false);
        let second = TestTree::empty();
        let plan = plan_import(
            &second.dirs,
            open_bundle(&file, &key(), false).expect("opened"),
        );
        let (nowhere, now) = (Path::new("/nowhere"), OffsetDateTime::now_utc());
        let imported =
            import(plan.expect("planned"), false, &second.dirs, nowhere, now).expect("ok");
        assert_eq!(imported.created.len(), 8);
        for path in &imported.created {
            let rel = path
                .strip_prefix(&second.dirs.cert_dir)
                .expect("in the tree");
            let original = fs::read(first.dirs.cert_dir.join(rel)).expect("read");
            assert_eq!(fs::read(path).expect("read"), original, "{}", rel.display());
        }
        let again = plan_import(
            &second.dirs,
            open_bundle(&file, &key(), false).expect("opened"),
        );
        let again = import(again.expect("planned"), false, &second.dirs, nowhere, now).expect("ok");
        assert_eq!((again.created.len(), again.kept.len()), (0, 8));
        let plan = crate::engine::plan::plan_init(
            &ecdsa_spec(&["--node-name", "cp2"]),
            &second.dirs,
            crate::profile::Selection::All,
        );
        let reused: Vec<&str> = plan
            .steps
            .iter()
            .filter(|s| s.action == crate::engine::plan::Action::Reuse)
            .map(|s| s.row.name)
            .collect();
        assert_eq!(reused, ["ca", "front-proxy-ca", "etcd-ca", "sa"]);
    }

    #[test]
    fn an_external_etcd_and_an_external_ca_export_what_they_have() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        tree.remove("ca", |i| i == 0);
        let export = export(&tree.dirs, true, &key()).expect("exported");
        let names: Vec<&str> = export.bundle.names().collect();
        assert_eq!(
            names,
            [
                "ca.crt",
                "ca.key",
                "external-etcd-ca.crt",
                "external-etcd.crt",
                "external-etcd.key",
                "front-proxy-ca.crt",
                "front-proxy-ca.key",
                "sa.key",
                "sa.pub"
            ]
        );
        assert_eq!(export.absent, [tree.dirs.cert_dir.join("ca.key")]);
        assert_eq!(export.sealed.len(), 5);
        let file = BundleFile {
            name: "b".into(),
            bytes: export.bundle.secret_yaml().expect("yaml").into_bytes(),
        };
        let empty = TestTree::empty();
        match open_bundle(&file, &key(), false) {
            Err(Problem::IncompleteBundle { missing, .. }) => {
                assert_eq!(missing, ["etcd-ca.key", "etcd-ca.crt"])
            }
            _ => panic!("a local etcd needs the etcd CA"),
        }
        let plan = plan_import(
            &empty.dirs,
            open_bundle(&file, &key(), true).expect("opened"),
        );
        let written: Vec<String> = plan
            .expect("planned")
            .files()
            .map(|f| f.write.rel.display().to_string())
            .collect();
        assert_eq!(
            written,
            [
                "ca.crt",
                "front-proxy-ca.key",
                "front-proxy-ca.crt",
                "sa.key",
                "sa.pub"
            ]
        );
    }

    #[test]
    fn a_tree_without_a_ca_certificate_or_the_sa_pair_is_not_exported() {
        let spec = ecdsa_spec(&[]);
        for (row, index, file) in [
            ("front-proxy-ca", 1, "front-proxy-ca.crt"),
            ("sa", 1, "sa.pub"),
        ] {
            let tree = TestTree::written(&spec);
            tree.remove(row, |i| i == index);
            let error = export(&tree.dirs, false, &key())
                .err()
                .expect("refused")
                .to_string();
            let path = tree.dirs.cert_dir.join(file);
            assert!(
                error.starts_with(&format!(
                    "{}: absent, though a bundle must carry",
                    path.display()
                )),
                "{error}"
            );
        }
    }

    #[test]
    fn a_tree_with_another_ca_is_refused_and_replaced_only_with_force_after_a_backup() {
        let spec = ecdsa_spec(&[]);
        let file = exported(&TestTree::written(&spec), false);
        let other = TestTree::written(&spec);
        let old_ca = fs::read(other.dirs.cert_dir.join("ca.crt")).expect("read");
        let plan = plan_import(
            &other.dirs,
            open_bundle(&file, &key(), false).expect("opened"),
        );
        let now = OffsetDateTime::now_utc();
        let generations_dir = other.dirs.kubeconfig_dir.join("backup");
        let error = import(
            plan.expect("planned"),
            false,
            &other.dirs,
            &generations_dir,
            now,
        )
        .err()
        .expect("refused")
        .to_string();
        assert!(
            error.starts_with(&format!(
                "{}: exists and differs from the bundle's ca.crt",
                other.dirs.cert_dir.join("ca.crt").display()
            )) && error.ends_with("(and 7 more file(s) that differ)"),
            "{error}"
        );
        assert_eq!(
            fs::read(other.dirs.cert_dir.join("ca.crt")).ok(),
            Some(old_ca.clone())
        );
        let plan = plan_import(
            &other.dirs,
            open_bundle(&file, &key(), false).expect("opened"),
        );
        let imported = import(
            plan.expect("planned"),
            true,
            &other.dirs,
            &generations_dir,
            now,
        )
        .expect("forced");
        assert!(imported.replaced_ca && imported.replaced.len() == 8);
        let kept = generations::list(&generations_dir).expect("listed");
        assert_eq!(kept.len(), 1);
        assert_eq!(Some(&kept[0].path), imported.generation.as_ref());
        assert_eq!(kept[0].record.command, "certs bundle import");
        assert_eq!(fs::read(kept[0].path.join("pki/ca.crt")).ok(), Some(old_ca));
    }

    #[test]
    fn damaged_cut_and_wrong_content_are_refused_naming_the_entry() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        let file = exported(&tree, false);
        let empty = TestTree::empty();
        let text = String::from_utf8_lossy(&file.bytes).into_owned();
        let cut = BundleFile {
            name: "b".into(),
            bytes: text[..text.find("  sa.key:").expect("sa.key")].into(),
        };
        match refusal(&empty, &cut) {
            Problem::IncompleteBundle { missing, .. } => assert_eq!(missing, ["sa.key", "sa.pub"]),
            problem => panic!("{problem}"),
        }
        let wrong_content = |files: Vec<(String, Option<Vec<u8>>)>| {
            let bundle = Bundle::seal(&files, &key()).expect("sealed");
            let yaml = bundle.secret_yaml().expect("yaml");
            refusal(
                &empty,
                &BundleFile {
                    name: "b".into(),
                    bytes: yaml.into_bytes(),
                },
            )
        };
        let mut files: Vec<(String, Option<Vec<u8>>)> = crate::profile::shared_rows(false)
            .flat_map(|row| row.cert_dir_files())
            .map(|rel| {
                let content = fs::read(tree.dirs.cert_dir.join(&rel)).ok();
                (rel.display().to_string(), content)
            })
            .collect();
        let swapped = files[1].1.clone();
        files[3].1 = swapped;
        match wrong_content(files) {
            Problem::BadBundleEntry { entry, fault, .. } => {
                assert_eq!(entry, "front-proxy-ca.key");
                assert_eq!(fault, EntryFault::Mismatch("front-proxy-ca.crt".into()));
            }
            problem => panic!("{problem}"),
        }
    }

    #[test]
    fn a_ca_certificate_without_its_key_never_lands_beside_another_key() {
        let spec = ecdsa_spec(&[]);
        let first = TestTree::written(&spec);
        first.remove("ca", |i| i == 0);
        let file = exported(&first, false);
        let other = TestTree::written(&spec);
        match refusal(&other, &file) {
            Problem::BadBundleEntry { entry, fault, .. } => {
                assert_eq!(entry, "ca.crt");
                assert!(matches!(fault, EntryFault::ExistingKeyMismatch(_)));
            }
            problem => panic!("{problem}"),
        }
    }
}
