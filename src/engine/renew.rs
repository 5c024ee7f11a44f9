//! `certs renew`: re-issuing leaf certificates and kubeconfig client certificates from the
//! CAs on disk, keeping each certificate's subject and SANs as they are (like kubeadm), with
//! a new key. CAs and the sa key pair are never renewed. Everything is checked and issued in
//! memory first; then the old files are kept as a generation and new ones replace them
//! pair-safely (`replace_due`, which `certs renew --reconcile` shares). A broken row (its
//! files unreadable, its key not its certificate's, its signer not its CA) is reported and
//! left as it is; the sound rows are renewed all the same.

use super::issue::{By, Capped, KubeconfigOf, SigningCa, issue};
use crate::duration::Duration;
use crate::engine::expiry::short_human_duration;
use crate::pki::inspect::CertInfo;
use crate::pki::issue::CertRequest;
use crate::pki::keys::{self, Algorithm};
use crate::profile::Profile;
use crate::tree::TreeDirs;
use crate::tree::generations::{self, Pruned, RowChange};
use crate::tree::problem::Problem;
use crate::tree::reader::{self, Client, Found, FoundCa};
use crate::tree::store::{self, FileWrite};
use anyhow::{Context, Result, anyhow, bail};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// Where the generations of replaced files are kept, and how many.
#[derive(Clone, Debug)]
pub struct Backups {
    /// The generations directory (`--backup-dir`, else `<kubeconfig-dir>/tmp`).
    pub dir: PathBuf,
    /// How many generations to keep (`--keep`); older ones are pruned.
    pub keep: usize,
}

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
    /// Where the old files are kept.
    pub backups: Backups,
    /// The one "now" of this run.
    pub now: OffsetDateTime,
    /// Whether `all` was asked for: then an optional row whose files are absent (a kubelet
    /// serving certificate that was never written here) is left out, not reported missing.
    pub all: bool,
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
    /// An optional row's file that its CA did not sign (the kubelet's own self-signed
    /// serving certificate): not kubepki's, left alone.
    Foreign(PathBuf),
    /// Broken (the problem, one line): not renewed, and the run fails once the sound rows
    /// are renewed.
    Broken(String),
    /// Not re-issued: a successor would end no later than it does, when its CA (the row
    /// named) ends; the CA must be rotated first.
    NotLater(&'static str, OffsetDateTime),
}

/// The result of a renew run.
pub struct Renewal {
    /// One outcome per considered row, in table order.
    pub outcomes: Vec<(&'static Profile, Outcome)>,
    /// Where the replaced files were kept, when anything was replaced.
    pub kept: Option<Kept>,
    /// Renewed certificates that end with their CA, earlier than `--cert-validity` asked.
    pub capped: Vec<Capped>,
}

/// The generation a writing run kept, and the old ones it pruned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    /// The new generation's directory.
    pub generation: PathBuf,
    /// Generations removed for being older than the newest `--keep`, and those older left
    /// because they hold a CA's or `sa`'s key.
    pub pruned: Pruned,
}

/// A row that will be replaced: what is on disk and what replaces it.
pub struct Due {
    /// The row.
    pub row: &'static Profile,
    /// Its certificate (and key, or kubeconfig) as found.
    pub found: Found,
    /// The successor's request; `None` keeps the certificate and key (a kubeconfig whose
    /// server alone changes).
    pub request: Option<CertRequest>,
    /// The new key's algorithm.
    pub algorithm: Algorithm,
    /// A kubeconfig's new server URL.
    pub server: Option<String>,
    /// What changes, one line, for the generation's record.
    pub change: String,
}

impl Due {
    /// The successor of `found`, the certificate of `row` on disk (its key already checked
    /// with `check_key`): subject and SANs kept, a new validity from `now` ending no later than
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
            request: Some(request),
            algorithm,
            server: None,
            change: "renewed".into(),
        }
    }
}

/// The CAs read so far, by row name.
pub type Cas = HashMap<&'static str, FoundCa>;

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
        let (outcome, renewal) = decide(dirs, row, request, &mut cas)
            .unwrap_or_else(|problem| (Outcome::Broken(format!("{problem:#}")), None));
        if request.all && row.is_optional() && outcome == Outcome::Missing {
            continue;
        }
        outcomes.push((*row, outcome));
        due.extend(renewal);
    }
    if due.is_empty() {
        return Ok(Renewal {
            outcomes,
            kept: None,
            capped: Vec::new(),
        });
    }
    let wanted_end = request.now + request.validity.to_time();
    let capped = due
        .iter()
        .filter_map(|d| {
            let issuer = d.row.issuer.unwrap_or_default();
            Capped::of(d.row.cert_name(), issuer, d.request.as_ref()?, wanted_end)
        })
        .collect();
    let kept = replace_due(
        dirs,
        &cas,
        &due,
        &request.backups,
        "certs renew",
        request.now,
        on_keys,
    )?;
    Ok(Renewal {
        outcomes,
        kept: Some(kept),
        capped,
    })
}

/// Replaces the `due` rows: new keys and certificates signed by their CAs in `cas` (read
/// with `signing_ca`), or a kubeconfig's new server alone. The old files are kept first as
/// a generation of `command`, then replaced pair-safely in one batch; then generations
/// beyond `backups.keep` are pruned. `on_keys` hears how many new keys are done, of how
/// many.
pub fn replace_due(
    dirs: &TreeDirs,
    cas: &Cas,
    due: &[Due],
    backups: &Backups,
    command: &str,
    now: OffsetDateTime,
    on_keys: &dyn Fn(usize, usize),
) -> Result<Kept> {
    let signers = load_signers(cas, due)?;
    let signer_of = |issuer: &str| {
        signers
            .get(issuer)
            .ok_or_else(|| anyhow!("internal error: no signer for {issuer}"))
    };
    let writes = reissue_all(dirs, due, &signer_of, on_keys)?;
    let rows: Vec<(&Profile, RowChange)> = due
        .iter()
        .map(|d| {
            let change = RowChange {
                name: d.row.cert_name().to_string(),
                change: d.change.clone(),
                restored_from: None,
            };
            (d.row, change)
        })
        .collect();
    let generation = generations::new_path(&backups.dir, now)?;
    generations::keep(dirs, &generation, now, command, &rows)?;
    let pairs: Vec<_> = writes.iter().filter_map(Replacement::pair).collect();
    let files: Vec<_> = writes.iter().filter_map(Replacement::whole).collect();
    store::replace_many(&pairs, &files)?;
    let pruned = generations::prune(&backups.dir, backups.keep)?;
    Ok(Kept { generation, pruned })
}

/// Keeps the current files of `row` as a new generation in `backups.dir`, recorded as made
/// by `command` (what it changes: `change`): what `kubelet serving-cert` and `kubelet repair`
/// replace is kept as renew keeps its rows. The caller replaces the files, then prunes
/// (`prune`). Returns the generation.
pub fn keep_row(
    dirs: &TreeDirs,
    backups: &Backups,
    row: &Profile,
    command: &str,
    change: &str,
    now: OffsetDateTime,
) -> Result<PathBuf> {
    let generation = generations::new_path(&backups.dir, now)?;
    let change = RowChange {
        name: row.cert_name().to_string(),
        change: change.to_string(),
        restored_from: None,
    };
    generations::keep(dirs, &generation, now, command, &[(row, change)])?;
    Ok(generation)
}

/// Removes the generations of `backups.dir` beyond the newest `backups.keep`, but those
/// holding a CA's or `sa`'s key.
pub fn prune(backups: &Backups) -> Result<Pruned> {
    generations::prune(&backups.dir, backups.keep)
}

/// Signers for the CAs of the re-issued rows only: a run with nothing due loads no CA key.
fn load_signers(cas: &Cas, due: &[Due]) -> Result<HashMap<&'static str, SigningCa>> {
    let mut signers = HashMap::new();
    let issuers = due
        .iter()
        .filter(|d| d.request.is_some())
        .filter_map(|d| d.row.issuer);
    for issuer in issuers {
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
    let signed = cert.check_signed_by_any(&ca.trust, issuer.name);
    if row.is_optional() && signed.is_err() {
        return Ok((Outcome::Foreign(cert.path().to_path_buf()), None));
    }
    signed?;
    let residual = (cert.info.not_after - request.now).whole_seconds();
    if let Some(window) = request.due_within {
        if residual > i64::try_from(window.as_secs()).unwrap_or(i64::MAX) {
            return Ok((Outcome::NotDue(short_human_duration(residual)), None));
        }
    }
    // Capped by its CA at no later than it ends now: re-issuing gains nothing (and from
    // cron would re-issue every day); a shorter validity asked for is honoured.
    let ca_end = ca.cert.info.not_after;
    if request.now + request.validity.to_time() >= ca_end && ca_end <= cert.info.not_after {
        return Ok((Outcome::NotLater(issuer.name, ca.cert.info.not_after), None));
    }
    let validity = (request.now, request.validity);
    let due = Due::of(row, found, &ca.cert.info, validity, request.algorithm);
    Ok((Outcome::Renewed, Some(due)))
}

/// The CA row `issuer`, read once per run and checked to be able to sign at `now`.
pub fn signing_ca<'a>(
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
            key: dirs.root_of(row).join(row.key_file().unwrap_or_default()),
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
    /// The key and certificate, for a pair.
    pub fn pair(&self) -> Option<(&FileWrite, &FileWrite)> {
        match self {
            Replacement::Pair { key, cert, .. } => Some((key, cert)),
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

/// The files that replace every row of `due`: new keys generated together for the rows
/// with a request (`on_keys` hears how many are done, of how many), each certificate issued
/// by `signer_of` its issuer, each kubeconfig embedding what that signer's readers trust.
pub fn reissue_all<'a>(
    dirs: &TreeDirs,
    due: &[Due],
    signer_of: &dyn Fn(&str) -> Result<&'a SigningCa>,
    on_keys: &dyn Fn(usize, usize),
) -> Result<Vec<Replacement>> {
    let algorithms: Vec<Algorithm> = due
        .iter()
        .filter(|d| d.request.is_some())
        .map(|d| d.algorithm)
        .collect();
    let total = algorithms.len();
    let mut new_keys = keys::generate_all(&algorithms, &|done| on_keys(done, total))?.into_iter();
    let mut writes = Vec::new();
    for item in due {
        let key = item.request.as_ref().and_then(|_| new_keys.next());
        writes.push(replacement(dirs, item, key, signer_of)?);
    }
    Ok(writes)
}

/// The files that replace a due row: its successor, issued with `key` by its CA's signer
/// (with a kubeconfig's new server); or, without a request, the kubeconfig with its new
/// server and its credentials as they are.
fn replacement<'a>(
    dirs: &TreeDirs,
    due: &Due,
    key: Option<rcgen::KeyPair>,
    signer_of: &dyn Fn(&str) -> Result<&'a SigningCa>,
) -> Result<Replacement> {
    let issued = match (&due.request, key) {
        (Some(request), Some(key)) => {
            let signer = signer_of(due.row.issuer.unwrap_or_default())?;
            let issued = issue(due.row, request, key, By::Ca(signer))
                .with_context(|| format!("renewing {}", due.row.cert_name()))?;
            Some((issued, signer))
        }
        _ => None,
    };
    Ok(match (&due.found, issued) {
        (Found::Pair { .. }, Some((issued, _))) => Replacement::Pair {
            key: dirs.key_write(due.row, issued.key_pem.clone()),
            cert: dirs.cert_write(due.row, issued.cert_pem.clone()),
        },
        (Found::Kubeconfig(found), issued) => {
            let mut kubeconfig = found.kubeconfig.clone();
            if let Some(server) = &due.server {
                kubeconfig.set_server(server)?;
            }
            let yaml = match issued {
                Some((issued, signer)) => {
                    issued.kubeconfig(signer, KubeconfigOf::Existing(&kubeconfig))?
                }
                None => kubeconfig.to_yaml()?.into_bytes(),
            };
            Replacement::Kubeconfig(dirs.kubeconfig_write(due.row, yaml))
        }
        (Found::Pair { .. }, None) => bail!(
            "internal error: {} has nothing to replace",
            due.row.cert_name()
        ),
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
            backups: Backups {
                dir: tree.dirs.kubeconfig_dir.join("backup"),
                keep: 5,
            },
            now,
            all: names.iter().any(|n| n == "all"),
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
        let backup = renewal.kept.expect("kept").generation;
        assert!(backup.starts_with(tree.dirs.kubeconfig_dir.join("backup")));
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
        assert!(renewal.kept.is_none());
        assert!(!asked.backups.dir.exists());
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
    fn a_broken_pair_or_an_expired_ca_is_a_broken_row() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        tree.remove("etcd-peer", |i| i == 0);
        let broken = |renewal: &Renewal, name: &str| match outcome(renewal, name) {
            Outcome::Broken(problem) => problem.clone(),
            other => panic!("{name}: {other:?}"),
        };
        let renewal = renew(
            &tree.dirs,
            &request(&tree, &["etcd-peer"], spec.now),
            &unwatched,
        )
        .expect("a renewal");
        let problem = broken(&renewal, "etcd-peer");
        assert!(
            problem.contains("etcd/peer.crt: certificate exists without its key"),
            "{problem}"
        );
        assert!(renewal.kept.is_none());
        let later = spec.now + time::Duration::days(3651);
        let renewal = renew(
            &tree.dirs,
            &request(&tree, &["apiserver"], later),
            &unwatched,
        )
        .expect("a renewal");
        let problem = broken(&renewal, "apiserver");
        assert!(
            problem.contains("ca.crt: expired on")
                && problem.ends_with("can sign no valid certificate"),
            "{problem}"
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
        assert_eq!(PROFILES.iter().filter(|p| p.is_renewable()).count(), 13);
    }
}
