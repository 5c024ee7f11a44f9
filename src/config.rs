//! kubeadm configuration files (`--config`): YAML with one or more documents, each an
//! `InitConfiguration`, `ClusterConfiguration` or `JoinConfiguration` of
//! `kubeadm.k8s.io/v1beta3` or `v1beta4`, read strictly into typed values. Other kinds kubeadm
//! accepts in the same file are skipped with a note; anything else, unknown fields included,
//! is an error naming the file, line, column and field. Also the merge rule (flags override
//! the file) and `config print init-defaults`. Reads the one file it is given; prints nothing.

mod common;
mod errors;
mod model;
mod scalar;
mod v1beta3;
mod v1beta4;

pub use model::{
    BootstrapToken, BootstrapTokenDiscovery, BootstrapTokenString, CaCertHash,
    ClusterConfiguration, Discovery, Etcd, InitConfiguration, JoinConfiguration, JoinControlPlane,
    TokenUsage,
};

use crate::cli::{ClusterArgs, TreeArgs};
use crate::keys::Algorithm;
use crate::spec::ClusterSpec;
use anyhow::{Context, Result, anyhow, bail};
use errors::{Located, located, located_header, nearest};
use scalar::{Req, Scalar};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

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
            Some(("kubelet.config.k8s.io" | "kubeproxy.config.k8s.io", _)) => {
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
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = errors::utf8(path, &bytes)?;
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
        let mut documents = read_documents(path)?;
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

    /// The flags, with every one left unset filled from the file: flags override the file.
    pub fn merge_flags(&self, flags: &ClusterArgs) -> ClusterArgs {
        let (init, cluster) = (&self.init, &self.cluster);
        ClusterArgs {
            node_name: flags.node_name.clone().or(init.node_name.clone()),
            apiserver_advertise_address: flags
                .apiserver_advertise_address
                .or(init.advertise_address),
            apiserver_bind_port: flags.apiserver_bind_port.or(init.bind_port),
            control_plane_endpoint: flags
                .control_plane_endpoint
                .clone()
                .or(cluster.control_plane_endpoint.clone()),
            apiserver_cert_extra_sans: match flags.apiserver_cert_extra_sans.is_empty() {
                true => cluster.api_server_cert_sans.clone(),
                false => flags.apiserver_cert_extra_sans.clone(),
            },
            service_cidr: flags
                .service_cidr
                .clone()
                .or(cluster.service_subnet.clone()),
            service_dns_domain: flags
                .service_dns_domain
                .clone()
                .or(cluster.dns_domain.clone()),
            encryption_algorithm: flags.encryption_algorithm.or(cluster.encryption_algorithm),
            cert_validity: flags.cert_validity.or(cluster.certificate_validity_period),
            ca_validity: flags.ca_validity.or(cluster.ca_certificate_validity_period),
        }
    }

    /// The tree flags, `--cert-dir` filled from `certificatesDir` when unset.
    pub fn merge_tree(&self, flags: &TreeArgs) -> TreeArgs {
        TreeArgs {
            cert_dir: flags
                .cert_dir
                .clone()
                .or(self.cluster.certificates_dir.clone()),
            kubeconfig_dir: flags.kubeconfig_dir.clone(),
        }
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
