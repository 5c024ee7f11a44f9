//! Reading certificates with x509-parser: the facts kubepki decides on (subject, SANs, CA
//! flag, validity, public key), signature checks against a CA, and the CA pin. Reads only
//! bytes it is given; no file I/O.

use crate::pki::keys::Algorithm;
use anyhow::{Result, anyhow, bail};
use rcgen::{KeyPair, PublicKeyData};
use rustls_pki_types::CertificateDer;
use std::net::IpAddr;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

/// The parts of a certificate that kubepki checks and copies.
#[derive(Clone, Debug)]
pub struct CertInfo {
    /// The certificate itself.
    pub der: CertificateDer<'static>,
    /// The whole subject name, DER (what a CA's successor must carry too).
    pub subject: Vec<u8>,
    /// Subject common name (empty when absent).
    pub cn: String,
    /// Subject organizations, in order.
    pub orgs: Vec<String>,
    /// DNS SANs, in order.
    pub dns_names: Vec<String>,
    /// IP SANs, in order.
    pub ips: Vec<IpAddr>,
    /// basicConstraints CA flag.
    pub is_ca: bool,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// The subjectPublicKey bit string contents (what a key's raw public key must equal).
    pub public_key: Vec<u8>,
    /// The whole DER SubjectPublicKeyInfo (what a CA pin hashes).
    pub spki_der: Vec<u8>,
    /// The algorithm of the certified key, when it is one kubepki generates.
    pub key_algorithm: Option<Algorithm>,
}

impl CertInfo {
    /// Parses a DER certificate.
    pub fn parse(der: CertificateDer<'static>) -> Result<CertInfo> {
        let cert = parse_x509(&der)?;
        let text = |attr: &x509_parser::x509::AttributeTypeAndValue| {
            attr.as_str()
                .map(str::to_string)
                .map_err(|_| anyhow!("undecodable subject attribute"))
        };
        let cn = cert
            .subject()
            .iter_common_name()
            .next()
            .map(text)
            .transpose()?
            .unwrap_or_default();
        let orgs = cert
            .subject()
            .iter_organization()
            .map(text)
            .collect::<Result<Vec<_>>>()?;
        let (dns_names, ips) = sans(&cert)?;
        let is_ca = cert
            .basic_constraints()
            .map_err(|e| anyhow!("bad basicConstraints: {e}"))?
            .is_some_and(|bc| bc.value.ca);
        let (not_before, not_after) = validity(&cert)?;
        let public_key = cert.public_key().subject_public_key.data.to_vec();
        let spki_der = cert.public_key().raw.to_vec();
        let key_algorithm = key_algorithm(&cert);
        let subject = cert.subject().as_raw().to_vec();
        Ok(CertInfo {
            subject,
            der,
            cn,
            orgs,
            dns_names,
            ips,
            is_ca,
            not_before,
            not_after,
            public_key,
            spki_der,
            key_algorithm,
        })
    }

    /// Whether `key` is the private key of this certificate.
    pub fn matches_key(&self, key: &KeyPair) -> bool {
        key.der_bytes() == self.public_key.as_slice()
    }

    /// Checks that `ca` signed this certificate.
    pub fn verify_signed_by(&self, ca: &CertInfo) -> Result<()> {
        let cert = parse_x509(&self.der)?;
        let ca_cert = parse_x509(&ca.der)?;
        if cert.issuer() != ca_cert.subject() {
            bail!(
                "issued by {:?}, not by {:?}",
                cert.issuer().to_string(),
                ca_cert.subject().to_string()
            );
        }
        cert.verify_signature(Some(ca_cert.public_key()))
            .map_err(|_| anyhow!("its signature does not verify with the CA's public key"))
    }

    /// Whether a DNS name is covered by a DNS SAN (exact, or by a `*.` wildcard one label deep).
    pub fn covers_dns(&self, name: &str) -> bool {
        self.dns_names.iter().any(|san| {
            san == name
                || san.strip_prefix("*.").is_some_and(|suffix| {
                    name.split_once('.').is_some_and(|(_, rest)| rest == suffix)
                })
        })
    }
}

fn key_algorithm(cert: &X509Certificate<'_>) -> Option<Algorithm> {
    algorithm_of(cert.public_key())
}

/// The algorithm of the key of a DER SubjectPublicKeyInfo (`sa.pub`'s), when it is one
/// kubepki generates.
pub fn spki_algorithm(spki_der: &[u8]) -> Option<Algorithm> {
    use x509_parser::prelude::FromDer;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der).ok()?;
    algorithm_of(&spki)
}

/// The subjectPublicKey bit string contents of a DER SubjectPublicKeyInfo: what a private
/// key's raw public key must equal (see `CertInfo::public_key`).
pub fn spki_key_bits(spki_der: &[u8]) -> Result<Vec<u8>> {
    use x509_parser::prelude::FromDer;
    let (rest, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| anyhow!("malformed public key: {e}"))?;
    if !rest.is_empty() {
        bail!("trailing bytes after the public key");
    }
    Ok(spki.subject_public_key.data.to_vec())
}

fn algorithm_of(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Option<Algorithm> {
    use x509_parser::public_key::PublicKey;
    match spki.parsed().ok()? {
        PublicKey::RSA(rsa) => match rsa.key_size() {
            2048 => Some(Algorithm::Rsa2048),
            3072 => Some(Algorithm::Rsa3072),
            4096 => Some(Algorithm::Rsa4096),
            _ => None,
        },
        PublicKey::EC(point) => match point.key_size() {
            256 => Some(Algorithm::EcdsaP256),
            384 => Some(Algorithm::EcdsaP384),
            _ => None,
        },
        _ => None,
    }
}

fn parse_x509<'a>(der: &'a CertificateDer<'_>) -> Result<X509Certificate<'a>> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| anyhow!("malformed X.509 certificate: {e}"))?;
    if !rest.is_empty() {
        bail!("trailing bytes after the certificate");
    }
    Ok(cert)
}

fn sans(cert: &X509Certificate<'_>) -> Result<(Vec<String>, Vec<IpAddr>)> {
    let (mut dns_names, mut ips) = (Vec::new(), Vec::new());
    let Some(ext) = cert
        .subject_alternative_name()
        .map_err(|e| anyhow!("bad subjectAltName: {e}"))?
    else {
        return Ok((dns_names, ips));
    };
    for name in &ext.value.general_names {
        match name {
            GeneralName::DNSName(dns) => dns_names.push(dns.to_string()),
            GeneralName::IPAddress(bytes) => ips.push(ip_from_bytes(bytes)?),
            _ => {}
        }
    }
    Ok((dns_names, ips))
}

fn ip_from_bytes(bytes: &[u8]) -> Result<IpAddr> {
    match bytes.len() {
        4 => Ok(IpAddr::from(<[u8; 4]>::try_from(bytes)?)),
        16 => Ok(IpAddr::from(<[u8; 16]>::try_from(bytes)?)),
        n => bail!("IP SAN of {n} bytes"),
    }
}

fn validity(cert: &X509Certificate<'_>) -> Result<(OffsetDateTime, OffsetDateTime)> {
    let v = cert.validity();
    Ok((v.not_before.to_datetime(), v.not_after.to_datetime()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::issue::{CertRequest, Eku, existing_ca, self_signed_ca, signed_by};
    use crate::pki::keys::generate;
    use crate::pki::pem::first_certificate;

    fn request(cn: &str, is_ca: bool) -> CertRequest {
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .expect("a second");
        CertRequest {
            cn: cn.into(),
            orgs: vec!["system:masters".into()],
            dns_names: vec!["*.example.com".into(), "api.example.com".into()],
            ips: vec![
                "10.96.0.1".parse().expect("IP"),
                "fd00::1".parse().expect("IP"),
            ],
            ekus: vec![Eku::ServerAuth],
            is_ca,
            not_before: now,
            not_after: now + time::Duration::days(2),
        }
    }

    #[test]
    fn the_facts_are_read_back_as_they_were_issued() {
        let ca_key = generate(Algorithm::EcdsaP384).expect("a key");
        let ca_request = request("kubernetes", true);
        let ca =
            CertInfo::parse(self_signed_ca(&ca_request, &ca_key).expect("a CA")).expect("parses");
        assert!(ca.is_ca && ca.matches_key(&ca_key));
        assert_eq!(ca.key_algorithm, Some(Algorithm::EcdsaP384));
        let signer = existing_ca(&ca.der, ca_key).expect("a signer");
        let key = generate(Algorithm::Rsa2048).expect("a key");
        let leaf_request = request("kube-apiserver", false);
        let leaf = CertInfo::parse(signed_by(&leaf_request, &key, &signer).expect("signed"))
            .expect("parses");
        assert_eq!(leaf.cn, "kube-apiserver");
        assert_eq!(leaf.orgs, ["system:masters"]);
        assert_eq!(leaf.dns_names, leaf_request.dns_names);
        assert_eq!(leaf.ips, leaf_request.ips);
        assert_eq!(
            (leaf.not_before, leaf.not_after),
            (leaf_request.not_before, leaf_request.not_after)
        );
        assert!(!leaf.is_ca && leaf.matches_key(&key) && !leaf.matches_key(signer.key()));
        assert_eq!(leaf.key_algorithm, Some(Algorithm::Rsa2048));
        assert!(leaf.verify_signed_by(&ca).is_ok());
        let stranger = CertInfo::parse(
            self_signed_ca(&ca_request, &generate(Algorithm::EcdsaP256).expect("a key"))
                .expect("a CA"),
        )
        .expect("parses");
        let error = leaf.verify_signed_by(&stranger).expect_err("another key");
        assert!(error.to_string().contains("does not verify"), "{error}");
    }

    #[test]
    fn wildcards_cover_one_label_and_garbage_is_an_error() {
        let pem = crate::testgen::ca_pem();
        let mut cert =
            CertInfo::parse(first_certificate(pem.as_bytes()).expect("PEM")).expect("a cert");
        cert.dns_names = vec!["*.example.com".into()];
        assert!(cert.covers_dns("api.example.com"));
        assert!(!cert.covers_dns("a.api.example.com") && !cert.covers_dns("example.com"));
        assert!(CertInfo::parse(CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])).is_err());
        let mut trailing = cert.der.to_vec();
        trailing.push(0);
        let error = CertInfo::parse(CertificateDer::from(trailing)).expect_err("trailing bytes");
        assert_eq!(error.to_string(), "trailing bytes after the certificate");
    }
}
