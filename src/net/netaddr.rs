//! Typed network values taken from users: DNS names, subject alternative names, service
//! CIDRs and control-plane endpoints. Parsing validates once, so raw strings never travel
//! inward. No I/O.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A DNS name that is a valid RFC 1123 subdomain, optionally with a leading `*.` wildcard.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DnsName(String);

impl DnsName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DnsName {
    type Err = String;

    fn from_str(text: &str) -> Result<DnsName, String> {
        let bare = text.strip_prefix("*.").unwrap_or(text);
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if bare
            .split('.')
            .all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!(
                "{text:?} looks like an IP address but is not a valid one"
            ));
        }
        if text.len() > 253 || !bare.split('.').all(label_ok) {
            return Err(format!(
                "{text:?} is not a valid DNS name (lower-case RFC 1123 subdomain)"
            ));
        }
        Ok(DnsName(text.to_string()))
    }
}

impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A subject alternative name: an IP address if the text parses as one, else a DNS name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum San {
    /// An IP address SAN.
    Ip(IpAddr),
    /// A DNS name SAN.
    Dns(DnsName),
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Ip(ip) => write!(f, "{ip}"),
            San::Dns(name) => write!(f, "{name}"),
        }
    }
}

impl FromStr for San {
    type Err = String;

    fn from_str(text: &str) -> Result<San, String> {
        match text.parse::<IpAddr>() {
            Ok(ip) => Ok(San::Ip(ip)),
            Err(_) => text.parse().map(San::Dns),
        }
    }
}

/// An IP network in CIDR notation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The first usable address (network address + 1), kubeadm's API server service IP.
    pub fn first_host(&self) -> IpAddr {
        match self.network {
            IpAddr::V4(v4) => IpAddr::from((u32::from(v4) | 1).to_be_bytes()),
            IpAddr::V6(v6) => IpAddr::from((u128::from(v6) | 1).to_be_bytes()),
        }
    }

    /// The address `index` places after the network address, when the network holds it.
    pub fn host(&self, index: u128) -> Option<IpAddr> {
        let bits = if self.is_ipv4() { 32 } else { 128 };
        let size = 1u128.checked_shl(bits - u32::from(self.prefix));
        if size.is_some_and(|size| index >= size) {
            return None;
        }
        match self.network {
            IpAddr::V4(v4) => {
                let host = u32::from(v4).checked_add(u32::try_from(index).ok()?)?;
                Some(IpAddr::from(host.to_be_bytes()))
            }
            IpAddr::V6(v6) => Some(IpAddr::from(
                u128::from(v6).checked_add(index)?.to_be_bytes(),
            )),
        }
    }

    fn is_ipv4(&self) -> bool {
        self.network.is_ipv4()
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Cidr, String> {
        let invalid = || format!("{text:?} is not a CIDR (expected e.g. 10.96.0.0/12)");
        let (addr, prefix) = text.split_once('/').ok_or_else(invalid)?;
        let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
        let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max || prefix + 1 >= max {
            return Err(format!(
                "{text:?}: prefix /{prefix} leaves no room for a service IP"
            ));
        }
        let network = match addr {
            IpAddr::V4(v4) => IpAddr::from(
                (u32::from(v4) & u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0))
                    .to_be_bytes(),
            ),
            IpAddr::V6(v6) => IpAddr::from(
                (u128::from(v6) & u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0))
                    .to_be_bytes(),
            ),
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// One or two service CIDRs (`a` or dual-stack `a,b`, one per IP family).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceCidrs(Vec<Cidr>);

impl ServiceCidrs {
    /// The API server's service IP: the first host of the first CIDR, as kubeadm.
    pub fn api_server_ip(&self) -> IpAddr {
        self.0[0].first_host()
    }

    /// The cluster DNS service IP: the tenth host of the first CIDR, as kubeadm's
    /// `GetDNSIP`; `None` when the CIDR is too small to hold it.
    pub fn dns_ip(&self) -> Option<IpAddr> {
        self.0[0].host(10)
    }
}

impl fmt::Display for ServiceCidrs {
    /// As `--service-cidr` takes them: comma-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cidrs: Vec<String> = self.0.iter().map(Cidr::to_string).collect();
        f.write_str(&cidrs.join(","))
    }
}

impl FromStr for ServiceCidrs {
    type Err = String;

    fn from_str(text: &str) -> Result<ServiceCidrs, String> {
        let cidrs = text
            .split(',')
            .map(|part| part.trim().parse())
            .collect::<Result<Vec<Cidr>, String>>()?;
        let dual_stack_ok = cidrs.len() == 2 && cidrs[0].is_ipv4() != cidrs[1].is_ipv4();
        if cidrs.len() > 2 || (cidrs.len() == 2 && !dual_stack_ok) {
            return Err(format!(
                "{text:?}: expected one CIDR, or two of different IP families (dual-stack)"
            ));
        }
        Ok(ServiceCidrs(cidrs))
    }
}

/// The host of an endpoint: an IP address or a DNS name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// An IP literal (brackets already removed for IPv6).
    Ip(IpAddr),
    /// A DNS name.
    Dns(DnsName),
}

impl Host {
    /// The host as a SAN.
    pub fn to_san(&self) -> San {
        match self {
            Host::Ip(ip) => San::Ip(*ip),
            Host::Dns(name) => San::Dns(name.clone()),
        }
    }
}

impl fmt::Display for Host {
    /// As in a URL: IPv6 addresses bracketed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Dns(name) => write!(f, "{name}"),
        }
    }
}

/// `https://host:port` with IPv6 hosts bracketed.
pub fn https_url(host: &Host, port: u16) -> String {
    format!("https://{host}:{port}")
}

/// A control-plane endpoint: `host`, `host:port`, `[v6]` or `[v6]:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The host part.
    pub host: Host,
    /// The port, when one was given.
    pub port: Option<u16>,
}

impl fmt::Display for Endpoint {
    /// As written: `host`, `host:port`, `[v6]` or `[v6]:port`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.host),
            None => write!(f, "{}", self.host),
        }
    }
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(text: &str) -> Result<Endpoint, String> {
        let invalid = |why: &str| format!("{text:?} is not HOST[:PORT] ({why})");
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Endpoint {
                host: Host::Ip(ip),
                port: None,
            });
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (v6, after) = rest
                .split_once(']')
                .ok_or_else(|| invalid("unclosed '['"))?;
            let ip = v6
                .parse::<std::net::Ipv6Addr>()
                .map_err(|_| invalid("bad IPv6 address"))?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| invalid("junk after ']'"))?,
                ),
            };
            (Host::Ip(IpAddr::V6(ip)), port)
        } else {
            let (host, port) = match text.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            };
            let host = match host.parse::<IpAddr>() {
                Ok(ip) => Host::Ip(ip),
                Err(_) => Host::Dns(host.parse().map_err(|e: String| invalid(&e))?),
            };
            (host, port)
        };
        let port = port
            .map(|p| {
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| invalid("bad port"))
            })
            .transpose()?;
        Ok(Endpoint { host, port })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dns_ip_is_the_tenth_host_and_values_print_as_written() {
        let cidrs: ServiceCidrs = "10.96.0.0/12,fd00:10:96::/112".parse().unwrap();
        assert_eq!(cidrs.dns_ip(), Some("10.96.0.10".parse().unwrap()));
        assert_eq!(cidrs.to_string(), "10.96.0.0/12,fd00:10:96::/112");
        let tiny: ServiceCidrs = "10.0.0.0/29".parse().unwrap();
        assert_eq!(tiny.dns_ip(), None);
        let v6: ServiceCidrs = "fd00::/108".parse().unwrap();
        assert_eq!(v6.dns_ip(), Some("fd00::a".parse().unwrap()));
        for text in [
            "lb.example.com",
            "lb.example.com:6443",
            "[fd00::1]:443",
            "10.0.0.1",
        ] {
            assert_eq!(text.parse::<Endpoint>().unwrap().to_string(), text);
        }
    }
    use crate::testgen::{dns_name, one_line};
    use proptest::prelude::*;

    #[test]
    fn service_ip_is_first_host_of_first_cidr() {
        let ip = |s: &str| {
            s.parse::<ServiceCidrs>()
                .map(|c| c.api_server_ip().to_string())
        };
        assert_eq!(ip("10.96.0.0/12"), Ok("10.96.0.1".into()));
        assert_eq!(ip("10.96.5.7/12"), Ok("10.96.0.1".into()));
        assert_eq!(ip("fd00:10:96::/112"), Ok("fd00:10:96::1".into()));
        assert_eq!(ip("fd00::/108,10.96.0.0/12"), Ok("fd00::1".into()));
        assert_eq!(ip("10.96.0.0/12,fd00::/108"), Ok("10.96.0.1".into()));
    }

    #[test]
    fn empty_names_are_not_called_ip_addresses() {
        for empty in ["", "*.", "a..b"] {
            let error = empty.parse::<DnsName>().unwrap_err();
            assert!(error.contains("is not a valid DNS name"), "{error}");
        }
        let error = "10.0.0.300".parse::<DnsName>().unwrap_err();
        assert!(error.contains("looks like an IP address"), "{error}");
    }

    #[test]
    fn bad_cidrs_are_refused() {
        for bad in [
            "10.96.0.0",
            "10.96.0.0/33",
            "10.96.0.0/32",
            "300.1.1.1/8",
            "a/b",
            "10.0.0.0/8,10.1.0.0/16",
            "",
        ] {
            assert!(bad.parse::<ServiceCidrs>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn endpoints_in_every_form() {
        let ep = |s: &str| s.parse::<Endpoint>().expect(s);
        assert_eq!(ep("lb.example.com").port, None);
        assert_eq!(ep("lb.example.com:443").port, Some(443));
        assert_eq!(
            ep("10.0.0.1:6443").host,
            Host::Ip("10.0.0.1".parse().unwrap())
        );
        assert_eq!(
            ep("[fd00::1]:6443").host,
            Host::Ip("fd00::1".parse().unwrap())
        );
        assert_eq!(ep("[fd00::1]").port, None);
        assert_eq!(ep("fd00::1").port, None);
        assert_eq!(
            https_url(&ep("[fd00::1]:443").host, 443),
            "https://[fd00::1]:443"
        );
        for bad in [
            "lb:0",
            "lb:99999",
            "[fd00::1",
            "[fd00::1]x",
            "Bad_Name:1",
            "",
        ] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sans_are_ips_or_validated_dns_names() {
        assert_eq!(
            "10.0.0.1".parse::<San>(),
            Ok(San::Ip("10.0.0.1".parse().unwrap()))
        );
        assert!(matches!("*.example.com".parse::<San>(), Ok(San::Dns(_))));
        for bad in [
            "under_score",
            "-x",
            "a..b",
            "UPPER",
            "x.",
            "",
            "999.1.1.1",
            "10",
        ] {
            assert!(bad.parse::<San>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_zero_prefix_is_the_whole_address_space() {
        let cidr: Cidr = "10.1.2.3/0".parse().unwrap();
        assert_eq!(cidr.to_string(), "0.0.0.0/0");
        assert_eq!(cidr.first_host().to_string(), "0.0.0.1");
    }

    /// Every parser of this module on `text`: no panic, and each error is one line.
    fn check_parsers(text: &str) -> Result<(), TestCaseError> {
        let errors = [
            text.parse::<DnsName>().err(),
            text.parse::<San>().err(),
            text.parse::<Cidr>().err(),
            text.parse::<ServiceCidrs>().err(),
            text.parse::<Endpoint>().err(),
        ];
        for error in errors.iter().flatten() {
            prop_assert!(one_line(error), "{}", error);
        }
        Ok(())
    }

    /// A host as an endpoint names it, and the text of that host.
    fn host() -> impl Strategy<Value = (Host, String)> {
        prop_oneof![
            any::<IpAddr>().prop_map(|ip| (Host::Ip(ip), ip.to_string())),
            dns_name().prop_map(|name| (Host::Dns(name.parse().unwrap()), name)),
        ]
    }

    /// The text of an endpoint: IPv6 bracketed when it has a port, or on a coin toss.
    fn endpoint_text(host: &Host, text: &str, port: Option<u16>, brackets: bool) -> String {
        let v6 = matches!(host, Host::Ip(IpAddr::V6(_)));
        let host = match v6 && (brackets || port.is_some()) {
            true => format!("[{text}]"),
            false => text.to_string(),
        };
        match port {
            Some(port) => format!("{host}:{port}"),
            None => host,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn any_text_parses_or_errs_in_one_line(text in any::<String>()) {
            check_parsers(&text)?;
        }

        #[test]
        fn address_like_text_parses_or_errs_in_one_line(text in "[0-9a-fA-F:.\\[\\]/,*_ -]{0,40}") {
            check_parsers(&text)?;
        }

        #[test]
        fn dns_names_parse_back(name in dns_name(), wildcard in any::<bool>()) {
            let name = match wildcard {
                true => format!("*.{name}"),
                false => name,
            };
            let parsed: DnsName = name.parse().map_err(TestCaseError::fail)?;
            prop_assert_eq!(parsed.to_string(), name.as_str());
            prop_assert_eq!(name.parse::<San>(), Ok(San::Dns(parsed)));
        }

        #[test]
        fn ips_are_ip_sans(ip in any::<IpAddr>()) {
            prop_assert_eq!(ip.to_string().parse::<San>(), Ok(San::Ip(ip)));
        }

        #[test]
        fn cidrs_parse_to_their_network_and_back(ip in any::<IpAddr>(), prefix in 0..=130u8) {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let parsed = format!("{ip}/{prefix}").parse::<Cidr>();
            prop_assert_eq!(parsed.is_ok(), prefix + 1 < max, "{:?}", parsed);
            if let Ok(cidr) = parsed {
                prop_assert_eq!(cidr.prefix, prefix);
                prop_assert_eq!(cidr.to_string().parse(), Ok(cidr));
                let host_bits = |addr: IpAddr| match addr {
                    IpAddr::V4(v4) => u128::from(u32::from(v4)) & (u128::MAX >> (96 + u32::from(prefix))),
                    IpAddr::V6(v6) => u128::from(v6) & u128::MAX.checked_shr(u32::from(prefix)).unwrap_or(0),
                };
                prop_assert_eq!(host_bits(cidr.network), 0);
                prop_assert_eq!(host_bits(cidr.first_host()), 1);
            }
        }

        #[test]
        fn service_cidrs_are_one_or_a_dual_stack_pair(
            ips in prop::collection::vec(any::<IpAddr>(), 1..4),
            separator in prop::sample::select(vec![",", ", ", " ,"]),
        ) {
            let text = ips.iter().map(|ip| format!("{ip}/{}", if ip.is_ipv4() { 12 } else { 108 }))
                .collect::<Vec<_>>()
                .join(separator);
            let dual_stack = ips.len() == 2 && ips[0].is_ipv4() != ips[1].is_ipv4();
            let parsed = text.parse::<ServiceCidrs>();
            prop_assert_eq!(parsed.is_ok(), ips.len() == 1 || dual_stack, "{:?}", parsed);
        }

        #[test]
        fn endpoints_parse_to_their_host_and_port(
            (host, text) in host(),
            port in prop::option::of(any::<u16>()),
            brackets in any::<bool>(),
        ) {
            let parsed = endpoint_text(&host, &text, port, brackets).parse::<Endpoint>();
            match port {
                Some(0) => prop_assert!(parsed.is_err(), "port 0 accepted: {:?}", parsed),
                _ => prop_assert_eq!(parsed, Ok(Endpoint { host, port })),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn the_extra_sans_flag_takes_a_comma_separated_list(
            hosts in prop::collection::vec(host(), 1..5),
        ) {
            use clap::Parser;
            let list = hosts.iter().map(|(_, text)| text.as_str()).collect::<Vec<_>>().join(",");
            let cli = crate::cli::Cli::try_parse_from(
                ["kubepki", "init", "--apiserver-cert-extra-sans", &list],
            )
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let crate::cli::Command::Init(init) = cli.command else {
                return Err(TestCaseError::fail("not init"));
            };
            let sans: Vec<San> = hosts.iter().map(|(host, _)| host.to_san()).collect();
            prop_assert_eq!(init.cluster.node.apiserver_cert_extra_sans, sans);
        }
    }
}
