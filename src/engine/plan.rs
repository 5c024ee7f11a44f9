//! Deciding, per selected row of the profile table, what `init` does with the tree as it is
//! on disk: create, complete (a key whose certificate is missing), reuse (present and sound),
//! or refuse (present but wrong — never a silent overwrite). Reads through `tree::reader`;
//! writes nothing.

use super::drift;
use crate::pki::inspect::CertInfo;
use crate::profile::{Kind, PROFILES, Profile, Selection};
use crate::spec::ClusterSpec;
use crate::tree::TreeDirs;
use crate::tree::problem::Problem;
use crate::tree::reader::{self, Checked, FoundCert, FoundKey};
use anyhow::{Result, anyhow};
use rcgen::KeyPair;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write a new key and what goes with it.
    Create,
    /// Keep the existing key and write the missing certificate or public key beside it.
    Complete,
    /// Leave the existing files as they are.
    Reuse,
    /// The existing files are wrong; nothing may be written.
    Refuse(Problem),
}

/// The decision for one row.
pub struct Step {
    /// The row.
    pub row: &'static Profile,
    /// What to do.
    pub action: Action,
    /// Why, for people (for a refusal: the problem, naming its file).
    pub reason: String,
    /// The files the row owns, full paths, key first.
    pub files: Vec<PathBuf>,
    /// The existing private key, loaded (to complete, and for reused CAs that sign).
    pub existing_key: Option<KeyPair>,
    /// The existing certificate (reused CAs and leaves).
    pub existing_cert: Option<CertInfo>,
    /// For a reused CA, what its readers trust: its certificate, then during a rotation the
    /// CA coming or going (which kubeconfigs it signs embed too).
    pub existing_trust: Vec<CertInfo>,
    /// How a reused file differs from what the current settings would write.
    pub drift: Vec<Drift>,
}

/// One way a reused file differs from the current settings (kubeadm only warns of a
/// kubeconfig's server): it is kept, and said.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Drift {
    /// What differs: `server`, `user` or `groups`.
    pub what: &'static str,
    /// What the file holds.
    pub found: String,
    /// What the settings say.
    pub wanted: String,
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Drift {
            what,
            found,
            wanted,
        } = self;
        write!(
            f,
            "its {what} is {found}, the current settings say {wanted}"
        )
    }
}

impl Step {
    /// The problem of a refused step.
    pub fn problem(&self) -> Option<&Problem> {
        match &self.action {
            Action::Refuse(problem) => Some(problem),
            _ => None,
        }
    }
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
    /// The refusals, in table order.
    pub fn refusals(&self) -> impl Iterator<Item = &Problem> {
        self.steps.iter().filter_map(Step::problem)
    }

    /// Fails with the first refusal, naming its file (and counting the others).
    pub fn ensure_no_refusal(&self) -> Result<()> {
        let mut refusals = self.refusals();
        let Some(first) = refusals.next() else {
            return Ok(());
        };
        match refusals.count() {
            0 => Err(first.clone().into()),
            more => Err(anyhow!(
                "{first} (and {more} more problem(s); see --dry-run)"
            )),
        }
    }
}

/// A CA as the plan leaves it, for deciding about the rows it signs.
struct CaState {
    cert: Option<CertInfo>,
    /// What its readers trust (its certificate, then during a rotation the CA coming or
    /// going): a certificate any of them signed is its.
    trust: Vec<CertInfo>,
    refused: bool,
    can_sign: bool,
    key_path: PathBuf,
}

type Cas = HashMap<&'static str, CaState>;

/// An action and its reason, or the problem that refuses the row.
type Decision = Checked<(Action, String)>;

/// Plans `init` (or a phase) for `selection`. CA rows are always examined, because the rows
/// they sign depend on them, but only selected rows become steps. With an external etcd
/// (`etcd.external`) the etcd CA and the rows it signs are left out, as kubeadm does.
pub fn plan_init(spec: &ClusterSpec, dirs: &TreeDirs, selection: Selection) -> Plan {
    let mut cas = Cas::new();
    let (mut steps, mut context) = (Vec::new(), Vec::new());
    for row in PROFILES {
        let selected = selection.includes(row);
        let skipped = spec.external_etcd && row.needs_local_etcd();
        if skipped || (!selected && row.kind != Kind::Ca) {
            continue;
        }
        let step = decide(row, spec, dirs, &cas);
        if row.kind == Kind::Ca {
            cas.insert(row.name, ca_state(row, &step, selected, dirs));
        }
        match (selected, &step.action) {
            (true, _) => steps.push(step),
            (false, Action::Reuse) => context.push(step),
            (false, _) => {}
        }
    }
    Plan {
        steps,
        context,
        dirs: dirs.clone(),
    }
}

fn ca_state(row: &Profile, step: &Step, selected: bool, dirs: &TreeDirs) -> CaState {
    let refused = matches!(step.action, Action::Refuse(_));
    let created = selected && step.action == Action::Create;
    CaState {
        cert: step.existing_cert.clone(),
        trust: step.existing_trust.clone(),
        refused,
        can_sign: created || (step.existing_key.is_some() && !refused),
        key_path: dirs.cert_dir.join(row.key_file().unwrap_or_default()),
    }
}

fn decide(row: &'static Profile, spec: &ClusterSpec, dirs: &TreeDirs, cas: &Cas) -> Step {
    let mut step = Step {
        row,
        action: Action::Create,
        reason: String::new(),
        files: dirs.paths_of(row),
        existing_key: None,
        existing_cert: None,
        existing_trust: Vec::new(),
        drift: Vec::new(),
    };
    let decision = match row.kind {
        Kind::Ca => decide_ca(row, spec, dirs, &mut step),
        Kind::Leaf => decide_leaf(row, spec, dirs, cas, &mut step),
        Kind::KeyPair => decide_key_pair(row, dirs, &mut step),
        Kind::Kubeconfig(_) => decide_kubeconfig(row, spec, dirs, cas, &mut step),
    };
    (step.action, step.reason) = match decision {
        Ok(decided) => decided,
        Err(problem) => {
            let reason = problem.to_string();
            (Action::Refuse(problem), reason)
        }
    };
    step
}

/// A pair whose certificate is missing: create both, or, when the key is there (a run
/// killed between key and certificate), issue a certificate for that very key.
fn create_or_complete(
    key: Option<&FoundKey>,
    step: &mut Step,
    create_reason: String,
    key_path: &Path,
) -> Decision {
    let Some(found) = key else {
        return Ok((Action::Create, create_reason));
    };
    step.existing_key = Some(found.load()?);
    Ok((
        Action::Complete,
        format!(
            "{} exists without its certificate; issuing one for that key",
            key_path.display()
        ),
    ))
}

fn decide_ca(row: &Profile, spec: &ClusterSpec, dirs: &TreeDirs, step: &mut Step) -> Decision {
    let pair = reader::read_pair(dirs, row)?;
    let Some(cert) = pair.cert else {
        let new = format!("new {} CA", row.name);
        return create_or_complete(pair.key.as_ref(), step, new, &pair.key_path);
    };
    cert.check_is_ca()?;
    cert.check_current(spec.now)?;
    let reason = match &pair.key {
        Some(found) => {
            let key = found.load()?;
            found.check_loaded_belongs_to(&key, &cert)?;
            step.existing_key = Some(key);
            "existing CA certificate and key".to_string()
        }
        None => format!(
            "external CA: {} is absent, so only existing certificates it signed can be used",
            pair.key_path.display()
        ),
    };
    step.existing_trust = reader::trusted_with(dirs, row, &cert.info)?;
    step.existing_cert = Some(cert.info);
    Ok((Action::Reuse, reason))
}

/// Why a missing file signed by the row's CA cannot be created, if it cannot.
fn check_signer(row: &Profile, cas: &Cas, missing: &Path, dirs: &TreeDirs) -> Checked<()> {
    let issuer = row.issuer.unwrap_or_default();
    match cas.get(issuer) {
        Some(ca) if ca.refused => Err(Problem::UnusableCa {
            path: missing.to_path_buf(),
            issuer,
        }),
        Some(ca) if ca.can_sign => Ok(()),
        Some(ca) if ca.cert.is_some() => Err(Problem::CaKeyNeeded {
            missing: missing.to_path_buf(),
            ca_key: ca.key_path.clone(),
        }),
        _ => Err(Problem::CaNotYet {
            missing: missing.to_path_buf(),
            issuer,
            command: dirs.command(&format!("init phase certs {issuer}")),
        }),
    }
}

/// The signer rule, as renew, reconcile and expiry apply it: a certificate any CA its
/// issuer's readers trust signed (the issuer, or during a rotation the CA coming or going).
fn check_signed(row: &Profile, cas: &Cas, cert: &FoundCert) -> Checked<()> {
    let ca = issuer_cert(row, cas, cert.path())?;
    let issuer = row.issuer.unwrap_or_default();
    let trust = cas
        .get(issuer)
        .map(|ca| ca.trust.as_slice())
        .unwrap_or_default();
    match trust.is_empty() {
        true => cert.check_signed_by(ca, issuer),
        false => cert.check_signed_by_any(trust, issuer),
    }
}

/// The issuer's certificate, which an existing file must verify against.
fn issuer_cert<'a>(row: &Profile, cas: &'a Cas, path: &Path) -> Checked<&'a CertInfo> {
    let issuer = row.issuer.unwrap_or_default();
    let ca = cas.get(issuer);
    if ca.is_some_and(|ca| ca.refused) {
        return Err(Problem::UnusableCa {
            path: path.to_path_buf(),
            issuer,
        });
    }
    ca.and_then(|ca| ca.cert.as_ref())
        .ok_or_else(|| Problem::CaAbsent {
            path: path.to_path_buf(),
            issuer,
        })
}

/// A present certificate signed by the row's CA: it must verify, be current and carry the
/// SANs the spec asks for.
fn check_issued(row: &Profile, spec: &ClusterSpec, cas: &Cas, cert: &FoundCert) -> Checked<()> {
    check_signed(row, cas, cert)?;
    cert.check_current(spec.now)?;
    let (dns_names, ips) = row.alt_names(spec);
    cert.check_sans(&dns_names, &ips)
}

fn decide_leaf(
    row: &Profile,
    spec: &ClusterSpec,
    dirs: &TreeDirs,
    cas: &Cas,
    step: &mut Step,
) -> Decision {
    let pair = reader::read_pair(dirs, row)?;
    let Some(cert) = pair.cert else {
        check_signer(row, cas, &pair.cert_path, dirs)?;
        let new = format!(
            "new certificate signed by {}",
            row.issuer.unwrap_or_default()
        );
        return create_or_complete(pair.key.as_ref(), step, new, &pair.key_path);
    };
    let found = pair.key.ok_or_else(|| Problem::CertWithoutKey {
        cert: pair.cert_path.clone(),
        key: pair.key_path.clone(),
    })?;
    found.check_loaded_belongs_to(&found.load()?, &cert)?;
    check_issued(row, spec, cas, &cert)?;
    step.existing_cert = Some(cert.info);
    Ok((
        Action::Reuse,
        "existing certificate and key are valid".into(),
    ))
}

fn decide_key_pair(row: &Profile, dirs: &TreeDirs, step: &mut Step) -> Decision {
    let found = reader::read_key_pair(dirs, row)?;
    let Some(key_found) = &found.key else {
        return match found.public_pem {
            None => Ok((Action::Create, "new key pair".into())),
            Some(_) => Err(Problem::PublicWithoutKey {
                public: found.public_path.clone(),
                key: found.key_path.clone(),
            }),
        };
    };
    let key = key_found.load()?;
    let Some(public_pem) = &found.public_pem else {
        step.existing_key = Some(key);
        return Ok((
            Action::Complete,
            format!(
                "{} exists; writing its public key",
                found.key_path.display()
            ),
        ));
    };
    found.check_public(&key, public_pem)?;
    Ok((Action::Reuse, "existing key pair".into()))
}

fn decide_kubeconfig(
    row: &Profile,
    spec: &ClusterSpec,
    dirs: &TreeDirs,
    cas: &Cas,
    step: &mut Step,
) -> Decision {
    let Some(found) = reader::read_kubeconfig(dirs, row)? else {
        check_signer(row, cas, &dirs.kubeconfig_dir.join(row.file), dirs)?;
        return Ok((
            Action::Create,
            format!("new kubeconfig for {}", row.common_name(spec)),
        ));
    };
    let server = found.server()?;
    let (cert, key) = found.embedded()?;
    let ca = issuer_cert(row, cas, &found.path)?;
    found.check_ca(ca, row.issuer.unwrap_or_default())?;
    key.check_loaded_belongs_to(&key.load()?, cert)?;
    check_signed(row, cas, cert)?;
    cert.check_current(spec.now)?;
    step.existing_cert = Some(cert.info.clone());
    step.drift = kubeconfig_drift(row, spec, server, &cert.info);
    let reason = match step.drift.is_empty() {
        true => "existing kubeconfig is valid".to_string(),
        false => {
            let drift: Vec<String> = step.drift.iter().map(Drift::to_string).collect();
            format!(
                "existing kubeconfig is valid (warning: {})",
                drift.join("; ")
            )
        }
    };
    Ok((Action::Reuse, reason))
}

/// How a reused kubeconfig differs from what the current settings would write: its server,
/// user and groups, judged by `drift`'s rules (the ones audit and reconcile use).
pub(crate) fn kubeconfig_drift(
    row: &Profile,
    spec: &ClusterSpec,
    server: &str,
    cert: &CertInfo,
) -> Vec<Drift> {
    let wanted = drift::Wanted::of(spec, None);
    let judged = [
        ("server", drift::server(row, server, &wanted)),
        ("user", drift::common_name(row, cert, &wanted)),
        ("groups", drift::organizations(row, cert)),
    ];
    judged
        .into_iter()
        .filter_map(|(what, drift)| drift.map(|d| (what, d)))
        .map(|(what, d)| Drift {
            what,
            found: d.removed.join(","),
            wanted: d.added.join(","),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Group, by_name};
    use crate::testtree::{TestTree, actions, ecdsa_spec};
    use std::fs;

    fn all(word: &'static str) -> Vec<(&'static str, &'static str)> {
        PROFILES
            .iter()
            .filter(|p| Selection::All.includes(p))
            .map(|p| (p.name, word))
            .collect()
    }

    fn plan(tree: &TestTree, spec: &ClusterSpec) -> Plan {
        plan_init(spec, &tree.dirs, Selection::All)
    }

    /// The refusal of row `name`.
    fn refusal<'a>(plan: &'a Plan, name: &str) -> &'a Problem {
        let step = plan.steps.iter().find(|s| s.row.name == name);
        step.and_then(Step::problem)
            .unwrap_or_else(|| panic!("{name} is not refused"))
    }

    #[test]
    fn an_empty_tree_creates_every_row_and_a_written_one_reuses_it() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::empty();
        assert_eq!(actions(&plan(&tree, &spec)), all("create"));
        tree.init(&spec, Selection::All);
        let again = plan(&tree, &spec);
        assert_eq!(actions(&again), all("reuse"));
        assert!(again.ensure_no_refusal().is_ok());
        let ca = again.steps.iter().find(|s| s.row.name == "ca").expect("ca");
        assert!(ca.existing_key.is_some() && ca.existing_cert.is_some());
    }

    #[test]
    fn a_key_without_its_certificate_is_completed_with_that_key() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        tree.remove("apiserver", |i| i == 1);
        tree.remove("sa", |i| i == 1);
        let plan = plan(&tree, &spec);
        let completed: Vec<_> = actions(&plan)
            .into_iter()
            .filter(|(_, action)| *action != "reuse")
            .collect();
        assert_eq!(completed, [("apiserver", "complete"), ("sa", "complete")]);
        let step = plan.steps.iter().find(|s| s.row.name == "apiserver");
        assert!(step.is_some_and(|s| s.existing_key.is_some()));
    }

    #[test]
    fn a_broken_ca_refuses_itself_and_everything_it_signs() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        let ca_key = tree.files_of("front-proxy-ca")[0].clone();
        fs::write(&ca_key, "not a key").expect("writing");
        let plan = plan(&tree, &spec);
        assert!(matches!(
            refusal(&plan, "front-proxy-ca"),
            Problem::BadKey { .. }
        ));
        assert!(matches!(
            refusal(&plan, "front-proxy-client"),
            Problem::UnusableCa {
                issuer: "front-proxy-ca",
                ..
            }
        ));
        assert_eq!(plan.refusals().count(), 2, "{:?}", actions(&plan));
        let error = plan.ensure_no_refusal().expect_err("refused").to_string();
        assert!(
            error.ends_with("(and 1 more problem(s); see --dry-run)"),
            "{error}"
        );
    }

    #[test]
    fn an_external_ca_lets_existing_files_be_reused_but_creates_nothing() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        tree.remove("ca", |i| i == 0);
        tree.remove("apiserver", |_| true);
        let plan = plan(&tree, &spec);
        let ca = plan.steps.iter().find(|s| s.row.name == "ca").expect("ca");
        assert_eq!(ca.action, Action::Reuse);
        assert!(ca.reason.starts_with("external CA:"), "{}", ca.reason);
        assert!(matches!(
            refusal(&plan, "apiserver"),
            Problem::CaKeyNeeded { .. }
        ));
        assert_eq!(plan.refusals().count(), 1);
    }

    #[test]
    fn a_phase_needs_its_ca_first() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::empty();
        let server = Selection::One(by_name("etcd-server").expect("a row"));
        let plan = plan_init(&spec, &tree.dirs, server);
        assert_eq!(actions(&plan), [("etcd-server", "refuse")]);
        assert!(matches!(
            refusal(&plan, "etcd-server"),
            Problem::CaNotYet {
                issuer: "etcd-ca",
                ..
            }
        ));
        tree.init(&spec, Selection::One(by_name("etcd-ca").expect("a row")));
        let plan = plan_init(&spec, &tree.dirs, server);
        assert_eq!(actions(&plan), [("etcd-server", "create")]);
        assert_eq!(plan.context.len(), 1, "the etcd CA signs it");
        let kubeconfigs = plan_init(&spec, &tree.dirs, Selection::Group(Group::Kubeconfig));
        assert!(
            kubeconfigs
                .steps
                .iter()
                .all(|s| s.row.group() == Group::Kubeconfig)
        );
    }

    #[test]
    fn settings_that_need_new_sans_refuse_the_old_certificate() {
        let tree = TestTree::written(&ecdsa_spec(&[]));
        let moved = ecdsa_spec(&["--apiserver-cert-extra-sans", "new.example.com,10.9.9.9"]);
        let plan = plan(&tree, &moved);
        match refusal(&plan, "apiserver") {
            Problem::MissingSans { missing, .. } => {
                assert_eq!(missing, &["new.example.com", "10.9.9.9"])
            }
            other => panic!("{other}"),
        }
        assert_eq!(plan.refusals().count(), 1);
    }

    #[test]
    fn a_kubeconfig_for_another_server_is_reused_with_a_warning() {
        let tree = TestTree::written(&ecdsa_spec(&[]));
        let elsewhere = ecdsa_spec(&["--control-plane-endpoint", "lb.example.com"]);
        let plan = plan_init(&elsewhere, &tree.dirs, Selection::Group(Group::Kubeconfig));
        let admin = plan
            .steps
            .iter()
            .find(|s| s.row.name == "admin")
            .expect("admin");
        assert_eq!(admin.action, Action::Reuse);
        assert!(
            admin
                .reason
                .contains("its server is https://192.168.1.10:6443, the current settings say https://lb.example.com:6443"),
            "{}",
            admin.reason
        );
    }

    #[test]
    fn a_certificate_without_its_key_or_signed_by_another_ca_is_refused() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        tree.remove("front-proxy-client", |i| i == 0);
        let other = TestTree::written(&spec);
        for file in tree.files_of("etcd-peer") {
            let copy = other
                .dirs
                .cert_dir
                .join(file.strip_prefix(&tree.dirs.cert_dir).expect("below"));
            fs::copy(&copy, &file).expect("copying");
        }
        let plan = plan(&tree, &spec);
        assert!(matches!(
            refusal(&plan, "front-proxy-client"),
            Problem::CertWithoutKey { .. }
        ));
        assert!(matches!(
            refusal(&plan, "etcd-peer"),
            Problem::NotSignedBy {
                issuer: "etcd-ca",
                ..
            }
        ));
    }

    #[test]
    fn an_external_etcd_leaves_out_the_etcd_rows() {
        let mut spec = ecdsa_spec(&[]);
        spec.external_etcd = true;
        let plan = plan(&TestTree::empty(), &spec);
        let names: Vec<&str> = plan.steps.iter().map(|s| s.row.name).collect();
        assert!(!names.iter().any(|n| n.contains("etcd")), "{names:?}");
        assert_eq!(names.len(), all("create").len() - 5);
    }

    #[test]
    fn an_expired_certificate_is_refused() {
        let mut spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        spec.now += time::Duration::days(400);
        let plan = plan(&tree, &spec);
        assert!(matches!(
            refusal(&plan, "apiserver"),
            Problem::Expired { .. }
        ));
        let ca = plan.steps.iter().find(|s| s.row.name == "ca").expect("ca");
        assert_eq!(ca.action, Action::Reuse, "a 10-year CA is still current");
    }
}
