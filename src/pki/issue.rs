//! Signing: a `CertRequest` becomes rcgen parameters and a signed certificate. Every field
//! rcgen would default is set here explicitly (serial, validity, key identifiers, key usage,
//! basic constraints, subject encoding), so the profile matches what kubeadm's Go code writes.

use super::subject;
use anyhow::{Result, anyhow};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, PublicKeyData,
    SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use std::net::IpAddr;
use time::OffsetDateTime;

/// An extended key usage a certificate is issued for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eku {
    /// TLS server authentication.
    ServerAuth,
    /// TLS client authentication.
    ClientAuth,
}

impl Eku {
    /// RFC 5280's name, e.g. `serverAuth`.
    pub fn name(self) -> &'static str {
        match self {
            Eku::ServerAuth => "serverAuth",
            Eku::ClientAuth => "clientAuth",
        }
    }
}

/// Everything that distinguishes one certificate from another, resolved and owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertRequest {
    /// Subject common name.
    pub cn: String,
    /// Subject organizations (at most two: rcgen keeps one value per attribute type).
    pub orgs: Vec<String>,
    /// DNS subject alternative names, in order.
    pub dns_names: Vec<String>,
    /// IP subject alternative names, in order.
    pub ips: Vec<IpAddr>,
    /// Extended key usages, in order.
    pub ekus: Vec<Eku>,
    /// Whether this is a CA certificate.
    pub is_ca: bool,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// A CA able to sign: its rcgen issuer (subject, key identifier, key).
pub type Signer = Issuer<'static, KeyPair>;

/// Issues a self-signed CA certificate for `key`. It signs as any existing CA does, through
/// [`existing_ca`].
pub fn self_signed_ca(request: &CertRequest, key: &KeyPair) -> Result<CertificateDer<'static>> {
    let params = params_for(request, key)?;
    let cert = params
        .self_signed(key)
        .map_err(|e| anyhow!("signing CA certificate {:?}: {e}", request.cn))?;
    Ok(cert.der().clone())
}

/// Issues a certificate for `key`, signed by `signer`. A subject with more organizations
/// than rcgen can write gets its subject from `subject` and is signed again.
pub fn signed_by(
    request: &CertRequest,
    key: &KeyPair,
    signer: &Signer,
) -> Result<CertificateDer<'static>> {
    let beyond_rcgen = request.orgs.len() > RCGEN_ORGS;
    let rcgen_request = match beyond_rcgen {
        true => &CertRequest {
            orgs: Vec::new(),
            ..request.clone()
        },
        false => request,
    };
    let params = params_for(rcgen_request, key)?;
    let cert = params
        .signed_by(key, signer)
        .map_err(|e| anyhow!("signing certificate {:?}: {e}", request.cn))?;
    match beyond_rcgen {
        true => {
            let name = subject::name_der(&request.orgs, &request.cn);
            subject::with_subject(cert.der(), &name, signer.key())
        }
        false => Ok(cert.der().clone()),
    }
}

/// A signer for an existing CA certificate and its key. The caller must have checked that
/// the certificate is a CA and that the key matches it: rcgen checks neither.
pub fn existing_ca(ca_cert: &CertificateDer<'_>, key: KeyPair) -> Result<Signer> {
    Issuer::from_ca_cert_der(ca_cert, key).map_err(|e| anyhow!("loading CA certificate: {e}"))
}

pub(crate) fn params_for(request: &CertRequest, key: &KeyPair) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.serial_number = Some(random_serial()?);
    params.not_before = request.not_before;
    params.not_after = request.not_after;
    params.distinguished_name = subject(request)?;
    params.subject_alt_names = subject_alt_names(request)?;
    params.extended_key_usages = request
        .ekus
        .iter()
        .map(|eku| match eku {
            Eku::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
            Eku::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
        })
        .collect();
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    if request.is_ca {
        params.key_usages.push(KeyUsagePurpose::KeyCertSign);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_identifier_method = KeyIdMethod::PreSpecified(go_key_id(key));
        params.use_authority_key_identifier_extension = false;
    } else {
        // Go writes basicConstraints CA:FALSE on leaves but no subject key identifier;
        // rcgen's ExplicitNoCa would add one, so the extension is written by hand.
        params.is_ca = IsCa::NoCa;
        let mut not_ca = CustomExtension::from_oid_content(&[2, 5, 29, 19], vec![0x30, 0x00]);
        not_ca.set_criticality(true);
        params.custom_extensions = vec![not_ca];
        params.use_authority_key_identifier_extension = true;
    }
    Ok(params)
}

/// Go's subject key identifier: SHA-1 over the subjectPublicKey bit string (RFC 5280 §4.2.1.2 (1)).
fn go_key_id(key: &KeyPair) -> Vec<u8> {
    aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        key.der_bytes(),
    )
    .as_ref()
    .to_vec()
}

/// A random positive 128-bit serial number (126 random bits, DER length always 16).
fn random_serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow!("the system random generator failed"))?;
    bytes[0] = (bytes[0] & 0x3f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

/// How many organizations rcgen writes: it keeps one value per attribute type, so a second O
/// goes under the same OID as a custom type, which rcgen keys separately. A subject with more
/// is written by the `subject` module (`signed_by`).
const RCGEN_ORGS: usize = 2;

/// O then CN, one RDN each; PrintableString when the text allows it, else UTF8String (Go's rule).
fn subject(request: &CertRequest) -> Result<DistinguishedName> {
    if request.orgs.len() > RCGEN_ORGS {
        return Err(anyhow!(
            "certificate {:?}: more organizations than rcgen writes",
            request.cn
        ));
    }
    let org_types: [DnType; RCGEN_ORGS] = [
        DnType::OrganizationName,
        DnType::CustomDnType(vec![2, 5, 4, 10]),
    ];
    let mut name = DistinguishedName::new();
    for (org, org_type) in request.orgs.iter().zip(org_types) {
        name.push(org_type, dn_value(org));
    }
    name.push(DnType::CommonName, dn_value(&request.cn));
    Ok(name)
}

fn dn_value(text: &str) -> DnValue {
    match rcgen::string::PrintableString::try_from(text) {
        Ok(printable) => DnValue::PrintableString(printable),
        Err(_) => DnValue::Utf8String(text.to_string()),
    }
}

fn subject_alt_names(request: &CertRequest) -> Result<Vec<SanType>> {
    let mut sans = Vec::with_capacity(request.dns_names.len() + request.ips.len());
    for name in &request.dns_names {
        let ia5 = name
            .as_str()
            .try_into()
            .map_err(|_| anyhow!("{name:?} is not a valid DNS name for a certificate"))?;
        sans.push(SanType::DnsName(ia5));
    }
    sans.extend(request.ips.iter().map(|ip| SanType::IpAddress(*ip)));
    Ok(sans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::keys::{Algorithm, generate};

    fn request(cn: &str, is_ca: bool) -> CertRequest {
        let now = OffsetDateTime::now_utc();
        CertRequest {
            cn: cn.into(),
            orgs: vec![],
            dns_names: vec![cn.into()],
            ips: vec!["10.96.0.1".parse().unwrap()],
            ekus: if is_ca { vec![] } else { vec![Eku::ServerAuth] },
            is_ca,
            not_before: now,
            not_after: now + time::Duration::days(1),
        }
    }

    #[test]
    fn leaf_has_aki_of_ca_ski_and_no_ski() {
        let ca_key = generate(Algorithm::EcdsaP256).unwrap();
        let ca_der = self_signed_ca(&request("kubernetes", true), &ca_key).unwrap();
        let signer = existing_ca(&ca_der, ca_key).unwrap();
        let key = generate(Algorithm::EcdsaP256).unwrap();
        let leaf_der = signed_by(&request("kube-apiserver", false), &key, &signer).unwrap();
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        let (_, leaf) = x509_parser::parse_x509_certificate(&leaf_der).unwrap();
        let ski = |c: &x509_parser::certificate::X509Certificate| {
            c.extensions()
                .iter()
                .find_map(|e| match e.parsed_extension() {
                    x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                        Some(id.0.to_vec())
                    }
                    _ => None,
                })
        };
        let aki = leaf
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
                    a.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => None,
            });
        assert_eq!(ski(&ca).map(|k| k.len()), Some(20));
        assert_eq!(aki, ski(&ca));
        assert_eq!(ski(&leaf), None);
        assert_eq!(
            leaf.basic_constraints()
                .unwrap()
                .map(|b| (b.critical, b.value.ca)),
            Some((true, false))
        );
        assert!(leaf.verify_signature(Some(ca.public_key())).is_ok());
    }

    #[test]
    fn any_number_of_groups_is_written_and_the_signature_still_verifies() {
        let ca_key = generate(Algorithm::EcdsaP256).unwrap();
        let ca_der = self_signed_ca(&request("kubernetes", true), &ca_key).unwrap();
        let signer = existing_ca(&ca_der, ca_key).unwrap();
        let mut user = request("alice", false);
        user.orgs = ["dev", "ops", "sre", "café"].map(String::from).to_vec();
        let key = generate(Algorithm::EcdsaP256).unwrap();
        let der = signed_by(&user, &key, &signer).unwrap();
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        let (rest, leaf) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert!(rest.is_empty());
        let orgs: Vec<&str> = leaf
            .subject()
            .iter_organization()
            .map(|o| o.as_str().unwrap())
            .collect();
        assert_eq!(orgs, ["dev", "ops", "sre", "café"]);
        assert_eq!(
            leaf.subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            "alice"
        );
        assert!(leaf.verify_signature(Some(ca.public_key())).is_ok());
        assert_eq!(
            leaf.public_key().raw,
            key.subject_public_key_info().as_slice()
        );
    }

    #[test]
    fn serials_are_positive_and_distinct() {
        let a = random_serial().unwrap();
        let b = random_serial().unwrap();
        assert_ne!(a, b);
        assert!(a.as_ref()[0] & 0x80 == 0 && a.as_ref().len() == 16);
    }
}
