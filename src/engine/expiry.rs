//! `certs check-expiration`'s facts: every row with a certificate (CAs, leaves, and each
//! kubeconfig's client certificate, kubelet.conf included) read from the tree into kubeadm's
//! `CertificateExpirationInfo`, plus kubeadm's residual-time format. During a rotation a CA
//! is trusted beside another (the one coming or going), which is listed too, as
//! `<name> (also trusted)`. Reads; writes nothing.

use crate::duration::Duration;
use crate::profile::{Kind, PROFILES, Profile};
use crate::tree::TreeDirs;
use crate::tree::reader;
use anyhow::Result;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// kubeadm's `output.kubeadm.k8s.io/v1alpha3` `CertificateExpirationInfo`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpirationInfo {
    /// `CertificateExpirationInfo`.
    pub kind: &'static str,
    /// `output.kubeadm.k8s.io/v1alpha3`.
    pub api_version: &'static str,
    /// Leaves and kubeconfig certificates, sorted by name.
    pub certificates: Vec<Expiration>,
    /// CAs, sorted by name.
    pub certificate_authorities: Vec<Expiration>,
}

/// One certificate's expiry.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Expiration {
    /// kubeadm's name (`apiserver`, `admin.conf`, `etcd-ca`), or for a CA trusted beside
    /// one of these during a rotation, `etcd-ca (also trusted)`.
    pub name: String,
    /// NotAfter, RFC 3339 UTC (Go's zero time when missing).
    pub expiration_date: String,
    /// Whole seconds until expiry, negative once expired.
    pub residual_time: i64,
    /// Whether the signing CA's key is absent (for a CA: its own key).
    pub externally_managed: bool,
    /// The signing CA's name; absent for CAs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_name: Option<&'static str>,
    /// Whether the file is missing.
    pub missing: bool,
    /// NotAfter, for text output and metrics.
    #[serde(skip)]
    pub not_after: Option<OffsetDateTime>,
}

impl ExpirationInfo {
    /// Reads every row with a certificate.
    pub fn read(dirs: &TreeDirs, now: OffsetDateTime) -> Result<ExpirationInfo> {
        let (mut certificates, mut certificate_authorities) = (Vec::new(), Vec::new());
        for profile in PROFILES.iter().filter(|p| p.has_certificate()) {
            let Some(entry) = expiration(dirs, profile, now)? else {
                continue;
            };
            match profile.kind {
                Kind::Ca => {
                    let also = also_trusted(dirs, profile, &entry, now)?;
                    certificate_authorities.push(entry);
                    certificate_authorities.extend(also);
                }
                _ => certificates.push(entry),
            }
        }
        certificates.sort_by(|a, b| a.name.cmp(&b.name));
        certificate_authorities.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(ExpirationInfo {
            kind: "CertificateExpirationInfo",
            api_version: "output.kubeadm.k8s.io/v1alpha3",
            certificates,
            certificate_authorities,
        })
    }

    /// Every entry, certificates first.
    pub fn entries(&self) -> impl Iterator<Item = &Expiration> {
        self.certificates
            .iter()
            .chain(&self.certificate_authorities)
    }

    /// What `--fail-within window` fails on: present certificates that are expired or expire
    /// within `window`, and missing ones.
    pub fn attention(&self, window: Duration) -> Attention {
        let limit = i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
        let names = |pick: &dyn Fn(&Expiration) -> bool| -> Vec<String> {
            self.entries()
                .filter(|e| pick(e))
                .map(|e| e.name.clone())
                .collect()
        };
        Attention {
            due: names(&|e| !e.missing && e.residual_time <= limit),
            missing: names(&|e| e.missing),
        }
    }
}

/// The certificates that need attention.
#[derive(Debug, PartialEq, Eq)]
pub struct Attention {
    /// Expired, or expiring within the window.
    pub due: Vec<String>,
    /// Missing.
    pub missing: Vec<String>,
}

impl Attention {
    /// Whether nothing needs attention.
    pub fn is_empty(&self) -> bool {
        self.due.is_empty() && self.missing.is_empty()
    }
}

/// The expiry of a row; `None` for an optional row whose files are absent (a kubelet
/// serving certificate never written here).
fn expiration(
    dirs: &TreeDirs,
    profile: &Profile,
    now: OffsetDateTime,
) -> Result<Option<Expiration>> {
    let signing_ca = match profile.kind {
        Kind::Ca => profile,
        _ => profile.issuer_row().unwrap_or(profile),
    };
    let ca_name = (profile.kind != Kind::Ca).then_some(signing_ca.name);
    let found = reader::read_row(dirs, profile)?;
    if profile.is_optional()
        && !found
            .as_ref()
            .is_some_and(|f| signed_by_issuer(dirs, profile, f))
    {
        return Ok(None);
    }
    let not_after = found.map(|f| f.cert().info.not_after);
    Ok(Some(Expiration {
        name: profile.cert_name().to_string(),
        expiration_date: rfc3339(not_after),
        residual_time: not_after.map_or(0, |t| (t - now).whole_seconds()),
        externally_managed: !reader::key_exists(dirs, signing_ca)?,
        ca_name,
        missing: not_after.is_none(),
        not_after,
    }))
}

/// Whether `found`, a certificate of `profile`, is signed by the row's CA as the tree has it:
/// an optional row's file that is not (the kubelet's own self-signed serving certificate) is
/// not kubepki's to report.
fn signed_by_issuer(dirs: &TreeDirs, profile: &Profile, found: &reader::Found) -> bool {
    let ca = profile
        .issuer_row()
        .and_then(|issuer| reader::read_ca(dirs, issuer).ok());
    ca.is_some_and(|ca| found.cert().check_signed_by_any(&ca.trust, "").is_ok())
}

/// NotAfter as RFC 3339 UTC; Go's zero time when there is none.
fn rfc3339(not_after: Option<OffsetDateTime>) -> String {
    let zero = OffsetDateTime::UNIX_EPOCH
        .replace_year(1)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    not_after
        .unwrap_or(zero)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// The CA certificates trusted beside the CA row `profile` (its `entry`) during a rotation,
/// each an entry of its own.
fn also_trusted(
    dirs: &TreeDirs,
    profile: &Profile,
    entry: &Expiration,
    now: OffsetDateTime,
) -> Result<Vec<Expiration>> {
    let Some(found) = reader::read_row(dirs, profile)? else {
        return Ok(Vec::new());
    };
    let trusted = reader::trusted_with(dirs, profile, &found.cert().info)?;
    let others = trusted.into_iter().skip(1).map(|cert| Expiration {
        name: format!("{} (also trusted)", entry.name),
        expiration_date: rfc3339(Some(cert.not_after)),
        residual_time: (cert.not_after - now).whole_seconds(),
        externally_managed: entry.externally_managed,
        ca_name: None,
        missing: false,
        not_after: Some(cert.not_after),
    });
    Ok(others.collect())
}

/// apimachinery's `ShortHumanDuration` of `seconds`, as kubeadm's RESIDUAL TIME column.
pub fn short_human_duration(seconds: i64) -> String {
    let hours = seconds / 3600;
    match seconds {
        s if s < -1 => "<invalid>".into(),
        -1 => "0s".into(),
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        _ if hours < 24 => format!("{hours}h"),
        _ if hours < 24 * 365 => format!("{}d", hours / 24),
        _ => format!("{}y", hours / (24 * 365)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residual_time_is_kubeadms_short_human_duration() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (59, "59s"),
            (60, "1m"),
            (3599, "59m"),
            (3600, "1h"),
            (86_399, "23h"),
            (86_400, "1d"),
            (8759 * 3600, "364d"),
            (8760 * 3600, "1y"),
            (87_599 * 3600, "9y"),
        ];
        for (seconds, text) in cases {
            assert_eq!(short_human_duration(seconds), text, "{seconds}s");
        }
    }
}
