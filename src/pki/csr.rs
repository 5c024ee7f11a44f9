//! Certificate signing requests: making one for a key (kubeadm's external-CA flow), and
//! reading and signing one made elsewhere. A CSR made elsewhere contributes only its public
//! key, subject and SANs, its signature checked; the caller decides whether that subject is
//! acceptable, and the usages, CA flag and validity come from the `CertRequest` it passes,
//! never from the request.

use super::issue::{CertRequest, Signer, params_for};
use anyhow::{Result, anyhow, bail};
use rcgen::{KeyPair, SubjectPublicKeyInfo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer};
use std::net::IpAddr;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509CertificationRequest};

/// A CSR (PEM) for `key` asking for `request`'s subject, SANs and usages as the certificate
/// `signed_by` would issue carries them: an outside CA copies them from the request.
pub fn csr_pem(request: &CertRequest, key: &KeyPair) -> Result<String> {
    let mut params = params_for(request, key)?;
    // What only an issuer decides is not part of a request (rcgen refuses it there); the
    // basicConstraints CA:FALSE extension stays, as the certificate will carry it.
    params.serial_number = None;
    params.use_authority_key_identifier_extension = false;
    params
        .serialize_request(key)
        .and_then(|csr| csr.pem())
        .map_err(|e| anyhow!("making the CSR for {:?}: {e}", request.cn))
}

/// A CSR made elsewhere whose signature verifies: what it asks for.
pub struct ForeignCsr {
    /// The subject's common name.
    pub cn: String,
    /// The subject's organizations, every one of them, in order.
    pub orgs: Vec<String>,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    pub ips: Vec<IpAddr>,
    public_key: SubjectPublicKeyInfo,
}

/// Reads a PEM CSR and checks its signature (the requester holds the key). Extensions it
/// requests other than SANs are not read: the signer decides usages and CA-ness.
pub fn parse_csr(pem_text: &[u8]) -> Result<ForeignCsr> {
    let der = CertificateSigningRequestDer::from_pem_slice(pem_text).map_err(|e| {
        anyhow!(
            "no CERTIFICATE REQUEST PEM block: {}",
            super::pem::describe(&e)
        )
    })?;
    let (_, request) = X509CertificationRequest::from_der(&der)
        .map_err(|e| anyhow!("not a certificate signing request: {e}"))?;
    request
        .verify_signature()
        .map_err(|_| anyhow!("its signature does not verify with its own public key"))?;
    let info = &request.certification_request_info;
    let texts = |values: Vec<Result<&str, _>>, what: &str| {
        values
            .into_iter()
            .map(|value| value.map(str::to_string))
            .collect::<Result<Vec<String>, _>>()
            .map_err(|_: x509_parser::error::X509Error| anyhow!("the subject's {what} is not text"))
    };
    let cns = texts(
        info.subject
            .iter_common_name()
            .map(|a| a.as_str())
            .collect(),
        "common name",
    )?;
    let [cn] = cns.as_slice() else {
        bail!("the subject has {} common names, not one", cns.len());
    };
    let orgs = texts(
        info.subject
            .iter_organization()
            .map(|a| a.as_str())
            .collect(),
        "organization",
    )?;
    let (dns_names, ips) = alt_names(&request)?;
    let public_key = SubjectPublicKeyInfo::from_der(info.subject_pki.raw)
        .map_err(|e| anyhow!("its public key: {e}"))?;
    Ok(ForeignCsr {
        cn: cn.clone(),
        orgs,
        dns_names,
        ips,
        public_key,
    })
}

/// The DNS names and IPs the request's subjectAltName asks for.
fn alt_names(request: &X509CertificationRequest<'_>) -> Result<(Vec<String>, Vec<IpAddr>)> {
    let mut dns_names = Vec::new();
    let mut ips = Vec::new();
    let extensions = request.requested_extensions().into_iter().flatten();
    for extension in extensions {
        let ParsedExtension::SubjectAlternativeName(san) = extension else {
            continue;
        };
        for name in &san.general_names {
            match name {
                GeneralName::DNSName(dns) => dns_names.push(dns.to_string()),
                GeneralName::IPAddress(bytes) => ips.push(ip_of(bytes)?),
                other => {
                    bail!("it asks for a subject alternative name kubepki does not sign: {other}")
                }
            }
        }
    }
    Ok((dns_names, ips))
}

fn ip_of(bytes: &[u8]) -> Result<IpAddr> {
    match bytes.len() {
        4 => Ok(IpAddr::from(<[u8; 4]>::try_from(bytes)?)),
        16 => Ok(IpAddr::from(<[u8; 16]>::try_from(bytes)?)),
        n => bail!("an IP subject alternative name of {n} bytes"),
    }
}

/// Signs `csr`'s public key with `signer` as `request` says (subject, SANs, usages,
/// validity; never a CA).
pub fn sign_csr(
    csr: ForeignCsr,
    request: &CertRequest,
    signer: &Signer,
) -> Result<CertificateDer<'static>> {
    if request.is_ca {
        bail!("internal error: a CSR is never signed as a CA");
    }
    // The key passed is only read for a CA's key identifier, which this never is.
    let params = params_for(request, signer.key())?;
    let cert = params
        .signed_by(&csr.public_key, signer)
        .map_err(|e| anyhow!("signing the CSR of {:?}: {e}", request.cn))?;
    Ok(cert.der().clone())
}
