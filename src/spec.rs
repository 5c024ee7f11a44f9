//! The validated facts a run works from. `ClusterSpec`: what every certificate is derived
//! from — flags over a kubeadm config file (merged by `config`) over defaults over host facts
//! (hostname, first non-loopback address), with `now` fixed once per run. `JoinSpec`: how
//! `join` discovers its cluster. Bad input fails here, naming the flag.

use crate::cluster::bootstrap::BootstrapToken;
use crate::cluster::discovery::DiscoverySource;
use crate::duration::Duration;
use crate::net::host::{first_non_loopback_address, host_node_name};
use crate::net::https::HttpsUrl;
use crate::net::netaddr::{DnsName, Endpoint, Host, San, ServiceCidrs, https_url};
use crate::pki::keys::Algorithm;
use crate::pki::pin::CaPin;
use crate::usage::UsageError;
use anyhow::{Result, anyhow};
use std::net::IpAddr;
use std::path::PathBuf;
use time::OffsetDateTime;

/// Default `--cert-dir`.
pub const DEFAULT_CERT_DIR: &str = "/etc/kubernetes/pki";
/// Default `--kubeconfig-dir`.
pub const DEFAULT_KUBECONFIG_DIR: &str = "/etc/kubernetes";
/// The kubelet's default `--cert-dir`: where it keeps its serving and rotated client
/// certificates (kubepki's `--kubelet-cert-dir`, `kubelet serving-cert --out-dir`).
pub const DEFAULT_KUBELET_CERT_DIR: &str = "/var/lib/kubelet/pki";
/// Default `--apiserver-bind-port` (`localAPIEndpoint.bindPort`).
pub const DEFAULT_BIND_PORT: u16 = 6443;
/// Default `--service-cidr` (`networking.serviceSubnet`).
pub const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";
/// Default `--service-dns-domain` (`networking.dnsDomain`).
pub const DEFAULT_DNS_DOMAIN: &str = "cluster.local";
/// Default `clusterName`.
pub const DEFAULT_CLUSTER_NAME: &str = "kubernetes";
/// Default `--cert-validity` (`certificateValidityPeriod`).
pub const DEFAULT_CERT_VALIDITY: Duration = Duration::from_hours(8760);
/// Default `--ca-validity` (`caCertificateValidityPeriod`).
pub const DEFAULT_CA_VALIDITY: Duration = Duration::from_hours(87600);

/// The validity `flag` gives, else `default`; zero is refused, naming the flag.
pub fn validity(given: Option<Duration>, default: Duration, flag: &str) -> Result<Duration> {
    match given.unwrap_or(default) {
        d if d.as_secs() == 0 => {
            Err(UsageError(format!("{flag}: the validity must be longer than zero")).into())
        }
        d => Ok(d),
    }
}

/// The cluster facts as given (flags over a config file), before defaults and host facts.
#[derive(Clone, Debug, Default)]
pub struct ClusterInput {
    /// `--node-name`.
    pub node_name: Option<DnsName>,
    /// `--apiserver-advertise-address`.
    pub advertise_address: Option<IpAddr>,
    /// `--apiserver-bind-port`.
    pub bind_port: Option<u16>,
    /// `--control-plane-endpoint`.
    pub control_plane_endpoint: Option<Endpoint>,
    /// `--apiserver-cert-extra-sans`; empty when not given.
    pub extra_sans: Vec<San>,
    /// `--service-cidr`.
    pub service_cidrs: Option<ServiceCidrs>,
    /// `--service-dns-domain`.
    pub dns_domain: Option<DnsName>,
    /// `--encryption-algorithm`.
    pub algorithm: Option<Algorithm>,
    /// `--cert-validity`.
    pub cert_validity: Option<Duration>,
    /// `--ca-validity`.
    pub ca_validity: Option<Duration>,
}

impl ClusterInput {
    /// Whether any fact was given.
    pub fn is_given(&self) -> bool {
        self.node_name.is_some()
            || self.advertise_address.is_some()
            || self.bind_port.is_some()
            || self.control_plane_endpoint.is_some()
            || !self.extra_sans.is_empty()
            || self.service_cidrs.is_some()
            || self.dns_domain.is_some()
            || self.algorithm.is_some()
            || self.cert_validity.is_some()
            || self.ca_validity.is_some()
    }

    /// These settings, with every one left unset taken from `below`.
    pub fn over(&self, below: &ClusterInput) -> ClusterInput {
        ClusterInput {
            node_name: self.node_name.clone().or(below.node_name.clone()),
            advertise_address: self.advertise_address.or(below.advertise_address),
            bind_port: self.bind_port.or(below.bind_port),
            control_plane_endpoint: self
                .control_plane_endpoint
                .clone()
                .or(below.control_plane_endpoint.clone()),
            extra_sans: match self.extra_sans.is_empty() {
                true => below.extra_sans.clone(),
                false => self.extra_sans.clone(),
            },
            service_cidrs: self.service_cidrs.clone().or(below.service_cidrs.clone()),
            dns_domain: self.dns_domain.clone().or(below.dns_domain.clone()),
            algorithm: self.algorithm.or(below.algorithm),
            cert_validity: self.cert_validity.or(below.cert_validity),
            ca_validity: self.ca_validity.or(below.ca_validity),
        }
    }

    /// The settings given here (flags over `--config`) that differ from those `recorded`
    /// (the tree's recorded configuration), in flag order.
    pub fn contradictions(&self, recorded: &ClusterInput) -> Vec<Contradiction> {
        let sans = |list: &[San]| {
            (!list.is_empty()).then(|| list.iter().map(ToString::to_string).collect::<Vec<_>>())
        };
        [
            differ("--node-name", &self.node_name, &recorded.node_name),
            differ(
                "--apiserver-advertise-address",
                &self.advertise_address,
                &recorded.advertise_address,
            ),
            differ(
                "--apiserver-bind-port",
                &self.bind_port,
                &recorded.bind_port,
            ),
            differ(
                "--control-plane-endpoint",
                &self.control_plane_endpoint,
                &recorded.control_plane_endpoint,
            ),
            differ(
                "--apiserver-cert-extra-sans",
                &sans(&self.extra_sans).map(|s| s.join(",")),
                &sans(&recorded.extra_sans).map(|s| s.join(",")),
            ),
            differ(
                "--service-cidr",
                &self.service_cidrs,
                &recorded.service_cidrs,
            ),
            differ(
                "--service-dns-domain",
                &self.dns_domain,
                &recorded.dns_domain,
            ),
            differ(
                "--encryption-algorithm",
                &self.algorithm,
                &recorded.algorithm,
            ),
            differ(
                "--cert-validity",
                &self.cert_validity,
                &recorded.cert_validity,
            ),
            differ("--ca-validity", &self.ca_validity, &recorded.ca_validity),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// A setting given (a flag, or `--config`) that differs from the one the tree records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contradiction {
    /// The flag that sets it.
    pub flag: &'static str,
    /// The value given.
    pub given: String,
    /// The value recorded.
    pub recorded: String,
}

impl Contradiction {
    /// Whether it changes the node's identity (its name or address), which only a command
    /// meant to change it may do.
    pub fn is_identity(&self) -> bool {
        matches!(self.flag, "--node-name" | "--apiserver-advertise-address")
    }
}

fn differ<T: PartialEq + std::fmt::Display>(
    flag: &'static str,
    given: &Option<T>,
    recorded: &Option<T>,
) -> Option<Contradiction> {
    match (given, recorded) {
        (Some(given), Some(recorded)) if given != recorded => Some(Contradiction {
            flag,
            given: given.to_string(),
            recorded: recorded.to_string(),
        }),
        _ => None,
    }
}

/// Everything that shapes the PKI of one control-plane node.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// `clusterName`, used in kubeconfigs.
    pub cluster_name: String,
    /// Node name.
    pub node_name: DnsName,
    /// The API server's advertise address.
    pub advertise_address: IpAddr,
    /// The API server's port.
    pub bind_port: u16,
    /// The control-plane endpoint, if set.
    pub control_plane_endpoint: Option<Endpoint>,
    /// Extra API server SANs.
    pub extra_sans: Vec<San>,
    /// Extra etcd serving SANs (`etcd.local.serverCertSANs`).
    pub etcd_server_sans: Vec<San>,
    /// Extra etcd peer SANs (`etcd.local.peerCertSANs`).
    pub etcd_peer_sans: Vec<San>,
    /// `etcd.external`: no etcd certificates are written.
    pub external_etcd: bool,
    /// Service CIDRs.
    pub service_cidrs: ServiceCidrs,
    /// Cluster DNS domain.
    pub dns_domain: DnsName,
    /// Key algorithm for every new key.
    pub algorithm: Algorithm,
    /// Leaf validity.
    pub cert_validity: Duration,
    /// CA validity.
    pub ca_validity: Duration,
    /// The one "now" of this run.
    pub now: OffsetDateTime,
}

impl ClusterSpec {
    /// Resolves flags over defaults over host facts.
    pub fn resolve(input: &ClusterInput, now: OffsetDateTime) -> Result<ClusterSpec> {
        let node_name = match &input.node_name {
            Some(name) => name.clone(),
            None => host_node_name()?,
        };
        let advertise_address = match input.advertise_address {
            Some(ip) => ip,
            None => first_non_loopback_address()?,
        };
        if advertise_address.is_unspecified() || advertise_address.is_multicast() {
            return Err(UsageError(format!(
                "--apiserver-advertise-address: {advertise_address} is not a usable host address"
            ))
            .into());
        }
        Ok(ClusterSpec {
            cluster_name: DEFAULT_CLUSTER_NAME.into(),
            node_name,
            advertise_address,
            bind_port: input.bind_port.unwrap_or(DEFAULT_BIND_PORT),
            control_plane_endpoint: input.control_plane_endpoint.clone(),
            extra_sans: input.extra_sans.clone(),
            etcd_server_sans: Vec::new(),
            etcd_peer_sans: Vec::new(),
            external_etcd: false,
            service_cidrs: match &input.service_cidrs {
                Some(cidrs) => cidrs.clone(),
                None => DEFAULT_SERVICE_CIDR
                    .parse()
                    .map_err(|e: String| anyhow!(e))?,
            },
            dns_domain: match &input.dns_domain {
                Some(domain) => domain.clone(),
                None => DEFAULT_DNS_DOMAIN.parse().map_err(|e: String| anyhow!(e))?,
            },
            algorithm: input.algorithm.unwrap_or(Algorithm::Rsa2048),
            cert_validity: validity(
                input.cert_validity,
                DEFAULT_CERT_VALIDITY,
                "--cert-validity",
            )?,
            ca_validity: validity(input.ca_validity, DEFAULT_CA_VALIDITY, "--ca-validity")?,
            now,
        })
    }

    /// `https://<advertise address>:<bind port>`.
    pub fn local_url(&self) -> String {
        https_url(&Host::Ip(self.advertise_address), self.bind_port)
    }

    /// The control-plane endpoint URL (its port, else the bind port), else the local URL.
    pub fn control_plane_url(&self) -> String {
        match &self.control_plane_endpoint {
            Some(endpoint) => https_url(&endpoint.host, endpoint.port.unwrap_or(self.bind_port)),
            None => self.local_url(),
        }
    }
}

/// The API server port of a join ENDPOINT without one.
const DEFAULT_JOIN_PORT: u16 = 6443;

/// How long join's discovery keeps trying by default (kubeadm's).
pub const DEFAULT_DISCOVERY_TIMEOUT: Duration = Duration::from_secs(300);

/// `join`'s facts as given (flags over a JoinConfiguration), before they are checked.
#[derive(Clone, Debug, Default)]
pub struct JoinInput {
    /// ENDPOINT: the API server for token discovery.
    pub endpoint: Option<Endpoint>,
    /// `--discovery-file`.
    pub discovery_file: Option<DiscoverySource>,
    /// The discovery token (`--discovery-token`, else `--token`).
    pub discovery_token: Option<BootstrapToken>,
    /// The token for `bootstrap-kubelet.conf` (`--tls-bootstrap-token`, else `--token`).
    pub tls_bootstrap_token: Option<BootstrapToken>,
    /// `--discovery-token-ca-cert-hash`.
    pub pins: Vec<CaPin>,
    /// `--discovery-token-unsafe-skip-ca-verification`.
    pub unsafe_skip_ca_verification: bool,
    /// `--discovery-timeout`.
    pub discovery_timeout: Option<Duration>,
    /// `--node-name`.
    pub node_name: Option<DnsName>,
    /// `--cert-dir`.
    pub cert_dir: Option<PathBuf>,
}

/// How `join` finds its cluster.
#[derive(Clone, Debug)]
pub enum Discovery {
    /// Token discovery against an API server: `cluster-info`, signed with the token, its
    /// CA checked against the pins (none only with the unsafe skip).
    Token {
        /// The API server.
        endpoint: HttpsUrl,
        /// The discovery token.
        token: BootstrapToken,
        /// The accepted CA pins.
        pins: Vec<CaPin>,
    },
    /// A kubeconfig naming the cluster.
    File(DiscoverySource),
}

/// What `join` does, checked.
#[derive(Clone, Debug)]
pub struct JoinSpec {
    /// How the cluster is found.
    pub discovery: Discovery,
    /// The token written into `bootstrap-kubelet.conf`.
    pub tls_bootstrap_token: BootstrapToken,
    /// The deadline of the whole discovery.
    pub timeout: std::time::Duration,
    /// The node's name, for the kubelet hint.
    pub node_name: Option<DnsName>,
    /// `--cert-dir`, or the directory of `caCertPath`.
    pub cert_dir: Option<PathBuf>,
}

impl JoinSpec {
    /// Checks what join was given: a TLS bootstrap token, and a way to discover the cluster
    /// that does not trust just any server. Misuse is a `UsageError`.
    pub fn resolve(input: JoinInput) -> Result<JoinSpec> {
        let tls_bootstrap_token = input.tls_bootstrap_token.clone().ok_or_else(|| {
            UsageError(
                "bootstrap-kubelet.conf needs a token: pass --token or --tls-bootstrap-token"
                    .into(),
            )
        })?;
        let timeout = input.discovery_timeout.unwrap_or(DEFAULT_DISCOVERY_TIMEOUT);
        Ok(JoinSpec {
            discovery: discovery_of(&input)?,
            tls_bootstrap_token,
            timeout: std::time::Duration::from_secs(timeout.as_secs()),
            node_name: input.node_name,
            cert_dir: input.cert_dir,
        })
    }
}

fn discovery_of(input: &JoinInput) -> Result<Discovery> {
    if let Some(source) = &input.discovery_file {
        return Ok(Discovery::File(source.clone()));
    }
    let endpoint = input
        .endpoint
        .as_ref()
        .ok_or_else(|| UsageError("pass ENDPOINT (token discovery) or --discovery-file".into()))?;
    let token = input
        .discovery_token
        .clone()
        .ok_or_else(|| UsageError("token discovery needs --token or --discovery-token".into()))?;
    if input.pins.is_empty() && !input.unsafe_skip_ca_verification {
        return Err(UsageError(
            "token discovery without --discovery-token-ca-cert-hash would trust any server: pass the CA pin (kubepki certs ca-cert-hash on the control plane), or --discovery-token-unsafe-skip-ca-verification".into(),
        )
        .into());
    }
    let port = endpoint.port.unwrap_or(DEFAULT_JOIN_PORT);
    let endpoint: HttpsUrl = https_url(&endpoint.host, port)
        .parse()
        .map_err(anyhow::Error::msg)?;
    Ok(Discovery::Token {
        endpoint,
        token,
        pins: input.pins.clone(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A spec for node `cp1` advertising 192.168.1.10, with `args` (init flags, in
    /// `--flag value` pairs) on top.
    pub(crate) fn spec_for(args: &[&str]) -> ClusterSpec {
        let mut input = ClusterInput {
            node_name: Some("cp1".parse().expect("a node name")),
            advertise_address: Some("192.168.1.10".parse().expect("an IP")),
            ..Default::default()
        };
        for pair in args.chunks(2) {
            let value = pair[1];
            match pair[0] {
                "--node-name" => input.node_name = Some(parsed(value)),
                "--apiserver-advertise-address" => {
                    input.advertise_address = Some(value.parse().expect("an IP"))
                }
                "--apiserver-bind-port" => input.bind_port = Some(value.parse().expect("a port")),
                "--control-plane-endpoint" => input.control_plane_endpoint = Some(parsed(value)),
                "--apiserver-cert-extra-sans" => {
                    input.extra_sans = value.split(',').map(parsed).collect()
                }
                "--service-cidr" => input.service_cidrs = Some(parsed(value)),
                "--service-dns-domain" => input.dns_domain = Some(parsed(value)),
                "--encryption-algorithm" => input.algorithm = Some(parsed(value)),
                other => panic!("spec_for: no flag {other}"),
            }
        }
        ClusterSpec::resolve(&input, OffsetDateTime::now_utc()).expect("test spec resolves")
    }

    fn parsed<T: std::str::FromStr<Err = String>>(value: &str) -> T {
        value.parse().unwrap_or_else(|e| panic!("{value:?}: {e}"))
    }

    #[test]
    fn defaults_are_kubeadms() {
        let spec = spec_for(&[]);
        assert_eq!(spec.bind_port, 6443);
        assert_eq!(spec.service_cidrs.api_server_ip().to_string(), "10.96.0.1");
        assert_eq!(spec.dns_domain.as_str(), "cluster.local");
        assert_eq!(spec.algorithm, Algorithm::Rsa2048);
        assert_eq!(spec.cert_validity, Duration::from_hours(8760));
        assert_eq!(spec.ca_validity, Duration::from_hours(87600));
        assert_eq!(spec.local_url(), "https://192.168.1.10:6443");
        assert_eq!(spec.control_plane_url(), spec.local_url());
    }

    #[test]
    fn only_settings_given_and_different_contradict_the_record() {
        let recorded = ClusterInput {
            node_name: Some(parsed("cp1")),
            advertise_address: Some("10.0.0.11".parse().unwrap()),
            extra_sans: vec![parsed("api.example.com")],
            ..Default::default()
        };
        let same = ClusterInput {
            node_name: Some(parsed("cp1")),
            service_cidrs: Some(parsed("10.100.0.0/16")),
            ..Default::default()
        };
        assert_eq!(same.contradictions(&recorded), Vec::new());
        let other = ClusterInput {
            node_name: Some(parsed("cp2")),
            extra_sans: vec![parsed("api.example.com"), parsed("10.9.9.9")],
            ..Default::default()
        };
        let found = other.contradictions(&recorded);
        let flags: Vec<(&str, bool)> = found.iter().map(|c| (c.flag, c.is_identity())).collect();
        assert_eq!(
            flags,
            [
                ("--node-name", true),
                ("--apiserver-cert-extra-sans", false)
            ]
        );
        assert_eq!(
            (found[0].given.as_str(), found[0].recorded.as_str()),
            ("cp2", "cp1")
        );
    }

    #[test]
    fn unusable_advertise_address_is_refused() {
        let input = ClusterInput {
            advertise_address: Some("0.0.0.0".parse().unwrap()),
            node_name: Some("a".parse().unwrap()),
            ..Default::default()
        };
        let err = ClusterSpec::resolve(&input, OffsetDateTime::now_utc()).unwrap_err();
        assert!(err.to_string().contains("--apiserver-advertise-address"));
    }
}
