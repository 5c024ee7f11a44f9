//! The typed, version-independent result of reading a kubeadm configuration: what v1beta3
//! and v1beta4 documents both say, with `None` wherever the file left kubeadm's default.
//! The shared token and pin types read from files as scalars here. No I/O.

use super::scalar::Scalar;
use crate::cluster::bootstrap::{BootstrapToken as Token, ExtraGroup, Usage};
use crate::duration::Duration;
use crate::net::netaddr::{DnsName, Endpoint, San, ServiceCidrs};
use crate::pki::keys::Algorithm;
use crate::pki::pin::CaPin;
use std::net::IpAddr;
use std::path::PathBuf;
use time::OffsetDateTime;

/// `InitConfiguration`: this node's facts and the bootstrap tokens.
#[derive(Debug, Default)]
pub struct InitConfiguration {
    /// `bootstrapTokens` (kept for the token commands).
    pub bootstrap_tokens: Vec<BootstrapToken>,
    /// `nodeRegistration.name`.
    pub node_name: Option<DnsName>,
    /// `localAPIEndpoint.advertiseAddress`.
    pub advertise_address: Option<IpAddr>,
    /// `localAPIEndpoint.bindPort` (`0` counts as unset, as in kubeadm).
    pub bind_port: Option<u16>,
}

/// `ClusterConfiguration`: the cluster-wide facts that shape the PKI.
#[derive(Debug, Default)]
pub struct ClusterConfiguration {
    /// `certificatesDir`.
    pub certificates_dir: Option<PathBuf>,
    /// `clusterName`, used in the kubeconfigs.
    pub cluster_name: Option<String>,
    /// `kubernetesVersion`, published in the `kubeadm-config` ConfigMap for `kubeadm join`.
    pub kubernetes_version: Option<String>,
    /// `controlPlaneEndpoint`.
    pub control_plane_endpoint: Option<Endpoint>,
    /// `networking.serviceSubnet`.
    pub service_subnet: Option<ServiceCidrs>,
    /// `networking.dnsDomain`.
    pub dns_domain: Option<DnsName>,
    /// `apiServer.certSANs`.
    pub api_server_cert_sans: Vec<San>,
    /// `etcd`: local (with extra SANs) or external.
    pub etcd: Etcd,
    /// `encryptionAlgorithm` (v1beta4), or ECDSA-P256 from the `PublicKeysECDSA` gate.
    pub encryption_algorithm: Option<Algorithm>,
    /// `certificateValidityPeriod` (v1beta4).
    pub certificate_validity_period: Option<Duration>,
    /// `caCertificateValidityPeriod` (v1beta4).
    pub ca_certificate_validity_period: Option<Duration>,
    /// `imageRepository`, for the static pod manifests.
    pub image_repository: Option<String>,
    /// `apiServer.extraArgs` and `extraVolumes`.
    pub api_server: ComponentExtras,
    /// `controllerManager.extraArgs` and `extraVolumes`.
    pub controller_manager: ComponentExtras,
    /// `scheduler.extraArgs` and `extraVolumes`.
    pub scheduler: ComponentExtras,
    /// `etcd.local.extraArgs` (no volumes).
    pub etcd_local: ComponentExtras,
    /// `etcd.local.dataDir`.
    pub etcd_data_dir: Option<PathBuf>,
}

/// A component's `extraArgs` (name, value; in the file's order) and `extraVolumes`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ComponentExtras {
    /// `extraArgs`, names without `--`.
    pub extra_args: Vec<(String, String)>,
    /// `extraVolumes`.
    pub extra_volumes: Vec<HostPathMount>,
}

/// An `extraVolumes` item: a host path mounted into the component's pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPathMount {
    /// `name`.
    pub name: String,
    /// `hostPath`.
    pub host_path: PathBuf,
    /// `mountPath`.
    pub mount_path: PathBuf,
    /// `readOnly`.
    pub read_only: bool,
    /// `pathType`, when given.
    pub path_type: Option<String>,
}

/// Where etcd runs.
#[derive(Debug, PartialEq, Eq)]
pub enum Etcd {
    /// A local static-pod etcd: kubepki writes its certificates.
    Local {
        /// `etcd.local.serverCertSANs`.
        server_cert_sans: Vec<San>,
        /// `etcd.local.peerCertSANs`.
        peer_cert_sans: Vec<San>,
    },
    /// `etcd.external`: no etcd certificates are written, as kubeadm.
    External,
}

impl Default for Etcd {
    fn default() -> Etcd {
        Etcd::Local {
            server_cert_sans: Vec::new(),
            peer_cert_sans: Vec::new(),
        }
    }
}

/// `JoinConfiguration`, for `kubepki join --config`.
#[derive(Debug, Default)]
pub struct JoinConfiguration {
    /// `nodeRegistration.name`.
    pub node_name: Option<DnsName>,
    /// `caCertPath`.
    pub ca_cert_path: Option<PathBuf>,
    /// `discovery`.
    pub discovery: Discovery,
    /// `controlPlane`, when joining as a control plane.
    pub control_plane: Option<JoinControlPlane>,
}

/// `JoinConfiguration.discovery`.
#[derive(Debug, Default)]
pub struct Discovery {
    /// `discovery.bootstrapToken`.
    pub bootstrap_token: Option<BootstrapTokenDiscovery>,
    /// `discovery.file.kubeConfigPath`: a path, `file://` or `https://` URL.
    pub file: Option<String>,
    /// `discovery.tlsBootstrapToken`.
    pub tls_bootstrap_token: Option<Token>,
    /// `discovery.timeout` (v1beta3) or `timeouts.discovery` (v1beta4).
    pub timeout: Option<Duration>,
}

/// `discovery.bootstrapToken`.
#[derive(Debug, Default)]
pub struct BootstrapTokenDiscovery {
    /// `token`.
    pub token: Option<Token>,
    /// `apiServerEndpoint`.
    pub api_server_endpoint: Option<Endpoint>,
    /// `caCertHashes`.
    pub ca_cert_hashes: Vec<CaPin>,
    /// `unsafeSkipCAVerification`.
    pub unsafe_skip_ca_verification: bool,
}

/// `JoinConfiguration.controlPlane`.
#[derive(Debug, Default)]
pub struct JoinControlPlane {
    /// `localAPIEndpoint.advertiseAddress`.
    pub advertise_address: Option<IpAddr>,
    /// `localAPIEndpoint.bindPort`.
    pub bind_port: Option<u16>,
}

/// One `bootstrapTokens[]` entry.
#[derive(Debug, Default)]
pub struct BootstrapToken {
    /// `token`; unset means "generate one".
    pub token: Option<Token>,
    /// `description`.
    pub description: Option<String>,
    /// `ttl` (kubeadm's default 24h0m0s when unset).
    pub ttl: Option<Duration>,
    /// `expires`, an absolute alternative to `ttl`.
    pub expires: Option<OffsetDateTime>,
    /// `usages`.
    pub usages: Vec<Usage>,
    /// `groups`.
    pub groups: Vec<ExtraGroup>,
}

/// A bootstrap token in a config file: the shared `bootstrap::BootstrapToken`, whose parse
/// error never repeats the (possibly secret) text.
impl Scalar for Token {
    const WHAT: &'static str = "a bootstrap token [a-z0-9]{6}.[a-z0-9]{16}";
    fn parse(text: &str) -> Result<Token, String> {
        text.parse().map_err(|e: anyhow::Error| e.to_string())
    }
}

/// A CA public-key pin in a config file: the shared `pin::CaPin`.
impl Scalar for CaPin {
    const WHAT: &'static str = "a pin sha256:<hex>";
    fn parse(text: &str) -> Result<CaPin, String> {
        text.parse()
    }
}
