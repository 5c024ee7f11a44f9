//! The one way to read a tree: a row's certificate, key, public key or kubeconfig as found
//! on disk, parsed into values, with the checks that judge them. Planning, renewal, expiry
//! and the small commands all read through here, and every problem is a `Problem` naming its
//! file. Private keys stay unparsed PEM until a caller needs the key itself (`FoundKey::load`);
//! whether one belongs to a certificate is read from its structure, which is cheap. Reads
//! only; never writes.

use super::TreeDirs;
use super::problem::{Place, Problem};
use super::store;
use crate::cluster::bootstrap::{TokenRecord, is_secret_manifest};
use crate::cluster::kubeconfig::Kubeconfig;
use crate::net::file::{self, Links, ReadError};
use crate::pki::inspect::{CertInfo, KeyKind, public_key_kind};
use crate::pki::trust::{self, Anchor, AnchorKind};
use crate::pki::{keys, pem};
use crate::profile::{
    KUBELET_CLIENT_CURRENT, Kind, PROFILES, Profile, Role, Scope, Trust, by_role, cert_subdirs,
};
use anyhow::{Context, anyhow};
use rcgen::{KeyPair, PublicKeyData};
use rustls_pki_types::SubjectPublicKeyInfoDer;
use rustls_pki_types::pem::PemObject;
use std::fmt;
use std::io::Read;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// The result of a read or a check.
pub type Checked<T> = Result<T, Problem>;

/// When `path` was last written (its mtime, the link itself not followed); `None` when it
/// cannot be told.
pub fn modified(path: &Path) -> Option<time::OffsetDateTime> {
    let modified = std::fs::symlink_metadata(path).ok()?.modified().ok()?;
    Some(time::OffsetDateTime::from(modified))
}

/// Reads `root/rel` if it exists, refusing symlinks below `root`.
pub fn read_file(root: &Path, rel: &Path) -> Checked<Option<Vec<u8>>> {
    store::read_optional(root, rel).map_err(|e| Problem::Unreadable(format!("{e:#}")))
}

/// A certificate as found: where it is and what it says.
#[derive(Clone, Debug)]
pub struct FoundCert {
    /// Its file, or the kubeconfig it is embedded in.
    pub place: Place,
    /// Its content.
    pub info: CertInfo,
}

impl FoundCert {
    /// Parses the first certificate of `bytes`, found at `place`.
    pub fn parse(place: Place, bytes: &[u8]) -> Checked<FoundCert> {
        let info = pem::first_certificate(bytes)
            .and_then(CertInfo::parse)
            .map_err(|e| Problem::BadCertificate {
                path: place.path().clone(),
                why: format!("{e:#}"),
            })?;
        Ok(FoundCert { place, info })
    }

    /// The file that holds it.
    pub fn path(&self) -> &Path {
        self.place.path()
    }

    /// It must be a CA certificate.
    pub fn check_is_ca(&self) -> Checked<()> {
        match self.info.is_ca {
            true => Ok(()),
            false => Err(Problem::NotCa(self.path().to_path_buf())),
        }
    }

    /// It must not be expired at `now`.
    pub fn check_current(&self, now: OffsetDateTime) -> Checked<()> {
        match self.info.not_after <= now {
            true => Err(Problem::Expired {
                path: self.path().to_path_buf(),
                on: self.info.not_after.date(),
            }),
            false => Ok(()),
        }
    }

    /// It must be signed by `ca`, the certificate of the CA row `issuer`.
    pub fn check_signed_by(&self, ca: &CertInfo, issuer: &'static str) -> Checked<()> {
        self.info
            .verify_signed_by(ca)
            .map_err(|e| Problem::NotSignedBy {
                place: self.place.clone(),
                issuer,
                why: e.to_string(),
            })
    }

    /// It must be signed by one of `trusted`, what readers of the CA row `issuer` trust (its
    /// signer first, then a CA coming or going during a rotation); when none signed it, the
    /// problem names the signer.
    pub fn check_signed_by_any(&self, trusted: &[CertInfo], issuer: &'static str) -> Checked<()> {
        let mut problems = trusted.iter().map(|ca| self.check_signed_by(ca, issuer));
        let first = match problems.next() {
            Some(Ok(())) => return Ok(()),
            Some(Err(problem)) => problem,
            None => {
                return Err(Problem::CaAbsent {
                    path: self.path().to_path_buf(),
                    issuer,
                });
            }
        };
        match problems.any(|p| p.is_ok()) {
            true => Ok(()),
            false => Err(first),
        }
    }

    /// It must carry every one of these SANs.
    pub fn check_sans(&self, dns_names: &[String], ips: &[IpAddr]) -> Checked<()> {
        let missing: Vec<String> = dns_names
            .iter()
            .filter(|name| !self.info.covers_dns(name))
            .cloned()
            .chain(
                ips.iter()
                    .filter(|ip| !self.info.ips.contains(ip))
                    .map(IpAddr::to_string),
            )
            .collect();
        match missing.is_empty() {
            true => Ok(()),
            false => Err(Problem::MissingSans {
                path: self.path().to_path_buf(),
                missing,
            }),
        }
    }
}

/// A private key as found, not yet loaded. `Debug` never shows it.
#[derive(Clone)]
pub struct FoundKey {
    /// Its file, or the kubeconfig it is embedded in.
    pub place: Place,
    pem: Vec<u8>,
}

impl fmt::Debug for FoundKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FoundKey({:?}, <redacted>)", self.place)
    }
}

impl FoundKey {
    /// Loads (and so validates) the key.
    pub fn load(&self) -> Checked<KeyPair> {
        keys::from_pem(&self.pem).map_err(|e| self.bad(e))
    }

    /// It must be the key of `cert`, read from the key's structure without loading it.
    pub fn check_belongs_to(&self, cert: &FoundCert) -> Checked<()> {
        let public = keys::public_key_of(&self.pem).map_err(|e| self.bad(e))?;
        match public == cert.info.public_key {
            true => Ok(()),
            false => Err(self.mismatch(cert)),
        }
    }

    /// `key`, this file's key loaded, must be the key of `cert`.
    pub fn check_loaded_belongs_to(&self, key: &KeyPair, cert: &FoundCert) -> Checked<()> {
        match cert.info.matches_key(key) {
            true => Ok(()),
            false => Err(self.mismatch(cert)),
        }
    }

    fn bad(&self, error: anyhow::Error) -> Problem {
        Problem::BadKey {
            place: self.place.clone(),
            why: format!("{error:#}"),
        }
    }

    fn mismatch(&self, cert: &FoundCert) -> Problem {
        match &self.place {
            Place::Kubeconfig(path) => Problem::EmbeddedKeyMismatch(path.clone()),
            Place::File(key) => Problem::KeyMismatch {
                key: key.clone(),
                cert: cert.path().to_path_buf(),
            },
        }
    }
}

/// A certificate/key pair row (a CA or a leaf) as found; either file may be missing.
#[derive(Debug)]
pub struct FoundPair {
    /// `<cert-dir>/<file>.crt`.
    pub cert_path: PathBuf,
    /// `<cert-dir>/<file>.key`.
    pub key_path: PathBuf,
    /// The certificate, when its file exists.
    pub cert: Option<FoundCert>,
    /// The key, when its file exists.
    pub key: Option<FoundKey>,
}

/// Reads the certificate and key of a CA or leaf row.
pub fn read_pair(dirs: &TreeDirs, row: &Profile) -> Checked<FoundPair> {
    let (cert_rel, key_rel) = (
        row.cert_file().unwrap_or_default(),
        row.key_file().unwrap_or_default(),
    );
    let root = dirs.root_of(row);
    let (cert_path, key_path) = (root.join(&cert_rel), root.join(&key_rel));
    let cert = read_file(root, &cert_rel)?
        .map(|bytes| {
            check_blocks(&bytes, &["CERTIFICATE"], true).map_err(|why| {
                Problem::BadCertificate {
                    path: cert_path.clone(),
                    why,
                }
            })?;
            FoundCert::parse(Place::File(cert_path.clone()), &bytes)
        })
        .transpose()?;
    let key = read_key_file(root, &key_rel)?;
    Ok(FoundPair {
        cert_path,
        key_path,
        cert,
        key,
    })
}

/// Reads the private key file `root/rel`, which must hold one private key block and nothing
/// after it; `None` when absent.
fn read_key_file(root: &Path, rel: &Path) -> Checked<Option<FoundKey>> {
    let place = Place::File(root.join(rel));
    let Some(pem) = read_file(root, rel)? else {
        return Ok(None);
    };
    check_blocks(&pem, pem::PRIVATE_KEY_LABELS, false).map_err(|why| Problem::BadKey {
        place: place.clone(),
        why,
    })?;
    Ok(Some(FoundKey { place, pem }))
}

/// A PEM file of the tree holds blocks of `labels` only (a private key in a certificate
/// file is refused), one unless `many` (a certificate file may hold a bundle during a
/// rotation, the signer first), and nothing after the last.
fn check_blocks(bytes: &[u8], labels: &[&str], many: bool) -> Result<(), String> {
    pem::blocks(bytes, labels, many)
        .map(drop)
        .map_err(|e| format!("{e:#}"))
}

/// Whether the key file of a row with one exists (a CA without it is external).
pub fn key_exists(dirs: &TreeDirs, row: &Profile) -> Checked<bool> {
    let key_rel = row.key_file().unwrap_or_default();
    Ok(read_file(dirs.root_of(row), &key_rel)?.is_some())
}

/// A bare key pair row (`sa`) as found; either file may be missing.
#[derive(Debug)]
pub struct FoundKeyPair {
    /// `<cert-dir>/<file>.key`.
    pub key_path: PathBuf,
    /// `<cert-dir>/<file>.pub`.
    pub public_path: PathBuf,
    /// The private key, when its file exists.
    pub key: Option<FoundKey>,
    /// The public key PEM, when its file exists.
    pub public_pem: Option<Vec<u8>>,
}

impl FoundKeyPair {
    /// The public key file must hold `key`'s public key: first, or during a rotation of the
    /// key pair beside the key coming or going (kube-apiserver's
    /// `--service-account-key-file` takes every key of the file).
    pub fn check_public(&self, key: &KeyPair, public_pem: &[u8]) -> Checked<()> {
        SubjectPublicKeyInfoDer::from_pem_slice(public_pem).map_err(|e| Problem::BadPublicKey {
            path: self.public_path.clone(),
            why: pem::describe(&e),
        })?;
        let all =
            trust::parse(AnchorKind::PublicKey, public_pem).map_err(|e| Problem::BadPublicKey {
                path: self.public_path.clone(),
                why: format!("{e:#}"),
            })?;
        let spki = key.subject_public_key_info();
        match all.iter().any(|a| a.spki() == spki) {
            true => Ok(()),
            false => Err(Problem::PublicKeyMismatch {
                public: self.public_path.clone(),
                key: self.key_path.clone(),
            }),
        }
    }

    /// The kind of the public key file's key (its algorithm and size or curve).
    pub fn public_kind(&self, public_pem: &[u8]) -> Checked<KeyKind> {
        let bad = |why: String| Problem::BadPublicKey {
            path: self.public_path.clone(),
            why,
        };
        let public = SubjectPublicKeyInfoDer::from_pem_slice(public_pem)
            .map_err(|e| bad(pem::describe(&e)))?;
        public_key_kind(public.as_ref()).map_err(|e| bad(format!("{e:#}")))
    }
}

/// Reads the private and public key of a key pair row.
pub fn read_key_pair(dirs: &TreeDirs, row: &Profile) -> Checked<FoundKeyPair> {
    let (key_rel, public_rel) = (
        row.key_file().unwrap_or_default(),
        row.pub_file().unwrap_or_default(),
    );
    let (key_path, public_path) = (
        dirs.cert_dir.join(&key_rel),
        dirs.cert_dir.join(&public_rel),
    );
    let key = read_key_file(&dirs.cert_dir, &key_rel)?;
    let public_pem = read_file(&dirs.cert_dir, &public_rel)?;
    if let Some(public) = &public_pem {
        check_blocks(public, &["PUBLIC KEY"], true).map_err(|why| Problem::BadPublicKey {
            path: public_path.clone(),
            why,
        })?;
    }
    Ok(FoundKeyPair {
        key_path,
        public_path,
        key,
        public_pem,
    })
}

/// The client certificate of a kubeconfig.
#[derive(Debug)]
pub enum Client {
    /// Embedded, with its key (`client-certificate-data`, `client-key-data`).
    Embedded {
        /// The certificate.
        cert: FoundCert,
        /// The key.
        key: FoundKey,
    },
    /// In a file the kubeconfig points at (the kubelet's rotated
    /// `kubelet-client-current.pem`), whose key kubepki does not manage.
    Pointed(FoundCert),
}

/// A kubeconfig row as found.
#[derive(Debug)]
pub struct FoundKubeconfig {
    /// The file.
    pub path: PathBuf,
    /// Its content.
    pub kubeconfig: Kubeconfig,
    /// Its client certificate.
    pub client: Client,
}

impl FoundKubeconfig {
    /// The client certificate, wherever it is.
    pub fn cert(&self) -> &FoundCert {
        match &self.client {
            Client::Embedded { cert, .. } | Client::Pointed(cert) => cert,
        }
    }

    /// The embedded certificate and key; a kubeconfig whose certificate is in another file
    /// has none.
    pub fn embedded(&self) -> Checked<(&FoundCert, &FoundKey)> {
        match &self.client {
            Client::Embedded { cert, key } => Ok((cert, key)),
            Client::Pointed(_) => Err(self.bad(anyhow!("no embedded client-certificate-data"))),
        }
    }

    /// The current context's server, which must be an `https://` URL.
    pub fn server(&self) -> Checked<&str> {
        self.kubeconfig.server().map_err(|e| self.bad(e))
    }

    /// The embedded CA must be `ca`, the certificate of the CA row `issuer`.
    pub fn check_ca(&self, ca: &CertInfo, issuer: &'static str) -> Checked<()> {
        let ca_pem = self
            .kubeconfig
            .client_credentials()
            .map(|creds| creds.ca_pem)
            .map_err(|e| self.bad(e))?;
        let embedded = pem::first_certificate(&ca_pem)
            .map_err(|e| self.bad(e.context("certificate-authority-data")))?;
        match embedded.as_ref() == ca.der.as_ref() {
            true => Ok(()),
            false => Err(Problem::WrongEmbeddedCa {
                path: self.path.clone(),
                issuer,
            }),
        }
    }

    fn bad(&self, error: anyhow::Error) -> Problem {
        bad_kubeconfig(&self.path, error)
    }
}

fn bad_kubeconfig(path: &Path, error: anyhow::Error) -> Problem {
    Problem::BadKubeconfig {
        path: path.to_path_buf(),
        why: format!("{error:#}"),
    }
}

/// Reads and parses a kubeconfig row's file, without looking at its credentials; `None`
/// when it does not exist.
pub fn read_kubeconfig_file(
    dirs: &TreeDirs,
    row: &Profile,
) -> Checked<Option<(PathBuf, Kubeconfig)>> {
    let path = dirs.kubeconfig_dir.join(row.file);
    let Some(bytes) = read_file(&dirs.kubeconfig_dir, Path::new(row.file))? else {
        return Ok(None);
    };
    let kubeconfig = Kubeconfig::parse(&bytes).map_err(|e| bad_kubeconfig(&path, e))?;
    Ok(Some((path, kubeconfig)))
}

/// A kubeconfig row's file, parsed, with the CA certificates its cluster embeds
/// (`certificate-authority-data`, which may be a bundle); `None` when it does not exist.
pub fn read_kubeconfig_trust(
    dirs: &TreeDirs,
    row: &Profile,
) -> Checked<Option<(PathBuf, Kubeconfig, Vec<Anchor>)>> {
    let Some((path, kubeconfig)) = read_kubeconfig_file(dirs, row)? else {
        return Ok(None);
    };
    let ca_pem = kubeconfig
        .cluster_ca_pem()
        .map_err(|e| bad_kubeconfig(&path, e))?;
    let anchors =
        trust::parse(AnchorKind::Certificate, &ca_pem).map_err(|e| Problem::BadTrust {
            path: path.clone(),
            why: format!("certificate-authority-data: {e:#}"),
        })?;
    Ok(Some((path, kubeconfig, anchors)))
}

/// Reads a kubeconfig row with its client certificate (embedded, or in the file it points
/// at); `None` when the kubeconfig does not exist.
pub fn read_kubeconfig(dirs: &TreeDirs, row: &Profile) -> Checked<Option<FoundKubeconfig>> {
    let Some((path, kubeconfig)) = read_kubeconfig_file(dirs, row)? else {
        return Ok(None);
    };
    let pointed = kubeconfig
        .client_certificate_file()
        .map_err(|e| bad_kubeconfig(&path, e))?;
    let client = match pointed {
        Some(file) => Client::Pointed(read_pointed_cert(&path, Path::new(&file))?),
        None => {
            let creds = kubeconfig
                .client_credentials()
                .map_err(|e| bad_kubeconfig(&path, e))?;
            Client::Embedded {
                cert: FoundCert::parse(Place::Kubeconfig(path.clone()), &creds.cert_pem)?,
                key: FoundKey {
                    place: Place::Kubeconfig(path.clone()),
                    pem: creds.key_pem,
                },
            }
        }
    };
    Ok(Some(FoundKubeconfig {
        path,
        kubeconfig,
        client,
    }))
}

/// The certificate file a kubeconfig points at (outside the tree, e.g. the kubelet's own).
fn read_pointed_cert(kubeconfig: &Path, cert: &Path) -> Checked<FoundCert> {
    let unreadable = |e: &dyn fmt::Display| {
        Problem::Unreadable(format!(
            "{}: reading {}: {e}",
            kubeconfig.display(),
            cert.display()
        ))
    };
    let bytes = file::read_regular(cert, Links::Follow, file::MAX_FILE_BYTES)
        .map_err(|e| unreadable(&e))?
        .ok_or_else(|| Problem::PointedCertMissing {
            kubeconfig: kubeconfig.to_path_buf(),
            cert: cert.to_path_buf(),
        })?;
    FoundCert::parse(Place::File(cert.to_path_buf()), &bytes)
}

/// A row's certificate as found, wherever the row keeps it.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // a handful per run, moved once; boxing would buy nothing
pub enum Found {
    /// A CA or leaf: `<file>.crt`, and its key when present.
    Pair {
        /// The certificate.
        cert: FoundCert,
        /// The key, when its file exists.
        key: Option<FoundKey>,
    },
    /// A kubeconfig and its client certificate.
    Kubeconfig(FoundKubeconfig),
}

impl Found {
    /// The certificate.
    pub fn cert(&self) -> &FoundCert {
        match self {
            Found::Pair { cert, .. } => cert,
            Found::Kubeconfig(found) => found.cert(),
        }
    }
}

/// Reads the certificate of any row that has one; `None` when it is missing (and for key
/// pairs, which have none).
pub fn read_row(dirs: &TreeDirs, row: &Profile) -> Checked<Option<Found>> {
    match row.kind {
        Kind::Kubeconfig(_) => Ok(read_kubeconfig(dirs, row)?.map(Found::Kubeconfig)),
        Kind::Ca | Kind::Leaf => {
            let pair = read_pair(dirs, row)?;
            Ok(pair.cert.map(|cert| Found::Pair {
                cert,
                key: pair.key,
            }))
        }
        Kind::KeyPair => Ok(None),
    }
}

/// A CA as found: its certificate, checked to be a CA, and its key when present, checked
/// (structurally) to belong to it.
#[derive(Debug)]
pub struct FoundCa {
    /// The CA certificate: the first of its file, the one that signs.
    pub cert: FoundCert,
    /// The key; `None` for an external CA.
    pub key: Option<FoundKey>,
    /// What its readers trust, the signer first: during a rotation, also the CA coming or
    /// going (see `trusted_with`).
    pub trust: Vec<CertInfo>,
}

impl FoundCa {
    /// Whether the key is absent (an external CA).
    pub fn is_external(&self) -> bool {
        self.key.is_none()
    }

    /// The key, loaded; `None` for an external CA.
    pub fn signing_key(&self) -> Checked<Option<KeyPair>> {
        let Some(found) = &self.key else {
            return Ok(None);
        };
        let key = found.load()?;
        found.check_loaded_belongs_to(&key, &self.cert)?;
        Ok(Some(key))
    }
}

/// Reads a CA row: the certificate must exist and be a CA; a present key must belong to it.
pub fn read_ca(dirs: &TreeDirs, ca: &Profile) -> Checked<FoundCa> {
    let pair = read_pair(dirs, ca)?;
    let cert = pair.cert.ok_or(Problem::CaMissing(pair.cert_path))?;
    cert.check_is_ca()?;
    if let Some(key) = &pair.key {
        key.check_belongs_to(&cert)?;
    }
    let trust = trusted_with(dirs, ca, &cert.info)?;
    Ok(FoundCa {
        cert,
        key: pair.key,
        trust,
    })
}

/// A trust file as found: the certificates (or public keys) it holds, in order.
#[derive(Debug)]
pub struct FoundTrust {
    /// The file.
    pub path: PathBuf,
    /// What it holds, the signer first.
    pub anchors: Vec<Anchor>,
}

/// What a row's trust file holds: CA certificates, or a key pair's public keys.
pub fn anchor_kind(row: &Profile) -> AnchorKind {
    match row.kind {
        Kind::KeyPair => AnchorKind::PublicKey,
        _ => AnchorKind::Certificate,
    }
}

/// Reads `rel` under the cert dir as a trust file of `row`'s kind; `None` when absent.
pub fn read_anchors(dirs: &TreeDirs, row: &Profile, rel: &Path) -> Checked<Option<FoundTrust>> {
    let path = dirs.cert_dir.join(rel);
    let Some(bytes) = read_file(&dirs.cert_dir, rel)? else {
        return Ok(None);
    };
    let anchors = trust::parse(anchor_kind(row), &bytes).map_err(|e| Problem::BadTrust {
        path: path.clone(),
        why: format!("{e:#}"),
    })?;
    Ok(Some(FoundTrust { path, anchors }))
}

/// The row's trust file (`Profile::trust_file`) as found; `None` when it is absent or the
/// row trusts nothing.
pub fn read_trust(dirs: &TreeDirs, row: &Profile) -> Checked<Option<FoundTrust>> {
    match row.trust_file() {
        Some(rel) => read_anchors(dirs, row, &rel),
        None => Ok(None),
    }
}

/// Whether the row's readers are pointed at a trust file of its own (`Trust::Separate`):
/// while it holds more than one certificate, that is during a rotation. Its path then.
pub fn separate_trust_in_use(dirs: &TreeDirs, row: &Profile) -> Checked<Option<PathBuf>> {
    if !matches!(row.trust, Trust::Separate(_)) {
        return Ok(None);
    }
    let found = read_trust(dirs, row)?;
    Ok(found.filter(|t| t.anchors.len() > 1).map(|t| t.path))
}

/// What the readers of the CA row `row` trust, `signer` (its certificate) first, then any
/// other certificate of its trust file: its own certificate file, or its separate file while
/// that is in use. Outside a rotation, just `signer`.
pub fn trusted_with(dirs: &TreeDirs, row: &Profile, signer: &CertInfo) -> Checked<Vec<CertInfo>> {
    let found = match row.trust {
        Trust::Separate(_) if separate_trust_in_use(dirs, row)?.is_none() => None,
        _ => read_trust(dirs, row)?,
    };
    let others = found
        .into_iter()
        .flat_map(|t| t.anchors)
        .filter_map(|anchor| anchor.cert().cloned())
        .filter(|cert| cert.der != signer.der);
    Ok(std::iter::once(signer.clone()).chain(others).collect())
}

/// Reads a CA row that is to sign at `now`: as `read_ca`, and not expired (whatever it
/// signed would not verify).
pub fn read_signing_ca(dirs: &TreeDirs, ca: &Profile, now: OffsetDateTime) -> Checked<FoundCa> {
    let found = read_ca(dirs, ca)?;
    if found.cert.info.not_after <= now {
        return Err(Problem::ExpiredCa {
            path: found.cert.path().to_path_buf(),
            on: found.cert.info.not_after.date(),
        });
    }
    Ok(found)
}

/// The tree a command reads or renews must be there: both directories and the cluster CA's
/// certificate. A mistyped directory is an error naming it, never an empty tree to report.
pub fn require_tree(dirs: &TreeDirs) -> Checked<()> {
    require_dirs(dirs)?;
    let ca = by_role(Role::ClusterCa);
    let ca_cert = ca.cert_file().unwrap_or_default();
    match read_file(&dirs.cert_dir, &ca_cert)? {
        Some(_) => Ok(()),
        None => Err(Problem::CaMissing(dirs.cert_dir.join(ca_cert))),
    }
}

/// Both directories of the tree must be there (a writing command checks this before it
/// locks them, so that a mistyped directory is never created).
pub fn require_dirs(dirs: &TreeDirs) -> Checked<()> {
    for dir in [&dirs.cert_dir, &dirs.kubeconfig_dir] {
        store::check_dir_not_link(dir).map_err(|e| Problem::Unreadable(format!("{e:#}")))?;
        if !dir.is_dir() {
            return Err(Problem::NoTree(dir.clone()));
        }
    }
    Ok(())
}

/// admin.conf, whose cluster (server and CA) the manifests and join commands publish: it
/// must exist, name an `https://` server and embed a CA certificate.
pub fn read_admin(dirs: &TreeDirs) -> Checked<Kubeconfig> {
    let admin = by_role(Role::Admin);
    let (path, kubeconfig) =
        read_kubeconfig_file(dirs, admin)?.ok_or_else(|| Problem::Missing {
            path: dirs.kubeconfig_dir.join(admin.file),
            hint: format!("run `{}` first", dirs.command("init")),
        })?;
    kubeconfig
        .check_cluster()
        .map_err(|e| bad_kubeconfig(&path, e))?;
    Ok(kubeconfig)
}

/// The files of the tree that hold a private key (key files and kubeconfigs) whose mode lets
/// group or others in, with that mode. kubeadm writes them 0600; kubepki warns, never chmods.
pub fn open_secrets(dirs: &TreeDirs) -> Vec<(PathBuf, u32)> {
    let files = PROFILES.iter().filter_map(|row| match row.kind {
        Kind::Kubeconfig(_) => Some(dirs.kubeconfig_dir.join(row.file)),
        _ => row.key_file().map(|key| dirs.root_of(row).join(key)),
    });
    files
        .filter_map(|path| {
            let meta = std::fs::symlink_metadata(&path).ok()?;
            let mode = meta.permissions().mode() & 0o777;
            (meta.is_file() && mode & 0o077 != 0).then_some((path, mode))
        })
        .collect()
}

/// The kubelet's rotated client certificate as found: `kubelet-client-current.pem` in its
/// certificate directory, one PEM file holding the certificate and its key.
#[derive(Debug)]
pub struct RotatedClient {
    /// The certificate (its place is `kubelet-client-current.pem`).
    pub cert: FoundCert,
    /// The key, from the same file.
    pub key: FoundKey,
}

impl RotatedClient {
    /// `kubelet-client-current.pem`, as a kubeconfig names it.
    pub fn path(&self) -> &Path {
        self.cert.path()
    }
}

/// Reads `<kubelet-dir>/kubelet-client-current.pem`, `None` when it is not there. The
/// kubelet makes it a symlink to the newest `kubelet-client-<time>.pem` beside it; that one
/// link is followed when it stays in the directory, and refused when it leads out of it.
pub fn read_rotated_client(dirs: &TreeDirs) -> Checked<Option<RotatedClient>> {
    let dir = &dirs.kubelet_dir;
    let path = dir.join(KUBELET_CLIENT_CURRENT);
    let unreadable = |why: String| Problem::Unreadable(format!("{}: {why}", path.display()));
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(e.to_string())),
    };
    let name = match meta.file_type().is_symlink() {
        false => PathBuf::from(KUBELET_CLIENT_CURRENT),
        true => link_beside(dir, &path).map_err(unreadable)?,
    };
    let bytes = read_file(dir, &name)?.ok_or_else(|| {
        unreadable(format!(
            "links to {}, which is not there",
            dir.join(&name).display()
        ))
    })?;
    let place = Place::File(path.clone());
    Ok(Some(RotatedClient {
        cert: FoundCert::parse(place.clone(), &bytes)?,
        key: FoundKey { place, pem: bytes },
    }))
}

/// The name, in `dir`, of the file the symlink `link` (in `dir`) points at; an error when it
/// points anywhere else.
fn link_beside(dir: &Path, link: &Path) -> Result<PathBuf, String> {
    let target = std::fs::read_link(link).map_err(|e| e.to_string())?;
    let name = target
        .file_name()
        .map(PathBuf::from)
        .ok_or_else(|| format!("links to {}, not a file", target.display()))?;
    let parent = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => dir.join(parent),
        _ => dir.to_path_buf(),
    };
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    match same(&parent, dir) {
        true => Ok(name),
        false => Err(format!(
            "links to {} outside {}: not followed",
            target.display(),
            dir.display()
        )),
    }
}

/// What a file of the tree is, read without following a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileFacts {
    /// Its path.
    pub path: PathBuf,
    /// What it is.
    pub kind: FileKind,
    /// Its permission bits.
    pub mode: u32,
    /// Its owner's uid.
    pub uid: u32,
}

/// The type of a file of the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (never followed).
    Symlink,
    /// Anything else (a socket, a device, a pipe).
    Other,
}

/// The facts of `root/rel` itself (a link is reported, not followed); `None` when it does
/// not exist. Only components below `root` are looked at.
pub fn file_facts(root: &Path, rel: &Path) -> Checked<Option<FileFacts>> {
    use std::os::unix::fs::MetadataExt;
    let path = root.join(rel);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Problem::Unreadable(format!("{}: {e}", path.display()))),
    };
    let kind = match meta.file_type() {
        t if t.is_symlink() => FileKind::Symlink,
        t if t.is_dir() => FileKind::Dir,
        t if t.is_file() => FileKind::File,
        _ => FileKind::Other,
    };
    Ok(Some(FileFacts {
        path,
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
    }))
}

/// Files below the cert dir that no row of the table owns (a link counts as a file and is
/// not followed), in path order: a rotation's own files (a trust file such as
/// `ca-bundle.crt`, the staged CA under `next/`) are owned too. A directory that cannot be
/// listed is an error.
pub fn unknown_files(dirs: &TreeDirs) -> Checked<Vec<PathBuf>> {
    let rotation = PROFILES
        .iter()
        .filter(|row| row.scope == Scope::ControlPlane)
        .flat_map(|row| row.trust_file().into_iter().chain(row.pending_files()));
    let known: Vec<PathBuf> = PROFILES
        .iter()
        .filter(|row| row.scope == Scope::ControlPlane)
        .flat_map(|row| [row.key_file(), row.cert_file(), row.pub_file()])
        .flatten()
        .chain(rotation)
        .collect();
    let subdirs = cert_subdirs();
    let mut unknown = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = dirs.cert_dir.join(&rel);
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| Problem::Unreadable(format!("{}: {e}", dir.display())))?;
        for entry in entries.flatten() {
            let child = rel.join(entry.file_name());
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(child),
                _ if known.contains(&child) || subdirs.contains(&child) => {}
                _ => unknown.push(dirs.cert_dir.join(child)),
            }
        }
    }
    unknown.sort();
    Ok(unknown)
}

/// The tree's recorded configuration at `path` (`TreeDirs::record_file`), or `None` when
/// there is none. A link or anything but a regular file there is refused, naming it.
pub fn read_record(path: &Path) -> anyhow::Result<Option<crate::config::InitConfig>> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow!("{}: {e}", path.display())),
        Ok(meta) if !meta.is_file() => Err(anyhow!(
            "{}: not a regular file (where kubepki records the tree's configuration)",
            path.display()
        )),
        Ok(_) => crate::config::InitConfig::load(path).map(Some),
    }
}

/// The most a bundle file may hold. kubeadm's largest (RSA-4096 keys, as `kubectl get -o
/// yaml` prints it with its metadata) is under 32 KiB: 256 KiB leaves a margin of eight, and
/// bounds what the YAML parser is given.
const MAX_BUNDLE_BYTES: u64 = 256 << 10;

/// A bundle file as read, outside the tree.
pub struct BundleFile {
    /// Its path as given, or `standard input` for `-`, for messages.
    pub name: PathBuf,
    /// Its content.
    pub bytes: Vec<u8>,
}

/// Reads the bundle file `path` (`-`: standard input), refusing more than 256 KiB and
/// anything but a regular file.
pub fn read_bundle(path: &Path) -> Checked<BundleFile> {
    let from_stdin = path == Path::new("-");
    let name = match from_stdin {
        true => PathBuf::from("standard input"),
        false => path.to_path_buf(),
    };
    let unreadable = |e: &dyn fmt::Display| Problem::Unreadable(format!("{}: {e}", name.display()));
    let too_large = || {
        Problem::Unreadable(format!(
            "{}: larger than {MAX_BUNDLE_BYTES} bytes, which no bundle is",
            name.display()
        ))
    };
    let bytes = match from_stdin {
        true => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .lock()
                .take(MAX_BUNDLE_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| unreadable(&e))?;
            bytes
        }
        false => match file::read_named(path, MAX_BUNDLE_BYTES) {
            Ok(bytes) => bytes,
            Err(ReadError::TooLarge(_)) => return Err(too_large()),
            Err(e) => return Err(unreadable(&e)),
        },
    };
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(too_large());
    }
    Ok(BundleFile { name, bytes })
}

/// Every token Secret manifest in `dir` (none when `dir` does not exist), by file name.
pub fn read_tokens(dir: &Path) -> anyhow::Result<Vec<TokenRecord>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| is_secret_manifest(name))
        .collect();
    names.sort();
    names
        .iter()
        .map(|name| {
            let path = dir.join(name);
            let yaml = store::read_optional(dir, Path::new(name))?
                .ok_or_else(|| anyhow!("{} vanished while being read", path.display()))?;
            TokenRecord::from_secret_manifest(&yaml).with_context(|| path.display().to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testgen::{ca_pem, edited, one_line};
    use proptest::prelude::*;

    /// Every reader of certificates on `bytes` from `path`: no panic; one-line errors that
    /// name the file.
    fn check_certificate_readers(path: &Path, bytes: &[u8]) -> Result<(), TestCaseError> {
        if let Err(e) = FoundCert::parse(Place::File(path.into()), bytes) {
            let message = e.to_string();
            prop_assert!(one_line(&message), "{}", message);
            prop_assert!(
                message.starts_with(&format!("{}: ", path.display())),
                "{}",
                message
            );
        }
        let _ = crate::pki::pin::CaPin::of_bundle(bytes);
        let _ = crate::net::https::Trust::from_pem(bytes);
        Ok(())
    }

    use crate::profile::by_name;
    use crate::testtree::{TestTree, ecdsa_spec};
    use std::fs;

    fn row(name: &str) -> &'static Profile {
        by_name(name).expect("a row")
    }

    #[test]
    fn every_row_with_a_certificate_is_read_where_it_lives() {
        let tree = TestTree::written(&ecdsa_spec(&[]));
        for profile in PROFILES {
            let found = read_row(&tree.dirs, profile).expect("readable");
            match (profile.kind, found) {
                (Kind::KeyPair, None) => {}
                (_, None) if profile.is_optional() => {}
                (Kind::Kubeconfig(_), Some(Found::Kubeconfig(k))) => {
                    let (cert, key) = k.embedded().expect("embedded");
                    key.check_belongs_to(cert).expect("its key");
                    assert_eq!(cert.place, Place::Kubeconfig(k.path.clone()));
                }
                (
                    Kind::Ca | Kind::Leaf,
                    Some(Found::Pair {
                        cert,
                        key: Some(key),
                    }),
                ) => {
                    key.check_belongs_to(&cert).expect("its key");
                    let loaded = key.load().expect("a key");
                    key.check_loaded_belongs_to(&loaded, &cert)
                        .expect("its key");
                }
                (kind, found) => panic!("{}: {kind:?} read as {found:?}", profile.name),
            }
        }
        tree.remove("apiserver", |_| true);
        assert!(
            read_row(&tree.dirs, row("apiserver"))
                .expect("readable")
                .is_none()
        );
    }

    #[test]
    fn a_key_of_another_certificate_is_named_with_both_files() {
        let tree = TestTree::written(&ecdsa_spec(&[]));
        let [key, cert] = [0, 1].map(|i| tree.files_of("apiserver")[i].clone());
        fs::copy(&tree.files_of("front-proxy-client")[0], &key).expect("copying");
        let pair = read_pair(&tree.dirs, row("apiserver")).expect("readable");
        let (found_cert, found_key) = (pair.cert.expect("a cert"), pair.key.expect("a key"));
        let expected = Problem::KeyMismatch {
            key: key.clone(),
            cert: cert.clone(),
        };
        assert_eq!(
            found_key.check_belongs_to(&found_cert),
            Err(expected.clone())
        );
        let loaded = found_key.load().expect("a valid key");
        assert_eq!(
            found_key.check_loaded_belongs_to(&loaded, &found_cert),
            Err(expected)
        );
        fs::write(&key, "garbage").expect("writing");
        let problem = read_pair(&tree.dirs, row("apiserver")).expect_err("not a key");
        assert!(
            problem
                .to_string()
                .starts_with(&format!("{}: not a valid private key: ", key.display())),
            "{problem}"
        );
    }

    #[test]
    fn a_ca_must_exist_be_a_ca_and_be_current_to_sign() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        let ca = read_signing_ca(&tree.dirs, row("ca"), spec.now).expect("a CA");
        assert!(!ca.is_external() && ca.signing_key().expect("loads").is_some());
        let later = spec.now + time::Duration::days(3651);
        assert!(matches!(
            read_signing_ca(&tree.dirs, row("ca"), later),
            Err(Problem::ExpiredCa { .. })
        ));
        let [ca_key, ca_cert] = [0, 1].map(|i| tree.files_of("ca")[i].clone());
        fs::copy(&tree.files_of("apiserver")[1], &ca_cert).expect("copying");
        assert_eq!(
            read_ca(&tree.dirs, row("ca")).err(),
            Some(Problem::NotCa(ca_cert.clone()))
        );
        fs::remove_file(&ca_cert).expect("removing");
        assert_eq!(
            read_ca(&tree.dirs, row("ca")).err(),
            Some(Problem::CaMissing(ca_cert))
        );
        assert!(key_exists(&tree.dirs, row("ca")).expect("readable"));
        fs::remove_file(&ca_key).expect("removing");
        assert!(!key_exists(&tree.dirs, row("ca")).expect("readable"));
    }

    #[test]
    fn kubeconfigs_are_checked_for_their_ca_key_and_server() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        let admin = read_kubeconfig(&tree.dirs, row("admin"))
            .expect("readable")
            .expect("present");
        assert_eq!(admin.server(), Ok("https://192.168.1.10:6443"));
        let ca = read_ca(&tree.dirs, row("ca")).expect("the CA");
        admin.check_ca(&ca.cert.info, "ca").expect("its CA");
        let other = read_ca(&tree.dirs, row("front-proxy-ca")).expect("another CA");
        assert_eq!(
            admin.check_ca(&other.cert.info, "ca"),
            Err(Problem::WrongEmbeddedCa {
                path: admin.path.clone(),
                issuer: "ca"
            })
        );
        fs::write(&admin.path, "kind: [").expect("writing");
        let problem = read_kubeconfig(&tree.dirs, row("admin")).expect_err("not YAML");
        assert!(
            problem
                .to_string()
                .contains("admin.conf: not a valid kubeconfig"),
            "{problem}"
        );
        fs::remove_file(&admin.path).expect("removing");
        let missing = read_admin(&tree.dirs).expect_err("missing");
        assert_eq!(
            missing.to_string(),
            format!(
                "{} is missing: run `{}` first",
                admin.path.display(),
                tree.dirs.command("init")
            )
        );
    }

    #[test]
    fn the_public_key_must_match_the_private_one() {
        let tree = TestTree::written(&ecdsa_spec(&[]));
        let pair = read_key_pair(&tree.dirs, row("sa")).expect("readable");
        let key = pair.key.as_ref().expect("sa.key").load().expect("a key");
        let public = pair.public_pem.clone().expect("sa.pub");
        pair.check_public(&key, &public).expect("its public key");
        let other =
            crate::pki::keys::generate(crate::pki::keys::Algorithm::EcdsaP256).expect("a key");
        assert!(matches!(
            pair.check_public(&other, &public),
            Err(Problem::PublicKeyMismatch { .. })
        ));
        assert!(matches!(
            pair.check_public(&key, b"nonsense"),
            Err(Problem::BadPublicKey { .. })
        ));
    }

    #[test]
    fn keys_open_to_others_are_found() {
        use std::os::unix::fs::PermissionsExt;
        let tree = TestTree::written(&ecdsa_spec(&[]));
        assert!(open_secrets(&tree.dirs).is_empty());
        let key = tree.files_of("etcd-ca")[0].clone();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(open_secrets(&tree.dirs), [(key, 0o644)]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn any_bytes_are_a_certificate_or_an_error(bytes in any::<Vec<u8>>()) {
            check_certificate_readers(Path::new("/etc/kubernetes/pki/ca.crt"), &bytes)?;
        }

        #[test]
        fn edited_certificates_are_certificates_or_errors(bytes in edited(ca_pem().into_bytes())) {
            check_certificate_readers(Path::new("/etc/kubernetes/pki/ca.crt"), &bytes)?;
        }
    }
}
