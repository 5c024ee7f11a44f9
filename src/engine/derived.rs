//! The settings a tree that records none (made by kubeadm, or by a kubepki before the
//! recorded configuration) was made with, read back from its own files: the node's name and
//! address from the etcd serving certificate (kubeadm's CN and IP SANs), the DNS domain and
//! the extra SANs from the API server's certificate, the cluster's name, the endpoint and the
//! port from admin.conf. What the files do not tell (the service CIDR, the algorithm, the
//! validities) is left unset. Reads only; a file that cannot be read tells nothing here.

use crate::config::{ClusterConfiguration, InitConfig, InitConfiguration};
use crate::net::netaddr::{DnsName, Endpoint, Host, San};
use crate::pki::inspect::CertInfo;
use crate::profile::by_name;
use crate::tree::TreeDirs;
use crate::tree::reader::{read_admin, read_pair};
use std::net::IpAddr;

/// The settings the tree's files tell, as a configuration; `None` when they tell nothing
/// (no etcd serving certificate, API server certificate or admin.conf).
pub fn derived_settings(dirs: &TreeDirs) -> Option<InitConfig> {
    let cert = |name: &str| {
        let row = by_name(name)?;
        read_pair(dirs, row).ok()?.cert.map(|found| found.info)
    };
    let (etcd, apiserver) = (cert("etcd-server"), cert("apiserver"));
    let admin = read_admin(dirs).ok();
    if etcd.is_none() && apiserver.is_none() && admin.is_none() {
        return None;
    }
    let node_name = etcd.as_ref().and_then(|c| c.cn.parse::<DnsName>().ok());
    let advertise_address = etcd
        .as_ref()
        .and_then(|c| c.ips.iter().copied().find(|ip| !ip.is_loopback()))
        .or_else(|| apiserver.as_ref().and_then(|c| c.ips.get(1).copied()));
    let server = admin
        .as_ref()
        .and_then(|admin| admin.server().ok())
        .and_then(|url| url.strip_prefix("https://"))
        .and_then(|hostport| hostport.parse::<Endpoint>().ok());
    let (control_plane_endpoint, bind_port) = match server {
        Some(server) if Some(&server.host) == advertise_address.map(Host::Ip).as_ref() => {
            (None, server.port)
        }
        Some(server) => (Some(server), None),
        None => (None, None),
    };
    let dns_domain = apiserver.as_ref().and_then(dns_domain_of);
    let mut cluster = ClusterConfiguration {
        cluster_name: admin
            .as_ref()
            .and_then(|admin| admin.cluster_name().ok())
            .map(str::to_string),
        dns_domain,
        ..Default::default()
    };
    if let Some(apiserver) = &apiserver {
        let standard = Standard {
            node_name: node_name.as_ref(),
            advertise_address,
            endpoint: control_plane_endpoint.as_ref().map(|e| &e.host),
            dns_domain: cluster.dns_domain.as_ref(),
        };
        cluster.api_server_cert_sans = standard.extra_sans(apiserver);
    }
    cluster.control_plane_endpoint = control_plane_endpoint;
    Some(InitConfig {
        init: InitConfiguration {
            bootstrap_tokens: Vec::new(),
            node_name,
            advertise_address,
            bind_port,
        },
        cluster,
        notes: Vec::new(),
    })
}

/// `<domain>` of the API server's `kubernetes.default.svc.<domain>` SAN.
fn dns_domain_of(apiserver: &CertInfo) -> Option<DnsName> {
    apiserver
        .dns_names
        .iter()
        .find_map(|name| name.strip_prefix("kubernetes.default.svc."))
        .and_then(|domain| domain.parse().ok())
}

/// The SANs every API server certificate of a node carries, whatever its extra SANs.
struct Standard<'a> {
    node_name: Option<&'a DnsName>,
    advertise_address: Option<IpAddr>,
    endpoint: Option<&'a Host>,
    dns_domain: Option<&'a DnsName>,
}

impl Standard<'_> {
    /// The SANs of `apiserver` beyond the standard ones, in its order: the extra SANs. Its
    /// first IP is the service's (kubeadm puts it first).
    fn extra_sans(&self, apiserver: &CertInfo) -> Vec<San> {
        let dns = apiserver
            .dns_names
            .iter()
            .filter(|name| !self.is_standard_name(name))
            .filter_map(|name| name.parse::<DnsName>().ok().map(San::Dns));
        let ips = apiserver
            .ips
            .iter()
            .skip(1)
            .filter(|ip| Some(**ip) != self.advertise_address)
            .filter(|ip| self.endpoint != Some(&Host::Ip(**ip)))
            .map(|ip| San::Ip(*ip));
        dns.chain(ips).collect()
    }

    fn is_standard_name(&self, name: &str) -> bool {
        let service = ["kubernetes", "kubernetes.default", "kubernetes.default.svc"];
        let domain = self
            .dns_domain
            .map(|domain| format!("kubernetes.default.svc.{domain}"));
        service.contains(&name)
            || domain.as_deref() == Some(name)
            || self.node_name.is_some_and(|node| node.as_str() == name)
            || matches!(self.endpoint, Some(Host::Dns(host)) if host.as_str() == name)
    }
}
