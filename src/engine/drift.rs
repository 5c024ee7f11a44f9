//! Drift: where a certificate on disk differs from what the profile table and the
//! configuration say it should be, field by field (subject, SANs, usages, validity, key
//! algorithm, a kubeconfig's server). `certs audit` turns drifts into findings and
//! `certs renew --reconcile` into re-issues, so that the two always agree on what "right"
//! means. Pure: reads nothing, decides nothing beyond the comparison.

use crate::duration::Duration;
use crate::pki::inspect::{CertInfo, KeyUsage, san_covers};
use crate::pki::keys::Algorithm;
use crate::profile::{BACKDATE, Cn, Kind, Profile, Sans, Validity};
use crate::spec::{ClusterSpec, DEFAULT_CA_VALIDITY, DEFAULT_CERT_VALIDITY};
use std::net::IpAddr;
use time::OffsetDateTime;

/// How far a validity may be from the configured one and still count as it: kubeadm
/// back-dates NotBefore 5 minutes, other tools do not, and clocks are set by hand.
pub const VALIDITY_TOLERANCE: time::Duration = time::Duration::minutes(10);

/// What a certificate is judged against.
#[derive(Clone, Copy, Debug)]
pub struct Wanted<'a> {
    /// The configuration (flags or `--config`); `None` skips what depends on the node
    /// (its name and addresses) and on the endpoint.
    pub spec: Option<&'a ClusterSpec>,
    /// The key algorithm the configuration sets, if it sets one.
    pub algorithm: Option<Algorithm>,
    /// Leaf validity.
    pub cert_validity: Duration,
    /// CA validity.
    pub ca_validity: Duration,
    /// The one "now" of this run.
    pub now: OffsetDateTime,
}

impl<'a> Wanted<'a> {
    /// What `spec` asks for; `algorithm` is the key algorithm it was given explicitly.
    pub fn of(spec: &'a ClusterSpec, algorithm: Option<Algorithm>) -> Wanted<'a> {
        Wanted {
            spec: Some(spec),
            algorithm,
            cert_validity: spec.cert_validity,
            ca_validity: spec.ca_validity,
            now: spec.now,
        }
    }

    /// Without a configuration: kubeadm's default validities, nothing node-specific.
    pub fn defaults(now: OffsetDateTime) -> Wanted<'static> {
        Wanted {
            spec: None,
            algorithm: None,
            cert_validity: DEFAULT_CERT_VALIDITY,
            ca_validity: DEFAULT_CA_VALIDITY,
            now,
        }
    }

    fn validity_of(&self, row: &Profile) -> Duration {
        match row.validity {
            Validity::Ca => self.ca_validity,
            Validity::Leaf => self.cert_validity,
        }
    }
}

/// The field a drift is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// The subject's common name.
    CommonName,
    /// The subject's organizations (groups).
    Organization,
    /// DNS subject alternative names.
    Dns,
    /// IP subject alternative names.
    Ip,
    /// Extended key usages.
    ExtKeyUsage,
    /// keyUsage bits.
    KeyUsage,
    /// The validity period.
    Validity(ValidityDrift),
    /// The key algorithm.
    Key,
    /// A kubeconfig's server URL.
    Server,
}

/// How a validity differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValidityDrift {
    /// Longer than the configured period.
    Longer,
    /// Shorter than the configured period, and not because its CA ends first.
    Shorter,
    /// It ends after its CA (whatever its length: a drift of its own).
    OutlivesCa,
}

impl Field {
    /// The field's name in machine output, e.g. `dns`, `validity`.
    pub fn name(self) -> &'static str {
        match self {
            Field::CommonName => "commonName",
            Field::Organization => "organization",
            Field::Dns => "dns",
            Field::Ip => "ip",
            Field::ExtKeyUsage => "extKeyUsage",
            Field::KeyUsage => "keyUsage",
            Field::Validity(_) => "validity",
            Field::Key => "key",
            Field::Server => "server",
        }
    }

    /// The prefix of this field's values in a diff line (`DNS:`, `server: `).
    pub fn prefix(self) -> &'static str {
        match self {
            Field::CommonName => "CN:",
            Field::Organization => "O:",
            Field::Dns => "DNS:",
            Field::Ip => "IP:",
            Field::ExtKeyUsage => "extendedKeyUsage:",
            Field::KeyUsage => "keyUsage:",
            Field::Validity(_) => "validity: ",
            Field::Key => "key: ",
            Field::Server => "server: ",
        }
    }
}

/// One field that differs: the values found that are not wanted, and those wanted that are
/// not found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    /// The field.
    pub field: Field,
    /// On disk, not wanted (`- ...` in a diff).
    pub removed: Vec<String>,
    /// Wanted, not on disk (`+ ...` in a diff).
    pub added: Vec<String>,
}

impl Drift {
    /// `found` against `wanted`, compared as sets; `None` when they hold the same values.
    fn of_sets(field: Field, found: &[String], wanted: &[String]) -> Option<Drift> {
        let removed: Vec<String> = found
            .iter()
            .filter(|v| !wanted.contains(v))
            .cloned()
            .collect();
        let added: Vec<String> = wanted
            .iter()
            .filter(|v| !found.contains(v))
            .cloned()
            .collect();
        (!removed.is_empty() || !added.is_empty()).then_some(Drift {
            field,
            removed,
            added,
        })
    }

    /// The diff lines: `- DNS:old.example`, `+ DNS:new.example`.
    pub fn lines(&self) -> Vec<String> {
        let prefix = self.field.prefix();
        let removed = self.removed.iter().map(|v| format!("- {prefix}{v}"));
        let added = self.added.iter().map(|v| format!("+ {prefix}{v}"));
        removed.chain(added).collect()
    }
}

/// Every drift of `cert`, the certificate of `row`, signed by the CA certificate `ca`
/// when it could be read. Fields that need a configuration are skipped without one.
pub fn drifts(
    row: &Profile,
    cert: &CertInfo,
    ca: Option<&CertInfo>,
    wanted: &Wanted,
) -> Vec<Drift> {
    let mut found = Vec::new();
    found.extend(common_name(row, cert, wanted));
    found.extend(organizations(row, cert));
    found.extend(alt_names(row, cert, wanted).into_iter().flatten().flatten());
    found.extend(ext_key_usages(row, cert));
    if row.kind != Kind::Ca {
        found.extend(leaf_key_usages(cert));
    }
    found.extend(validity(row, cert, ca, wanted));
    if row.kind != Kind::Ca {
        found.extend(key_algorithm(cert, wanted.algorithm));
    }
    found
}

/// The drift of a kubeconfig's server URL, judged only with a configuration.
pub fn server(row: &Profile, server: &str, wanted: &Wanted) -> Option<Drift> {
    let expected = row.server_url(wanted.spec?)?;
    (server != expected).then(|| Drift {
        field: Field::Server,
        removed: vec![server.to_string()],
        added: vec![expected],
    })
}

/// Whether judging `row` needs the node's name or addresses.
pub fn depends_on_node(row: &Profile) -> bool {
    !matches!(row.cn, Cn::Fixed(_))
        || matches!(
            row.sans,
            Sans::ApiServer | Sans::EtcdServer | Sans::EtcdPeer
        )
        || matches!(row.kind, Kind::Kubeconfig(_))
}

/// The common name rule: the row's fixed CN, or the one the configuration gives it.
pub fn common_name(row: &Profile, cert: &CertInfo, wanted: &Wanted) -> Option<Drift> {
    let expected = match (row.cn, wanted.spec) {
        (Cn::Fixed(cn), _) => cn.to_string(),
        (_, Some(spec)) => row.common_name(spec),
        (_, None) => return None,
    };
    Drift::of_sets(
        Field::CommonName,
        std::slice::from_ref(&cert.cn),
        &[expected],
    )
}

/// The organizations rule, the one place it is decided: the row's groups, compared as a set
/// (order and repetition carry no meaning to the API server).
pub fn organizations(row: &Profile, cert: &CertInfo) -> Option<Drift> {
    let expected: Vec<String> = row.orgs.iter().map(|o| o.to_string()).collect();
    Drift::of_sets(Field::Organization, &cert.orgs, &expected)
}

/// DNS and IP drifts, when the row's SANs can be known.
fn alt_names(row: &Profile, cert: &CertInfo, wanted: &Wanted) -> Option<[Option<Drift>; 2]> {
    let (dns_names, ips): (Vec<String>, Vec<IpAddr>) = match (row.sans, row.cn, wanted.spec) {
        (_, _, Some(spec)) => row.alt_names(spec),
        (Sans::None, _, None) => (Vec::new(), Vec::new()),
        (Sans::OwnCn, Cn::Fixed(cn), None) => (vec![cn.to_string()], Vec::new()),
        _ => return None,
    };
    let texts = |ips: &[IpAddr]| ips.iter().map(IpAddr::to_string).collect::<Vec<_>>();
    Some([
        dns_names_drift(&cert.dns_names, &dns_names),
        Drift::of_sets(Field::Ip, &texts(&cert.ips), &texts(&ips)),
    ])
}

/// DNS SANs by the SAN rule (`san_covers`): a wanted name a wildcard of the certificate
/// covers is there, and such a wildcard is not extra.
fn dns_names_drift(found: &[String], wanted: &[String]) -> Option<Drift> {
    let removed: Vec<String> = found
        .iter()
        .filter(|san| !wanted.iter().any(|name| san_covers(san, name)))
        .cloned()
        .collect();
    let added: Vec<String> = wanted
        .iter()
        .filter(|name| !found.iter().any(|san| san_covers(san, name)))
        .cloned()
        .collect();
    (!removed.is_empty() || !added.is_empty()).then_some(Drift {
        field: Field::Dns,
        removed,
        added,
    })
}

fn ext_key_usages(row: &Profile, cert: &CertInfo) -> Option<Drift> {
    let found: Vec<String> = cert
        .ekus
        .iter()
        .map(|e| e.name().to_string())
        .chain(cert.other_ekus.iter().cloned())
        .collect();
    let expected: Vec<String> = row.ekus.iter().map(|e| e.name().to_string()).collect();
    Drift::of_sets(Field::ExtKeyUsage, &found, &expected)
}

/// A leaf must have digitalSignature, may have keyEncipherment (kubeadm sets it on every
/// key type; RFC 8813 and a proposed kubeadm change drop it for ECDSA), and nothing else;
/// a leaf that is a CA (its own finding) may also sign certificates.
fn leaf_key_usages(cert: &CertInfo) -> Option<Drift> {
    let found = cert.key_usages.clone().unwrap_or_default();
    let mut allowed = vec![KeyUsage::DigitalSignature, KeyUsage::KeyEncipherment];
    if cert.is_ca {
        allowed.push(KeyUsage::KeyCertSign);
    }
    let removed = found.iter().filter(|u| !allowed.contains(u));
    let missing = !found.contains(&KeyUsage::DigitalSignature);
    let drift = Drift {
        field: Field::KeyUsage,
        removed: removed.map(|u| u.name().to_string()).collect(),
        added: match missing {
            true => vec![KeyUsage::DigitalSignature.name().to_string()],
            false => Vec::new(),
        },
    };
    (!drift.removed.is_empty() || !drift.added.is_empty()).then_some(drift)
}

/// The validity, judged by its length (NotBefore, less kubeadm's back-dating, to NotAfter)
/// against the configured period. A certificate that starts at its CA's NotBefore (kubeadm's
/// kubeconfigs, and every leaf of kubeadm before 1.31) says nothing of when it was issued,
/// so only an end later than now plus the period is judged. Ending with its CA, earlier than
/// the period, is right (kubepki caps there); ending after it is a drift of its own.
fn validity(row: &Profile, cert: &CertInfo, ca: Option<&CertInfo>, wanted: &Wanted) -> Vec<Drift> {
    let period = wanted.validity_of(row).to_time();
    let (start, end) = (cert.not_before, cert.not_after);
    let unknown_start = row.kind != Kind::Ca && ca.is_some_and(|ca| ca.not_before == start);
    let longest_end = match unknown_start {
        true => wanted.now + period,
        false => start + BACKDATE + period,
    };
    let length = if end > longest_end + VALIDITY_TOLERANCE {
        Some(ValidityDrift::Longer)
    } else if row.kind != Kind::Ca && !unknown_start && end < expected_end(start, period, ca) {
        Some(ValidityDrift::Shorter)
    } else {
        None
    };
    // The outlives-CA rule, the one place it is decided, whatever the length.
    let outlives = ca.is_some_and(|ca| row.kind != Kind::Ca && end > ca.not_after);
    let drift = |kind| Drift {
        field: Field::Validity(kind),
        removed: vec![describe_span(start, end, unknown_start)],
        added: vec![wanted.validity_of(row).to_string()],
    };
    length
        .into_iter()
        .chain(outlives.then_some(ValidityDrift::OutlivesCa))
        .map(drift)
        .collect()
}

/// The earliest end that still counts as the configured period from `start`: the period
/// (less the tolerance), or the CA's end when that comes first.
fn expected_end(
    start: OffsetDateTime,
    period: time::Duration,
    ca: Option<&CertInfo>,
) -> OffsetDateTime {
    let full = start + period - VALIDITY_TOLERANCE;
    ca.map_or(full, |ca| full.min(ca.not_after - VALIDITY_TOLERANCE))
}

fn describe_span(start: OffsetDateTime, end: OffsetDateTime, unknown_start: bool) -> String {
    match unknown_start {
        true => format!("until {}", end.date()),
        false => {
            let seconds = u64::try_from((end - start).whole_seconds()).unwrap_or(0);
            Duration::from_secs(seconds).to_string()
        }
    }
}

fn key_algorithm(cert: &CertInfo, algorithm: Option<Algorithm>) -> Option<Drift> {
    let wanted = algorithm?;
    (cert.key_algorithm != Some(wanted)).then(|| Drift {
        field: Field::Key,
        removed: vec![cert.key_kind.to_string()],
        added: vec![wanted.name().to_string()],
    })
}
