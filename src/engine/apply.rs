//! Carrying out a `Plan`: new keys are generated in parallel (a work queue sized to the
//! cores), certificates are issued in table order (CAs before what they sign) through the one
//! issuance function, and only when every byte is ready are the files handed to `store`,
//! which writes keys before their certificates. A failure before the first write leaves the
//! tree untouched.

use super::issue::{By, Capped, Issued, KubeconfigOf, SigningCa, issue};
use super::plan::{Action, Plan, Step};
use crate::pki::inspect::CertInfo;
use crate::pki::keys;
use crate::pki::pin::CaPin;
use crate::profile::{Kind, Profile, Role, by_role};
use crate::spec::ClusterSpec;
use crate::tree::TreeDirs;
use crate::tree::store::{self, FileWrite};
use anyhow::{Result, anyhow};
use rcgen::KeyPair;
use std::collections::HashMap;
use std::path::PathBuf;

/// What applying a plan produced beyond the files it created.
pub struct Applied {
    /// The cluster CA's pin, when the cluster CA exists.
    pub ca_pin: Option<CaPin>,
    /// Certificates that end with their CA, earlier than the settings asked.
    pub capped: Vec<Capped>,
    /// The derived files (see `apply`) written, because their content changed.
    pub derived: Vec<PathBuf>,
}

/// A CA as the rows it signs need it: its certificate, and its signer unless it is external.
struct Ca {
    cert: CertInfo,
    signing: Option<SigningCa>,
}

/// Issues everything `plan` creates and writes it, in one batch with the files `derive` makes
/// from the created ones (the bootstrap manifests, which follow admin.conf): those of them
/// whose content changed are replaced along with the certificates, so that the whole run
/// takes three syncs (`store::create_all_and_replace`). The plan must hold no refusal.
pub fn apply(
    plan: Plan,
    spec: &ClusterSpec,
    derive: impl FnOnce(&[FileWrite]) -> Result<Vec<FileWrite>>,
    on_keys: &dyn Fn(usize, usize),
) -> Result<Applied> {
    let new_key_count = plan
        .steps
        .iter()
        .filter(|s| s.action == Action::Create)
        .count();
    let algorithms = vec![spec.algorithm; new_key_count];
    let on_done = |done| on_keys(done, new_key_count);
    let mut new_keys = keys::generate_all(&algorithms, &on_done)?.into_iter();
    let mut cas: HashMap<&str, Ca> = HashMap::new();
    for step in plan.context {
        remember_existing_ca(step, &mut cas)?;
    }
    let (mut writes, mut capped) = (Vec::new(), Vec::new());
    for step in plan.steps {
        let (key, new_key) = match step.action {
            Action::Create => (
                new_keys.next().ok_or_else(|| internal("too few keys"))?,
                true,
            ),
            Action::Complete => (step.existing_key.ok_or_else(|| internal("no key"))?, false),
            Action::Reuse => {
                remember_existing_ca(step, &mut cas)?;
                continue;
            }
            Action::Refuse(problem) => return Err(problem.into()),
        };
        let (files, ended_early) = write_row(step.row, key, new_key, spec, &plan.dirs, &mut cas)?;
        writes.extend(files);
        capped.extend(ended_early);
    }
    let derived = store::create_all_and_replace(&writes, &derive(&writes)?)?;
    let cluster_ca = cas.get(by_role(Role::ClusterCa).name);
    Ok(Applied {
        ca_pin: cluster_ca.map(|ca| CaPin::of(&ca.cert)),
        capped,
        derived,
    })
}

/// The `derive` of an `apply` that writes nothing beyond the plan's own files.
pub fn no_derived(_created: &[FileWrite]) -> Result<Vec<FileWrite>> {
    Ok(Vec::new())
}

/// The `on_keys` of an `apply` or a renewal nobody watches.
pub fn unwatched(_done: usize, _total: usize) {}

fn internal(what: &str) -> anyhow::Error {
    anyhow!("internal error: {what} (the plan should have said so)")
}

/// Keeps an existing CA (with its signer, when its key is present) for the rows it signs.
fn remember_existing_ca(step: Step, cas: &mut HashMap<&str, Ca>) -> Result<()> {
    if step.row.kind != Kind::Ca {
        return Ok(());
    }
    let cert = step
        .existing_cert
        .ok_or_else(|| internal("a reused CA without its certificate"))?;
    let trust = step.existing_trust;
    let signing = step
        .existing_key
        .map(|key| SigningCa::new(cert.clone(), key).map(|ca| ca.trusting(&trust)))
        .transpose()?;
    cas.insert(step.row.name, Ca { cert, signing });
    Ok(())
}

/// Issues one row for `key` and returns its files, key first (the key only when `new_key`),
/// and whether its certificate ends with its CA, earlier than the settings asked.
fn write_row(
    row: &'static Profile,
    key: KeyPair,
    new_key: bool,
    spec: &ClusterSpec,
    dirs: &TreeDirs,
    cas: &mut HashMap<&str, Ca>,
) -> Result<(Vec<FileWrite>, Option<Capped>)> {
    if row.kind == Kind::KeyPair {
        let key_pem = keys::to_pem(&key)?.into_bytes();
        let public = dirs.public_key_write(row, keys::public_key_pem(&key).into_bytes());
        let files = match new_key {
            true => vec![dirs.key_write(row, key_pem), public],
            false => vec![public],
        };
        return Ok((files, None));
    }
    let (issued, capped) = issue_row(row, key, spec, cas)?;
    let mut writes = Vec::new();
    if new_key && row.key_file().is_some() {
        writes.push(dirs.key_write(row, issued.key_pem.clone()));
    }
    match row.kind {
        Kind::Kubeconfig(_) => {
            let ca = signing_ca(row, cas)?;
            let server = row.server_url(spec).unwrap_or_default();
            let of = KubeconfigOf::New {
                cluster_name: &spec.cluster_name,
                server: &server,
            };
            writes.push(dirs.kubeconfig_write(row, issued.kubeconfig(ca, of)?));
        }
        Kind::Ca => {
            writes.push(dirs.cert_write(row, issued.cert_pem.clone()));
            let cert = issued.cert.clone();
            let signing = Some(issued.into_ca()?);
            cas.insert(row.name, Ca { cert, signing });
        }
        _ => writes.push(dirs.cert_write(row, issued.cert_pem)),
    }
    Ok((writes, capped))
}

/// Issues a CA, leaf or kubeconfig row's certificate for `key`, by its CA (or itself); says
/// when it ends with its CA, earlier than the settings asked.
fn issue_row(
    row: &'static Profile,
    key: KeyPair,
    spec: &ClusterSpec,
    cas: &HashMap<&str, Ca>,
) -> Result<(Issued, Option<Capped>)> {
    if row.kind == Kind::Ca {
        let request = row
            .request(spec, None)
            .ok_or_else(|| internal("no request"))?;
        return Ok((issue(row, &request, key, By::Itself)?, None));
    }
    let ca = signing_ca(row, cas)?;
    let request = row
        .request(spec, Some(&ca.cert))
        .ok_or_else(|| internal("no request"))?;
    let issuer = row.issuer.unwrap_or_default();
    let capped = Capped::of(row.cert_name(), issuer, &request, row.wanted_end(spec));
    Ok((issue(row, &request, key, By::Ca(ca))?, capped))
}

/// The signer of `row`'s CA.
fn signing_ca<'a>(row: &Profile, cas: &'a HashMap<&str, Ca>) -> Result<&'a SigningCa> {
    cas.get(row.issuer.unwrap_or_default())
        .and_then(|ca| ca.signing.as_ref())
        .ok_or_else(|| internal("a certificate's CA cannot sign"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::plan_init;
    use crate::profile::{PROFILES, Selection};
    use crate::testtree::{TestTree, ecdsa_spec};
    use crate::tree::reader;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn every_file_is_written_with_kubeadms_mode_and_the_pin_is_the_cluster_cas() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::empty();
        let applied = apply(
            plan_init(&spec, &tree.dirs, Selection::All),
            &spec,
            no_derived,
            &unwatched,
        )
        .expect("applied");
        for row in PROFILES.iter().filter(|row| Selection::All.includes(row)) {
            for path in tree.dirs.paths_of(row) {
                let mode = std::fs::metadata(&path)
                    .expect("written")
                    .permissions()
                    .mode()
                    & 0o777;
                let public = path.extension().is_some_and(|e| e == "crt");
                assert_eq!(
                    mode,
                    if public { 0o644 } else { 0o600 },
                    "{}",
                    path.display()
                );
            }
        }
        let ca = reader::read_ca(&tree.dirs, by_role(Role::ClusterCa)).expect("the CA");
        assert_eq!(applied.ca_pin, Some(CaPin::of(&ca.cert.info)));
    }

    #[test]
    fn completing_keeps_the_key_and_a_refusal_writes_nothing() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        let [key, cert] = [0, 1].map(|i| tree.files_of("etcd-healthcheck-client")[i].clone());
        let key_before = std::fs::read(&key).expect("the key");
        std::fs::remove_file(&cert).expect("removing");
        apply(
            plan_init(&spec, &tree.dirs, Selection::All),
            &spec,
            no_derived,
            &unwatched,
        )
        .expect("completed");
        assert_eq!(std::fs::read(&key).expect("the key"), key_before);
        assert!(cert.is_file());
        std::fs::remove_file(&cert).expect("removing");
        std::fs::write(tree.files_of("etcd-ca")[0].clone(), "broken").expect("writing");
        let error = apply(
            plan_init(&spec, &tree.dirs, Selection::All),
            &spec,
            no_derived,
            &unwatched,
        )
        .err()
        .expect("refused");
        assert!(
            error
                .to_string()
                .contains("etcd/ca.key: not a valid private key"),
            "{error}"
        );
        assert!(!cert.exists(), "nothing was written");
    }
}
