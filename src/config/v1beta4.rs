//! `kubeadm.k8s.io/v1beta4` (kubeadm 1.31+): the schema of its Init, Cluster and Join
//! configurations, field for field, and the conversion to the typed model. Differs from
//! v1beta3 in `extraArgs` (a list of `{name, value}`), `extraEnvs`, `encryptionAlgorithm`,
//! the validity periods, `dryRun`, `timeouts`, `dns.disabled` and `proxy`. No I/O.

use super::common::{
    ApiEndpoint, Arg, BootstrapToken, BootstrapTokenDiscovery, ExternalEtcd, FileDiscovery,
    HostPathMount, JoinControlPlane, Networking, extras,
};
use super::model;
use super::scalar::{Opt, Req, Validity, items};
use crate::duration::Duration;
use crate::net::netaddr::{DnsName, Endpoint, San};
use crate::pki::keys::Algorithm;
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `ClusterConfiguration`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterConfiguration {
    #[serde(rename = "apiVersion")]
    _api_version: IgnoredAny,
    #[serde(rename = "kind")]
    _kind: IgnoredAny,
    etcd: Etcd,
    networking: Networking,
    kubernetes_version: Opt<String>,
    control_plane_endpoint: Opt<Endpoint>,
    api_server: ApiServer,
    controller_manager: ControlPlaneComponent,
    scheduler: ControlPlaneComponent,
    #[serde(rename = "dns")]
    _dns: Dns,
    #[serde(rename = "proxy")]
    _proxy: Proxy,
    certificates_dir: Opt<PathBuf>,
    image_repository: Opt<String>,
    feature_gates: BTreeMap<String, bool>,
    cluster_name: Opt<String>,
    encryption_algorithm: Opt<Algorithm>,
    certificate_validity_period: Opt<Validity>,
    ca_certificate_validity_period: Opt<Validity>,
}

impl ClusterConfiguration {
    /// The typed model; `etcd.local` together with `etcd.external` is refused, as kubeadm.
    pub fn into_model(self) -> Result<model::ClusterConfiguration, String> {
        let gate_ecdsa = super::public_keys_ecdsa(&self.feature_gates);
        let (etcd, etcd_local, etcd_data_dir) = self.etcd.into_model()?;
        Ok(model::ClusterConfiguration {
            certificates_dir: self.certificates_dir.0,
            cluster_name: self.cluster_name.0,
            kubernetes_version: self.kubernetes_version.0,
            control_plane_endpoint: self.control_plane_endpoint.0,
            service_subnet: self.networking.service_subnet.0,
            dns_domain: self.networking.dns_domain.0,
            api_server_cert_sans: items(self.api_server.cert_sans),
            etcd,
            encryption_algorithm: self.encryption_algorithm.0.or(gate_ecdsa),
            certificate_validity_period: self.certificate_validity_period.0.map(|v| v.0),
            ca_certificate_validity_period: self.ca_certificate_validity_period.0.map(|v| v.0),
            image_repository: self.image_repository.0,
            api_server: extras(
                "apiServer",
                self.api_server
                    .extra_args
                    .into_iter()
                    .map(Arg::into_pair)
                    .collect(),
                self.api_server.extra_volumes,
            )?,
            controller_manager: self.controller_manager.into_model("controllerManager")?,
            scheduler: self.scheduler.into_model("scheduler")?,
            etcd_local,
            etcd_data_dir,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Etcd {
    local: Option<LocalEtcd>,
    external: Option<ExternalEtcd>,
}

impl Etcd {
    /// The typed etcd, with the local etcd's `extraArgs` and `dataDir`.
    fn into_model(self) -> Result<(model::Etcd, model::ComponentExtras, Option<PathBuf>), String> {
        match (self.local, self.external) {
            (Some(_), Some(_)) => Err(super::ETCD_BOTH.into()),
            (None, Some(_)) => Ok((model::Etcd::External, Default::default(), None)),
            (Some(local), None) => {
                let args = local.extra_args.into_iter().map(Arg::into_pair).collect();
                Ok((
                    model::Etcd::Local {
                        server_cert_sans: items(local.server_cert_sans),
                        peer_cert_sans: items(local.peer_cert_sans),
                    },
                    extras("etcd.local", args, Vec::new())?,
                    local.data_dir.0,
                ))
            }
            (None, None) => Ok((model::Etcd::default(), Default::default(), None)),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LocalEtcd {
    #[serde(rename = "imageRepository")]
    _image_repository: IgnoredAny,
    #[serde(rename = "imageTag")]
    _image_tag: IgnoredAny,
    #[serde(rename = "dataDir")]
    data_dir: Opt<PathBuf>,
    #[serde(rename = "extraArgs")]
    extra_args: Vec<Arg>,
    #[serde(rename = "extraEnvs")]
    _extra_envs: IgnoredAny,
    #[serde(rename = "serverCertSANs")]
    server_cert_sans: Vec<Req<San>>,
    #[serde(rename = "peerCertSANs")]
    peer_cert_sans: Vec<Req<San>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ApiServer {
    #[serde(rename = "extraArgs")]
    extra_args: Vec<Arg>,
    #[serde(rename = "extraVolumes")]
    extra_volumes: Vec<HostPathMount>,
    #[serde(rename = "extraEnvs")]
    _extra_envs: IgnoredAny,
    #[serde(rename = "certSANs")]
    cert_sans: Vec<Req<San>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ControlPlaneComponent {
    #[serde(rename = "extraArgs")]
    extra_args: Vec<Arg>,
    #[serde(rename = "extraVolumes")]
    extra_volumes: Vec<HostPathMount>,
    #[serde(rename = "extraEnvs")]
    _extra_envs: IgnoredAny,
}

impl ControlPlaneComponent {
    fn into_model(self, what: &str) -> Result<model::ComponentExtras, String> {
        extras(
            what,
            self.extra_args.into_iter().map(Arg::into_pair).collect(),
            self.extra_volumes,
        )
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Dns {
    #[serde(rename = "imageRepository")]
    _image_repository: IgnoredAny,
    #[serde(rename = "imageTag")]
    _image_tag: IgnoredAny,
    #[serde(rename = "disabled")]
    _disabled: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Proxy {
    #[serde(rename = "disabled")]
    _disabled: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct NodeRegistration {
    name: Opt<DnsName>,
    #[serde(rename = "criSocket")]
    _cri_socket: IgnoredAny,
    #[serde(rename = "taints")]
    _taints: IgnoredAny,
    #[serde(rename = "kubeletExtraArgs")]
    _kubelet_extra_args: Vec<Arg>,
    #[serde(rename = "ignorePreflightErrors")]
    _ignore_preflight_errors: IgnoredAny,
    #[serde(rename = "imagePullPolicy")]
    _image_pull_policy: IgnoredAny,
    #[serde(rename = "imagePullSerial")]
    _image_pull_serial: IgnoredAny,
}

/// `timeouts` (v1beta4 only); `discovery` is the one that matters to kubepki (join).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct Timeouts {
    #[serde(rename = "controlPlaneComponentHealthCheck")]
    _control_plane_component_health_check: Opt<Duration>,
    #[serde(rename = "kubeletHealthCheck")]
    _kubelet_health_check: Opt<Duration>,
    #[serde(rename = "kubernetesAPICall")]
    _kubernetes_api_call: Opt<Duration>,
    #[serde(rename = "etcdAPICall")]
    _etcd_api_call: Opt<Duration>,
    #[serde(rename = "tlsBootstrap")]
    _tls_bootstrap: Opt<Duration>,
    discovery: Opt<Duration>,
    #[serde(rename = "upgradeManifests")]
    _upgrade_manifests: Opt<Duration>,
}

/// `InitConfiguration`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct InitConfiguration {
    #[serde(rename = "apiVersion")]
    _api_version: IgnoredAny,
    #[serde(rename = "kind")]
    _kind: IgnoredAny,
    bootstrap_tokens: Vec<BootstrapToken>,
    #[serde(rename = "dryRun")]
    _dry_run: bool,
    node_registration: NodeRegistration,
    #[serde(rename = "localAPIEndpoint")]
    local_api_endpoint: ApiEndpoint,
    #[serde(rename = "certificateKey")]
    _certificate_key: IgnoredAny,
    #[serde(rename = "skipPhases")]
    _skip_phases: IgnoredAny,
    #[serde(rename = "patches")]
    _patches: IgnoredAny,
    #[serde(rename = "timeouts")]
    _timeouts: Timeouts,
}

impl InitConfiguration {
    /// The typed model.
    pub fn into_model(self) -> model::InitConfiguration {
        let (advertise_address, bind_port) = self.local_api_endpoint.into_parts();
        model::InitConfiguration {
            bootstrap_tokens: self
                .bootstrap_tokens
                .into_iter()
                .map(BootstrapToken::into_model)
                .collect(),
            node_name: self.node_registration.name.0,
            advertise_address,
            bind_port,
        }
    }
}

/// `JoinConfiguration`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct JoinConfiguration {
    #[serde(rename = "apiVersion")]
    _api_version: IgnoredAny,
    #[serde(rename = "kind")]
    _kind: IgnoredAny,
    #[serde(rename = "dryRun")]
    _dry_run: bool,
    node_registration: NodeRegistration,
    ca_cert_path: Opt<PathBuf>,
    discovery: Discovery,
    control_plane: Option<JoinControlPlane>,
    #[serde(rename = "skipPhases")]
    _skip_phases: IgnoredAny,
    #[serde(rename = "patches")]
    _patches: IgnoredAny,
    timeouts: Timeouts,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct Discovery {
    bootstrap_token: Option<BootstrapTokenDiscovery>,
    file: Option<FileDiscovery>,
    tls_bootstrap_token: Opt<crate::cluster::bootstrap::BootstrapToken>,
}

impl JoinConfiguration {
    /// The typed model.
    pub fn into_model(self) -> model::JoinConfiguration {
        model::JoinConfiguration {
            node_name: self.node_registration.name.0,
            ca_cert_path: self.ca_cert_path.0,
            discovery: model::Discovery {
                bootstrap_token: self
                    .discovery
                    .bootstrap_token
                    .map(BootstrapTokenDiscovery::into_model),
                file: self.discovery.file.and_then(|f| f.kube_config_path.0),
                tls_bootstrap_token: self.discovery.tls_bootstrap_token.0,
                timeout: self.timeouts.discovery.0,
            },
            control_plane: self.control_plane.map(JoinControlPlane::into_model),
        }
    }
}
