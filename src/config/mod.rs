//! kubeadm configuration files (`--config`): YAML with one or more documents, each an
//! `InitConfiguration`, `ClusterConfiguration` or `JoinConfiguration` of
//! `kubeadm.k8s.io/v1beta3` or `v1beta4`, read strictly into typed values. Other kinds kubeadm
//! accepts in the same file are skipped with a note; anything else, unknown fields included,
//! is an error naming the file, line, column and field. Also the merge rule (flags override
//! the file) and `config print init-defaults`. Reads the one file it is given; prints nothing.

mod common;
mod errors;
mod model;
pub mod podrecord;
pub mod publish;
mod scalar;
mod v1beta3;
mod v1beta4;

pub use model::{
    BootstrapToken, BootstrapTokenDiscovery, ClusterConfiguration, ComponentExtras, Discovery,
    Etcd, HostPathMount, InitConfiguration, JoinConfiguration, JoinControlPlane,
};

use crate::cluster::bootstrap::{DEFAULT_TTL, ExtraGroup, TokenRecord, Usage};
use crate::cluster::yaml;
use crate::duration::Duration;
use crate::net::file;
use crate::pki::keys::Algorithm;
use crate::profile::{Role, by_role};
use crate::spec::{ClusterInput, ClusterSpec, JoinInput};
use anyhow::{Context, Result, anyhow, bail};
use errors::{Located, located, located_header, nearest};
use scalar::{Req, Scalar};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

const ETCD_BOTH: &str = "etcd.local and etcd.external are mutually exclusive";
const KUBEADM_GROUP: &str = "kubeadm.k8s.io";

/// The kubeadm config API versions kubepki reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KubeadmVersion {
    /// `kubeadm.k8s.io/v1beta3`.
    V1beta3,
    /// `kubeadm.k8s.io/v1beta4`.
    V1beta4,
}

/// A document's `apiVersion`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ApiVersion {
    Kubeadm(KubeadmVersion),
    /// A component config group kubeadm accepts beside its own (kubelet, kube-proxy).
    Component(String),
}

impl Scalar for ApiVersion {
    const WHAT: &'static str = "an apiVersion such as kubeadm.k8s.io/v1beta4";
    fn parse(text: &str) -> Result<ApiVersion, String> {
        match text.split_once('/') {
            Some((KUBEADM_GROUP, "v1beta4")) => Ok(ApiVersion::Kubeadm(KubeadmVersion::V1beta4)),
            Some((KUBEADM_GROUP, "v1beta3")) => Ok(ApiVersion::Kubeadm(KubeadmVersion::V1beta3)),
            Some((KUBEADM_GROUP, _)) => Err(format!(
                "apiVersion {text:?} is not read by kubepki (v1beta3 and v1beta4 are); \
                 convert the file with `kubeadm config migrate`"
            )),
            Some(("kubelet.config.k8s.io" | "kubeproxy.config.k8s.io", version))
                if !version.is_empty() && version.bytes().all(|b| b.is_ascii_alphanumeric()) =>
            {
                Ok(ApiVersion::Component(text.to_string()))
            }
            _ => Err(format!(
                "unknown apiVersion {text:?} (expected kubeadm.k8s.io/v1beta3 or kubeadm.k8s.io/v1beta4)"
            )),
        }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiVersion::Kubeadm(KubeadmVersion::V1beta3) => write!(f, "{KUBEADM_GROUP}/v1beta3"),
            ApiVersion::Kubeadm(KubeadmVersion::V1beta4) => write!(f, "{KUBEADM_GROUP}/v1beta4"),
            ApiVersion::Component(text) => f.write_str(text),
        }
    }
}

/// Every kind kubeadm accepts in its configuration files.
const KINDS: &[&str] = &[
    "InitConfiguration",
    "ClusterConfiguration",
    "JoinConfiguration",
    "ResetConfiguration",
    "UpgradeConfiguration",
    "KubeletConfiguration",
    "KubeProxyConfiguration",
];

/// A document's `kind`, one of `KINDS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct KindName(&'static str);

impl Scalar for KindName {
    const WHAT: &'static str = "a kind such as ClusterConfiguration";
    fn parse(text: &str) -> Result<KindName, String> {
        if let Some(kind) = KINDS.iter().find(|k| **k == text) {
            return Ok(KindName(kind));
        }
        let prefixed = KINDS.iter().copied().find(|k| k.starts_with(text));
        Err(format!(
            "unknown kind {text:?}{}",
            errors::did_you_mean(prefixed.or_else(|| nearest(text, KINDS.iter().copied())))
        ))
    }
}

/// `apiVersion` and `kind`, read before the document itself.
#[derive(Debug, Deserialize)]
struct Header {
    #[serde(rename = "apiVersion")]
    api_version: Option<Req<ApiVersion>>,
    kind: Option<Req<KindName>>,
}

/// What one document is.
#[derive(Debug)]
struct DocType {
    version: ApiVersion,
    kind: &'static str,
}

impl DocType {
    /// The kubeadm version when this is a kind kubepki reads, else `None` (skipped).
    fn read_as(&self) -> Option<KubeadmVersion> {
        match (&self.version, self.kind) {
            (
                ApiVersion::Kubeadm(version),
                "InitConfiguration" | "ClusterConfiguration" | "JoinConfiguration",
            ) => Some(*version),
            _ => None,
        }
    }
}

/// The documents of one file.
#[derive(Debug, Default)]
struct Documents {
    init: Option<InitConfiguration>,
    cluster: Option<ClusterConfiguration>,
    join: Option<JoinConfiguration>,
    skipped: Vec<String>,
}

/// Reads `path`: every document's header first (to learn its type), then each document.
fn read_documents(path: &Path) -> Result<Documents> {
    let bytes = file::read_named(path, file::MAX_FILE_BYTES)
        .map_err(|e| anyhow!("reading {}: {e}", path.display()))?;
    yaml::check_depth(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    read_text(path, errors::utf8(path, &bytes)?)
}

/// Reads `text`, the content of `path` (named in errors).
fn read_text(path: &Path, text: &str) -> Result<Documents> {
    let embedded = config_map_configuration(path, text)?;
    let text = embedded.as_deref().unwrap_or(text);
    let types = read_headers(path, text)?;
    if types.iter().all(Option::is_none) {
        bail!(
            "{}: no kubeadm configuration in the file (it is empty)",
            path.display()
        );
    }
    let mut documents = Documents::default();
    let mut seen: Vec<&str> = Vec::new();
    for (doc_type, deserializer) in types.iter().zip(serde_yaml::Deserializer::from_str(text)) {
        let Some(doc_type) = doc_type else {
            continue;
        };
        if seen.contains(&doc_type.kind) {
            bail!("{}: {} appears twice", path.display(), doc_type.kind);
        }
        seen.push(doc_type.kind);
        read_document(path, doc_type, deserializer, &mut documents)?;
    }
    Ok(documents)
}

/// The `ClusterConfiguration` inside a `kubeadm-config` ConfigMap manifest (the one `init`
/// writes for `kubeadm join`, `<kubeconfig-dir>/bootstrap/kubeadm-config.yaml`), when the
/// file's first document is a core `v1` object; `None` for a kubeadm configuration. A `v1`
/// file without that ConfigMap is refused, naming what it lacks.
fn config_map_configuration(path: &Path, text: &str) -> Result<Option<String>> {
    let first = serde_yaml::Deserializer::from_str(text)
        .next()
        .and_then(|doc| serde_yaml::Value::deserialize(doc).ok());
    if first.as_ref().and_then(|doc| doc.get("apiVersion")) != Some(&"v1".into()) {
        return Ok(None);
    }
    for doc in serde_yaml::Deserializer::from_str(text) {
        let Ok(value) = serde_yaml::Value::deserialize(doc) else {
            break;
        };
        let named = |key: &str| value.get(key).and_then(serde_yaml::Value::as_str);
        let name = value.get("metadata").and_then(|m| m.get("name"));
        if named("kind") == Some("ConfigMap") && name == Some(&"kubeadm-config".into()) {
            let data = value
                .get("data")
                .and_then(|d| d.get("ClusterConfiguration"));
            return match data.and_then(serde_yaml::Value::as_str) {
                Some(embedded) => Ok(Some(embedded.to_string())),
                None => bail!(
                    "{}: the kubeadm-config ConfigMap has no data.ClusterConfiguration",
                    path.display()
                ),
            };
        }
    }
    bail!(
        "{}: apiVersion \"v1\" without a kubeadm-config ConfigMap (kubepki reads kubeadm \
         configurations, and the kubeadm-config ConfigMap manifest init writes)",
        path.display()
    )
}

/// The type of every non-empty document, stopping at the first error (serde_yaml's document
/// iterator must not be resumed after one).
fn read_headers(path: &Path, text: &str) -> Result<Vec<Option<DocType>>> {
    let mut types = Vec::new();
    for (index, deserializer) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let header: Option<Header> =
            serde_path_to_error::deserialize(deserializer).map_err(|e| located_header(path, e))?;
        types.push(header.map(|h| doc_type(path, index + 1, h)).transpose()?);
    }
    Ok(types)
}

fn doc_type(path: &Path, number: usize, header: Header) -> Result<DocType> {
    let missing = |field: &str| {
        anyhow!(
            "{}: document {number} has no {field} (every document needs apiVersion and kind)",
            path.display()
        )
    };
    let Req(version) = header.api_version.ok_or_else(|| missing("apiVersion"))?;
    let Req(KindName(kind)) = header.kind.ok_or_else(|| missing("kind"))?;
    let kubeadm_kind = KINDS[..5].contains(&kind);
    let fits = match &version {
        ApiVersion::Kubeadm(KubeadmVersion::V1beta3) => KINDS[..3].contains(&kind),
        ApiVersion::Kubeadm(KubeadmVersion::V1beta4) => kubeadm_kind,
        ApiVersion::Component(_) => !kubeadm_kind,
    };
    if !fits {
        bail!(
            "{}: document {number}: kind {kind} does not exist in {version}",
            path.display()
        );
    }
    Ok(DocType { version, kind })
}

fn read_document(
    path: &Path,
    doc_type: &DocType,
    deserializer: serde_yaml::Deserializer<'_>,
    documents: &mut Documents,
) -> Result<()> {
    let Some(version) = doc_type.read_as() else {
        documents.skipped.push(format!(
            "skipping {} ({}): not used by kubepki",
            doc_type.kind, doc_type.version
        ));
        return Ok(());
    };
    let kind = doc_type.kind;
    let at = |e| located(path, kind, e);
    use KubeadmVersion::{V1beta3, V1beta4};
    match (kind, version) {
        ("InitConfiguration", V1beta3) => {
            documents.init = Some(
                parse::<v1beta3::InitConfiguration>(deserializer)
                    .map_err(at)?
                    .into_model(),
            )
        }
        ("InitConfiguration", V1beta4) => {
            documents.init = Some(
                parse::<v1beta4::InitConfiguration>(deserializer)
                    .map_err(at)?
                    .into_model(),
            )
        }
        ("ClusterConfiguration", V1beta3) => {
            let doc = parse::<v1beta3::ClusterConfiguration>(deserializer).map_err(at)?;
            documents.cluster = Some(doc.into_model().map_err(|e| whole(path, kind, &e))?)
        }
        ("ClusterConfiguration", V1beta4) => {
            let doc = parse::<v1beta4::ClusterConfiguration>(deserializer).map_err(at)?;
            documents.cluster = Some(doc.into_model().map_err(|e| whole(path, kind, &e))?)
        }
        (_, V1beta3) => {
            documents.join = Some(
                parse::<v1beta3::JoinConfiguration>(deserializer)
                    .map_err(at)?
                    .into_model(),
            )
        }
        (_, V1beta4) => {
            documents.join = Some(
                parse::<v1beta4::JoinConfiguration>(deserializer)
                    .map_err(at)?
                    .into_model(),
            )
        }
    }
    Ok(())
}

fn parse<'de, T: Deserialize<'de>>(
    deserializer: serde_yaml::Deserializer<'de>,
) -> Result<T, Located> {
    serde_path_to_error::deserialize(deserializer)
}

/// An error about a document as a whole (no single position).
fn whole(path: &Path, kind: &str, message: &str) -> anyhow::Error {
    anyhow!("{}: {kind}: {message}", path.display())
}

/// `PublicKeysECDSA: true` (kubeadm ≤ 1.30's way to ask for ECDSA) means ECDSA-P256.
fn public_keys_ecdsa(gates: &BTreeMap<String, bool>) -> Option<Algorithm> {
    gates
        .get("PublicKeysECDSA")
        .copied()
        .unwrap_or(false)
        .then_some(Algorithm::EcdsaP256)
}

/// What `init --config` takes from a file.
#[derive(Debug, Default)]
pub struct InitConfig {
    /// The InitConfiguration (defaults when the file has none).
    pub init: InitConfiguration,
    /// The ClusterConfiguration (defaults when the file has none).
    pub cluster: ClusterConfiguration,
    /// One line per skipped document, for stderr.
    pub notes: Vec<String>,
}

impl InitConfig {
    /// Reads a file holding an InitConfiguration, a ClusterConfiguration or both.
    pub fn load(path: &Path) -> Result<InitConfig> {
        InitConfig::of_documents(path, read_documents(path)?)
    }

    /// Reads `text` as `load` reads a file; `name` names it in errors.
    pub fn parse(name: &Path, text: &str) -> Result<InitConfig> {
        InitConfig::of_documents(name, read_text(name, text)?)
    }

    fn of_documents(path: &Path, mut documents: Documents) -> Result<InitConfig> {
        if documents.init.is_none() && documents.cluster.is_none() {
            bail!(
                "{}: no InitConfiguration or ClusterConfiguration in the file",
                path.display()
            );
        }
        if documents.join.is_some() {
            documents
                .skipped
                .push("skipping JoinConfiguration: it is for join, not init".into());
        }
        Ok(InitConfig {
            init: documents.init.unwrap_or_default(),
            cluster: documents.cluster.unwrap_or_default(),
            notes: documents.skipped,
        })
    }

    /// This file, with every setting it leaves unset taken from `recorded` (the tree's
    /// recorded configuration): the file overrides the record. Tokens come from this file.
    pub fn over(self, recorded: InitConfig) -> InitConfig {
        let (init, cluster, old) = (self.init, self.cluster, recorded.cluster);
        let etcd = match cluster.etcd == Etcd::default() {
            true => old.etcd,
            false => cluster.etcd,
        };
        let mut notes = self.notes;
        notes.extend(recorded.notes);
        InitConfig {
            init: InitConfiguration {
                bootstrap_tokens: init.bootstrap_tokens,
                node_name: init.node_name.or(recorded.init.node_name),
                advertise_address: init.advertise_address.or(recorded.init.advertise_address),
                bind_port: init.bind_port.or(recorded.init.bind_port),
            },
            cluster: ClusterConfiguration {
                certificates_dir: cluster.certificates_dir.or(old.certificates_dir),
                cluster_name: cluster.cluster_name.or(old.cluster_name),
                kubernetes_version: cluster.kubernetes_version.or(old.kubernetes_version),
                control_plane_endpoint: cluster
                    .control_plane_endpoint
                    .or(old.control_plane_endpoint),
                service_subnet: cluster.service_subnet.or(old.service_subnet),
                dns_domain: cluster.dns_domain.or(old.dns_domain),
                api_server_cert_sans: match cluster.api_server_cert_sans.is_empty() {
                    true => old.api_server_cert_sans,
                    false => cluster.api_server_cert_sans,
                },
                etcd,
                encryption_algorithm: cluster.encryption_algorithm.or(old.encryption_algorithm),
                certificate_validity_period: cluster
                    .certificate_validity_period
                    .or(old.certificate_validity_period),
                ca_certificate_validity_period: cluster
                    .ca_certificate_validity_period
                    .or(old.ca_certificate_validity_period),
                image_repository: cluster.image_repository.or(old.image_repository),
                api_server: either(cluster.api_server, old.api_server),
                controller_manager: either(cluster.controller_manager, old.controller_manager),
                scheduler: either(cluster.scheduler, old.scheduler),
                etcd_local: either(cluster.etcd_local, old.etcd_local),
                etcd_data_dir: cluster.etcd_data_dir.or(old.etcd_data_dir),
            },
            notes,
        }
    }

    /// The flags, with every one left unset filled from the file: flags override the file.
    pub fn merge_flags(&self, flags: &ClusterInput) -> ClusterInput {
        let (init, cluster) = (&self.init, &self.cluster);
        flags.over(&ClusterInput {
            node_name: init.node_name.clone(),
            advertise_address: init.advertise_address,
            bind_port: init.bind_port,
            control_plane_endpoint: cluster.control_plane_endpoint.clone(),
            extra_sans: cluster.api_server_cert_sans.clone(),
            service_cidrs: cluster.service_subnet.clone(),
            dns_domain: cluster.dns_domain.clone(),
            algorithm: cluster.encryption_algorithm,
            cert_validity: cluster.certificate_validity_period,
            ca_validity: cluster.ca_certificate_validity_period,
        })
    }

    /// Whether the file says `etcd.external` (no etcd CA on the control-plane hosts).
    pub fn external_etcd(&self) -> bool {
        matches!(self.cluster.etcd, Etcd::External)
    }

    /// `--cert-dir` if given, else `certificatesDir`.
    pub fn cert_dir(&self, flag: Option<&Path>) -> Option<std::path::PathBuf> {
        flag.map(Path::to_path_buf)
            .or(self.cluster.certificates_dir.clone())
    }

    /// Every `bootstrapTokens` entry with kubeadm's defaults filled in (ttl 24h, or until
    /// `expires` from `now`; both usages).
    pub fn token_settings(&self, now: OffsetDateTime) -> Result<Vec<TokenSettings>> {
        let entries = self.init.bootstrap_tokens.iter().enumerate();
        entries
            .map(|(index, entry)| {
                let field = format!("InitConfiguration.bootstrapTokens[{index}]");
                let ttl = match (entry.ttl, entry.expires) {
                    (Some(ttl), _) => ttl,
                    (None, Some(expires)) => match u64::try_from((expires - now).whole_seconds()) {
                        Ok(seconds) if seconds > 0 => Duration::from_secs(seconds),
                        _ => bail!("{field}.expires: {expires} is not in the future"),
                    },
                    (None, None) => DEFAULT_TTL,
                };
                Ok(TokenSettings {
                    field,
                    token: entry.token.clone(),
                    ttl,
                    usages: entry.usages.clone(),
                    groups: entry.groups.clone(),
                    description: entry.description.clone(),
                })
            })
            .collect()
    }

    /// The tokens of `bootstrapTokens` that name their token, as records created at `now`;
    /// entries without one are left to `kubepki token create` (one line each in the notes).
    pub fn token_records(&self, now: OffsetDateTime) -> Result<(Vec<TokenRecord>, Vec<String>)> {
        let (mut records, mut notes) = (Vec::new(), Vec::new());
        for settings in self.token_settings(now)? {
            match settings.token.clone() {
                Some(token) => records.push(
                    settings
                        .record(token, now)
                        .with_context(|| settings.field.clone())?,
                ),
                None => notes.push(format!(
                    "{} names no token: none is created (use `kubepki token create`)",
                    settings.field
                )),
            }
        }
        Ok((records, notes))
    }

    /// The spec with what only the file can say: `clusterName` and where etcd runs.
    pub fn complete(&self, mut spec: ClusterSpec) -> ClusterSpec {
        if let Some(name) = &self.cluster.cluster_name {
            spec.cluster_name = name.clone();
        }
        match &self.cluster.etcd {
            Etcd::Local {
                server_cert_sans,
                peer_cert_sans,
            } => {
                spec.etcd_server_sans = server_cert_sans.clone();
                spec.etcd_peer_sans = peer_cert_sans.clone();
            }
            Etcd::External => spec.external_etcd = true,
        }
        spec
    }
}

/// One `bootstrapTokens` entry, kubeadm's defaults filled in.
#[derive(Clone, Debug)]
pub struct TokenSettings {
    /// Where it is in the file, for messages (empty when it is not from a file).
    pub field: String,
    /// `token`, unless it is to be generated.
    pub token: Option<crate::cluster::bootstrap::BootstrapToken>,
    /// Its lifetime (0: forever).
    pub ttl: Duration,
    /// `usages`; empty means both.
    pub usages: Vec<Usage>,
    /// `groups`.
    pub groups: Vec<ExtraGroup>,
    /// `description`.
    pub description: Option<String>,
}

impl TokenSettings {
    /// The record of `token` with these settings, created at `now`.
    pub fn record(
        &self,
        token: crate::cluster::bootstrap::BootstrapToken,
        now: OffsetDateTime,
    ) -> Result<TokenRecord> {
        let usages = match self.usages.is_empty() {
            true => Usage::ALL.to_vec(),
            false => self.usages.clone(),
        };
        TokenRecord::new(
            token,
            self.ttl,
            now,
            usages,
            self.groups.clone(),
            self.description.clone(),
        )
    }
}

/// Reads a file holding a JoinConfiguration, for `kubepki join --config`; also returns the
/// notes about skipped documents.
pub fn load_join(path: &Path) -> Result<(JoinConfiguration, Vec<String>)> {
    let mut documents = read_documents(path)?;
    let join = documents
        .join
        .take()
        .ok_or_else(|| anyhow!("{}: no JoinConfiguration in the file", path.display()))?;
    for kind in [
        documents.init.map(|_| "InitConfiguration"),
        documents.cluster.map(|_| "ClusterConfiguration"),
    ]
    .into_iter()
    .flatten()
    {
        documents
            .skipped
            .push(format!("skipping {kind}: it is for init, not join"));
    }
    Ok((join, documents.skipped))
}

/// The join flags, with what they leave unset taken from `join`, the JoinConfiguration read
/// from `path` (a `--token` flag sets both tokens, so it leaves no token to take).
pub fn merge_join(path: &Path, join: JoinConfiguration, flags: JoinInput) -> Result<JoinInput> {
    let mut input = flags;
    let discovery = join.discovery;
    let mut file_token = None;
    if let Some(bootstrap) = discovery.bootstrap_token {
        input.endpoint = input.endpoint.or(bootstrap.api_server_endpoint);
        if input.pins.is_empty() {
            input.pins = bootstrap.ca_cert_hashes;
        }
        input.unsafe_skip_ca_verification |= bootstrap.unsafe_skip_ca_verification;
        file_token = bootstrap.token;
    }
    let file_tls_token = discovery.tls_bootstrap_token.or(file_token.clone());
    input.discovery_token = input.discovery_token.or(file_token);
    input.tls_bootstrap_token = input.tls_bootstrap_token.or(file_tls_token);
    if input.endpoint.is_none() && input.discovery_file.is_none() {
        let source = discovery.file.map(|f| {
            f.parse()
                .map_err(|e: String| anyhow!("{}: discovery.file: {e}", path.display()))
        });
        input.discovery_file = source.transpose()?;
    }
    input.discovery_timeout = input.discovery_timeout.or(discovery.timeout);
    input.node_name = input.node_name.or(join.node_name);
    if input.cert_dir.is_none() {
        input.cert_dir = join
            .ca_cert_path
            .map(|ca| cert_dir_of(path, &ca))
            .transpose()?;
    }
    Ok(input)
}

/// The cert dir a `caCertPath` implies: kubepki writes the cluster CA as `<cert-dir>/ca.crt`.
fn cert_dir_of(config: &Path, ca_cert_path: &Path) -> Result<PathBuf> {
    let ca_file = by_role(Role::ClusterCa).cert_file().unwrap_or_default();
    match (ca_cert_path.file_name(), ca_cert_path.parent()) {
        (Some(name), Some(dir)) if Path::new(name) == ca_file => Ok(dir.to_path_buf()),
        _ => bail!(
            "{}: caCertPath {} must name a file {} (kubepki writes <cert-dir>/{})",
            config.display(),
            ca_cert_path.display(),
            ca_file.display(),
            ca_file.display()
        ),
    }
}

/// `config validate`: reads every document strictly; returns one line per document read
/// or skipped.
pub fn validate(path: &Path) -> Result<Vec<String>> {
    let documents = read_documents(path)?;
    let read = [
        documents.init.as_ref().map(|_| "InitConfiguration"),
        documents.cluster.as_ref().map(|_| "ClusterConfiguration"),
        documents.join.as_ref().map(|_| "JoinConfiguration"),
    ];
    let mut lines: Vec<String> = read.iter().flatten().map(|k| format!("{k}: ok")).collect();
    if lines.is_empty() {
        bail!(
            "{}: no InitConfiguration, ClusterConfiguration or JoinConfiguration in the file",
            path.display()
        );
    }
    lines.extend(documents.skipped);
    Ok(lines)
}

/// `config print init-defaults`: a v1beta4 InitConfiguration and ClusterConfiguration with
/// kubepki's defaults. Host facts (node name, advertise address) are left commented out, so
/// that the file fed back to `init --config` detects them as no file at all would; no
/// bootstrap token is printed (a fixed example token would be a known secret).
pub fn init_defaults() -> String {
    use crate::spec::{
        DEFAULT_BIND_PORT, DEFAULT_CA_VALIDITY, DEFAULT_CERT_DIR, DEFAULT_CERT_VALIDITY,
        DEFAULT_CLUSTER_NAME, DEFAULT_DNS_DOMAIN, DEFAULT_SERVICE_CIDR,
    };
    format!(
        "\
# kubepki's defaults as a kubeadm configuration (kubeadm.k8s.io/v1beta4).
# Use it with `kubepki init --config FILE`; flags given as well override it.
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- groups:
  - system:bootstrappers:kubeadm:default-node-token
  ttl: 24h0m0s
  usages:
  - signing
  - authentication
localAPIEndpoint:
  # Unset: this host's first non-loopback address.
  # advertiseAddress: 192.0.2.10
  bindPort: {DEFAULT_BIND_PORT}
nodeRegistration:
  # Unset: this host's name, lower-cased.
  # name: node1
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: {DEFAULT_CLUSTER_NAME}
certificatesDir: {DEFAULT_CERT_DIR}
# controlPlaneEndpoint: cluster.example.com:6443
networking:
  dnsDomain: {DEFAULT_DNS_DOMAIN}
  serviceSubnet: {DEFAULT_SERVICE_CIDR}
apiServer:
  certSANs: []
etcd:
  local:
    serverCertSANs: []
    peerCertSANs: []
encryptionAlgorithm: {algorithm}
certificateValidityPeriod: {DEFAULT_CERT_VALIDITY}
caCertificateValidityPeriod: {DEFAULT_CA_VALIDITY}
",
        algorithm = Algorithm::Rsa2048,
    )
}

/// A component's extras from the file when it gives any, else the record's.
fn either(file: ComponentExtras, recorded: ComponentExtras) -> ComponentExtras {
    match file == ComponentExtras::default() {
        true => recorded,
        false => file,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::netaddr::San;
    use crate::testgen::{dns_name, edited, one_line};
    use proptest::prelude::*;
    use std::io::Write;
    use std::net::IpAddr;
    use std::path::PathBuf;

    fn file(content: impl AsRef<[u8]>) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(content.as_ref()).expect("write");
        file
    }

    fn load(text: &str) -> Result<InitConfig> {
        InitConfig::load(file(text).path())
    }

    fn error(text: &str) -> String {
        format!("{:#}", load(text).expect_err("the file is refused"))
    }

    fn sans(list: &[&str]) -> Vec<San> {
        list.iter().map(|s| s.parse().expect("test SAN")).collect()
    }

    const V1BETA4: &str = "\
# a comment before the first document
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- token: abcdef.0123456789abcdef
  ttl: 30m
  usages: [signing, authentication]
  groups: [system:bootstrappers:kubeadm:default-node-token]
localAPIEndpoint:
  advertiseAddress: 192.168.1.10
  bindPort: 7443
nodeRegistration:
  name: cp1
  criSocket: unix:///var/run/containerd/containerd.sock
  kubeletExtraArgs:
  - name: node-ip
    value: 192.168.1.10
  taints: []
timeouts:
  controlPlaneComponentHealthCheck: 4m0s
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.33.0
clusterName: prod
controlPlaneEndpoint: lb.example.com:6443
certificatesDir: /srv/pki
networking:
  serviceSubnet: 10.100.0.0/16
  dnsDomain: corp.local
  podSubnet: 10.244.0.0/16
apiServer:
  certSANs: &sans [10.0.0.5, api.example.com]
  extraArgs:
  - name: audit-log-path
    value: /var/log/audit.log
etcd:
  local:
    dataDir: /var/lib/etcd
    serverCertSANs: *sans
    peerCertSANs: [etcd.example.com]
encryptionAlgorithm: ECDSA-P384
certificateValidityPeriod: 48h0m0s
caCertificateValidityPeriod: 876000h
featureGates: {ControlPlaneKubeletLocalMode: true}
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
";

    #[test]
    fn v1beta4_every_pki_field_with_anchors_and_several_documents() {
        let config = load(V1BETA4).expect("valid v1beta4");
        let (init, cluster) = (&config.init, &config.cluster);
        assert_eq!(init.node_name.as_ref().map(|n| n.as_str()), Some("cp1"));
        assert_eq!(
            init.advertise_address,
            Some("192.168.1.10".parse().unwrap())
        );
        assert_eq!(init.bind_port, Some(7443));
        let token = &init.bootstrap_tokens[0];
        assert_eq!(token.token.as_ref().map(|t| t.id()), Some("abcdef"));
        assert_eq!(token.ttl, Some(Duration::from_secs(1800)));
        assert_eq!(token.usages, [Usage::Signing, Usage::Authentication]);
        assert_eq!(cluster.cluster_name.as_deref(), Some("prod"));
        assert_eq!(cluster.certificates_dir, Some(PathBuf::from("/srv/pki")));
        assert_eq!(
            cluster
                .service_subnet
                .as_ref()
                .map(|c| c.api_server_ip().to_string()),
            Some("10.100.0.1".into())
        );
        assert_eq!(
            cluster.api_server_cert_sans,
            sans(&["10.0.0.5", "api.example.com"])
        );
        assert_eq!(
            cluster.etcd,
            Etcd::Local {
                server_cert_sans: sans(&["10.0.0.5", "api.example.com"]),
                peer_cert_sans: sans(&["etcd.example.com"]),
            }
        );
        assert_eq!(cluster.encryption_algorithm, Some(Algorithm::EcdsaP384));
        assert_eq!(
            cluster.certificate_validity_period,
            Some(Duration::from_hours(48))
        );
        assert_eq!(
            cluster.ca_certificate_validity_period,
            Some(Duration::from_hours(876_000))
        );
        assert_eq!(config.notes.len(), 1, "{:?}", config.notes);
        assert!(config.notes[0].contains("KubeletConfiguration"));
    }

    #[test]
    fn v1beta3_map_extra_args_and_the_ecdsa_gate() {
        let config = load(
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n\
             apiServer:\n  timeoutForControlPlane: 4m0s\n  extraArgs:\n    audit-log-path: /x\n\
             featureGates:\n  PublicKeysECDSA: true\netcd:\n  external:\n    endpoints: [https://e:2379]\n",
        )
        .expect("valid v1beta3");
        assert_eq!(
            config.cluster.encryption_algorithm,
            Some(Algorithm::EcdsaP256)
        );
        assert_eq!(config.cluster.etcd, Etcd::External);
        let list_args = error(
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n\
             apiServer:\n  extraArgs:\n  - name: a\n    value: b\n",
        );
        assert!(
            list_args.contains("ClusterConfiguration.apiServer.extraArgs at "),
            "{list_args}"
        );
        let v4_only = error(
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nencryptionAlgorithm: RSA-4096\n",
        );
        assert!(
            v4_only.contains("unknown field \"encryptionAlgorithm\""),
            "{v4_only}"
        );
    }

    #[test]
    fn unknown_fields_name_file_position_path_and_nearest_name() {
        let config = file(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\napiServer:\n  certSAN: [a]\n",
        );
        let message = format!("{:#}", InitConfig::load(config.path()).unwrap_err());
        let expected = format!(
            "unknown field \"certSAN\" in ClusterConfiguration.apiServer at {}:4:3 (did you mean \"certSANs\"?)",
            config.path().display()
        );
        assert_eq!(message, expected);
        let merge =
            error("apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n<<: {a: 1}\n");
        assert!(merge.contains("merge keys"), "{merge}");
    }

    #[test]
    fn bad_values_are_located() {
        let cases = [
            (
                "kind: InitConfiguration\nlocalAPIEndpoint:\n  bindPort: 70000\n",
                "InitConfiguration.localAPIEndpoint.bindPort at",
                "70000 is not a port",
            ),
            (
                "kind: ClusterConfiguration\ncertificateValidityPeriod: 0s\n",
                "ClusterConfiguration.certificateValidityPeriod at",
                "longer than zero",
            ),
            (
                "kind: ClusterConfiguration\ncertificatesDir: pki\n",
                "ClusterConfiguration.certificatesDir at",
                "absolute",
            ),
            (
                "kind: ClusterConfiguration\netcd: {local: {}, external: {}}\n",
                "ClusterConfiguration: etcd.local",
                "mutually exclusive",
            ),
            (
                "kind: InitConfiguration\nbootstrapTokens: [{token: NOT-A-TOKEN}]\n",
                "bootstrapTokens[0].token at",
                "a bootstrap token has the form",
            ),
        ];
        for (body, where_, what) in cases {
            let message = error(&format!("apiVersion: kubeadm.k8s.io/v1beta4\n{body}"));
            assert!(
                message.contains(where_) && message.contains(what),
                "{message}"
            );
            assert!(
                !message.contains("NOT-A-TOKEN"),
                "a token was echoed: {message}"
            );
        }
    }

    #[test]
    fn join_configuration_is_typed_for_both_versions() {
        let v1beta4 = file(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n\
             nodeRegistration: {name: worker1}\ncaCertPath: /etc/kubernetes/pki/ca.crt\n\
             discovery:\n  bootstrapToken:\n    token: abcdef.0123456789abcdef\n\
             \x20   apiServerEndpoint: 10.0.0.1:6443\n    caCertHashes: [SHA256:ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789]\n\
             \x20 tlsBootstrapToken: abcdef.0123456789abcdef\n\
             controlPlane:\n  localAPIEndpoint: {advertiseAddress: 10.0.0.2, bindPort: 6443}\n\
             timeouts: {discovery: 5m0s}\n",
        );
        let (join, notes) = load_join(v1beta4.path()).expect("valid join");
        assert!(notes.is_empty());
        assert_eq!(
            join.node_name.map(|n| n.to_string()),
            Some("worker1".into())
        );
        let token = join.discovery.bootstrap_token.expect("bootstrapToken");
        assert_eq!(
            token.ca_cert_hashes[0].to_string(),
            "sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
        );
        assert!(
            !format!("{:?}", token.token).contains("0123456789abcdef"),
            "secret in Debug"
        );
        assert_eq!(join.discovery.timeout, Some(Duration::from_secs(300)));
        assert_eq!(join.control_plane.and_then(|c| c.bind_port), Some(6443));
        let v1beta3 = file(
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: JoinConfiguration\n\
             discovery:\n  file: {kubeConfigPath: /etc/kubernetes/discovery.conf}\n  timeout: 1m\n\
             \x20 bootstrapToken: {unsafeSkipCAVerification: true}\n",
        );
        let (join, _) = load_join(v1beta3.path()).expect("valid v1beta3 join");
        assert_eq!(
            join.discovery.file.as_deref(),
            Some("/etc/kubernetes/discovery.conf")
        );
        assert_eq!(join.discovery.timeout, Some(Duration::from_secs(60)));
        assert!(
            join.discovery
                .bootstrap_token
                .is_some_and(|t| t.unsafe_skip_ca_verification)
        );
    }

    #[test]
    fn flags_override_the_file() {
        let config = load(V1BETA4).expect("valid");
        let flags = ClusterInput {
            bind_port: Some(8443),
            extra_sans: sans(&["flag.example.com"]),
            ..Default::default()
        };
        let merged = config.merge_flags(&flags);
        assert_eq!(merged.bind_port, Some(8443));
        assert_eq!(merged.extra_sans, sans(&["flag.example.com"]));
        assert_eq!(merged.node_name.map(|n| n.to_string()), Some("cp1".into()));
        assert_eq!(merged.algorithm, Some(Algorithm::EcdsaP384));
        assert_eq!(
            config.cert_dir(Some(Path::new("/flag/pki"))),
            Some(PathBuf::from("/flag/pki"))
        );
        assert_eq!(config.cert_dir(None), Some(PathBuf::from("/srv/pki")));
    }

    #[test]
    fn init_defaults_read_back_as_kubepkis_defaults() {
        let config = load(&init_defaults()).expect("the defaults are valid");
        assert!(config.notes.is_empty());
        let merged = config.merge_flags(&ClusterInput::default());
        assert!(merged.node_name.is_none() && merged.advertise_address.is_none());
        let spec = config.complete(
            ClusterSpec::resolve(
                &ClusterInput {
                    node_name: Some("cp1".parse().unwrap()),
                    advertise_address: Some("10.1.1.1".parse().unwrap()),
                    ..merged
                },
                time::OffsetDateTime::now_utc(),
            )
            .expect("resolves"),
        );
        let plain = crate::spec::tests::spec_for(&["--apiserver-advertise-address", "10.1.1.1"]);
        assert_eq!(
            format!(
                "{:?}",
                (
                    spec.cluster_name,
                    spec.bind_port,
                    spec.service_cidrs,
                    spec.dns_domain,
                    spec.algorithm,
                    spec.cert_validity,
                    spec.ca_validity,
                    spec.extra_sans,
                    spec.etcd_server_sans,
                    spec.external_etcd
                )
            ),
            format!(
                "{:?}",
                (
                    plain.cluster_name,
                    plain.bind_port,
                    plain.service_cidrs,
                    plain.dns_domain,
                    plain.algorithm,
                    plain.cert_validity,
                    plain.ca_validity,
                    plain.extra_sans,
                    plain.etcd_server_sans,
                    plain.external_etcd
                )
            )
        );
    }

    #[test]
    fn documents_need_a_type_and_appear_once() {
        assert!(error("").contains("empty"));
        assert!(error("# only a comment\n---\n").contains("empty"));
        assert!(error("kind: ClusterConfiguration\n").contains("no apiVersion"));
        assert!(
            error("apiVersion: kubeadm.k8s.io/v1beta2\nkind: ClusterConfiguration\n")
                .contains("kubeadm config migrate")
        );
        assert!(
            error("apiVersion: kubeadm.k8s.io/v1beta3\nkind: UpgradeConfiguration\n")
                .contains("does not exist in kubeadm.k8s.io/v1beta3")
        );
        let twice = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n";
        assert!(error(&format!("{twice}---\n{twice}")).contains("appears twice"));
        let only_kubelet =
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";
        assert!(error(only_kubelet).contains("no InitConfiguration or ClusterConfiguration"));
    }

    /// Every reader of config files on `content`: no panic, and every error is one line that
    /// names the file.
    fn check_readers(content: &[u8]) -> Result<(), TestCaseError> {
        let config = file(content);
        let path = config.path().display().to_string();
        let errors = [
            InitConfig::load(config.path()).err(),
            load_join(config.path()).err(),
            validate(config.path()).err(),
        ];
        for error in errors.into_iter().flatten() {
            let message = format!("{error:#}");
            prop_assert!(one_line(&message), "{}", message);
            prop_assert!(message.contains(&path), "{}", message);
        }
        Ok(())
    }

    /// The kinds kubepki reads with the paths of their fields, v1beta3's and v1beta4's mixed
    /// (a field of the other version is an unknown field).
    const KIND_FIELDS: &[(&str, &[&str])] = &[
        (
            "ClusterConfiguration",
            &[
                "clusterName",
                "certificatesDir",
                "controlPlaneEndpoint",
                "kubernetesVersion",
                "networking.serviceSubnet",
                "networking.dnsDomain",
                "networking.podSubnet",
                "apiServer.certSANs",
                "apiServer.extraArgs",
                "apiServer.timeoutForControlPlane",
                "controllerManager.extraArgs",
                "etcd.local.serverCertSANs",
                "etcd.local.peerCertSANs",
                "etcd.local.extraArgs",
                "etcd.external.endpoints",
                "dns.disabled",
                "proxy.disabled",
                "featureGates.PublicKeysECDSA",
                "encryptionAlgorithm",
                "certificateValidityPeriod",
                "caCertificateValidityPeriod",
            ],
        ),
        (
            "InitConfiguration",
            &[
                "bootstrapTokens",
                "localAPIEndpoint.advertiseAddress",
                "localAPIEndpoint.bindPort",
                "nodeRegistration.name",
                "nodeRegistration.kubeletExtraArgs",
                "nodeRegistration.taints",
                "timeouts.kubeletHealthCheck",
                "dryRun",
            ],
        ),
        (
            "JoinConfiguration",
            &[
                "nodeRegistration.name",
                "caCertPath",
                "discovery.bootstrapToken.token",
                "discovery.bootstrapToken.apiServerEndpoint",
                "discovery.bootstrapToken.caCertHashes",
                "discovery.bootstrapToken.unsafeSkipCAVerification",
                "discovery.file.kubeConfigPath",
                "discovery.tlsBootstrapToken",
                "discovery.timeout",
                "timeouts.discovery",
                "controlPlane.localAPIEndpoint.advertiseAddress",
                "controlPlane.localAPIEndpoint.bindPort",
                "controlPlane.certificateKey",
            ],
        ),
    ];

    /// Values right for some field and wrong for others, and YAML's odd corners: tags,
    /// anchors, an alias to nothing (a document that fails to load), merge keys.
    const VALUES: &[&str] = &[
        "10.0.0.1",
        "300.1.1.1",
        "0.0.0.0",
        "224.0.0.1",
        "fd00::1",
        "'[fd00::1]:6443'",
        "lb.example.com:6443",
        "lb:0",
        "Bad_Name",
        "10.96.0.0/12",
        "10.0.0.0/0",
        "10.96.0.0/33",
        "fd00::/108,10.96.0.0/12",
        "8760h0m0s",
        "0s",
        "1h30m",
        "2562048h",
        "-1h",
        "RSA-4096",
        "RSA-1024",
        "abcdef.0123456789abcdef",
        "NOT-A-TOKEN",
        "sha256:7d1c8d5e0c7e6c1f0a3b0e2b4c1d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d",
        "sha256:zz",
        "/etc/kubernetes/pki",
        "pki",
        "2025-01-01T00:00:00Z",
        "yesterday",
        "true",
        "null",
        "~",
        "''",
        "70000",
        "-1",
        ".inf",
        "[]",
        "{}",
        "[{token: abcdef.0123456789abcdef, ttl: 1h, usages: [signing], groups: [system:bootstrappers:x]}]",
        "[{token: NOT-A-TOKEN, expires: yesterday, usages: [bogus], groups: [system:nodes]}]",
        "[{name: a, value: b}]",
        "{local: {}, external: {}}",
        "*undefined",
        "&anchor [1]",
        "!!binary aGk=",
        "!!str 5",
        "{<<: {a: 1}}",
    ];

    /// A YAML key: a known name, any word, or any text (quoted), often with a backtick or a
    /// line break.
    fn key() -> impl Strategy<Value = String> {
        let known = KIND_FIELDS.iter().flat_map(|(_, paths)| paths.iter());
        let names: Vec<&str> = known.flat_map(|path| path.split('.')).collect();
        prop_oneof![
            prop::sample::select(names).prop_map(str::to_string),
            "[a-zA-Z]{1,12}",
            prop_oneof![any::<String>(), "[a-z`\n\r ]{1,6}"]
                .prop_map(|text| serde_json::to_string(&text).unwrap()),
        ]
    }

    /// A YAML value in flow style: a scalar, or lists and mappings of them.
    fn value() -> impl Strategy<Value = String> {
        let scalar = prop_oneof![
            4 => prop::sample::select(VALUES).prop_map(str::to_string),
            1 => "[0-9]{1,22}(\\.[0-9]{1,3})?(ms|s|m|h|d)?",
            1 => any::<String>().prop_map(|text| serde_json::to_string(&text).unwrap()),
        ];
        scalar.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|items| format!("[{}]", items.join(", "))),
                prop::collection::vec((key(), inner), 0..4).prop_map(|fields| {
                    let fields: Vec<String> =
                        fields.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                    format!("{{{}}}", fields.join(", "))
                }),
            ]
        })
    }

    /// A field path: one of `paths`, sometimes with an unknown last name.
    fn field_path(paths: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
        (
            prop::sample::select(paths),
            prop::option::weighted(0.2, key()),
        )
            .prop_map(|(path, last)| {
                let mut names: Vec<String> = path.split('.').map(str::to_string).collect();
                if let Some(last) = last {
                    *names.last_mut().unwrap() = last;
                }
                names
            })
    }

    /// A value at a path of names.
    type Field = (Vec<String>, String);

    /// `fields` as a YAML block mapping, nested along their paths (a later field replaces an
    /// earlier one where their paths collide).
    fn block(fields: &[Field], indent: usize) -> String {
        let mut children: Vec<(&String, Vec<Field>)> = Vec::new();
        for (path, value) in fields {
            let Some((first, rest)) = path.split_first() else {
                continue;
            };
            let field = (rest.to_vec(), value.clone());
            match children.iter_mut().find(|(name, _)| *name == first) {
                Some((_, nested)) => nested.push(field),
                None => children.push((first, vec![field])),
            }
        }
        let pad = " ".repeat(indent);
        let mut text = String::new();
        for (name, nested) in children {
            match nested.iter().rev().find(|(rest, _)| rest.is_empty()) {
                Some((_, value)) => text.push_str(&format!("{pad}{name}: {value}\n")),
                None => text.push_str(&format!("{pad}{name}:\n{}", block(&nested, indent + 2))),
            }
        }
        text
    }

    /// An apiVersion: mostly the two kubepki reads, sometimes another or any text.
    fn api_version() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => prop::sample::select(vec!["kubeadm.k8s.io/v1beta4", "kubeadm.k8s.io/v1beta3"])
                .prop_map(str::to_string),
            1 => prop::sample::select(vec!["kubeadm.k8s.io/v1beta2", "kubelet.config.k8s.io/v1beta1", "v1"])
                .prop_map(str::to_string),
            1 => prop_oneof![any::<String>(), "kubelet.config.k8s.io/[a-z0-9\n]{0,4}"]
                .prop_map(|text| serde_json::to_string(&text).unwrap()),
        ]
    }

    /// A kind kubepki skips, a prefix of one it reads, or any text (quoted).
    fn other_kind() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "KubeletConfiguration",
                "UpgradeConfiguration",
                "Cluster"
            ])
            .prop_map(str::to_string),
            any::<String>().prop_map(|text| serde_json::to_string(&text).unwrap()),
        ]
    }

    /// One document: an apiVersion (sometimes missing or wrong), a kind (sometimes one that
    /// kubepki skips or does not know), fields along the kind's paths, and sometimes a line
    /// that is not YAML.
    fn document() -> impl Strategy<Value = String> {
        let broken = prop::sample::select(vec![
            "key: [unclosed",
            "\tindented: by a tab",
            "a: b: c",
            "- item",
            "*",
        ]);
        (
            prop::option::weighted(0.95, api_version()),
            prop::sample::select(KIND_FIELDS),
            prop::option::weighted(0.1, other_kind()),
            prop::option::weighted(0.1, broken),
        )
            .prop_flat_map(|(version, (kind, paths), other_kind, broken)| {
                let fields = prop::collection::vec((field_path(paths), value()), 0..5);
                let kind = other_kind.unwrap_or(kind.to_string());
                (Just(version), Just(kind), fields, Just(broken))
            })
            .prop_map(|(version, kind, fields, broken)| {
                let mut text = String::new();
                if let Some(version) = version {
                    text.push_str(&format!("apiVersion: {version}\n"));
                }
                text.push_str(&format!("kind: {kind}\n"));
                text.push_str(&block(&fields, 0));
                text.extend(broken.map(|line| format!("{line}\n")));
                text
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn any_bytes_are_a_config_or_a_one_line_error(content in any::<Vec<u8>>()) {
            check_readers(&content)?;
        }

        #[test]
        fn any_text_is_a_config_or_a_one_line_error(content in any::<String>()) {
            check_readers(content.as_bytes())?;
        }

        #[test]
        fn edited_configs_are_configs_or_one_line_errors(
            content in prop_oneof![edited(V1BETA4.into()), edited(init_defaults().into_bytes())],
        ) {
            check_readers(&content)?;
        }

    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn schema_shaped_documents_are_configs_or_one_line_errors(
            documents in prop::collection::vec(document(), 1..4),
        ) {
            check_readers(documents.join("---\n").as_bytes())?;
        }
    }

    #[test]
    fn a_document_that_fails_to_load_ends_the_reading() {
        let broken = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
                      clusterName: {clusterName: *undefined}\n";
        let then_valid = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n";
        let message = error(&format!("{broken}---\n{then_valid}"));
        assert!(message.contains("unknown anchor"), "{message}");
        assert!(one_line(&message), "{message}");
    }

    #[test]
    fn names_with_line_breaks_stay_on_one_line() {
        for body in [
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nfeatureGates:\n  \"\\n\": 10.0.0.1\n",
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\napiServer: {extraArgs: {\"a\\nb\": [1]}}\n",
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\"a`\\nb\": 3\n",
            "apiVersion: \"kubelet.config.k8s.io/v1\\nx\"\nkind: InitConfiguration\n",
        ] {
            let message = error(body);
            assert!(one_line(&message), "{message}");
        }
    }

    /// Settings for `init_defaults()`: each replaces the default when set.
    #[derive(Debug)]
    struct Settings {
        cluster_name: Option<String>,
        cert_dir: Option<String>,
        dns_domain: Option<String>,
        service_subnet: Option<String>,
        cert_sans: Vec<String>,
        algorithm: Option<Algorithm>,
        cert_validity: Option<Duration>,
        ca_validity: Option<Duration>,
        bind_port: Option<u16>,
        advertise_address: Option<IpAddr>,
        node_name: Option<String>,
        endpoint: Option<String>,
    }

    fn settings() -> impl Strategy<Value = Settings> {
        use prop::option::of;
        let cidr = prop_oneof![
            (any::<std::net::Ipv4Addr>(), 1..=30u8)
                .prop_map(|(ip, prefix)| format!("{ip}/{prefix}")),
            (any::<std::net::Ipv6Addr>(), 1..=126u8)
                .prop_map(|(ip, prefix)| format!("{ip}/{prefix}")),
        ];
        let san = prop_oneof![any::<IpAddr>().prop_map(|ip| ip.to_string()), dns_name()];
        let validity = (1..=Duration::MAX.as_secs()).prop_map(Duration::from_secs);
        let usable = any::<IpAddr>().prop_filter("a host address", |ip| {
            !ip.is_unspecified() && !ip.is_multicast()
        });
        let endpoint = (dns_name(), of(1..=u16::MAX)).prop_map(|(host, port)| match port {
            Some(port) => format!("{host}:{port}"),
            None => host,
        });
        let names = (
            of("\\PC{1,20}"),
            of("/[a-zA-Z0-9/._ -]{0,20}"),
            of(dns_name()),
            of(cidr),
        );
        let sans_and_keys = (
            prop::collection::vec(san, 0..4),
            of(prop::sample::select(
                Algorithm::ALL.map(|(algorithm, _)| algorithm).to_vec(),
            )),
            of(validity.clone()),
            of(validity),
        );
        let node = (of(1..=u16::MAX), of(usable), of(dns_name()), of(endpoint));
        (names, sans_and_keys, node).prop_map(
            |(
                (cluster_name, cert_dir, dns_domain, service_subnet),
                (cert_sans, algorithm, cert_validity, ca_validity),
                (bind_port, advertise_address, node_name, endpoint),
            )| Settings {
                cluster_name,
                cert_dir,
                dns_domain,
                service_subnet,
                cert_sans,
                algorithm,
                cert_validity,
                ca_validity,
                bind_port,
                advertise_address,
                node_name,
                endpoint,
            },
        )
    }

    impl Settings {
        /// `init_defaults()` with each setting that is set written over its default line.
        fn yaml(&self) -> String {
            let quoted = |text: &str| serde_json::to_string(text).unwrap();
            let sans: Vec<String> = self.cert_sans.iter().map(|s| quoted(s)).collect();
            let mut text = init_defaults();
            let mut set = |default_line: &str, line: Option<String>| {
                if let Some(line) = line {
                    assert!(
                        text.contains(default_line),
                        "{default_line:?} not in the defaults"
                    );
                    text = text.replacen(default_line, &line, 1);
                }
            };
            let line = |key: &str, value: &Option<String>| {
                value.as_ref().map(|v| format!("{key}: {}", quoted(v)))
            };
            set(
                "clusterName: kubernetes",
                line("clusterName", &self.cluster_name),
            );
            set(
                "certificatesDir: /etc/kubernetes/pki",
                line("certificatesDir", &self.cert_dir),
            );
            set(
                "dnsDomain: cluster.local",
                line("dnsDomain", &self.dns_domain),
            );
            set(
                "serviceSubnet: 10.96.0.0/12",
                line("serviceSubnet", &self.service_subnet),
            );
            set(
                "certSANs: []",
                Some(format!("certSANs: [{}]", sans.join(", "))),
            );
            set(
                "encryptionAlgorithm: RSA-2048",
                self.algorithm.map(|a| format!("encryptionAlgorithm: {a}")),
            );
            set(
                "certificateValidityPeriod: 8760h0m0s",
                self.cert_validity
                    .map(|d| format!("certificateValidityPeriod: {d}")),
            );
            set(
                "caCertificateValidityPeriod: 87600h0m0s",
                self.ca_validity
                    .map(|d| format!("caCertificateValidityPeriod: {d}")),
            );
            set(
                "bindPort: 6443",
                self.bind_port.map(|port| format!("bindPort: {port}")),
            );
            set(
                "# advertiseAddress: 192.0.2.10",
                self.advertise_address
                    .map(|ip| format!("advertiseAddress: {}", quoted(&ip.to_string()))),
            );
            set("# name: node1", line("name", &self.node_name));
            set(
                "# controlPlaneEndpoint: cluster.example.com:6443",
                line("controlPlaneEndpoint", &self.endpoint),
            );
            text
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn init_defaults_with_any_settings_read_back(settings in settings()) {
            use crate::spec::{
                DEFAULT_BIND_PORT, DEFAULT_CA_VALIDITY, DEFAULT_CERT_DIR, DEFAULT_CERT_VALIDITY,
                DEFAULT_CLUSTER_NAME, DEFAULT_DNS_DOMAIN, DEFAULT_SERVICE_CIDR,
            };
            let config = load(&settings.yaml()).map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
            let (init, cluster) = (&config.init, &config.cluster);
            let or = |value: &Option<String>, default: &str| value.clone().unwrap_or(default.into());
            prop_assert_eq!(cluster.cluster_name.clone(), Some(or(&settings.cluster_name, DEFAULT_CLUSTER_NAME)));
            prop_assert_eq!(cluster.certificates_dir.clone(), Some(or(&settings.cert_dir, DEFAULT_CERT_DIR).into()));
            prop_assert_eq!(cluster.dns_domain.as_ref().map(|d| d.to_string()), Some(or(&settings.dns_domain, DEFAULT_DNS_DOMAIN)));
            prop_assert_eq!(cluster.service_subnet.clone(), or(&settings.service_subnet, DEFAULT_SERVICE_CIDR).parse().ok());
            let sans: Vec<San> = settings.cert_sans.iter().map(|s| s.parse().unwrap()).collect();
            prop_assert_eq!(&cluster.api_server_cert_sans, &sans);
            prop_assert_eq!(cluster.encryption_algorithm, Some(settings.algorithm.unwrap_or(Algorithm::Rsa2048)));
            prop_assert_eq!(cluster.certificate_validity_period, Some(settings.cert_validity.unwrap_or(DEFAULT_CERT_VALIDITY)));
            prop_assert_eq!(cluster.ca_certificate_validity_period, Some(settings.ca_validity.unwrap_or(DEFAULT_CA_VALIDITY)));
            prop_assert_eq!(cluster.control_plane_endpoint.clone(), settings.endpoint.as_ref().map(|e| e.parse().unwrap()));
            prop_assert_eq!(init.bind_port, Some(settings.bind_port.unwrap_or(DEFAULT_BIND_PORT)));
            prop_assert_eq!(init.advertise_address, settings.advertise_address);
            prop_assert_eq!(init.node_name.as_ref().map(|n| n.to_string()), settings.node_name.clone());
            prop_assert!(config.notes.is_empty(), "{:?}", config.notes);
        }
    }
}
