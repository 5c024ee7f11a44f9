//! The network's values and the host's: typed SANs, CIDRs and endpoints, the bounded HTTPS
//! client, bounded reads of local files, and the host facts (name, addresses) that defaults
//! come from.

pub mod file;
pub mod host;
pub mod https;
pub mod netaddr;
