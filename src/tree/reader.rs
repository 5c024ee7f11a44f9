//! Reading a row's material from the tree for the `certs` commands: its certificate (a file
//! pair, embedded in a kubeconfig, or the kubelet's rotated file a kubeconfig points at) and
//! a CA's signer, checked as rcgen does not (the certificate is a CA, the key matches it).

use crate::cluster::bootstrap::{TokenRecord, is_secret_manifest};
use crate::cluster::kubeconfig::Kubeconfig;
use crate::pki::inspect::CertInfo;
use crate::pki::issue::{self, Signer};
use crate::pki::keys;
use crate::pki::pem;
use crate::profile::{Kind, PROFILES, Profile};
use crate::tree::TreeDirs;
use crate::tree::store;
use anyhow::{Context, Result, anyhow, bail};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// Where a row's certificate lives.
pub enum Location {
    /// `<file>.crt` beside `<file>.key`.
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// Embedded in a kubeconfig, parsed.
    Kubeconfig {
        /// The kubeconfig file.
        path: PathBuf,
        /// Its content.
        kubeconfig: Box<Kubeconfig>,
    },
    /// A file a kubeconfig points at (the kubelet's rotated client certificate).
    Pointed {
        /// The kubeconfig file.
        kubeconfig: PathBuf,
        /// The certificate file it names.
        cert: PathBuf,
    },
}

/// A row's certificate as found on disk.
pub struct OnDisk {
    /// The certificate.
    pub cert: CertInfo,
    /// Where it is.
    pub location: Location,
    /// The private key PEM beside it, when kubepki manages the key.
    pub key_pem: Option<Vec<u8>>,
}

impl OnDisk {
    /// The file that holds the certificate, for messages.
    pub fn path(&self) -> &Path {
        match &self.location {
            Location::Pair { cert, .. } | Location::Pointed { cert, .. } => cert,
            Location::Kubeconfig { path, .. } => path,
        }
    }
}

/// Reads the certificate of `profile`; `None` when its file is missing.
pub fn read_row(dirs: &TreeDirs, profile: &Profile) -> Result<Option<OnDisk>> {
    match profile.kind {
        Kind::Kubeconfig(_) => read_kubeconfig(&dirs.kubeconfig_dir, profile.file),
        Kind::Ca | Kind::Leaf => read_pair(dirs, profile),
        Kind::KeyPair => Ok(None),
    }
}

fn read_pair(dirs: &TreeDirs, profile: &Profile) -> Result<Option<OnDisk>> {
    let (cert_rel, key_rel) = (
        profile.cert_file().unwrap_or_default(),
        profile.key_file().unwrap_or_default(),
    );
    let cert = dirs.cert_dir.join(&cert_rel);
    let Some(bytes) = store::read_optional(&dirs.cert_dir, &cert_rel)? else {
        return Ok(None);
    };
    let info = parse_cert(&cert, &bytes)?;
    let key_pem = store::read_optional(&dirs.cert_dir, &key_rel)?;
    let location = Location::Pair {
        cert,
        key: dirs.cert_dir.join(key_rel),
    };
    Ok(Some(OnDisk {
        cert: info,
        location,
        key_pem,
    }))
}

fn read_kubeconfig(dir: &Path, file: &str) -> Result<Option<OnDisk>> {
    let path = dir.join(file);
    let Some(bytes) = store::read_optional(dir, Path::new(file))? else {
        return Ok(None);
    };
    let kubeconfig = Kubeconfig::parse(&bytes).with_context(|| path.display().to_string())?;
    if let Some(pointed) = kubeconfig
        .client_certificate_file()
        .with_context(|| path.display().to_string())?
    {
        let cert = PathBuf::from(pointed);
        let bytes = std::fs::read(&cert)
            .with_context(|| format!("{}: reading {}", path.display(), cert.display()))?;
        let info = parse_cert(&cert, &bytes)?;
        return Ok(Some(OnDisk {
            cert: info,
            location: Location::Pointed {
                kubeconfig: path,
                cert,
            },
            key_pem: None,
        }));
    }
    let creds = kubeconfig
        .client_credentials()
        .with_context(|| path.display().to_string())?;
    let info = parse_cert(&path, &creds.cert_pem)?;
    let location = Location::Kubeconfig {
        path,
        kubeconfig: Box::new(kubeconfig),
    };
    Ok(Some(OnDisk {
        cert: info,
        location,
        key_pem: Some(creds.key_pem),
    }))
}

/// Parses the first certificate of `bytes`, read from `path`.
pub fn parse_cert(path: &Path, bytes: &[u8]) -> Result<CertInfo> {
    pem::first_certificate(bytes)
        .and_then(CertInfo::parse)
        .with_context(|| format!("{}: not a valid certificate", path.display()))
}

/// Every token Secret manifest in `dir` (none when `dir` does not exist), by file name.
pub fn read_tokens(dir: &Path) -> Result<Vec<TokenRecord>> {
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

/// Checks that the private key `key_pem` (from `key_path`) belongs to `cert` (from
/// `cert_path`), reading the key's public half from its structure, without loading it.
pub fn check_pair(
    cert: &CertInfo,
    cert_path: &Path,
    key_path: &Path,
    key_pem: &[u8],
) -> Result<()> {
    let matches = key_matches(cert, key_pem)
        .with_context(|| format!("{}: not a valid private key", key_path.display()))?;
    if !matches {
        bail!(
            "{}: does not match the certificate {}",
            key_path.display(),
            cert_path.display()
        );
    }
    Ok(())
}

/// The files of the tree that hold a private key (key files and kubeconfigs) whose mode lets
/// group or others in, with that mode. kubeadm writes them 0600; kubepki warns, never chmods.
pub fn open_secrets(dirs: &TreeDirs) -> Vec<(PathBuf, u32)> {
    let files = PROFILES.iter().filter_map(|row| match row.kind {
        Kind::Kubeconfig(_) => Some(dirs.kubeconfig_dir.join(row.file)),
        _ => row.key_file().map(|key| dirs.cert_dir.join(key)),
    });
    files
        .filter_map(|path| {
            let meta = std::fs::symlink_metadata(&path).ok()?;
            let mode = meta.permissions().mode() & 0o777;
            (meta.is_file() && mode & 0o077 != 0).then_some((path, mode))
        })
        .collect()
}

/// Checks that the `client-key-data` of the kubeconfig `path` belongs to its
/// `client-certificate-data` `cert`, as `check_pair` does for a file pair.
pub fn check_embedded_pair(cert: &CertInfo, path: &Path, key_pem: &[u8]) -> Result<()> {
    let matches = key_matches(cert, key_pem).with_context(|| {
        format!(
            "{}: client-key-data: not a valid private key",
            path.display()
        )
    })?;
    if !matches {
        bail!(
            "{}: client-key-data does not match client-certificate-data",
            path.display()
        );
    }
    Ok(())
}

/// Whether the private key `key_pem` belongs to `cert`, read from the key's structure.
fn key_matches(cert: &CertInfo, key_pem: &[u8]) -> Result<bool> {
    Ok(keys::public_key_of(key_pem)? == cert.public_key)
}

/// Whether a CA row's key file exists (else the CA is externally managed).
pub fn ca_key_exists(dirs: &TreeDirs, ca: &Profile) -> Result<bool> {
    let key_rel = ca.key_file().unwrap_or_default();
    Ok(store::read_optional(&dirs.cert_dir, &key_rel)?.is_some())
}

/// A CA as found: its certificate, checked to be a CA, and its key PEM when present, checked
/// (structurally, without loading it) to match the certificate.
pub struct CaOnDisk {
    /// The CA certificate.
    pub cert: CertInfo,
    key: Option<(PathBuf, Vec<u8>)>,
}

impl CaOnDisk {
    /// Whether the key is absent (an external CA).
    pub fn is_external(&self) -> bool {
        self.key.is_none()
    }

    /// Loads the key and makes the CA a signer (rcgen checks neither CA flag nor key match:
    /// both were checked when the CA was read). `None` for an external CA.
    pub fn signer(&self) -> Result<Option<Signer>> {
        let Some((path, pem)) = &self.key else {
            return Ok(None);
        };
        let key = keys::load(path, pem)?;
        if !self.cert.matches_key(&key) {
            bail!("{}: does not match its certificate", path.display());
        }
        issue::existing_ca(&self.cert.der, key).map(Some)
    }
}

/// Reads a CA row: the certificate must exist and be a CA; a present key must match it.
pub fn read_ca(dirs: &TreeDirs, ca: &Profile) -> Result<CaOnDisk> {
    let Some(found) = read_pair(dirs, ca)? else {
        let missing = dirs.cert_dir.join(ca.cert_file().unwrap_or_default());
        bail!("{}: CA certificate not found", missing.display());
    };
    let Location::Pair {
        cert: cert_path,
        key: key_path,
    } = found.location
    else {
        return Err(anyhow!("internal error: a CA row outside a file pair"));
    };
    if !found.cert.is_ca {
        bail!("{}: certificate is not a CA", cert_path.display());
    }
    let key = match found.key_pem {
        Some(pem) => {
            check_pair(&found.cert, &cert_path, &key_path, &pem)?;
            Some((key_path, pem))
        }
        None => None,
    };
    Ok(CaOnDisk {
        cert: found.cert,
        key,
    })
}

/// Reads a CA row that is to sign at `now`: as `read_ca`, and not expired (whatever it
/// signed would not verify).
pub fn read_signing_ca(dirs: &TreeDirs, ca: &Profile, now: OffsetDateTime) -> Result<CaOnDisk> {
    let found = read_ca(dirs, ca)?;
    if found.cert.not_after <= now {
        bail!(
            "{}: expired on {}; it can sign no valid certificate",
            dirs.cert_dir
                .join(ca.cert_file().unwrap_or_default())
                .display(),
            found.cert.not_after.date()
        );
    }
    Ok(found)
}

/// A CA ready to sign at `now`: its certificate and signer, after checking that the
/// certificate is a current CA and that the key matches it. `None` when the key is absent
/// (external CA).
pub fn load_signer(
    dirs: &TreeDirs,
    ca: &Profile,
    now: OffsetDateTime,
) -> Result<Option<(CertInfo, Signer)>> {
    let ca = read_signing_ca(dirs, ca, now)?;
    Ok(ca.signer()?.map(|signer| (ca.cert, signer)))
}
