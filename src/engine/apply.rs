//! Carrying out a `Plan`: new keys are generated in parallel (a work queue sized to the
//! cores), certificates are issued in table order (CAs before what they sign), and only
//! when every byte is ready are the files handed to `store`, keys before their
//! certificates. A failure before the first write leaves the tree untouched.

use crate::cluster::kubeconfig::{ClientCredentials, Kubeconfig};
use crate::engine::plan::{Action, Plan, Step};
use crate::pki::inspect::CertInfo;
use crate::pki::issue::{self, Signer};
use crate::pki::keys;
use crate::pki::pem;
use crate::profile::Kind;
use crate::spec::ClusterSpec;
use crate::tree::store::{self, FileWrite, PUBLIC_MODE, SECRET_MODE};
use anyhow::{Result, anyhow};
use rcgen::KeyPair;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What applying a plan produced beyond the files it created.
pub struct Applied {
    /// The cluster CA's pin (`sha256:<hex>`), when the cluster CA exists.
    pub ca_pin: Option<String>,
    /// The derived files (see `apply`) written, because their content changed.
    pub derived: Vec<PathBuf>,
}

/// A CA as the rows it signs need it.
struct Ca {
    cert: CertInfo,
    signer: Option<Signer>,
}

/// Issues everything `plan` creates and writes it, in one batch with the files `derive` makes
/// from the created ones (the bootstrap manifests, which follow admin.conf): those of them
/// whose content changed are replaced along with the certificates, so that the whole run
/// takes three syncs (`store::create_all_and_replace`). The plan must hold no refusal.
pub fn apply(
    plan: Plan,
    spec: &ClusterSpec,
    derive: impl FnOnce(&[FileWrite]) -> Result<Vec<FileWrite>>,
) -> Result<Applied> {
    let new_key_count = plan
        .steps
        .iter()
        .filter(|s| s.action == Action::Create)
        .count();
    let mut new_keys = keys::generate_all(&vec![spec.algorithm; new_key_count])?.into_iter();
    let mut cas: HashMap<&str, Ca> = HashMap::new();
    for step in plan.context {
        remember_existing_ca(step, &mut cas)?;
    }
    let mut writes = Vec::new();
    for step in plan.steps {
        let key = match step.action {
            Action::Create => new_keys
                .next()
                .ok_or_else(|| anyhow!("internal error: too few keys"))?,
            Action::Complete => step
                .existing_key
                .ok_or_else(|| anyhow!("internal error: no key to complete"))?,
            Action::Reuse => {
                remember_existing_ca(step, &mut cas)?;
                continue;
            }
            Action::Refuse => return Err(anyhow!("{}", step.reason)),
        };
        let new_key = step.action == Action::Create;
        writes.extend(issue_row(
            step.profile,
            key,
            new_key,
            spec,
            &plan.dirs,
            &mut cas,
        )?);
    }
    let derived = store::create_all_and_replace(&writes, &derive(&writes)?)?;
    let ca_pin = cas.get("ca").map(|ca| ca.cert.pin()).transpose()?;
    Ok(Applied { ca_pin, derived })
}

/// Keeps an existing CA (with its signer, when its key is present) for the rows it signs.
fn remember_existing_ca(step: Step, cas: &mut HashMap<&str, Ca>) -> Result<()> {
    if step.profile.kind != Kind::Ca {
        return Ok(());
    }
    let cert = step
        .existing_cert
        .ok_or_else(|| anyhow!("internal error: reused CA without certificate"))?;
    let signer = step
        .existing_key
        .map(|key| issue::existing_ca(&cert.der, key))
        .transpose()?;
    cas.insert(step.profile.name, Ca { cert, signer });
    Ok(())
}

/// Issues one row for `key` and returns its files, key first. `new_key` says whether the
/// key file must be written too.
fn issue_row(
    profile: &'static crate::profile::Profile,
    key: KeyPair,
    new_key: bool,
    spec: &ClusterSpec,
    dirs: &crate::tree::TreeDirs,
    cas: &mut HashMap<&str, Ca>,
) -> Result<Vec<FileWrite>> {
    let cert_file = |rel: &Path, content: Vec<u8>, mode| FileWrite {
        root: dirs.cert_dir.clone(),
        rel: rel.into(),
        content,
        mode,
    };
    let mut writes = Vec::new();
    if let Some(key_rel) = profile.key_file().filter(|_| new_key) {
        writes.push(cert_file(
            &key_rel,
            keys::to_pem(&key)?.into_bytes(),
            SECRET_MODE,
        ));
    }
    match profile.kind {
        Kind::KeyPair => {
            let pub_rel = profile.pub_file().unwrap_or_default();
            writes.push(cert_file(
                &pub_rel,
                keys::public_key_pem(&key).into_bytes(),
                SECRET_MODE,
            ));
        }
        Kind::Ca => {
            let request = profile
                .request(spec, spec.now)
                .ok_or_else(|| anyhow!("internal error: CA row without request"))?;
            let (der, signer) = issue::self_signed_ca(&request, key)?;
            let cert_rel = profile.cert_file().unwrap_or_default();
            writes.push(cert_file(
                &cert_rel,
                pem::encode("CERTIFICATE", &der).into_bytes(),
                PUBLIC_MODE,
            ));
            cas.insert(
                profile.name,
                Ca {
                    cert: CertInfo::parse(der)?,
                    signer: Some(signer),
                },
            );
        }
        Kind::Leaf => {
            let (ca, request) = signer_and_request(profile, spec, cas)?;
            let der = issue::signed_by(&request, &key, ca.signer.as_ref().ok_or_else(no_signer)?)?;
            let cert_rel = profile.cert_file().unwrap_or_default();
            writes.push(cert_file(
                &cert_rel,
                pem::encode("CERTIFICATE", &der).into_bytes(),
                PUBLIC_MODE,
            ));
        }
        Kind::Kubeconfig(_) => {
            let (ca, request) = signer_and_request(profile, spec, cas)?;
            let der = issue::signed_by(&request, &key, ca.signer.as_ref().ok_or_else(no_signer)?)?;
            let creds = ClientCredentials {
                ca_pem: pem::encode("CERTIFICATE", &ca.cert.der).into_bytes(),
                server: profile.server_url(spec).unwrap_or_default(),
                cert_pem: pem::encode("CERTIFICATE", &der).into_bytes(),
                key_pem: keys::to_pem(&key)?.into_bytes(),
            };
            let yaml = Kubeconfig::with_client_cert(
                &spec.cluster_name,
                &creds.server,
                &request.cn,
                &creds,
            )
            .to_yaml()?;
            writes.push(FileWrite {
                root: dirs.kubeconfig_dir.clone(),
                rel: profile.file.into(),
                content: yaml.into_bytes(),
                mode: SECRET_MODE,
            });
        }
    }
    Ok(writes)
}

fn signer_and_request<'a>(
    profile: &crate::profile::Profile,
    spec: &ClusterSpec,
    cas: &'a HashMap<&str, Ca>,
) -> Result<(&'a Ca, crate::pki::issue::CertRequest)> {
    let issuer = profile.issuer.unwrap_or_default();
    let ca = cas.get(issuer).ok_or_else(no_signer)?;
    let request = profile.request(spec, ca.cert.not_before).ok_or_else(|| {
        anyhow!(
            "internal error: {} has no certificate request",
            profile.name
        )
    })?;
    Ok((ca, request))
}

fn no_signer() -> anyhow::Error {
    anyhow!("internal error: a certificate's CA cannot sign (the plan should have refused)")
}
