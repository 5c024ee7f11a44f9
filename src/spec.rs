//! `ClusterSpec`: the validated facts every certificate is derived from — flags over a
//! kubeadm config file (merged by `config.rs`) over defaults over host facts (hostname, first
//! non-loopback address), with `now` fixed once per run. Bad input fails here, naming the flag.

use crate::cli::{ClusterArgs, TreeArgs};
use crate::duration::Duration;
use crate::keys::Algorithm;
use crate::netaddr::{DnsName, Endpoint, Host, San, ServiceCidrs, https_url};
use anyhow::{Result, anyhow, bail};
use std::net::IpAddr;
use std::path::PathBuf;
use time::OffsetDateTime;

/// Default `--cert-dir`.
pub const DEFAULT_CERT_DIR: &str = "/etc/kubernetes/pki";
/// Default `--kubeconfig-dir`.
pub const DEFAULT_KUBECONFIG_DIR: &str = "/etc/kubernetes";
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

/// The directory below the kubeconfig dir where bootstrap manifests go by default.
const MANIFESTS_SUBDIR: &str = "bootstrap";

/// The validity `flag` gives, else `default`; zero is refused, naming the flag.
pub fn validity(given: Option<Duration>, default: Duration, flag: &str) -> Result<Duration> {
    match given.unwrap_or(default) {
        d if d.as_secs() == 0 => Err(anyhow!("{flag}: the validity must be longer than zero")),
        d => Ok(d),
    }
}

/// The directories of a tree.
#[derive(Clone, Debug)]
pub struct TreeDirs {
    /// Certificates and keys.
    pub cert_dir: PathBuf,
    /// Kubeconfig files.
    pub kubeconfig_dir: PathBuf,
}

impl TreeDirs {
    /// The directories named by the flags, or the defaults.
    pub fn from_args(args: &TreeArgs) -> TreeDirs {
        TreeDirs {
            cert_dir: args
                .cert_dir
                .clone()
                .unwrap_or_else(|| DEFAULT_CERT_DIR.into()),
            kubeconfig_dir: args
                .kubeconfig_dir
                .clone()
                .unwrap_or_else(|| DEFAULT_KUBECONFIG_DIR.into()),
        }
    }

    /// `<kubeconfig-dir>/bootstrap`, where `init` and `token` write manifests by default.
    pub fn manifests_dir(&self) -> PathBuf {
        self.kubeconfig_dir.join(MANIFESTS_SUBDIR)
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
    pub fn resolve(args: &ClusterArgs, now: OffsetDateTime) -> Result<ClusterSpec> {
        let node_name = match &args.node_name {
            Some(name) => name.clone(),
            None => host_node_name()?,
        };
        let advertise_address = match args.apiserver_advertise_address {
            Some(ip) => ip,
            None => first_non_loopback_address()?,
        };
        if advertise_address.is_unspecified() || advertise_address.is_multicast() {
            bail!(
                "--apiserver-advertise-address: {advertise_address} is not a usable host address"
            );
        }
        Ok(ClusterSpec {
            cluster_name: DEFAULT_CLUSTER_NAME.into(),
            node_name,
            advertise_address,
            bind_port: args.apiserver_bind_port.unwrap_or(DEFAULT_BIND_PORT),
            control_plane_endpoint: args.control_plane_endpoint.clone(),
            extra_sans: args.apiserver_cert_extra_sans.clone(),
            etcd_server_sans: Vec::new(),
            etcd_peer_sans: Vec::new(),
            external_etcd: false,
            service_cidrs: match &args.service_cidr {
                Some(cidrs) => cidrs.clone(),
                None => DEFAULT_SERVICE_CIDR
                    .parse()
                    .map_err(|e: String| anyhow!(e))?,
            },
            dns_domain: match &args.service_dns_domain {
                Some(domain) => domain.clone(),
                None => DEFAULT_DNS_DOMAIN.parse().map_err(|e: String| anyhow!(e))?,
            },
            algorithm: args.encryption_algorithm.unwrap_or(Algorithm::Rsa2048),
            cert_validity: validity(args.cert_validity, DEFAULT_CERT_VALIDITY, "--cert-validity")?,
            ca_validity: validity(args.ca_validity, DEFAULT_CA_VALIDITY, "--ca-validity")?,
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

/// The hostname, lower-cased, as kubeadm's default node name.
fn host_node_name() -> Result<DnsName> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        bail!("cannot read this host's name; pass --node-name");
    }
    let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..len]).to_lowercase();
    name.parse().map_err(|e: String| {
        anyhow!("the hostname is not a valid node name ({e}); pass --node-name")
    })
}

/// This host's first non-loopback address: IPv4 first, else a global IPv6 address.
fn first_non_loopback_address() -> Result<IpAddr> {
    let addresses = interface_addresses();
    let usable = |ip: &IpAddr| !ip.is_loopback() && !ip.is_unspecified() && !is_link_local(ip);
    addresses
        .iter()
        .find(|ip| ip.is_ipv4() && usable(ip))
        .or_else(|| addresses.iter().find(|ip| usable(ip)))
        .copied()
        .ok_or_else(|| {
            anyhow!("this host has no non-loopback address; pass --apiserver-advertise-address")
        })
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// The addresses of the host's interfaces that are up, in the kernel's order.
fn interface_addresses() -> Vec<IpAddr> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Vec::new();
    }
    let mut addresses = Vec::new();
    let mut cursor = list;
    while !cursor.is_null() {
        // SAFETY: cursor points into the list returned by getifaddrs, not yet freed.
        let entry = unsafe { &*cursor };
        let up = entry.ifa_flags & libc::IFF_UP as libc::c_uint != 0;
        if up && !entry.ifa_addr.is_null() {
            // SAFETY: ifa_addr is non-null and points to a sockaddr of the family it names.
            if let Some(ip) = unsafe { sockaddr_ip(entry.ifa_addr) } {
                addresses.push(ip);
            }
        }
        cursor = entry.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    addresses
}

/// # Safety
/// `addr` must point to a valid sockaddr whose size matches its family.
unsafe fn sockaddr_ip(addr: *const libc::sockaddr) -> Option<IpAddr> {
    // SAFETY: the caller guarantees `addr` is valid; the family selects the cast.
    unsafe {
        match i32::from((*addr).sa_family) {
            libc::AF_INET => {
                let v4 = &*(addr as *const libc::sockaddr_in);
                Some(IpAddr::from(u32::from_be(v4.sin_addr.s_addr).to_be_bytes()))
            }
            libc::AF_INET6 => {
                let v6 = &*(addr as *const libc::sockaddr_in6);
                Some(IpAddr::from(v6.sin6_addr.s6_addr))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use clap::Parser;

    /// A spec for node `cp1` advertising 192.168.1.10, with `args` (init flags) on top.
    pub(crate) fn spec_for(args: &[&str]) -> ClusterSpec {
        let base = [
            "kubepki",
            "init",
            "--node-name",
            "cp1",
            "--apiserver-advertise-address",
            "192.168.1.10",
        ];
        let cli =
            crate::cli::Cli::try_parse_from(base.iter().chain(args)).expect("test flags parse");
        let crate::cli::Command::Init(init) = cli.command else {
            panic!("not init")
        };
        ClusterSpec::resolve(&init.cluster, OffsetDateTime::now_utc()).expect("test spec resolves")
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
    fn unusable_advertise_address_is_refused() {
        let args = ClusterArgs {
            apiserver_advertise_address: Some("0.0.0.0".parse().unwrap()),
            node_name: Some("a".parse().unwrap()),
            ..Default::default()
        };
        let err = ClusterSpec::resolve(&args, OffsetDateTime::now_utc()).unwrap_err();
        assert!(err.to_string().contains("--apiserver-advertise-address"));
    }
}
