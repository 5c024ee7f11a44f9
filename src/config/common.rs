//! Schema pieces that v1beta3 and v1beta4 share, and the scalars of bootstrap tokens and
//! discovery. Every struct refuses unknown fields; fields kubeadm knows but the PKI does not
//! need are typed `IgnoredAny` (accepted, never read), so a typo still fails. No I/O.

use super::model;
use super::scalar::{Opt, Port, Req, Scalar, items};
use crate::cluster::bootstrap::{ExtraGroup, Usage};
use crate::duration::Duration;
use crate::net::netaddr::{DnsName, Endpoint, ServiceCidrs};
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::net::IpAddr;
use std::path::PathBuf;
use time::OffsetDateTime;

/// `localAPIEndpoint` and `controlPlane.localAPIEndpoint`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiEndpoint {
    advertise_address: Opt<IpAddr>,
    bind_port: Port,
}

impl ApiEndpoint {
    /// The advertise address and bind port, either unset.
    pub fn into_parts(self) -> (Option<IpAddr>, Option<u16>) {
        (self.advertise_address.0, self.bind_port.0)
    }
}

/// `networking`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Networking {
    pub(super) service_subnet: Opt<ServiceCidrs>,
    pub(super) dns_domain: Opt<DnsName>,
    #[serde(rename = "podSubnet")]
    _pod_subnet: IgnoredAny,
}

/// `etcd.external`: only its presence matters here (no etcd certificates are written).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExternalEtcd {
    #[serde(rename = "endpoints")]
    _endpoints: IgnoredAny,
    #[serde(rename = "caFile")]
    _ca_file: IgnoredAny,
    #[serde(rename = "certFile")]
    _cert_file: IgnoredAny,
    #[serde(rename = "keyFile")]
    _key_file: IgnoredAny,
}

/// v1beta4's `extraArgs` item (`{name, value}`); v1beta3 uses a map instead.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arg {
    name: String,
    value: String,
}

impl Arg {
    /// The argument's name and value.
    pub fn into_pair(self) -> (String, String) {
        (self.name, self.value)
    }
}

/// An `extraVolumes` item (v1beta3 and v1beta4 alike): a host path mounted into a
/// control-plane component's pod.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HostPathMount {
    name: String,
    host_path: PathBuf,
    mount_path: PathBuf,
    #[serde(default)]
    read_only: bool,
    #[serde(default)]
    path_type: Option<String>,
}

/// The `pathType`s a hostPath volume takes (empty: no check).
const PATH_TYPES: [&str; 7] = [
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
];

impl HostPathMount {
    /// The typed volume; `what` (e.g. `apiServer.extraVolumes[0]`) names it in an error.
    pub fn into_model(self, what: &str) -> Result<model::HostPathMount, String> {
        if self.name.is_empty() {
            return Err(format!("{what}.name: empty"));
        }
        for (field, path) in [
            ("hostPath", &self.host_path),
            ("mountPath", &self.mount_path),
        ] {
            if !path.is_absolute() {
                return Err(format!(
                    "{what}.{field}: {} is not an absolute path",
                    path.display()
                ));
            }
        }
        let path_type = self.path_type.filter(|t| !t.is_empty());
        if let Some(kind) = path_type.as_deref().filter(|t| !PATH_TYPES.contains(t)) {
            return Err(format!(
                "{what}.pathType: {kind:?} is not one of {}",
                PATH_TYPES.join(", ")
            ));
        }
        Ok(model::HostPathMount {
            name: self.name,
            host_path: self.host_path,
            mount_path: self.mount_path,
            read_only: self.read_only,
            path_type,
        })
    }
}

/// The `extraArgs` and `extraVolumes` of a component (`what`, e.g. `apiServer`), typed:
/// an argument without a name is refused.
pub fn extras(
    what: &str,
    args: Vec<(String, String)>,
    volumes: Vec<HostPathMount>,
) -> Result<model::ComponentExtras, String> {
    if let Some((i, _)) = args
        .iter()
        .enumerate()
        .find(|(_, (name, _))| name.is_empty())
    {
        return Err(format!("{what}.extraArgs[{i}]: an argument without a name"));
    }
    let extra_volumes = volumes
        .into_iter()
        .enumerate()
        .map(|(i, v)| v.into_model(&format!("{what}.extraVolumes[{i}]")))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(model::ComponentExtras {
        extra_args: args,
        extra_volumes,
    })
}

/// `bootstrapTokens[]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapToken {
    token: Opt<crate::cluster::bootstrap::BootstrapToken>,
    description: Opt<String>,
    ttl: Opt<Duration>,
    expires: Opt<Expiry>,
    usages: Vec<Req<Usage>>,
    groups: Vec<Req<ExtraGroup>>,
}

impl BootstrapToken {
    /// The typed token.
    pub fn into_model(self) -> model::BootstrapToken {
        model::BootstrapToken {
            token: self.token.0,
            description: self.description.0,
            ttl: self.ttl.0,
            expires: self.expires.0.map(|Expiry(at)| at),
            usages: items(self.usages),
            groups: items(self.groups),
        }
    }
}

/// `discovery.bootstrapToken`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct BootstrapTokenDiscovery {
    token: Opt<crate::cluster::bootstrap::BootstrapToken>,
    api_server_endpoint: Opt<Endpoint>,
    ca_cert_hashes: Vec<Req<crate::pki::pin::CaPin>>,
    #[serde(rename = "unsafeSkipCAVerification")]
    unsafe_skip_ca_verification: bool,
}

impl BootstrapTokenDiscovery {
    /// The typed discovery settings.
    pub fn into_model(self) -> model::BootstrapTokenDiscovery {
        model::BootstrapTokenDiscovery {
            token: self.token.0,
            api_server_endpoint: self.api_server_endpoint.0,
            ca_cert_hashes: items(self.ca_cert_hashes),
            unsafe_skip_ca_verification: self.unsafe_skip_ca_verification,
        }
    }
}

/// `discovery.file`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct FileDiscovery {
    pub(super) kube_config_path: Opt<String>,
}

/// `controlPlane` of a JoinConfiguration.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JoinControlPlane {
    #[serde(rename = "localAPIEndpoint")]
    local_api_endpoint: ApiEndpoint,
    #[serde(rename = "certificateKey")]
    _certificate_key: IgnoredAny,
}

impl JoinControlPlane {
    /// The typed control-plane join settings.
    pub fn into_model(self) -> model::JoinControlPlane {
        let (advertise_address, bind_port) = self.local_api_endpoint.into_parts();
        model::JoinControlPlane {
            advertise_address,
            bind_port,
        }
    }
}

/// An RFC 3339 instant (`expires`).
#[derive(Debug)]
struct Expiry(OffsetDateTime);

impl Scalar for Expiry {
    const WHAT: &'static str = "an RFC 3339 time";
    fn parse(text: &str) -> Result<Expiry, String> {
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map(Expiry)
            .map_err(|_| format!("{text:?} is not an RFC 3339 time"))
    }
}
