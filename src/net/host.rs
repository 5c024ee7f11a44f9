//! Facts about this host that defaults come from: its name and the addresses of its
//! interfaces. Read-only system calls, through `nix`'s safe wrappers; nothing else.

use crate::net::netaddr::DnsName;
use anyhow::{Result, anyhow};
use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;
use nix::sys::socket::SockaddrStorage;
use nix::unistd::gethostname;
use std::net::IpAddr;

/// The hostname, lower-cased, as kubeadm's default node name.
pub fn host_node_name() -> Result<DnsName> {
    let name =
        gethostname().map_err(|_| anyhow!("cannot read this host's name; pass --node-name"))?;
    let name = name.to_string_lossy().to_lowercase();
    name.parse().map_err(|e: String| {
        anyhow!("the hostname is not a valid node name ({e}); pass --node-name")
    })
}

/// This host's first non-loopback address: IPv4 first, else a global IPv6 address.
pub fn first_non_loopback_address() -> Result<IpAddr> {
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

/// The addresses of the host's interfaces that are up, in the kernel's order; none when
/// the interfaces cannot be listed.
fn interface_addresses() -> Vec<IpAddr> {
    let Ok(interfaces) = getifaddrs() else {
        return Vec::new();
    };
    interfaces
        .filter(|interface| interface.flags.contains(InterfaceFlags::IFF_UP))
        .filter_map(|interface| interface.address.as_ref().and_then(ip_of))
        .collect()
}

/// The IP address of an IPv4 or IPv6 socket address; `None` for other families.
fn ip_of(address: &SockaddrStorage) -> Option<IpAddr> {
    match (address.as_sockaddr_in(), address.as_sockaddr_in6()) {
        (Some(v4), _) => Some(IpAddr::V4(v4.ip())),
        (_, Some(v6)) => Some(IpAddr::V6(v6.ip())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    #[test]
    fn socket_addresses_give_their_ip() {
        for text in ["192.0.2.7:6443", "[2001:db8::7]:6443"] {
            let socket: SocketAddr = text.parse().unwrap();
            assert_eq!(ip_of(&SockaddrStorage::from(socket)), Some(socket.ip()));
        }
    }

    #[test]
    fn the_node_name_is_the_kernels_hostname_lower_cased() {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let name = host_node_name().unwrap();
        assert_eq!(name.as_str(), hostname.trim().to_lowercase());
    }
}
