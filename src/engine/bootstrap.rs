//! The cluster objects that let workers join, kept in step with the tree: admin.conf's
//! cluster and the token Secrets of a manifests directory become the RBAC, `cluster-info`
//! and kube-proxy manifests, written only where their content changed; new tokens' Secrets;
//! and the join commands that use them.

use crate::cluster::bootstrap::{BootstrapToken, TokenRecord};
use crate::cluster::kubeconfig::Kubeconfig;
use crate::cluster::manifests::{cluster_manifests, upload_config};
use crate::config::publish;
use crate::pki::pin::CaPin;
use crate::profile::{Role, by_role};
use crate::spec::ClusterSpec;
use crate::tree::TreeDirs;
use crate::tree::reader::{read_admin, read_tokens};
use crate::tree::store::{self, FileWrite};
use anyhow::{Context, Result, anyhow, bail};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// Writes the cluster manifests (RBAC, cluster-info signed by the tokens of `dir`, kube-proxy)
/// into `dir`, mode 0600, leaving files that already hold the same content; returns those written.
pub fn write_manifests(dirs: &TreeDirs, dir: &Path, now: OffsetDateTime) -> Result<Vec<PathBuf>> {
    store::replace_changed(&manifests(&read_admin(dirs)?, dir, &[], now)?)
}

/// What a whole `init` writes beside the PKI, in the same batch: the Secret of every token
/// of `tokens` (the configuration's) that has none in the manifests directory yet; the
/// manifests for admin.conf as `new` leaves it, `cluster-info` signed by all the tokens; and
/// the configuration `kubeadm join` reads (`kubeadm-config`, `kubelet-config`) for `spec`.
pub fn init_manifests(
    dirs: &TreeDirs,
    new: &[FileWrite],
    tokens: &[TokenRecord],
    spec: &ClusterSpec,
    kubernetes_version: Option<&str>,
) -> Result<Vec<FileWrite>> {
    let now = spec.now;
    let dir = dirs.manifests_dir();
    let mut files = Vec::new();
    for record in tokens {
        let secret = secret_file(&dir, record)?;
        if store::read_optional(&secret.root, &secret.rel)?.is_none() {
            files.push(secret);
        }
    }
    files.extend(manifests(&admin_after(dirs, new)?, &dir, tokens, now)?);
    let ca_file = dirs
        .cert_dir
        .join(by_role(Role::ClusterCa).cert_file().unwrap_or_default());
    let (name, yaml) = upload_config(
        &publish::cluster_configuration(spec, &dirs.cert_dir, kubernetes_version)?,
        &publish::kubelet_configuration(spec, &ca_file)?,
    )?;
    files.push(FileWrite {
        root: dir,
        rel: name.into(),
        content: yaml.into_bytes(),
        mode: store::SECRET_MODE,
    });
    Ok(files)
}

/// The write of the tree's recorded configuration (`TreeDirs::record_file`): the settings
/// of `spec` (the node's name and address `with_node`), with the cert dir as an absolute
/// path, mode 0600.
pub fn record_write(
    dirs: &TreeDirs,
    spec: &ClusterSpec,
    kubernetes_version: Option<&str>,
    with_node: bool,
) -> Result<FileWrite> {
    let cert_dir = std::path::absolute(&dirs.cert_dir)
        .with_context(|| format!("{}: no absolute path", dirs.cert_dir.display()))?;
    let yaml = publish::recorded_configuration(spec, &cert_dir, kubernetes_version, with_node)?;
    Ok(FileWrite {
        root: dirs.kubeconfig_dir.clone(),
        rel: crate::tree::RECORD_FILE.into(),
        content: yaml.into_bytes(),
        mode: store::SECRET_MODE,
    })
}

/// The cluster manifests of the default manifests directory as they must be once `new` files
/// are written (a rotation's kubeconfigs, admin.conf's CA among them): `cluster-info`
/// publishes what admin.conf trusts. None when the tree has no admin.conf.
pub fn manifests_after(
    dirs: &TreeDirs,
    new: &[FileWrite],
    now: OffsetDateTime,
) -> Result<Vec<FileWrite>> {
    let admin = dirs.kubeconfig_dir.join(by_role(Role::Admin).file);
    let admin_written = new.iter().any(|write| write.path() == admin);
    if !admin_written && !admin.exists() {
        return Ok(Vec::new());
    }
    manifests(&admin_after(dirs, new)?, &dirs.manifests_dir(), &[], now)
}

/// admin.conf as the tree holds it once `new` files are written: the new one if it is among
/// them, else the one on disk.
fn admin_after(dirs: &TreeDirs, new: &[FileWrite]) -> Result<Kubeconfig> {
    let path = dirs.kubeconfig_dir.join(by_role(Role::Admin).file);
    let Some(write) = new.iter().find(|write| write.path() == path) else {
        return Ok(read_admin(dirs)?);
    };
    Kubeconfig::parse(&write.content)
        .and_then(|admin| admin.check_cluster().map(|()| admin))
        .with_context(|| path.display().to_string())
}

/// The Secret manifest of `record` in `dir`.
fn secret_file(dir: &Path, record: &TokenRecord) -> Result<FileWrite> {
    Ok(FileWrite {
        root: dir.to_path_buf(),
        rel: format!("{}.yaml", record.secret_name()).into(),
        content: record.secret_manifest()?.into_bytes(),
        mode: store::SECRET_MODE,
    })
}

/// The cluster manifest files for the cluster of `admin` and the tokens of `dir`, mode 0600.
fn manifests(
    admin: &Kubeconfig,
    dir: &Path,
    new_tokens: &[TokenRecord],
    now: OffsetDateTime,
) -> Result<Vec<FileWrite>> {
    let mut tokens = read_tokens(dir)?;
    for record in new_tokens {
        if !tokens.iter().any(|t| t.token.id() == record.token.id()) {
            tokens.push(record.clone());
        }
    }
    let files: Vec<FileWrite> = cluster_manifests(admin, &tokens, now)?
        .into_iter()
        .map(|(name, yaml)| FileWrite {
            root: dir.to_path_buf(),
            rel: name.into(),
            content: yaml.into_bytes(),
            mode: store::SECRET_MODE,
        })
        .collect();
    Ok(files)
}

/// Writes the Secret manifest of the new token `record` into `dir`, then the manifests it
/// signs; an id that already has a Secret is refused. Secret manifests of tokens expired at
/// `now` are pruned on the way. Returns the files removed and the files written.
pub fn create_token(
    dirs: &TreeDirs,
    dir: &Path,
    record: &TokenRecord,
    now: OffsetDateTime,
) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let secret = secret_file(dir, record)?;
    if store::read_optional(&secret.root, &secret.rel)?.is_some() {
        bail!(
            "{} exists: a token with id {:?} was created before",
            secret.path().display(),
            record.token.id()
        );
    }
    let pruned = prune_expired_tokens(dir, now)?;
    store::create_all(std::slice::from_ref(&secret))?;
    let mut written = vec![secret.path()];
    written.extend(write_manifests(dirs, dir, now)?);
    Ok((pruned, written))
}

/// Removes the Secret manifests of tokens expired at `now` from `dir` (on a cluster, the
/// controller-manager's tokencleaner deletes their Secrets the same way). Returns the files
/// removed.
pub fn prune_expired_tokens(dir: &Path, now: OffsetDateTime) -> Result<Vec<PathBuf>> {
    let expired: Vec<(PathBuf, PathBuf)> = read_tokens(dir)?
        .iter()
        .filter(|record| record.expired_at(now))
        .map(|record| {
            (
                dir.to_path_buf(),
                format!("{}.yaml", record.secret_name()).into(),
            )
        })
        .collect();
    store::remove_all(&expired)
}

/// Deletes the tokens `ids` (token ids) from `dir`: their Secret manifests go, and
/// `cluster-info` is signed again without them. An id without a Secret is refused before
/// anything is removed. Returns the files removed and written.
pub fn delete_tokens(
    dirs: &TreeDirs,
    dir: &Path,
    ids: &[String],
    now: OffsetDateTime,
) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let tokens = read_tokens(dir)?;
    let mut doomed = Vec::new();
    for id in ids {
        let record = tokens
            .iter()
            .find(|t| t.token.id() == id)
            .ok_or_else(|| anyhow!("no token with id {id:?} in {}", dir.display()))?;
        doomed.push((
            dir.to_path_buf(),
            format!("{}.yaml", record.secret_name()).into(),
        ));
    }
    let admin = read_admin(dirs)?;
    let removed = store::remove_all(&doomed)?;
    let written = store::replace_changed(&manifests(&admin, dir, &[], now)?)?;
    Ok((removed, written))
}

/// The join commands `token create --print-join-command` prints.
#[derive(Debug)]
pub struct JoinCommand {
    /// `host:port` of the API server.
    pub endpoint: String,
    /// The token.
    pub token: BootstrapToken,
    /// The pins of the CAs admin.conf trusts: the cluster CA's, and during a rotation the
    /// CA coming or going too (a joining worker accepts cluster-info's bundle if any of its
    /// certificates has one of them).
    pub pins: Vec<CaPin>,
}

/// The join command for `token`: admin.conf's server, and the pin of every CA certificate it
/// embeds (the signer's first).
pub fn join_command(admin: &Kubeconfig, token: &BootstrapToken) -> Result<JoinCommand> {
    let ca_pem = admin.client_credentials()?.ca_pem;
    let pins = CaPin::of_bundle(&ca_pem)?;
    if pins.is_empty() {
        bail!("admin.conf holds no CA certificate");
    }
    Ok(JoinCommand {
        endpoint: admin
            .server()?
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_string(),
        token: token.clone(),
        pins,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::bootstrap::Usage;
    use crate::duration::Duration;
    use crate::pki::inspect::CertInfo;
    use crate::profile::{Role, by_role};
    use crate::testtree::{TestTree, ecdsa_spec};
    use crate::tree::reader;

    fn record(now: OffsetDateTime) -> TokenRecord {
        let token: BootstrapToken = "abcdef.0123456789abcdef".parse().expect("a token");
        let usages = vec![Usage::Signing, Usage::Authentication];
        TokenRecord::new(token, Duration::from_hours(24), now, usages, vec![], None)
            .expect("a record")
    }

    #[test]
    fn manifests_are_written_once_and_a_token_id_only_once() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        let dir = tree.dirs.manifests_dir();
        let first = write_manifests(&tree.dirs, &dir, spec.now).expect("written");
        assert_eq!(first.len(), 3);
        assert!(
            write_manifests(&tree.dirs, &dir, spec.now)
                .expect("checked")
                .is_empty()
        );
        let (_, created) =
            create_token(&tree.dirs, &dir, &record(spec.now), spec.now).expect("created");
        let names: Vec<_> = created.iter().filter_map(|p| p.file_name()).collect();
        assert_eq!(names, ["bootstrap-token-abcdef.yaml", "cluster-info.yaml"]);
        let again =
            create_token(&tree.dirs, &dir, &record(spec.now), spec.now).expect_err("refused");
        assert!(
            again
                .to_string()
                .contains("a token with id \"abcdef\" was created before"),
            "{again}"
        );
    }

    #[test]
    fn the_join_command_names_admin_confs_server_and_the_cluster_ca_pin() {
        let spec = ecdsa_spec(&["--control-plane-endpoint", "lb.example.com:7443"]);
        let tree = TestTree::written(&spec);
        let admin = reader::read_admin(&tree.dirs).expect("admin.conf");
        let join = join_command(&admin, &record(spec.now).token).expect("a command");
        assert_eq!(join.endpoint, "lb.example.com:7443");
        let ca = reader::read_ca(&tree.dirs, by_role(Role::ClusterCa)).expect("the CA");
        let info: &CertInfo = &ca.cert.info;
        assert_eq!(join.pins, [CaPin::of(info)]);
    }
}
