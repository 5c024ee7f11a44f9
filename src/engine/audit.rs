//! `certs audit`: everything wrong with a tree, as findings with a stable id, a severity and
//! the file. Every row of the profile table is read through `tree::reader` and judged: its
//! files (present, not links, modes, owner), its key against its certificate, the chain to
//! its CA, the CA flags, weak material, the dates, and the drift from what the table and the
//! configuration say (`drift`). Without a configuration, what depends on the node is skipped
//! and the audit says which. Reads only; never writes.

use super::drift::{self, Drift, Field, ValidityDrift, Wanted};
use super::rotate::state::{Phase, read_state};
use crate::pki::inspect::{CertInfo, KeyKind, KeyUsage};
use crate::pki::pem;
use crate::profile::{Kind, PENDING_DIR, PROFILES, Profile, Role, Scope, Trust};
use crate::tree::TreeDirs;
use crate::tree::generations;
use crate::tree::problem::Problem;
use crate::tree::reader::{self, Client, FileFacts, FileKind, FoundCert, FoundKey};
use anyhow::Result;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look; the tree works.
    Warning,
    /// Wrong: something fails now or is unsafe.
    Error,
}

/// What an audit checks, each with its stable id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// A file of the table is absent.
    Missing,
    /// A file that cannot be read or parsed.
    Unreadable,
    /// A file or directory of the tree is a symbolic link.
    Symlink,
    /// A private key (in its file or a kubeconfig) is not its certificate's.
    KeyMismatch,
    /// A public key file is not its private key's public half.
    PublicKeyMismatch,
    /// A certificate its CA did not sign.
    NotSignedByCa,
    /// A certificate past its NotAfter.
    Expired,
    /// A certificate whose NotBefore is in the future.
    NotYetValid,
    /// A certificate that ends after its CA.
    OutlivesCa,
    /// A CA row's certificate without CA:TRUE.
    CaNotCa,
    /// A CA without the keyCertSign usage.
    CaWithoutKeyCertSign,
    /// A leaf certificate that is a CA.
    LeafIsCa,
    /// A subject CN or O other than the row's.
    Subject,
    /// SANs the configuration asks for that the certificate lacks.
    SanMissing,
    /// SANs the certificate carries that the configuration does not ask for.
    SanExtra,
    /// Extended key usages other than the row's.
    ExtKeyUsage,
    /// keyUsage bits a certificate of its kind must have, or must not.
    KeyUsage,
    /// An RSA key under 2048 bits.
    WeakRsaKey,
    /// A signature with SHA-1 (or MD5, MD2).
    WeakSignature,
    /// An elliptic curve other than P-256 and P-384, or a key kubeadm cannot use.
    UnknownCurve,
    /// A validity longer than the configured one.
    ValidityTooLong,
    /// A key algorithm other than the configured one.
    Algorithm,
    /// A private key or kubeconfig readable by group or others.
    SecretMode,
    /// A file group or others may write.
    WritableMode,
    /// A file not owned by its directory's owner (root on a real node).
    Owner,
    /// A directory of the tree (or one holding copies of keys) others may write or read.
    DirMode,
    /// A certificate or public key file holding more blocks than it may (a CA appended
    /// outside a rotation).
    PemBlocks,
    /// A file in the cert dir the table does not know.
    StrayFile,
    /// A kubeconfig whose embedded CA is not `ca.crt`.
    KubeconfigCa,
    /// A kubeconfig whose server is not the one the configuration says.
    KubeconfigServer,
    /// A kubeconfig whose client certificate file does not exist.
    KubeletClientMissing,
    /// A CA that ends within a year: plan its rotation.
    CaEnding,
    /// A CA that ends within 90 days: what it signs cannot be renewed past it.
    CaEndingSoon,
    /// A kubeconfig that trusts a CA its issuer's readers no longer trust.
    KubeconfigExtraCa,
}

impl Check {
    /// Every check, in the order the README lists them.
    pub const ALL: [Check; 34] = [
        Check::Missing,
        Check::Unreadable,
        Check::Symlink,
        Check::KeyMismatch,
        Check::PublicKeyMismatch,
        Check::NotSignedByCa,
        Check::Expired,
        Check::NotYetValid,
        Check::OutlivesCa,
        Check::CaNotCa,
        Check::CaWithoutKeyCertSign,
        Check::LeafIsCa,
        Check::Subject,
        Check::SanMissing,
        Check::SanExtra,
        Check::ExtKeyUsage,
        Check::KeyUsage,
        Check::WeakRsaKey,
        Check::WeakSignature,
        Check::UnknownCurve,
        Check::ValidityTooLong,
        Check::Algorithm,
        Check::SecretMode,
        Check::WritableMode,
        Check::Owner,
        Check::DirMode,
        Check::PemBlocks,
        Check::StrayFile,
        Check::KubeconfigCa,
        Check::KubeconfigServer,
        Check::KubeletClientMissing,
        Check::CaEnding,
        Check::CaEndingSoon,
        Check::KubeconfigExtraCa,
    ];

    /// The stable id, e.g. `key-mismatch`.
    pub fn id(self) -> &'static str {
        match self {
            Check::Missing => "missing",
            Check::Unreadable => "unreadable",
            Check::Symlink => "symlink",
            Check::KeyMismatch => "key-mismatch",
            Check::PublicKeyMismatch => "public-key-mismatch",
            Check::NotSignedByCa => "not-signed-by-ca",
            Check::Expired => "expired",
            Check::NotYetValid => "not-yet-valid",
            Check::OutlivesCa => "outlives-ca",
            Check::CaNotCa => "ca-not-ca",
            Check::CaWithoutKeyCertSign => "ca-without-keycertsign",
            Check::LeafIsCa => "leaf-is-ca",
            Check::Subject => "subject",
            Check::SanMissing => "san-missing",
            Check::SanExtra => "san-extra",
            Check::ExtKeyUsage => "ext-key-usage",
            Check::KeyUsage => "key-usage",
            Check::WeakRsaKey => "weak-rsa-key",
            Check::WeakSignature => "weak-signature",
            Check::UnknownCurve => "unknown-curve",
            Check::ValidityTooLong => "validity-too-long",
            Check::Algorithm => "algorithm",
            Check::SecretMode => "secret-mode",
            Check::WritableMode => "writable-mode",
            Check::Owner => "owner",
            Check::DirMode => "dir-mode",
            Check::PemBlocks => "pem-blocks",
            Check::StrayFile => "stray-file",
            Check::KubeconfigCa => "kubeconfig-ca",
            Check::KubeconfigServer => "kubeconfig-server",
            Check::KubeletClientMissing => "kubelet-client-missing",
            Check::CaEnding => "ca-ending",
            Check::CaEndingSoon => "ca-ending-soon",
            Check::KubeconfigExtraCa => "kubeconfig-extra-ca",
        }
    }

    /// Its severity: warnings are drift that works (extra SANs, a longer validity, another
    /// algorithm or server, a leaf outliving its CA, owner, stray files, a CA ending within a
    /// year); the rest are errors.
    pub fn severity(self) -> Severity {
        match self {
            Check::OutlivesCa
            | Check::SanExtra
            | Check::ValidityTooLong
            | Check::Algorithm
            | Check::Owner
            | Check::StrayFile
            | Check::KubeconfigServer
            | Check::CaEnding => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

/// One thing wrong with one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What was checked.
    pub check: Check,
    /// The file (or directory).
    pub file: PathBuf,
    /// One line: the file, then what is wrong.
    pub message: String,
}

impl Finding {
    fn new(check: Check, file: &Path, what: impl std::fmt::Display) -> Finding {
        Finding {
            check,
            file: file.to_path_buf(),
            message: format!("{}: {what}", file.display()),
        }
    }

    /// A finding from a reader's problem, whose wording names the file.
    fn of_problem(check: Check, file: &Path, problem: &Problem) -> Finding {
        Finding {
            check,
            file: file.to_path_buf(),
            message: problem.to_string(),
        }
    }
}

/// The result of an audit.
pub struct Audit {
    /// Every finding, in table order (stray files last).
    pub findings: Vec<Finding>,
    /// The checks left out for want of a configuration, one line each.
    pub skipped: Vec<String>,
}

impl Audit {
    /// The findings at least as bad as `severity`.
    pub fn at_least(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.check.severity() >= severity)
            .count()
    }
}

/// Audits the tree at `dirs` against `wanted`. `Err` only when the tree cannot be read at
/// all (a directory missing or unlistable).
pub fn audit(dirs: &TreeDirs, wanted: &Wanted) -> Result<Audit> {
    reader::require_dirs(dirs)?;
    let mut auditor = Auditor {
        dirs,
        wanted,
        findings: Vec::new(),
        cas: HashMap::new(),
    };
    let linked_dirs = auditor.linked_subdirs()?;
    let etcd_expected = auditor.etcd_expected()?;
    // The control plane's tree: a kubelet's serving certificate lives in its own directory.
    for row in PROFILES
        .iter()
        .filter(|row| row.scope == Scope::ControlPlane)
    {
        let in_linked_dir = row
            .key_file()
            .is_some_and(|key| linked_dirs.iter().any(|dir| key.starts_with(dir)));
        if in_linked_dir || (row.needs_local_etcd() && !etcd_expected) {
            continue;
        }
        auditor.row(row)?;
    }
    auditor.dir_modes()?;
    auditor.pending_keys()?;
    auditor.generations()?;
    for path in reader::unknown_files(dirs)? {
        auditor.found(Finding::new(
            Check::StrayFile,
            &path,
            "a file no row of kubeadm's tree owns (left by hand or by an interrupted tool?)",
        ));
    }
    Ok(Audit {
        findings: auditor.findings,
        skipped: skipped(wanted),
    })
}

/// The facts of the file or directory at `path` itself.
fn facts_of(path: &Path) -> Result<Option<FileFacts>> {
    let facts = match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => reader::file_facts(parent, Path::new(name))?,
        _ => reader::file_facts(path, Path::new(""))?,
    };
    Ok(facts)
}

/// The checks a missing configuration leaves out.
fn skipped(wanted: &Wanted) -> Vec<String> {
    let mut skipped = Vec::new();
    if wanted.spec.is_none() {
        let names: Vec<&str> = PROFILES
            .iter()
            .filter(|row| row.scope == Scope::ControlPlane && drift::depends_on_node(row))
            .map(|row| row.cert_name())
            .collect();
        skipped.push(format!(
            "subjects, SANs and servers that depend on the node or the endpoint ({}), \
             without a configuration (--config or init's flags)",
            names.join(", ")
        ));
    }
    if wanted.algorithm.is_none() {
        skipped.push(
            "the key algorithm, which no configuration sets (--encryption-algorithm or \
             encryptionAlgorithm)"
                .into(),
        );
    }
    skipped
}

/// A CA ending within this many days is a warning (`ca-ending`)...
const CA_WARNING_DAYS: i64 = 365;
/// ... and within this many, an error (`ca-ending-soon`).
const CA_ERROR_DAYS: i64 = 90;

/// The state of one audit.
struct Auditor<'a> {
    dirs: &'a TreeDirs,
    wanted: &'a Wanted<'a>,
    findings: Vec<Finding>,
    /// Each CA row's certificate, when it could be read.
    cas: HashMap<&'static str, CertInfo>,
}

/// A file of a row: where it is and whether it holds a private key.
struct RowFile {
    root: PathBuf,
    rel: PathBuf,
    secret: bool,
}

impl Auditor<'_> {
    fn found(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    /// The table's subdirectories of the cert dir that are links (each a finding); rows
    /// below them are not read.
    fn linked_subdirs(&mut self) -> Result<Vec<PathBuf>> {
        let mut linked = Vec::new();
        for rel in crate::profile::cert_subdirs() {
            if rel.as_os_str().is_empty() {
                continue;
            }
            let facts = reader::file_facts(&self.dirs.cert_dir, &rel)?;
            if let Some(facts) = facts.filter(|f| f.kind == FileKind::Symlink) {
                self.found(Finding::new(
                    Check::Symlink,
                    &facts.path,
                    "is a symbolic link; kubeadm's tree has none, and kubepki does not follow them",
                ));
                linked.push(rel);
            }
        }
        Ok(linked)
    }

    /// Whether the etcd rows belong to this tree: the configuration says so, or, without
    /// one, any of their files exists.
    fn etcd_expected(&self) -> Result<bool> {
        if let Some(spec) = self.wanted.spec {
            return Ok(!spec.external_etcd);
        }
        for row in PROFILES.iter().filter(|row| row.needs_local_etcd()) {
            for file in self.files_of(row) {
                if reader::file_facts(&file.root, &file.rel)?.is_some() {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// A row's files, key first.
    fn files_of(&self, row: &Profile) -> Vec<RowFile> {
        let in_certs = |rel: Option<PathBuf>, secret| {
            rel.map(|rel| RowFile {
                root: self.dirs.cert_dir.clone(),
                rel,
                secret,
            })
        };
        match row.kind {
            Kind::Kubeconfig(_) => vec![RowFile {
                root: self.dirs.kubeconfig_dir.clone(),
                rel: row.file.into(),
                secret: true,
            }],
            _ => [
                in_certs(row.key_file(), true),
                in_certs(row.cert_file(), false),
                in_certs(row.pub_file(), false),
            ]
            .into_iter()
            .flatten()
            .collect(),
        }
    }

    /// Audits one row: its files first; its content when they are all plain files.
    fn row(&mut self, row: &'static Profile) -> Result<()> {
        let mut absent = Vec::new();
        let mut linked = false;
        for file in self.files_of(row) {
            match reader::file_facts(&file.root, &file.rel)? {
                None => absent.push(file.root.join(&file.rel)),
                Some(facts) => linked |= self.file(&facts, file.secret)?,
            }
        }
        if linked {
            return Ok(());
        }
        let whole = absent.is_empty();
        self.missing(row, absent);
        match row.kind {
            Kind::Ca | Kind::Leaf => self.pair(row),
            Kind::KeyPair if whole => self.key_pair(row),
            Kind::KeyPair => {}
            Kind::Kubeconfig(_) => self.kubeconfig(row),
        }
        Ok(())
    }

    /// A file's own facts: a link (true: its content is not read), modes and owner.
    fn file(&mut self, facts: &FileFacts, secret: bool) -> Result<bool> {
        if facts.kind == FileKind::Symlink {
            self.found(Finding::new(
                Check::Symlink,
                &facts.path,
                "is a symbolic link; kubeadm writes plain files, and kubepki does not follow links",
            ));
            return Ok(true);
        }
        if secret && facts.mode & 0o077 != 0 {
            self.found(Finding::new(
                Check::SecretMode,
                &facts.path,
                format!(
                    "mode {:04o} lets group or others read a private key; kubeadm writes it 0600 (chmod 600)",
                    facts.mode
                ),
            ));
        } else if facts.mode & 0o022 != 0 {
            self.found(Finding::new(
                Check::WritableMode,
                &facts.path,
                format!(
                    "mode {:04o} lets group or others replace it (chmod go-w)",
                    facts.mode
                ),
            ));
        }
        self.owner(facts)?;
        Ok(false)
    }

    /// The owner of a file must own its directory too: root on a node (a tree a user made
    /// for a test is theirs).
    fn owner(&mut self, facts: &FileFacts) -> Result<()> {
        let dir = facts.path.parent().unwrap_or(Path::new("/"));
        let Some(dir_facts) = reader::file_facts(dir, Path::new(""))? else {
            return Ok(());
        };
        if let Some(what) = owner_problem(facts.uid, dir_facts.uid) {
            self.found(Finding::new(Check::Owner, &facts.path, what));
        }
        Ok(())
    }

    /// Absent files: one finding for the row (an absent CA key is an external CA, an absent
    /// super-admin.conf is kubeadm's way on every control plane but the first).
    fn missing(&mut self, row: &Profile, absent: Vec<PathBuf>) {
        let external_ca_key = row.kind == Kind::Ca && absent.len() == 1 && {
            let key = self.dirs.cert_dir.join(row.key_file().unwrap_or_default());
            absent[0] == key
        };
        if absent.is_empty() || external_ca_key || row.role == Role::SuperAdmin {
            return;
        }
        let names: Vec<String> = absent.iter().map(|p| p.display().to_string()).collect();
        let (first, what) = match names.len() {
            1 => (&absent[0], "is missing".to_string()),
            _ => (
                &absent[0],
                format!("is missing, and so is {}", names[1..].join(", ")),
            ),
        };
        self.found(Finding::new(Check::Missing, first, what));
    }

    /// A CA or leaf: the pair, then the certificate.
    fn pair(&mut self, row: &'static Profile) {
        let pair = match reader::read_pair(self.dirs, row) {
            Ok(pair) => pair,
            Err(problem) => return self.unreadable(&self.dirs.cert_dir.clone(), &problem),
        };
        let Some(cert) = pair.cert else { return };
        let root = self.dirs.root_of(row).to_path_buf();
        self.blocks(row, &root, &row.cert_file().unwrap_or_default());
        if let Some(key) = &pair.key {
            self.key(key, &cert);
        }
        if row.kind == Kind::Ca {
            self.cas.insert(row.name, cert.info.clone());
        }
        self.certificate(row, &cert);
    }

    /// The cert dir, its subdirectories (`next/` included) and the kubeconfig dir: no one
    /// but their owner may add, remove or replace files in them.
    fn dir_modes(&mut self) -> Result<()> {
        let subdirs = crate::profile::cert_subdirs()
            .into_iter()
            .chain([PathBuf::from(PENDING_DIR)])
            .filter(|rel| !rel.as_os_str().is_empty())
            .map(|rel| self.dirs.cert_dir.join(rel));
        let mut dirs = vec![self.dirs.cert_dir.clone(), self.dirs.kubeconfig_dir.clone()];
        dirs.dedup();
        for dir in dirs.into_iter().chain(subdirs) {
            let Some(facts) = facts_of(&dir)? else {
                continue;
            };
            if facts.kind == FileKind::Dir && facts.mode & 0o022 != 0 {
                self.found(Finding::new(
                    Check::DirMode,
                    &facts.path,
                    format!(
                        "mode {:04o} lets group or others add, remove or replace files in it (chmod go-w)",
                        facts.mode
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The keys of a rotation waiting under `next/` are secrets like any other.
    fn pending_keys(&mut self) -> Result<()> {
        for row in PROFILES.iter().filter(|row| row.is_shared()) {
            let Some(key) = row.pending_files().into_iter().next() else {
                continue;
            };
            if let Some(facts) = reader::file_facts(&self.dirs.cert_dir, &key)? {
                self.file(&facts, true)?;
            }
        }
        Ok(())
    }

    /// The generations in the default backup directory hold copies of keys and kubeconfigs:
    /// each generation's directory must be its owner's alone (kubepki makes it 0700), and
    /// every key or kubeconfig in it 0600.
    fn generations(&mut self) -> Result<()> {
        for generation in generations::list(&generations::default_dir(self.dirs))? {
            let Some(facts) = facts_of(&generation.path)? else {
                continue;
            };
            if facts.mode & 0o077 != 0 {
                self.found(Finding::new(
                    Check::DirMode,
                    &facts.path,
                    format!(
                        "mode {:04o} lets group or others into copies of private keys (chmod 700)",
                        facts.mode
                    ),
                ));
            }
            self.secrets_below(&generation.path)?;
        }
        Ok(())
    }

    /// Every key and kubeconfig below `dir` (links not followed) must be 0600.
    fn secrets_below(&mut self, dir: &Path) -> Result<()> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.file_name().into()).collect();
        names.sort();
        for name in names {
            let Some(facts) = reader::file_facts(dir, &name)? else {
                continue;
            };
            let path = facts.path.clone();
            let secret = path.extension().is_some_and(|e| e == "key" || e == "conf");
            match facts.kind {
                FileKind::Dir => self.secrets_below(&path)?,
                FileKind::File if secret && facts.mode & 0o077 != 0 => {
                    self.found(Finding::new(
                        Check::SecretMode,
                        &facts.path,
                        format!(
                            "mode {:04o} lets group or others read a copy of a private key (chmod 600)",
                            facts.mode
                        ),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// A file of `row` that may hold several blocks (a CA certificate, `sa.pub`) holds them
    /// only during a rotation of the row; a leaf's certificate and `ca.crt` (whose rotation
    /// bundle is `ca-bundle.crt`) hold one.
    fn blocks(&mut self, row: &'static Profile, root: &Path, rel: &Path) {
        let Ok(Some(bytes)) = reader::read_file(root, rel) else {
            return;
        };
        let count = pem::block_labels(&bytes).len();
        if count < 2 {
            return;
        }
        let rotatable = row.kind != Kind::Leaf && matches!(row.trust, Trust::InPlace);
        let rotating =
            rotatable && read_state(self.dirs, row).is_ok_and(|state| state.phase != Phase::Idle);
        if rotating {
            return;
        }
        let why = match rotatable {
            true => {
                "outside a rotation: its readers trust every one (appended by hand, or from another cluster?)"
            }
            false => "where kubeadm writes one: its readers may trust or send every one",
        };
        self.found(Finding::new(
            Check::PemBlocks,
            &root.join(rel),
            format!("holds {count} PEM blocks {why}"),
        ));
    }

    /// A private key must be its certificate's.
    fn key(&mut self, key: &FoundKey, cert: &FoundCert) {
        match key.check_belongs_to(cert) {
            Ok(()) => {}
            Err(problem @ (Problem::KeyMismatch { .. } | Problem::EmbeddedKeyMismatch(_))) => self
                .found(Finding::of_problem(
                    Check::KeyMismatch,
                    key.place.path(),
                    &problem,
                )),
            Err(problem) => self.unreadable(&key.place.path().clone(), &problem),
        }
    }

    /// A problem reading `file` (the reader's problem may name another: a kubeconfig's
    /// client certificate file).
    fn unreadable(&mut self, file: &Path, problem: &Problem) {
        let file = problem.file().unwrap_or(file).to_path_buf();
        let check = match problem {
            Problem::PointedCertMissing { .. } => Check::KubeletClientMissing,
            _ => Check::Unreadable,
        };
        self.found(Finding::of_problem(check, &file, problem));
    }

    /// The service-account key pair: the public half must be the private key's.
    fn key_pair(&mut self, row: &'static Profile) {
        let result = (|| {
            let found = reader::read_key_pair(self.dirs, row)?;
            let (Some(key), Some(public)) = (&found.key, &found.public_pem) else {
                return Ok(None);
            };
            found.check_public(&key.load()?, public)?;
            Ok(Some((
                found.public_path.clone(),
                found.public_kind(public)?,
            )))
        })();
        let root = self.dirs.cert_dir.clone();
        self.blocks(row, &root, &row.pub_file().unwrap_or_default());
        match result {
            Ok(Some((path, kind))) => {
                self.key_strength(&path, &kind);
            }
            Ok(None) => {}
            Err(problem @ Problem::PublicKeyMismatch { .. }) => {
                let file = problem.file().unwrap_or(&self.dirs.cert_dir).to_path_buf();
                self.found(Finding::of_problem(
                    Check::PublicKeyMismatch,
                    &file,
                    &problem,
                ))
            }
            Err(problem) => self.unreadable(&self.dirs.cert_dir.clone(), &problem),
        }
    }

    /// A kubeconfig: its CA, server, key and client certificate.
    fn kubeconfig(&mut self, row: &'static Profile) {
        let found = match reader::read_kubeconfig(self.dirs, row) {
            Ok(Some(found)) => found,
            Ok(None) => return,
            Err(problem) => {
                let path = self.dirs.kubeconfig_dir.join(row.file);
                return self.unreadable(&path, &problem);
            }
        };
        let issuer = row.issuer.unwrap_or_default();
        if let Some(ca) = self.cas.get(issuer).cloned() {
            match found.check_ca(&ca, issuer) {
                Ok(()) => self.extra_cas(row, &ca),
                Err(problem @ Problem::WrongEmbeddedCa { .. }) => self.found(Finding::of_problem(
                    Check::KubeconfigCa,
                    &found.path,
                    &problem,
                )),
                Err(problem) => return self.unreadable(&found.path, &problem),
            }
        }
        match found.server() {
            Ok(server) => {
                if let Some(drift) = drift::server(row, server, self.wanted) {
                    let message = format!(
                        "its server is {}, the configuration says {}",
                        drift.removed.join(""),
                        drift.added.join("")
                    );
                    self.found(Finding::new(Check::KubeconfigServer, &found.path, message));
                }
            }
            Err(problem) => return self.unreadable(&found.path, &problem),
        }
        if let Client::Embedded { cert, key } = &found.client {
            self.key(key, cert);
        }
        self.certificate(row, found.cert());
    }

    /// CAs a kubeconfig trusts beyond what its issuer's readers trust (`ca`, its signer, and
    /// during a rotation the CA coming or going): one left by a finished rotation, or from
    /// elsewhere.
    fn extra_cas(&mut self, row: &'static Profile, ca: &CertInfo) {
        let (Some(issuer), Ok(Some((path, _, anchors)))) = (
            row.issuer_row(),
            reader::read_kubeconfig_trust(self.dirs, row),
        ) else {
            return;
        };
        let Ok(trusted) = reader::trusted_with(self.dirs, issuer, ca) else {
            return;
        };
        let extra: Vec<String> = anchors
            .iter()
            .filter_map(|anchor| anchor.cert())
            .filter(|cert| !trusted.iter().any(|t| t.der == cert.der))
            .map(|cert| format!("{:?}", cert.cn))
            .collect();
        if !extra.is_empty() {
            let what = format!(
                "trusts {} CA certificate(s) ({}) that {:?} no longer trusts (left by a \
                 rotation?); `kubepki certs renew {}` writes it with the current ones",
                extra.len(),
                extra.join(", "),
                issuer.name,
                row.cert_name()
            );
            self.found(Finding::new(Check::KubeconfigExtraCa, &path, what));
        }
    }

    /// Everything about a certificate itself.
    fn certificate(&mut self, row: &'static Profile, cert: &FoundCert) {
        let path = cert.path().to_path_buf();
        let info = &cert.info;
        if info.weak_signature {
            let what = format!(
                "signed with {}, a broken hash (its signature is not trusted, so its chain is not checked)",
                info.signature
            );
            self.found(Finding::new(Check::WeakSignature, &path, what));
        }
        let weak_key = self.key_strength(&path, &info.key_kind);
        self.dates(&path, info);
        match row.kind {
            Kind::Ca => {
                self.ca_flags(&path, info);
                self.ca_end(row, &path, info);
            }
            _ => self.issued(row, cert),
        }
        let ca = row.issuer.and_then(|issuer| self.cas.get(issuer).cloned());
        let drifts = drift::drifts(row, info, ca.as_ref(), self.wanted);
        let (sans, others): (Vec<Drift>, Vec<Drift>) = drifts
            .into_iter()
            .partition(|d| matches!(d.field, Field::Dns | Field::Ip));
        self.sans(&path, &sans);
        // A weak or unknown key is its own finding, not also "another algorithm".
        for drift in others
            .iter()
            .filter(|d| !(weak_key && d.field == Field::Key))
        {
            match (drift.field, &ca) {
                (Field::Validity(ValidityDrift::OutlivesCa), Some(ca)) => {
                    let what = format!(
                        "ends on {}, after its CA {:?} ({}); it stops verifying then",
                        info.not_after.date(),
                        row.issuer.unwrap_or_default(),
                        ca.not_after.date()
                    );
                    self.found(Finding::new(Check::OutlivesCa, &path, what));
                }
                _ => self.drift(&path, drift),
            }
        }
    }

    /// A key kubeadm would not write: RSA under 2048 bits, another curve or algorithm.
    /// Returns whether it found one.
    fn key_strength(&mut self, path: &Path, kind: &KeyKind) -> bool {
        let before = self.findings.len();
        match kind {
            KeyKind::Rsa(bits) if *bits < 2048 => self.found(Finding::new(
                Check::WeakRsaKey,
                path,
                format!("an RSA key of {bits} bits; kubeadm's smallest is 2048"),
            )),
            KeyKind::Ec(curve) if curve != "P-256" && curve != "P-384" => self.found(Finding::new(
                Check::UnknownCurve,
                path,
                format!("{kind}; kubeadm writes and reads P-256 and P-384 only"),
            )),
            KeyKind::Other(_) => self.found(Finding::new(
                Check::UnknownCurve,
                path,
                format!("{kind}; kubeadm writes and reads RSA and ECDSA keys only"),
            )),
            _ => {}
        }
        self.findings.len() > before
    }

    fn dates(&mut self, path: &Path, info: &CertInfo) {
        let now = self.wanted.now;
        if info.not_after <= now {
            let what = format!("expired on {}", info.not_after.date());
            self.found(Finding::new(Check::Expired, path, what));
        } else if info.not_before > now {
            let what = format!(
                "not valid before {} (NotBefore is in the future)",
                info.not_before
            );
            self.found(Finding::new(Check::NotYetValid, path, what));
        }
    }

    /// A CA that ends within a year (a warning) or 90 days (an error): the leaves it signs
    /// cannot be renewed past its end, so it must be rotated first.
    fn ca_end(&mut self, row: &Profile, path: &Path, info: &CertInfo) {
        let now = self.wanted.now;
        let left = info.not_after - now;
        if info.not_after <= now || left > time::Duration::days(CA_WARNING_DAYS) {
            return;
        }
        let check = match left <= time::Duration::days(CA_ERROR_DAYS) {
            true => Check::CaEndingSoon,
            false => Check::CaEnding,
        };
        let what = format!(
            "the CA ends on {}, in {} day(s): nothing it signs can be renewed past that; \
             rotate it (kubepki certs rotate-ca {} trust)",
            info.not_after.date(),
            left.whole_days(),
            row.name
        );
        self.found(Finding::new(check, path, what));
    }

    fn ca_flags(&mut self, path: &Path, info: &CertInfo) {
        if !info.is_ca {
            self.found(Finding::new(
                Check::CaNotCa,
                path,
                "a CA's certificate without basicConstraints CA:TRUE; nothing it signs verifies",
            ));
        }
        let usages = info.key_usages.as_deref().unwrap_or_default();
        if !usages.contains(&KeyUsage::KeyCertSign) {
            self.found(Finding::new(
                Check::CaWithoutKeyCertSign,
                path,
                "a CA's certificate without the keyCertSign usage; nothing it signs verifies",
            ));
        }
    }

    /// A certificate a CA of the table signed: the chain, its CA flag and its end.
    fn issued(&mut self, row: &'static Profile, cert: &FoundCert) {
        let path = cert.path().to_path_buf();
        let issuer = row.issuer.unwrap_or_default();
        if cert.info.is_ca {
            self.found(Finding::new(
                Check::LeafIsCa,
                &path,
                "a leaf certificate with basicConstraints CA:TRUE: it could sign certificates",
            ));
        }
        let Some(ca) = self.cas.get(issuer).cloned() else {
            return;
        };
        if !cert.info.weak_signature {
            // The signer rule: any CA its issuer's readers trust (during a rotation, the CA
            // coming or going too), as init, renew and reconcile judge it.
            let trusted = row
                .issuer_row()
                .and_then(|ca_row| reader::trusted_with(self.dirs, ca_row, &ca).ok())
                .unwrap_or_else(|| vec![ca.clone()]);
            if let Err(problem) = cert.check_signed_by_any(&trusted, issuer) {
                self.found(Finding::of_problem(Check::NotSignedByCa, &path, &problem));
            }
        }
    }

    /// A drift from the table or the configuration, as a finding.
    fn drift(&mut self, path: &Path, drift: &Drift) {
        let (check, what) = match drift.field {
            Field::CommonName | Field::Organization => (Check::Subject, subject_text(drift)),
            Field::ExtKeyUsage => (Check::ExtKeyUsage, usage_text("extended key usages", drift)),
            Field::KeyUsage => (Check::KeyUsage, usage_text("key usages", drift)),
            Field::Validity(ValidityDrift::Longer) => (
                Check::ValidityTooLong,
                format!(
                    "valid for {}, longer than the configured {}",
                    drift.removed.join(""),
                    drift.added.join("")
                ),
            ),
            Field::Key => (
                Check::Algorithm,
                format!(
                    "a {} key; the configured algorithm is {}",
                    drift.removed.join(""),
                    drift.added.join("")
                ),
            ),
            Field::Validity(_) | Field::Server | Field::Dns | Field::Ip => return,
        };
        self.found(Finding::new(check, path, what));
    }

    /// SANs, DNS and IP drifts together (by drift's SAN rule): those wanted and absent, and
    /// extra ones; one finding each.
    fn sans(&mut self, path: &Path, drifts: &[Drift]) {
        let (mut missing, mut extra) = (Vec::new(), Vec::new());
        for drift in drifts {
            let prefix = drift.field.prefix();
            missing.extend(drift.added.iter().map(|v| format!("{prefix}{v}")));
            extra.extend(drift.removed.iter().map(|v| format!("{prefix}{v}")));
        }
        if !missing.is_empty() {
            let what = format!(
                "lacks {} that the configuration asks for",
                missing.join(", ")
            );
            self.found(Finding::new(Check::SanMissing, path, what));
        }
        if !extra.is_empty() {
            let what = format!(
                "carries {}, which the configuration does not ask for",
                extra.join(", ")
            );
            self.found(Finding::new(Check::SanExtra, path, what));
        }
    }
}

/// What is wrong with a file owned by `uid` in a directory owned by `dir_uid`, if anything.
fn owner_problem(uid: u32, dir_uid: u32) -> Option<String> {
    let owner = match dir_uid {
        0 => "root (uid 0)".to_string(),
        other => format!("uid {other}"),
    };
    (uid != dir_uid).then(|| {
        format!(
            "owned by uid {uid}, while its directory belongs to {owner}: that user can replace it"
        )
    })
}

fn subject_text(drift: &Drift) -> String {
    let what = match drift.field {
        Field::CommonName => "common name",
        _ => "organization",
    };
    format!(
        "its {what} is [{}], its row says [{}]",
        drift.removed.join(", "),
        drift.added.join(", ")
    )
}

fn usage_text(what: &str, drift: &Drift) -> String {
    let mut parts = Vec::new();
    if !drift.added.is_empty() {
        parts.push(format!("lacks {}", drift.added.join(", ")));
    }
    if !drift.removed.is_empty() {
        parts.push(format!("has {}", drift.removed.join(", ")));
    }
    format!("{what}: {}, unlike its row", parts.join(" and "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::kubeconfig::Kubeconfig;
    use crate::pki::keys::{self, Algorithm};
    use crate::spec::ClusterSpec;
    use crate::testtree::{TestTree, ecdsa_spec};
    use rcgen::{BasicConstraints, IsCa, KeyUsagePurpose, SanType};
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use time::Duration as Span;

    /// The ids found in `tree` against `spec` (with its algorithm configured).
    fn ids(tree: &TestTree, spec: &ClusterSpec) -> Vec<(&'static str, PathBuf)> {
        let wanted = Wanted::of(spec, Some(spec.algorithm));
        let found = audit(&tree.dirs, &wanted).expect("an audit");
        found
            .findings
            .iter()
            .map(|f| (f.check.id(), f.file.clone()))
            .collect()
    }

    fn file(tree: &TestTree, name: &str, index: usize) -> PathBuf {
        tree.files_of(name)[index].clone()
    }

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// Rewrites a kubeconfig's text.
    fn edit_text(path: &Path, edit: impl FnOnce(String) -> String) {
        let text = fs::read_to_string(path).expect("reading");
        fs::write(path, edit(text)).expect("writing");
    }

    /// Replaces the embedded CA, certificate and key of kubeconfig row `name`.
    fn embed(tree: &TestTree, name: &str, ca: &[u8], cert: Option<&[u8]>, key: Option<&[u8]>) {
        let path = file(tree, name, 0);
        let mut kubeconfig = Kubeconfig::parse(&fs::read(&path).expect("reading")).expect("parses");
        let creds = kubeconfig.client_credentials().expect("credentials");
        let cert = cert.map_or(creds.cert_pem.clone(), <[u8]>::to_vec);
        let key = key.map_or(creds.key_pem.clone(), <[u8]>::to_vec);
        kubeconfig
            .replace_credentials(ca, &cert, &key)
            .expect("replaced");
        fs::write(&path, kubeconfig.to_yaml().expect("YAML")).expect("writing");
    }

    fn other_key_pem() -> Vec<u8> {
        let key = keys::generate(Algorithm::EcdsaP256).expect("a key");
        keys::to_pem(&key).expect("PEM").into_bytes()
    }

    fn days(n: i64) -> Span {
        Span::days(n)
    }

    type Plant = fn(&TestTree, &TestTree, &ClusterSpec) -> PathBuf;

    /// One planted defect per case: (the id expected, the defect, how it is planted, which
    /// returns the file the finding must name). `other` is a second tree of the same spec.
    const CASES: &[(&str, &str, Plant)] = &[
        ("missing", "a kubeconfig deleted", |t, _, _| {
            let path = file(t, "scheduler", 0);
            fs::remove_file(&path).expect("removing");
            path
        }),
        ("missing", "a leaf's key deleted", |t, _, _| {
            let path = file(t, "apiserver", 0);
            fs::remove_file(&path).expect("removing");
            path
        }),
        (
            "missing",
            "the cluster CA's certificate deleted",
            |t, _, _| {
                let path = file(t, "ca", 1);
                fs::remove_file(&path).expect("removing");
                path
            },
        ),
        ("unreadable", "a certificate that is not one", |t, _, _| {
            let path = file(t, "front-proxy-client", 1);
            fs::write(&path, "not a certificate").expect("writing");
            path
        }),
        ("unreadable", "a key that is not one", |t, _, _| {
            let path = file(t, "apiserver-kubelet-client", 0);
            fs::write(
                &path,
                "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
            )
            .expect("writing");
            path
        }),
        ("unreadable", "a kubeconfig that is not YAML", |t, _, _| {
            let path = file(t, "controller-manager", 0);
            fs::write(&path, "kind: [").expect("writing");
            path
        }),
        ("symlink", "a certificate replaced by a link", |t, o, _| {
            let path = file(t, "apiserver", 1);
            fs::remove_file(&path).expect("removing");
            std::os::unix::fs::symlink(file(o, "apiserver", 1), &path).expect("linking");
            path
        }),
        (
            "symlink",
            "the etcd directory replaced by a link",
            |t, o, _| {
                let path = t.dirs.cert_dir.join("etcd");
                fs::remove_dir_all(&path).expect("removing");
                std::os::unix::fs::symlink(o.dirs.cert_dir.join("etcd"), &path).expect("linking");
                path
            },
        ),
        (
            "key-mismatch",
            "a leaf's key from another tree",
            |t, o, _| {
                let path = file(t, "front-proxy-client", 0);
                fs::copy(file(o, "front-proxy-client", 0), &path).expect("copying");
                path
            },
        ),
        (
            "key-mismatch",
            "a kubeconfig embedding another key",
            |t, _, _| {
                let ca = fs::read(file(t, "ca", 1)).expect("ca.crt");
                embed(t, "admin", &ca, None, Some(&other_key_pem()));
                file(t, "admin", 0)
            },
        ),
        ("public-key-mismatch", "sa.pub of another key", |t, o, _| {
            let path = file(t, "sa", 1);
            fs::copy(file(o, "sa", 1), &path).expect("copying");
            path
        }),
        (
            "not-signed-by-ca",
            "a pair another etcd CA signed",
            |t, o, _| {
                for index in [0, 1] {
                    fs::copy(file(o, "etcd-peer", index), file(t, "etcd-peer", index))
                        .expect("copying");
                }
                file(t, "etcd-peer", 1)
            },
        ),
        (
            "expired",
            "a certificate that ended yesterday",
            |t, _, spec| {
                t.resign(spec, "apiserver", |p| {
                    p.not_before = spec.now - days(366);
                    p.not_after = spec.now - days(1);
                });
                file(t, "apiserver", 1)
            },
        ),
        ("not-yet-valid", "a NotBefore tomorrow", |t, _, spec| {
            t.resign(spec, "apiserver-kubelet-client", |p| {
                p.not_before = spec.now + days(1);
                p.not_after = spec.now + days(300);
            });
            file(t, "apiserver-kubelet-client", 1)
        }),
        ("outlives-ca", "a leaf ending after its CA", |t, _, spec| {
            t.resign(spec, "front-proxy-ca", |p| {
                p.not_after = spec.now + days(30)
            });
            file(t, "front-proxy-client", 1)
        }),
        (
            "ca-not-ca",
            "a CA certificate with CA:FALSE",
            |t, _, spec| {
                t.resign(spec, "etcd-ca", |p| p.is_ca = IsCa::ExplicitNoCa);
                file(t, "etcd-ca", 1)
            },
        ),
        (
            "ca-without-keycertsign",
            "a CA that may not sign certificates",
            |t, _, spec| {
                t.resign(spec, "front-proxy-ca", |p| {
                    p.key_usages = vec![
                        KeyUsagePurpose::DigitalSignature,
                        KeyUsagePurpose::KeyEncipherment,
                    ];
                });
                file(t, "front-proxy-ca", 1)
            },
        ),
        (
            "leaf-is-ca",
            "a client certificate with CA:TRUE",
            |t, _, spec| {
                t.resign(spec, "apiserver-etcd-client", |p| {
                    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                    p.custom_extensions.clear();
                });
                file(t, "apiserver-etcd-client", 1)
            },
        ),
        ("subject", "another common name", |t, _, spec| {
            t.resign(spec, "front-proxy-client", |p| {
                p.distinguished_name
                    .push(rcgen::DnType::CommonName, "front-proxy");
            });
            file(t, "front-proxy-client", 1)
        }),
        (
            "subject",
            "admin.conf in system:masters, as before kubeadm 1.29",
            |t, _, spec| {
                t.resign(spec, "admin", |p| {
                    p.distinguished_name
                        .push(rcgen::DnType::OrganizationName, "system:masters");
                });
                file(t, "admin", 0)
            },
        ),
        (
            "san-missing",
            "the API server without kubernetes.default",
            |t, _, spec| {
                t.resign(spec, "apiserver", |p| {
                p.subject_alt_names.retain(|san| !matches!(san, SanType::DnsName(n) if n.as_str() == "kubernetes.default"));
            });
                file(t, "apiserver", 1)
            },
        ),
        (
            "san-missing",
            "etcd serving without the node's address",
            |t, _, spec| {
                t.resign(spec, "etcd-server", |p| {
                    p.subject_alt_names
                        .retain(|san| *san != SanType::IpAddress(spec.advertise_address));
                });
                file(t, "etcd-server", 1)
            },
        ),
        (
            "san-extra",
            "a SAN the configuration dropped",
            |t, _, spec| {
                t.resign(spec, "apiserver", |p| {
                    p.subject_alt_names.push(SanType::DnsName(
                        "old.example.com".try_into().expect("a name"),
                    ));
                });
                file(t, "apiserver", 1)
            },
        ),
        (
            "ext-key-usage",
            "etcd peer without clientAuth",
            |t, _, spec| {
                t.resign(spec, "etcd-peer", |p| {
                    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
                });
                file(t, "etcd-peer", 1)
            },
        ),
        (
            "key-usage",
            "a client without digitalSignature",
            |t, _, spec| {
                t.resign(spec, "apiserver-kubelet-client", |p| {
                    p.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
                });
                file(t, "apiserver-kubelet-client", 1)
            },
        ),
        ("unknown-curve", "a P-521 key", |t, _, spec| {
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).expect("a key");
            t.resign_with(spec, "etcd-healthcheck-client", key, |_| {});
            file(t, "etcd-healthcheck-client", 1)
        }),
        (
            "algorithm",
            "a P-384 key where P-256 is configured",
            |t, _, spec| {
                let key = keys::generate(Algorithm::EcdsaP384).expect("a key");
                t.resign_with(spec, "scheduler", key, |_| {});
                file(t, "scheduler", 0)
            },
        ),
        (
            "validity-too-long",
            "two years where one is configured",
            |t, _, spec| {
                t.resign(spec, "apiserver", |p| p.not_after = spec.now + days(730));
                file(t, "apiserver", 1)
            },
        ),
        ("secret-mode", "a CA key others may read", |t, _, _| {
            let path = file(t, "etcd-ca", 0);
            chmod(&path, 0o640);
            path
        }),
        (
            "dir-mode",
            "an etcd directory anyone may write",
            |t, _, _| {
                let path = t.dirs.cert_dir.join("etcd");
                chmod(&path, 0o777);
                path
            },
        ),
        (
            "pem-blocks",
            "another CA after the cluster CA",
            |t, other, _| {
                let path = file(t, "ca", 1);
                let mut bundle = fs::read(&path).expect("ca.crt");
                bundle.extend(fs::read(file(other, "ca", 1)).expect("another CA"));
                fs::write(&path, bundle).expect("writing");
                path
            },
        ),
        (
            "writable-mode",
            "a certificate others may write",
            |t, _, _| {
                let path = file(t, "apiserver", 1);
                chmod(&path, 0o664);
                path
            },
        ),
        (
            "stray-file",
            "a copy left beside a certificate",
            |t, _, _| {
                let path = t.dirs.cert_dir.join("apiserver.crt.old");
                fs::write(&path, "x").expect("writing");
                path
            },
        ),
        (
            "kubeconfig-extra-ca",
            "a kubeconfig trusting a CA beside its own, as a rotation leaves the old one",
            |t, other, _| {
                let both = [
                    fs::read(file(t, "ca", 1)).expect("the CA"),
                    fs::read(file(other, "ca", 1)).expect("another CA"),
                ]
                .concat();
                embed(t, "admin", &both, None, None);
                file(t, "admin", 0)
            },
        ),
        (
            "kubeconfig-ca",
            "a kubeconfig embedding another CA",
            |t, _, _| {
                let other_ca = fs::read(file(t, "front-proxy-ca", 1)).expect("a CA");
                embed(t, "super-admin", &other_ca, None, None);
                file(t, "super-admin", 0)
            },
        ),
        (
            "kubeconfig-server",
            "a kubeconfig for another server",
            |t, _, _| {
                let path = file(t, "admin", 0);
                edit_text(&path, |text| {
                    text.replace("https://192.168.1.10:6443", "https://10.0.0.1:6443")
                });
                path
            },
        ),
        (
            "kubelet-client-missing",
            "kubelet.conf naming a file that is gone",
            |t, _, _| {
                let path = file(t, "kubelet", 0);
                edit_text(&path, |text| {
                    let at = text.find("    client-certificate-data").expect("embedded");
                    let end = text[at..].find('\n').expect("a line") + at;
                    format!(
                        "{}    client-certificate: /nonexistent/kubelet-client-current.pem{}",
                        &text[..at],
                        &text[end..]
                    )
                });
                path
            },
        ),
    ];

    #[test]
    fn each_planted_defect_is_found_with_its_id_and_nothing_else() {
        let spec = ecdsa_spec(&[]);
        let other = TestTree::written(&spec);
        assert!(CASES.len() >= 25);
        for (id, what, plant) in CASES {
            let tree = TestTree::written(&spec);
            assert_eq!(ids(&tree, &spec), [], "{what}: the clean tree");
            let path = plant(&tree, &other, &spec);
            let mut found = ids(&tree, &spec);
            if *id == "outlives-ca" {
                // A CA that ends before a one-year leaf ends within 90 days too.
                assert_eq!(found.first().map(|f| f.0), Some("ca-ending-soon"));
                found.remove(0);
            }
            assert_eq!(found, [(*id, path)], "{what}");
        }
        let ids: Vec<&str> = CASES.iter().map(|(id, _, _)| *id).collect();
        let unplanted: Vec<&str> = Check::ALL
            .iter()
            .map(|c| c.id())
            .filter(|id| !ids.contains(id))
            .collect();
        assert_eq!(
            unplanted,
            [
                "weak-rsa-key",
                "weak-signature",
                "owner",
                "ca-ending",
                "ca-ending-soon"
            ],
            "the first two are planted in tests/cli (with openssl), owner below, the CA's end \
             in tests/cli/broken.rs"
        );
    }

    #[test]
    fn a_file_another_user_owns_is_found() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        let path = file(&tree, "apiserver", 1);
        let dir_uid = reader::file_facts(&tree.dirs.cert_dir, Path::new(""))
            .expect("facts")
            .expect("the cert dir")
            .uid;
        match std::os::unix::fs::chown(&path, Some(dir_uid + 1), None) {
            Ok(()) => assert_eq!(ids(&tree, &spec), [("owner", path)]),
            // Not root: no file of another owner can be made; the rule itself is checked.
            Err(_) => assert!(owner_problem(dir_uid + 1, 0).is_some_and(|m| m.contains("root"))),
        }
        assert_eq!(owner_problem(0, 0), None);
    }
}
