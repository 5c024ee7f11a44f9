//! Facts about this host that defaults come from: its name and the addresses of its
//! interfaces. Read-only system calls; nothing else.

use crate::net::netaddr::DnsName;
use anyhow::{Result, anyhow, bail};
use std::net::IpAddr;

/// The hostname, lower-cased, as kubeadm's default node name.
pub fn host_node_name() -> Result<DnsName> {
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
