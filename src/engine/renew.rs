//! `certs renew`: re-issuing leaf certificates and kubeconfig client certificates from the
//! CAs on disk, keeping each certificate's subject and SANs as they are (like kubeadm), with
//! a new key. CAs and the sa key pair are never renewed. Everything is checked and issued in
//! memory first; then old files are backed up and new ones replace them pair-safely.

use super::issue::{By, Capped, KubeconfigOf, SigningCa, issue};
use crate::duration::Duration;
use crate::engine::expiry::short_human_duration;
use crate::pki::inspect::CertInfo;
use crate::pki::issue::CertRequest;
use crate::pki::keys::{self, Algorithm};
use crate::profile::Profile;
use crate::tree::TreeDirs;
use crate::tree::problem::Problem;
use crate::tree::reader::{self, Client, Found, FoundCa};
use crate::tree::store::{self, FileWrite};
use anyhow::{Context, Result, anyhow};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// What `certs renew` was asked to do.
pub struct RenewRequest {
    /// The rows to consider, in table order.
    pub rows: Vec<&'static Profile>,
    /// Renew only what expires within this window.
    pub due_within: Option<Duration>,
    /// Key algorithm for new keys; `None` keeps each certificate's algorithm.
    pub algorithm: Option<Algorithm>,
    /// Validity of the new certificates.
    pub validity: Duration,
    /// Where old files are copied before they are replaced.
    pub backup_dir: PathBuf,
    /// The one "now" of this run.
    pub now: OffsetDateTime,
}

/// What happened to one row.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Re-issued.
    Renewed,
    /// Not due: the residual time, kubeadm style.
    NotDue(String),
    /// The file does not exist.
    Missing,
    /// kubelet.conf points at the kubelet's own rotated certificate file.
    Delegated(PathBuf),
    /// Its CA's key is absent (external CA): cannot be renewed here.
    External(&'static str),
}

/// The result of a renew run.
pub struct Renewal {
    /// One outcome per considered row, in table order.
    pub outcomes: Vec<(&'static Profile, Outcome)>,
    /// The backup directory, when anything was replaced.
    pub backup_dir: Option<PathBuf>,
    /// Renewed certificates that end with their CA, earlier than `--cert-validity` asked.
    pub capped: Vec<Capped>,
}

/// The default `--backup-dir`: `<kubeconfig-dir>/tmp/kubepki-backup-<UTC time>`, or with
/// `.1`, `.2`, ... when that exists: two renewals within one second (one after the other
/// under the lock) must not share a backup directory, or the second would overwrite the
/// first one's copies of the original files.
pub fn default_backup_dir(dirs: &TreeDirs, now: OffsetDateTime) -> Result<PathBuf> {
    let stamp = now.format(time::macros::format_description!(
        "[year][month][day]T[hour][minute][second]Z"
    ))?;
    let path = dirs
        .kubeconfig_dir
        .join("tmp")
        .join(format!("kubepki-backup-{stamp}"));
    let mut candidate = path.clone();
    let mut suffix = 0;
    while candidate.symlink_metadata().is_ok() {
        suffix += 1;
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{suffix}"));
        candidate = PathBuf::from(name);
    }
    Ok(candidate)
}

/// A row that will be re-issued: what is on disk and the request for its successor.
pub struct Due {
    /// The row.
    pub row: &'static Profile,
    found: Found,
    request: CertRequest,
    algorithm: Algorithm,
}

impl Due {
    /// The successor of `found`, the certificate of `row` on disk (its key checked with
    /// `check_key`): subject and SANs kept, a new validity from `now` ending no later than
    /// `ca` (the certificate that will sign it), a new key of `algorithm` or of the
    /// certificate's own.
    pub fn of(
        row: &'static Profile,
        found: Found,
        ca: &CertInfo,
        validity: (OffsetDateTime, Duration),
        algorithm: Option<Algorithm>,
    ) -> Due {
        let cert = found.cert();
        let algorithm = algorithm
            .or(cert.info.key_algorithm)
            .unwrap_or(Algorithm::Rsa2048);
        let (now, validity) = validity;
        let request = row.renewal_request(&cert.info, now, validity, ca);
        Due {
            row,
            found,
            request,
            algorithm,
        }
    }
}

/// The CAs read so far, by row name.
type Cas = HashMap<&'static str, FoundCa>;

/// Runs `certs renew`; `on_keys` hears how many of the new keys are done, of how many.
pub fn renew(
    dirs: &TreeDirs,
    request: &RenewRequest,
    on_keys: &dyn Fn(usize, usize),
) -> Result<Renewal> {
    let mut cas = Cas::new();
    let mut outcomes = Vec::new();
    let mut due = Vec::new();
    for row in &request.rows {
        let (outcome, renewal) = decide(dirs, row, request, &mut cas)?;
        outcomes.push((*row, outcome));
        due.extend(renewal);
    }
    if due.is_empty() {
        return Ok(Renewal {
            outcomes,
            backup_dir: None,
            capped: Vec::new(),
        });
    }
    let signers = load_signers(&cas, &due)?;
    let signer_of = |issuer: &str| {
        signers
            .get(issuer)
            .ok_or_else(|| anyhow!("internal error: no signer for {issuer}"))
    };
    let writes = reissue_all(dirs, &due, &signer_of, on_keys)?;
    let originals: Vec<(PathBuf, PathBuf)> = writes
        .iter()
        .flat_map(Replacement::backup_sources)
        .collect();
    store::backup(&originals, &request.backup_dir)?;
    let pairs: Vec<_> = writes.iter().filter_map(Replacement::pair).collect();
    let files: Vec<_> = writes.iter().filter_map(Replacement::whole).collect();
    store::replace_many(&pairs, &files)?;
    let wanted_end = request.now + request.validity.to_time();
    let capped = due.iter().filter_map(|d| {
        Capped::of(
            d.row.cert_name(),
            d.row.issuer.unwrap_or_default(),
            &d.request,
            wanted_end,
        )
    });
    Ok(Renewal {
        outcomes,
        backup_dir: Some(request.backup_dir.clone()),
        capped: capped.collect(),
    })
}

/// Signers for the CAs of the due rows only: a run with nothing due loads no CA key.
fn load_signers(cas: &Cas, due: &[Due]) -> Result<HashMap<&'static str, SigningCa>> {
    let mut signers = HashMap::new();
    for issuer in due.iter().filter_map(|d| d.row.issuer) {
        if signers.contains_key(issuer) {
            continue;
        }
        let ca = cas
            .get(issuer)
            .ok_or_else(|| anyhow!("internal error: no CA {issuer}"))?;
        let key = ca
            .signing_key()?
            .ok_or_else(|| anyhow!("internal error: renewing under the external CA {issuer}"))?;
        let signer = SigningCa::new(ca.cert.info.clone(), key)?.trusting(&ca.trust);
        signers.insert(issuer, signer);
    }
    Ok(signers)
}

fn decide(
    dirs: &TreeDirs,
    row: &'static Profile,
    request: &RenewRequest,
    cas: &mut Cas,
) -> Result<(Outcome, Option<Due>)> {
    let Some(found) = reader::read_row(dirs, row)? else {
        return Ok((Outcome::Missing, None));
    };
    if let Found::Kubeconfig(kubeconfig) = &found {
        if let Client::Pointed(cert) = &kubeconfig.client {
            return Ok((Outcome::Delegated(cert.path().to_path_buf()), None));
        }
    }
    check_key(dirs, row, &found)?;
    let issuer = row
        .issuer_row()
        .ok_or_else(|| anyhow!("internal error: {} has no issuer", row.name))?;
    let ca = signing_ca(dirs, issuer, request.now, cas)?;
    if ca.is_external() {
        return Ok((Outcome::External(issuer.name), None));
    }
    let cert = found.cert();
    cert.check_signed_by_any(&ca.trust, issuer.name)?;
    let residual = (cert.info.not_after - request.now).whole_seconds();
    if let Some(window) = request.due_within {
        if residual > i64::try_from(window.as_secs()).unwrap_or(i64::MAX) {
            return Ok((Outcome::NotDue(short_human_duration(residual)), None));
        }
    }
    let validity = (request.now, request.validity);
    let due = Due::of(row, found, &ca.cert.info, validity, request.algorithm);
    Ok((Outcome::Renewed, Some(due)))
}

/// The CA row `issuer`, read once per run and checked to be able to sign at `now`.
fn signing_ca<'a>(
    dirs: &TreeDirs,
    issuer: &'static Profile,
    now: OffsetDateTime,
    cas: &'a mut Cas,
) -> Result<&'a FoundCa> {
    if !cas.contains_key(issuer.name) {
        cas.insert(issuer.name, reader::read_signing_ca(dirs, issuer, now)?);
    }
    cas.get(issuer.name)
        .ok_or_else(|| anyhow!("internal error: CA {} not read", issuer.name))
}

/// The key beside a certificate must exist and belong to it; renewing over a broken pair
/// would hide the breakage.
pub fn check_key(dirs: &TreeDirs, row: &Profile, found: &Found) -> Result<(), Problem> {
    match found {
        Found::Pair { cert, key: None } => Err(Problem::CertWithoutKey {
            cert: cert.path().to_path_buf(),
            key: dirs.cert_dir.join(row.key_file().unwrap_or_default()),
        }),
        Found::Pair {
            cert,
            key: Some(key),
        } => key.check_belongs_to(cert),
        Found::Kubeconfig(kubeconfig) => {
            let (cert, key) = kubeconfig.embedded()?;
            key.check_belongs_to(cert)
        }
    }
}

/// The files that replace a re-issued row.
pub enum Replacement {
    /// A certificate and its key.
    Pair {
        /// The key.
        key: FileWrite,
        /// The certificate.
        cert: FileWrite,
    },
    /// A kubeconfig, replaced whole.
    Kubeconfig(FileWrite),
}

/// (file, path under a backup dir) of what `file` replaces: files of the cert dir go under
/// `pki/`, kubeconfigs at the top, as kubeadm's renew backs them up.
pub fn backup_source(file: &FileWrite) -> (PathBuf, PathBuf) {
    let prefix = match file.rel.extension().is_some_and(|e| e == "conf") {
        true => "",
        false => "pki",
    };
    (file.path(), Path::new(prefix).join(&file.rel))
}

impl Replacement {
    /// (file, path under the backup dir) of what this replaces.
    pub fn backup_sources(&self) -> Vec<(PathBuf, PathBuf)> {
        match self {
            Replacement::Pair { key, cert } => vec![backup_source(key), backup_source(cert)],
            Replacement::Kubeconfig(file) => vec![backup_source(file)],
        }
    }

    /// The key and certificate, for a pair.
    pub fn pair(&self) -> Option<(&FileWrite, &FileWrite)> {
        match self {
            Replacement::Pair { key, cert } => Some((key, cert)),
            Replacement::Kubeconfig(_) => None,
        }
    }

    /// The file, for a kubeconfig (replaced whole).
    pub fn whole(&self) -> Option<&FileWrite> {
        match self {
            Replacement::Kubeconfig(file) => Some(file),
            Replacement::Pair { .. } => None,
        }
    }
}

/// The files that replace every row of `due`: new keys generated together (`on_keys` hears
/// how many are done, of how many), each certificate issued by `signer_of` its issuer, each
/// kubeconfig embedding what that signer's readers trust.
pub fn reissue_all<'a>(
    dirs: &TreeDirs,
    due: &[Due],
    signer_of: &dyn Fn(&str) -> Result<&'a SigningCa>,
    on_keys: &dyn Fn(usize, usize),
) -> Result<Vec<Replacement>> {
    let algorithms: Vec<Algorithm> = due.iter().map(|d| d.algorithm).collect();
    let new_keys = keys::generate_all(&algorithms, &|done| on_keys(done, algorithms.len()))?;
    let mut writes = Vec::new();
    for (item, key) in due.iter().zip(new_keys) {
        let signer = signer_of(item.row.issuer.unwrap_or_default())?;
        writes.push(reissue(dirs, item, key, signer)?);
    }
    Ok(writes)
}

/// Issues the successor of a due row with `key` and the files that hold it.
fn reissue(
    dirs: &TreeDirs,
    due: &Due,
    key: rcgen::KeyPair,
    signer: &SigningCa,
) -> Result<Replacement> {
    let issued = issue(due.row, &due.request, key, By::Ca(signer))
        .with_context(|| format!("renewing {}", due.row.cert_name()))?;
    Ok(match &due.found {
        Found::Pair { .. } => Replacement::Pair {
            key: dirs.key_write(due.row, issued.key_pem.clone()),
            cert: dirs.cert_write(due.row, issued.cert_pem.clone()),
        },
        Found::Kubeconfig(found) => {
            let of = KubeconfigOf::Existing(&found.kubeconfig);
            Replacement::Kubeconfig(dirs.kubeconfig_write(due.row, issued.kubeconfig(signer, of)?))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::apply::unwatched;
    use crate::profile::{PROFILES, by_name, renewable_rows};
    use crate::testtree::{TestTree, ecdsa_spec};
    use std::fs;

    fn request(tree: &TestTree, names: &[&str], now: OffsetDateTime) -> RenewRequest {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        RenewRequest {
            rows: renewable_rows(&names).expect("renewable names"),
            due_within: None,
            algorithm: None,
            validity: Duration::from_hours(8760),
            backup_dir: tree.dirs.kubeconfig_dir.join("backup"),
            now,
        }
    }

    fn outcome<'a>(renewal: &'a Renewal, name: &str) -> &'a Outcome {
        let found = renewal
            .outcomes
            .iter()
            .find(|(row, _)| row.cert_name() == name);
        &found.unwrap_or_else(|| panic!("no outcome for {name}")).1
    }

    #[test]
    fn everything_renews_keeping_subject_and_sans_with_new_keys_and_backups() {
        let spec = ecdsa_spec(&["--apiserver-cert-extra-sans", "api.example.com"]);
        let tree = TestTree::written(&spec);
        let before = reader::read_row(&tree.dirs, by_name("apiserver").expect("row"))
            .expect("readable")
            .expect("present");
        let old_key = fs::read(&tree.files_of("apiserver")[0]).expect("the key");
        let renewal =
            renew(&tree.dirs, &request(&tree, &["all"], spec.now), &unwatched).expect("renewed");
        assert!(renewal.outcomes.iter().all(|(_, o)| *o == Outcome::Renewed));
        let after = reader::read_row(&tree.dirs, by_name("apiserver").expect("row"))
            .expect("readable")
            .expect("present");
        let (old, new) = (&before.cert().info, &after.cert().info);
        assert_eq!(
            (&new.cn, &new.dns_names, &new.ips),
            (&old.cn, &old.dns_names, &old.ips)
        );
        assert_ne!(new.public_key, old.public_key);
        assert_eq!(new.key_algorithm, Some(Algorithm::EcdsaP256));
        let backup = tree.dirs.kubeconfig_dir.join("backup");
        assert_eq!(
            fs::read(backup.join("pki/apiserver.key")).expect("backed up"),
            old_key
        );
        assert!(backup.join("admin.conf").is_file());
        let plan =
            crate::engine::plan::plan_init(&spec, &tree.dirs, crate::profile::Selection::All);
        assert!(plan.ensure_no_refusal().is_ok(), "a renewed tree is sound");
    }

    #[test]
    fn nothing_due_writes_nothing() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        let mut asked = request(&tree, &["all"], spec.now);
        asked.due_within = Some(Duration::from_hours(30 * 24));
        let renewal = renew(&tree.dirs, &asked, &unwatched).expect("no error");
        assert!(renewal.backup_dir.is_none());
        assert!(!asked.backup_dir.exists());
        assert_eq!(
            outcome(&renewal, "apiserver"),
            &Outcome::NotDue("364d".into())
        );
        asked.now += time::Duration::days(340);
        let renewal = renew(&tree.dirs, &asked, &unwatched).expect("renewed");
        assert_eq!(outcome(&renewal, "apiserver"), &Outcome::Renewed);
    }

    #[test]
    fn missing_external_and_delegated_rows_are_told_apart() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        tree.remove("scheduler", |_| true);
        tree.remove("front-proxy-ca", |i| i == 0);
        let kubelet = tree.files_of("kubelet")[0].clone();
        let pointed = tree.dirs.kubeconfig_dir.join("kubelet-client-current.pem");
        fs::copy(&tree.files_of("apiserver-kubelet-client")[1], &pointed).expect("copying");
        let text = fs::read_to_string(&kubelet).expect("kubelet.conf");
        let at = text.find("    client-certificate-data").expect("embedded");
        let end = text[at..].find('\n').expect("a line") + at;
        let edited = format!(
            "{}    client-certificate: {}{}",
            &text[..at],
            pointed.display(),
            &text[end..]
        );
        fs::write(&kubelet, edited).expect("writing");
        let renewal =
            renew(&tree.dirs, &request(&tree, &["all"], spec.now), &unwatched).expect("renewal");
        assert_eq!(outcome(&renewal, "scheduler.conf"), &Outcome::Missing);
        assert_eq!(
            outcome(&renewal, "front-proxy-client"),
            &Outcome::External("front-proxy-ca")
        );
        assert_eq!(
            outcome(&renewal, "kubelet.conf"),
            &Outcome::Delegated(pointed)
        );
        assert_eq!(outcome(&renewal, "apiserver"), &Outcome::Renewed);
    }

    #[test]
    fn a_broken_pair_or_an_expired_ca_is_an_error() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        tree.remove("etcd-peer", |i| i == 0);
        let error = renew(
            &tree.dirs,
            &request(&tree, &["etcd-peer"], spec.now),
            &unwatched,
        )
        .err()
        .expect("refused")
        .to_string();
        assert!(
            error.contains("etcd/peer.crt: certificate exists without its key"),
            "{error}"
        );
        let later = spec.now + time::Duration::days(3651);
        let error = renew(
            &tree.dirs,
            &request(&tree, &["apiserver"], later),
            &unwatched,
        )
        .err()
        .expect("refused")
        .to_string();
        assert!(
            error.contains("ca.crt: expired on")
                && error.ends_with("can sign no valid certificate"),
            "{error}"
        );
        assert!(!tree.dirs.kubeconfig_dir.join("backup").exists());
    }

    #[test]
    fn a_new_algorithm_and_validity_are_honoured() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        let mut asked = request(&tree, &["admin.conf"], spec.now);
        asked.algorithm = Some(Algorithm::EcdsaP384);
        asked.validity = Duration::from_hours(48);
        renew(&tree.dirs, &asked, &unwatched).expect("renewed");
        let found = reader::read_row(&tree.dirs, by_name("admin").expect("row"))
            .expect("readable")
            .expect("present");
        let info = &found.cert().info;
        assert_eq!(info.key_algorithm, Some(Algorithm::EcdsaP384));
        let second = spec.now.replace_nanosecond(0).expect("a whole second");
        assert_eq!(info.not_after - second, time::Duration::hours(48));
        assert_eq!(PROFILES.iter().filter(|p| p.is_renewable()).count(), 12);
    }
}
