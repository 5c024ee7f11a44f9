//! Deciding, per selected row of the profile table, what to do with the tree as it is on
//! disk: create, complete (a key whose certificate is missing), reuse (present and sound), or
//! refuse (present but wrong — never a silent overwrite). Reads the tree; writes nothing.

use crate::cluster::kubeconfig::Kubeconfig;
use crate::pki::inspect::CertInfo;
use crate::pki::keys;
use crate::pki::pem;
use crate::profile::{Kind, PROFILES, Profile, Selection};
use crate::spec::ClusterSpec;
use crate::tree::TreeDirs;
use crate::tree::reader;
use crate::tree::store;
use anyhow::{Result, anyhow, bail};
use rcgen::{KeyPair, PublicKeyData};
use rustls_pki_types::SubjectPublicKeyInfoDer;
use rustls_pki_types::pem::PemObject;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What a step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write a new key and what goes with it.
    Create,
    /// Keep the existing key and write the missing certificate or public key beside it.
    Complete,
    /// Leave the existing files as they are.
    Reuse,
    /// The existing files are wrong; nothing may be written.
    Refuse,
}

impl Action {
    /// The word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Complete => "complete",
            Action::Reuse => "reuse",
            Action::Refuse => "error",
        }
    }
}

/// The decision for one row.
pub struct Step {
    /// The row.
    pub profile: &'static Profile,
    /// What to do.
    pub action: Action,
    /// Why, for people (for `Refuse`: the file and what is wrong with it).
    pub reason: String,
    /// The files the row owns, full paths.
    pub files: Vec<PathBuf>,
    /// The existing private key, loaded (for `Complete`, and for reused CAs that sign).
    pub existing_key: Option<KeyPair>,
    /// The existing certificate, parsed (CAs and reused leaves).
    pub existing_cert: Option<CertInfo>,
}

/// The decisions for every selected row, in table order.
pub struct Plan {
    /// One step per selected row.
    pub steps: Vec<Step>,
    /// CA rows that were not selected but sign selected rows: used, never written.
    pub context: Vec<Step>,
    /// The tree's directories.
    pub dirs: TreeDirs,
}

impl Plan {
    /// The first refusal, as an error naming the file.
    pub fn first_refusal(&self) -> Option<&Step> {
        self.steps.iter().find(|s| s.action == Action::Refuse)
    }
}

/// The state of a CA as the plan leaves it, for deciding about the rows it signs.
struct CaState {
    cert: Option<CertInfo>,
    refused: bool,
    can_sign: bool,
    key_path: PathBuf,
}

/// Plans `init` (or a phase) for `selection`. CA rows are always examined, because the rows
/// they sign depend on them, but only selected rows become steps. With an external etcd
/// (`etcd.external`) the etcd CA and the rows it signs are left out, as kubeadm does.
pub fn plan_init(spec: &ClusterSpec, dirs: &TreeDirs, selection: Selection) -> Plan {
    let mut cas: HashMap<&str, CaState> = HashMap::new();
    let (mut steps, mut context) = (Vec::new(), Vec::new());
    for profile in PROFILES {
        let selected = selection.includes(profile);
        let skipped = spec.external_etcd && profile.needs_local_etcd();
        if skipped || (!selected && profile.kind != Kind::Ca) {
            continue;
        }
        let step = decide(profile, spec, dirs, &cas);
        if profile.kind == Kind::Ca {
            let created = selected && step.action == Action::Create;
            let can_sign =
                created || (step.existing_key.is_some() && step.action != Action::Refuse);
            let key_path = dirs.cert_dir.join(profile.key_file().unwrap_or_default());
            cas.insert(
                profile.name,
                CaState {
                    cert: step.existing_cert.clone(),
                    refused: step.action == Action::Refuse,
                    can_sign,
                    key_path,
                },
            );
        }
        match selected {
            true => steps.push(step),
            false if step.action == Action::Reuse => context.push(step),
            false => {}
        }
    }
    Plan {
        steps,
        context,
        dirs: dirs.clone(),
    }
}

/// Reads `rel` under `root`; a symlink or unreadable file is a refusal for the row.
fn read(root: &Path, rel: &Path) -> Result<Option<Vec<u8>>, String> {
    store::read_optional(root, rel).map_err(|e| format!("{e:#}"))
}

fn decide(
    profile: &'static Profile,
    spec: &ClusterSpec,
    dirs: &TreeDirs,
    cas: &HashMap<&str, CaState>,
) -> Step {
    let files = owned_files(profile, dirs);
    let mut step = Step {
        profile,
        action: Action::Create,
        reason: String::new(),
        files,
        existing_key: None,
        existing_cert: None,
    };
    let outcome = match profile.kind {
        Kind::Ca => decide_ca(profile, spec, dirs, &mut step),
        Kind::Leaf => decide_leaf(profile, spec, dirs, cas, &mut step),
        Kind::KeyPair => decide_key_pair(profile, dirs, &mut step),
        Kind::Kubeconfig(_) => decide_kubeconfig(profile, spec, dirs, cas, &mut step),
    };
    match outcome {
        Ok((action, reason)) => (step.action, step.reason) = (action, reason),
        Err(problem) => (step.action, step.reason) = (Action::Refuse, problem),
    }
    step
}

/// The full paths a row owns, key first.
fn owned_files(profile: &Profile, dirs: &TreeDirs) -> Vec<PathBuf> {
    if let Kind::Kubeconfig(_) = profile.kind {
        return vec![dirs.kubeconfig_dir.join(profile.file)];
    }
    [profile.key_file(), profile.cert_file(), profile.pub_file()]
        .into_iter()
        .flatten()
        .map(|rel| dirs.cert_dir.join(rel))
        .collect()
}

type Decision = std::result::Result<(Action, String), String>;

fn load_key(dirs: &TreeDirs, rel: &Path, bytes: &[u8]) -> Result<KeyPair, String> {
    keys::load(&dirs.cert_dir.join(rel), bytes).map_err(|e| format!("{e:#}"))
}

fn load_cert(path: &Path, bytes: &[u8]) -> Result<CertInfo, String> {
    reader::parse_cert(path, bytes).map_err(|e| format!("{e:#}"))
}

fn check_current(path: &Path, cert: &CertInfo, spec: &ClusterSpec) -> Result<(), String> {
    if cert.not_after <= spec.now {
        return Err(format!(
            "{}: expired on {}",
            path.display(),
            cert.not_after.date()
        ));
    }
    Ok(())
}

/// The decision for a pair whose certificate is missing: create both, or, when the key is
/// there (a run killed between key and certificate), issue a certificate for that key.
fn create_or_complete(step: &Step, create_reason: String, key_path: &Path) -> (Action, String) {
    match step.existing_key {
        None => (Action::Create, create_reason),
        Some(_) => (
            Action::Complete,
            format!(
                "{} exists without its certificate; issuing one for that key",
                key_path.display()
            ),
        ),
    }
}

/// A certificate/key pair as found: the certificate unparsed, the key loaded.
struct PairOnDisk {
    cert_path: PathBuf,
    key_path: PathBuf,
    cert_bytes: Option<Vec<u8>>,
    key: Option<KeyPair>,
}

fn read_pair(profile: &Profile, dirs: &TreeDirs) -> Result<PairOnDisk, String> {
    let cert_rel = profile.cert_file().unwrap_or_default();
    let key_rel = profile.key_file().unwrap_or_default();
    let cert_bytes = read(&dirs.cert_dir, &cert_rel)?;
    let key_bytes = read(&dirs.cert_dir, &key_rel)?;
    let key = key_bytes
        .as_deref()
        .map(|b| load_key(dirs, &key_rel, b))
        .transpose()?;
    let (cert_path, key_path) = (dirs.cert_dir.join(cert_rel), dirs.cert_dir.join(key_rel));
    Ok(PairOnDisk {
        cert_path,
        key_path,
        cert_bytes,
        key,
    })
}

fn decide_ca(profile: &Profile, spec: &ClusterSpec, dirs: &TreeDirs, step: &mut Step) -> Decision {
    let PairOnDisk {
        cert_path,
        key_path,
        cert_bytes,
        key,
    } = read_pair(profile, dirs)?;
    let Some(cert_bytes) = cert_bytes else {
        step.existing_key = key;
        return Ok(create_or_complete(
            step,
            format!("new {} CA", profile.name),
            &key_path,
        ));
    };
    let cert = load_cert(&cert_path, &cert_bytes)?;
    if !cert.is_ca {
        return Err(format!("{}: certificate is not a CA", cert_path.display()));
    }
    check_current(&cert_path, &cert, spec)?;
    let reason = match &key {
        Some(key) if !cert.matches_key(key) => {
            return Err(format!(
                "{}: does not match the certificate {}",
                key_path.display(),
                cert_path.display()
            ));
        }
        Some(_) => "existing CA certificate and key".to_string(),
        None => format!(
            "external CA: {} is absent, so only existing certificates it signed can be used",
            key_path.display()
        ),
    };
    step.existing_key = key;
    step.existing_cert = Some(cert);
    Ok((Action::Reuse, reason))
}

/// Why a missing file signed by `ca` cannot be created, if it cannot.
fn signer_problem(
    profile: &Profile,
    cas: &HashMap<&str, CaState>,
    missing: &Path,
) -> Result<(), String> {
    let issuer = profile.issuer.unwrap_or_default();
    match cas.get(issuer) {
        Some(ca) if ca.refused => Err(unusable_ca(missing, issuer)),
        Some(ca) if ca.can_sign => Ok(()),
        Some(ca) if ca.cert.is_some() => Err(format!(
            "{} is missing and the CA key {} is needed to create it (external CA)",
            missing.display(),
            ca.key_path.display()
        )),
        _ => Err(format!(
            "{} is missing and its CA {issuer:?} does not exist yet; run `kubepki init phase certs {issuer}` first",
            missing.display()
        )),
    }
}

fn unusable_ca(path: &Path, issuer: &str) -> String {
    format!(
        "{}: cannot be checked or created while its CA {issuer:?} is unusable (see that error)",
        path.display()
    )
}

/// The issuer's certificate, which an existing file must verify against.
fn issuer_cert<'a>(
    profile: &Profile,
    cas: &'a HashMap<&str, CaState>,
    path: &Path,
) -> Result<&'a CertInfo, String> {
    let issuer = profile.issuer.unwrap_or_default();
    if cas.get(issuer).is_some_and(|ca| ca.refused) {
        return Err(unusable_ca(path, issuer));
    }
    cas.get(issuer).and_then(|ca| ca.cert.as_ref()).ok_or_else(|| {
        format!("{}: exists, but its CA {issuer:?} does not, so it cannot be trusted; restore the CA or delete the file", path.display())
    })
}

fn decide_leaf(
    profile: &Profile,
    spec: &ClusterSpec,
    dirs: &TreeDirs,
    cas: &HashMap<&str, CaState>,
    step: &mut Step,
) -> Decision {
    let PairOnDisk {
        cert_path,
        key_path,
        cert_bytes,
        key,
    } = read_pair(profile, dirs)?;
    let Some(cert_bytes) = cert_bytes else {
        signer_problem(profile, cas, &cert_path)?;
        step.existing_key = key;
        let new = format!(
            "new certificate signed by {}",
            profile.issuer.unwrap_or_default()
        );
        return Ok(create_or_complete(step, new, &key_path));
    };
    let cert = load_cert(&cert_path, &cert_bytes)?;
    let key = key.ok_or_else(|| {
        format!(
            "{}: certificate exists without its key {}",
            cert_path.display(),
            key_path.display()
        )
    })?;
    if !cert.matches_key(&key) {
        return Err(format!(
            "{}: does not match the certificate {}",
            key_path.display(),
            cert_path.display()
        ));
    }
    let ca = issuer_cert(profile, cas, &cert_path)?;
    cert.verify_signed_by(ca).map_err(|e| {
        format!(
            "{}: not signed by {}: {e}",
            cert_path.display(),
            profile.issuer.unwrap_or_default()
        )
    })?;
    check_current(&cert_path, &cert, spec)?;
    check_sans(profile, spec, &cert, &cert_path)?;
    step.existing_cert = Some(cert);
    Ok((
        Action::Reuse,
        "existing certificate and key are valid".into(),
    ))
}

fn check_sans(
    profile: &Profile,
    spec: &ClusterSpec,
    cert: &CertInfo,
    path: &Path,
) -> Result<(), String> {
    let (dns_names, ips) = profile.alt_names(spec);
    let missing: Vec<String> = dns_names
        .iter()
        .filter(|name| !cert.covers_dns(name))
        .cloned()
        .chain(
            ips.iter()
                .filter(|ip| !cert.ips.contains(ip))
                .map(|ip| ip.to_string()),
        )
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}: lacks the SANs {} that the current settings require; delete it and its key to have it re-issued",
        path.display(),
        missing.join(", ")
    ))
}

fn decide_key_pair(profile: &Profile, dirs: &TreeDirs, step: &mut Step) -> Decision {
    let (key_rel, pub_rel) = (
        profile.key_file().unwrap_or_default(),
        profile.pub_file().unwrap_or_default(),
    );
    let (key_path, pub_path) = (dirs.cert_dir.join(&key_rel), dirs.cert_dir.join(&pub_rel));
    let key_bytes = read(&dirs.cert_dir, &key_rel)?;
    let pub_bytes = read(&dirs.cert_dir, &pub_rel)?;
    let Some(key_bytes) = key_bytes else {
        return match pub_bytes {
            None => Ok((Action::Create, "new key pair".into())),
            Some(_) => Err(format!(
                "{}: exists without its private key {}",
                pub_path.display(),
                key_path.display()
            )),
        };
    };
    let key = load_key(dirs, &key_rel, &key_bytes)?;
    let Some(pub_bytes) = pub_bytes else {
        step.existing_key = Some(key);
        return Ok((
            Action::Complete,
            format!("{} exists; writing its public key", key_path.display()),
        ));
    };
    let public = SubjectPublicKeyInfoDer::from_pem_slice(&pub_bytes).map_err(|e| {
        format!(
            "{}: not a PEM public key ({})",
            pub_path.display(),
            pem::describe(&e)
        )
    })?;
    if public.as_ref() != key.subject_public_key_info().as_slice() {
        return Err(format!(
            "{}: does not match the private key {}",
            pub_path.display(),
            key_path.display()
        ));
    }
    Ok((Action::Reuse, "existing key pair".into()))
}

fn decide_kubeconfig(
    profile: &Profile,
    spec: &ClusterSpec,
    dirs: &TreeDirs,
    cas: &HashMap<&str, CaState>,
    step: &mut Step,
) -> Decision {
    let path = dirs.kubeconfig_dir.join(profile.file);
    let Some(bytes) = read(&dirs.kubeconfig_dir, Path::new(profile.file))? else {
        signer_problem(profile, cas, &path)?;
        return Ok((
            Action::Create,
            format!("new kubeconfig for {}", profile.common_name(spec)),
        ));
    };
    let creds = Kubeconfig::parse(&bytes)
        .and_then(|kc| kc.server().and_then(|_| kc.client_credentials()))
        .map_err(|e| format!("{}: {e:#}", path.display()))?;
    let ca = issuer_cert(profile, cas, &path)?;
    let embedded_ca = pem::first_certificate(&creds.ca_pem)
        .map_err(|e| format!("{}: certificate-authority-data: {e:#}", path.display()))?;
    if embedded_ca.as_ref() != ca.der.as_ref() {
        return Err(format!(
            "{}: exists already but has got the wrong CA cert (not {})",
            path.display(),
            profile.issuer.unwrap_or_default()
        ));
    }
    let cert = load_cert(&path, &creds.cert_pem)?;
    let key = keys::load(&path, &creds.key_pem).map_err(|e| format!("{e:#}"))?;
    if !cert.matches_key(&key) {
        return Err(format!(
            "{}: client-key-data does not match client-certificate-data",
            path.display()
        ));
    }
    cert.verify_signed_by(ca).map_err(|e| {
        format!(
            "{}: client certificate not signed by {}: {e}",
            path.display(),
            profile.issuer.unwrap_or_default()
        )
    })?;
    check_current(&path, &cert, spec)?;
    step.existing_cert = Some(cert);
    let expected = profile.server_url(spec).unwrap_or_default();
    Ok(match creds.server == expected {
        true => (Action::Reuse, "existing kubeconfig is valid".into()),
        false => (
            Action::Reuse,
            format!(
                "existing kubeconfig is valid (warning: its server is {}, the current settings say {expected})",
                creds.server
            ),
        ),
    })
}

/// Fails with the first refusal of `plan`, naming the file and the problem.
pub fn ensure_no_refusal(plan: &Plan) -> Result<()> {
    match plan.first_refusal() {
        Some(step) => {
            let others = plan
                .steps
                .iter()
                .filter(|s| s.action == Action::Refuse)
                .count()
                - 1;
            match others {
                0 => bail!("{}", step.reason),
                n => Err(anyhow!(
                    "{} (and {n} more problem(s); see --dry-run)",
                    step.reason
                )),
            }
        }
        None => Ok(()),
    }
}
