//! Reading certificates with x509-parser: the facts kubepki decides on (subject, SANs, CA
//! flag, validity, public key, key usages, signature algorithm), signature checks against a
//! CA, and the CA pin. Reads only bytes it is given; no file I/O.

use crate::pki::issue::Eku;
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
    /// The certified key as found: RSA and its size, or ECDSA and its curve.
    pub key_kind: KeyKind,
    /// The keyUsage bits, in RFC 5280 order; `None` when the extension is absent.
    pub key_usages: Option<Vec<KeyUsage>>,
    /// The extended key usages kubepki knows, in the certificate's order.
    pub ekus: Vec<Eku>,
    /// Any other extended key usage, by name or dotted OID.
    pub other_ekus: Vec<String>,
    /// The signature algorithm's name (dotted OID when unknown).
    pub signature: String,
    /// Whether the signature uses a broken hash (SHA-1, MD5, MD2).
    pub weak_signature: bool,
}

/// A bit of the keyUsage extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyUsage {
    /// digitalSignature.
    DigitalSignature,
    /// contentCommitment (nonRepudiation).
    ContentCommitment,
    /// keyEncipherment.
    KeyEncipherment,
    /// dataEncipherment.
    DataEncipherment,
    /// keyAgreement.
    KeyAgreement,
    /// keyCertSign.
    KeyCertSign,
    /// cRLSign.
    CrlSign,
    /// encipherOnly.
    EncipherOnly,
    /// decipherOnly.
    DecipherOnly,
}

impl KeyUsage {
    /// RFC 5280's name, e.g. `digitalSignature`.
    pub fn name(self) -> &'static str {
        match self {
            KeyUsage::DigitalSignature => "digitalSignature",
            KeyUsage::ContentCommitment => "contentCommitment",
            KeyUsage::KeyEncipherment => "keyEncipherment",
            KeyUsage::DataEncipherment => "dataEncipherment",
            KeyUsage::KeyAgreement => "keyAgreement",
            KeyUsage::KeyCertSign => "keyCertSign",
            KeyUsage::CrlSign => "cRLSign",
            KeyUsage::EncipherOnly => "encipherOnly",
            KeyUsage::DecipherOnly => "decipherOnly",
        }
    }
}

/// A certified public key as found, whether or not kubepki would generate it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with a modulus of this many bits.
    Rsa(usize),
    /// ECDSA on this named curve (`P-256`, `P-384`, `P-521`, else the dotted OID).
    Ec(String),
    /// Anything else, by its algorithm's dotted OID.
    Other(String),
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyKind::Rsa(bits) => write!(f, "RSA-{bits}"),
            KeyKind::Ec(curve) => match curve.strip_prefix("P-") {
                Some(size) => write!(f, "ECDSA-P{size}"),
                None => write!(f, "ECDSA on curve {curve}"),
            },
            KeyKind::Other(oid) => write!(f, "a key of algorithm {oid}"),
        }
    }
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
        let (ekus, other_ekus) = ext_key_usages(&cert)?;
        let (signature, weak_signature) = signature_of(&cert);
        let subject = cert.subject().as_raw().to_vec();
        Ok(CertInfo {
            subject,
            key_kind: key_kind(cert.public_key()),
            key_usages: key_usages(&cert)?,
            ekus,
            other_ekus,
            signature,
            weak_signature,
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

    /// Whether a DNS name is covered by a DNS SAN (see `san_covers`).
    pub fn covers_dns(&self, name: &str) -> bool {
        self.dns_names.iter().any(|san| san_covers(san, name))
    }
}

/// The SAN rule, the one place it is decided: a DNS SAN covers a name when it is that name,
/// or a `*.` wildcard one label above it (as TLS clients match: `*.example.com` covers
/// `api.example.com`, not `a.api.example.com` nor `example.com`).
pub fn san_covers(san: &str, name: &str) -> bool {
    san == name
        || san
            .strip_prefix("*.")
            .is_some_and(|suffix| name.split_once('.').is_some_and(|(_, rest)| rest == suffix))
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

/// The kind of the public key in a DER SubjectPublicKeyInfo (`sa.pub`).
pub fn public_key_kind(spki_der: &[u8]) -> Result<KeyKind> {
    use x509_parser::prelude::FromDer;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| anyhow!("malformed public key: {e}"))?;
    Ok(key_kind(&spki))
}

/// The key's kind, with its RSA size or named curve.
fn key_kind(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> KeyKind {
    use x509_parser::public_key::PublicKey;
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => KeyKind::Rsa(rsa.key_size()),
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string())
                .unwrap_or_default();
            let name = match curve.as_str() {
                "1.2.840.10045.3.1.7" => "P-256".to_string(),
                "1.3.132.0.34" => "P-384".to_string(),
                "1.3.132.0.35" => "P-521".to_string(),
                _ => curve,
            };
            KeyKind::Ec(name)
        }
        _ => KeyKind::Other(spki.algorithm.algorithm.to_id_string()),
    }
}

/// The keyUsage bits that are set, or `None` without the extension.
fn key_usages(cert: &X509Certificate<'_>) -> Result<Option<Vec<KeyUsage>>> {
    let Some(ext) = cert.key_usage().map_err(|e| anyhow!("bad keyUsage: {e}"))? else {
        return Ok(None);
    };
    let bits = ext.value;
    let all = [
        (bits.digital_signature(), KeyUsage::DigitalSignature),
        (bits.non_repudiation(), KeyUsage::ContentCommitment),
        (bits.key_encipherment(), KeyUsage::KeyEncipherment),
        (bits.data_encipherment(), KeyUsage::DataEncipherment),
        (bits.key_agreement(), KeyUsage::KeyAgreement),
        (bits.key_cert_sign(), KeyUsage::KeyCertSign),
        (bits.crl_sign(), KeyUsage::CrlSign),
        (bits.encipher_only(), KeyUsage::EncipherOnly),
        (bits.decipher_only(), KeyUsage::DecipherOnly),
    ];
    Ok(Some(
        all.into_iter()
            .filter_map(|(set, usage)| set.then_some(usage))
            .collect(),
    ))
}

/// serverAuth and clientAuth, in the certificate's order, and the names of any others.
fn ext_key_usages(cert: &X509Certificate<'_>) -> Result<(Vec<Eku>, Vec<String>)> {
    let Some(ext) = cert
        .extended_key_usage()
        .map_err(|e| anyhow!("bad extendedKeyUsage: {e}"))?
    else {
        return Ok((Vec::new(), Vec::new()));
    };
    let eku = ext.value;
    let mut known = Vec::new();
    if eku.server_auth {
        known.push(Eku::ServerAuth);
    }
    if eku.client_auth {
        known.push(Eku::ClientAuth);
    }
    let named = [
        (eku.any, "anyExtendedKeyUsage"),
        (eku.code_signing, "codeSigning"),
        (eku.email_protection, "emailProtection"),
        (eku.time_stamping, "timeStamping"),
        (eku.ocsp_signing, "OCSPSigning"),
    ];
    let others = named
        .into_iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| name.to_string())
        .chain(eku.other.iter().map(|oid| oid.to_id_string()))
        .collect();
    Ok((known, others))
}

/// The signature algorithm's name and whether its hash is broken (SHA-1, MD5, MD2).
fn signature_of(cert: &X509Certificate<'_>) -> (String, bool) {
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    let (name, weak) = match oid.as_str() {
        "1.2.840.113549.1.1.11" => ("sha256WithRSAEncryption", false),
        "1.2.840.113549.1.1.12" => ("sha384WithRSAEncryption", false),
        "1.2.840.113549.1.1.13" => ("sha512WithRSAEncryption", false),
        "1.2.840.113549.1.1.10" => ("RSASSA-PSS", false),
        "1.2.840.10045.4.3.2" => ("ecdsa-with-SHA256", false),
        "1.2.840.10045.4.3.3" => ("ecdsa-with-SHA384", false),
        "1.2.840.10045.4.3.4" => ("ecdsa-with-SHA512", false),
        "1.3.101.112" => ("Ed25519", false),
        "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => ("sha1WithRSAEncryption", true),
        "1.2.840.10045.4.1" => ("ecdsa-with-SHA1", true),
        "1.2.840.10040.4.3" => ("dsa-with-SHA1", true),
        "1.2.840.113549.1.1.4" => ("md5WithRSAEncryption", true),
        "1.2.840.113549.1.1.2" => ("md2WithRSAEncryption", true),
        _ => return (oid, false),
    };
    (name.to_string(), weak)
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
