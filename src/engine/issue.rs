//! The one way kubepki makes a certificate, for every command (`init`, `certs renew`,
//! `kubeconfig user`): a row, its resolved request, a key and a signer become the
//! certificate, its PEM and the key's PEM; a kubeconfig row's result is then wrapped into its
//! kubeconfig, new or updated, with what the signing CA's readers trust embedded: the CA,
//! and during a rotation the CA coming or going after it.

use crate::cluster::kubeconfig::{ClientCredentials, Kubeconfig};
use crate::pki::inspect::CertInfo;
use crate::pki::issue::{self, CertRequest, Signer};
use crate::pki::{keys, pem};
use crate::profile::Profile;
use anyhow::{Context, Result};
use rcgen::KeyPair;
use time::OffsetDateTime;

/// A CA able to sign: its certificate, its signer, and what its readers trust.
pub struct SigningCa {
    /// The CA certificate.
    pub cert: CertInfo,
    signer: Signer,
    /// Its certificate, then any other certificate trusted beside it (a rotation's).
    trust: Vec<CertInfo>,
}

impl SigningCa {
    /// The CA of `cert` and `key`, trusted alone. The caller has checked that the
    /// certificate is a CA and that the key is its own (the tree reader does both): rcgen
    /// checks neither.
    pub fn new(cert: CertInfo, key: KeyPair) -> Result<SigningCa> {
        let signer = issue::existing_ca(&cert.der, key)?;
        let trust = vec![cert.clone()];
        Ok(SigningCa {
            cert,
            signer,
            trust,
        })
    }

    /// The same CA, trusted with the certificates of `trusted` that are not its own (those
    /// `tree::reader::trusted_with` found), which kubeconfigs then embed after it.
    pub fn trusting(mut self, trusted: &[CertInfo]) -> SigningCa {
        let others = trusted.iter().filter(|c| c.der != self.cert.der).cloned();
        self.trust = std::iter::once(self.cert.clone()).chain(others).collect();
        self
    }

    /// What kubeconfigs embed as their CA: the certificate, then the others trusted, PEM.
    pub fn trust_pem(&self) -> Vec<u8> {
        self.trust
            .iter()
            .map(|cert| pem::encode("CERTIFICATE", &cert.der))
            .collect::<String>()
            .into_bytes()
    }

    /// Signs a CSR made elsewhere as `request` says (`pki::csr::sign_csr`).
    pub fn sign_foreign(
        &self,
        csr: crate::pki::csr::ForeignCsr,
        request: &CertRequest,
    ) -> Result<rustls_pki_types::CertificateDer<'static>> {
        crate::pki::csr::sign_csr(csr, request, &self.signer)
    }
}

/// A certificate issued to end earlier than asked: at the end of its CA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capped {
    /// What was issued (`apiserver`, `admin.conf`, a user's name).
    pub name: String,
    /// The CA row that signed it.
    pub issuer: &'static str,
    /// Its end, the CA's.
    pub until: OffsetDateTime,
}

impl Capped {
    /// `Some` when `request` ends before `wanted_end`, the end the settings asked for.
    pub fn of(
        name: &str,
        issuer: &'static str,
        request: &CertRequest,
        wanted_end: OffsetDateTime,
    ) -> Option<Capped> {
        (request.not_after < wanted_end).then(|| Capped {
            name: name.to_string(),
            issuer,
            until: request.not_after,
        })
    }
}

/// Who signs a new certificate.
pub enum By<'a> {
    /// The certificate's own key: a new CA.
    Itself,
    /// A CA.
    Ca(&'a SigningCa),
}

/// A certificate just issued, with its key.
pub struct Issued {
    /// The certificate.
    pub cert: CertInfo,
    /// The certificate, PEM.
    pub cert_pem: Vec<u8>,
    /// The key in kubeadm's format (PKCS#1 or SEC1), PEM.
    pub key_pem: Vec<u8>,
    key: KeyPair,
}

/// Where a kubeconfig row's new credentials go.
pub enum KubeconfigOf<'a> {
    /// A new kubeconfig: one cluster, one user, one context.
    New {
        /// `clusterName`.
        cluster_name: &'a str,
        /// The API server URL.
        server: &'a str,
    },
    /// An existing kubeconfig, whose CA, client certificate and key are replaced and whose
    /// every other field is kept.
    Existing(&'a Kubeconfig),
}

/// Issues `request` for `row` with `key`, signed `by`.
pub fn issue(row: &Profile, request: &CertRequest, key: KeyPair, by: By<'_>) -> Result<Issued> {
    let der = match by {
        By::Itself => issue::self_signed_ca(request, &key)?,
        By::Ca(ca) => issue::signed_by(request, &key, &ca.signer)?,
    };
    let cert = CertInfo::parse(der).with_context(|| format!("issuing {}", row.cert_name()))?;
    Ok(Issued {
        cert_pem: pem::encode("CERTIFICATE", &cert.der).into_bytes(),
        key_pem: keys::to_pem(&key)?.into_bytes(),
        cert,
        key,
    })
}

impl Issued {
    /// A new CA, ready to sign.
    pub fn into_ca(self) -> Result<SigningCa> {
        SigningCa::new(self.cert, self.key)
    }

    /// The key pair row's public key, PKIX PEM.
    pub fn public_key_pem(&self) -> Vec<u8> {
        keys::public_key_pem(&self.key).into_bytes()
    }

    /// The kubeconfig YAML holding this client certificate and key and what `ca`'s readers
    /// trust.
    pub fn kubeconfig(&self, ca: &SigningCa, of: KubeconfigOf<'_>) -> Result<Vec<u8>> {
        let ca_pem = ca.trust_pem();
        let kubeconfig = match of {
            KubeconfigOf::New {
                cluster_name,
                server,
            } => {
                let creds = ClientCredentials {
                    ca_pem,
                    server: server.to_string(),
                    cert_pem: self.cert_pem.clone(),
                    key_pem: self.key_pem.clone(),
                };
                Kubeconfig::with_client_cert(cluster_name, server, &self.cert.cn, &creds)
            }
            KubeconfigOf::Existing(existing) => {
                let mut kubeconfig = existing.clone();
                kubeconfig.replace_credentials(&ca_pem, &self.cert_pem, &self.key_pem)?;
                kubeconfig
            }
        };
        Ok(kubeconfig.to_yaml()?.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::by_name;
    use crate::testtree::ecdsa_spec;

    fn new_key() -> KeyPair {
        keys::generate(keys::Algorithm::EcdsaP256).expect("a key")
    }

    /// The cluster CA for `spec`, issued by itself.
    fn ca(spec: &crate::spec::ClusterSpec) -> SigningCa {
        let row = by_name("ca").expect("the row");
        let request = row.request(spec, None).expect("a request");
        let issued = issue(row, &request, new_key(), By::Itself).expect("issued");
        assert!(issued.cert.is_ca && issued.cert.verify_signed_by(&issued.cert).is_ok());
        issued.into_ca().expect("a signer")
    }

    #[test]
    fn a_leaf_is_signed_by_its_ca_with_its_key_in_kubeadms_format() {
        let spec = ecdsa_spec(&[]);
        let ca = ca(&spec);
        let row = by_name("apiserver").expect("the row");
        let request = row.request(&spec, Some(&ca.cert)).expect("a request");
        let key = new_key();
        let public = key.public_key_raw().to_vec();
        let issued = issue(row, &request, key, By::Ca(&ca)).expect("issued");
        assert!(issued.cert.verify_signed_by(&ca.cert).is_ok());
        assert_eq!(issued.cert.public_key, public);
        assert_eq!(issued.cert.dns_names, request.dns_names);
        assert!(
            String::from_utf8_lossy(&issued.key_pem)
                .starts_with("-----BEGIN EC PRIVATE KEY-----\n")
        );
        assert_eq!(
            crate::pki::pem::first_certificate(&issued.cert_pem)
                .expect("PEM")
                .as_ref(),
            issued.cert.der.as_ref()
        );
    }

    #[test]
    fn a_kubeconfig_is_new_or_the_old_one_with_new_credentials() {
        let spec = ecdsa_spec(&[]);
        let ca = ca(&spec);
        let row = by_name("admin").expect("the row");
        let request = row.request(&spec, Some(&ca.cert)).expect("a request");
        let issued = issue(row, &request, new_key(), By::Ca(&ca)).expect("issued");
        let of = KubeconfigOf::New {
            cluster_name: "prod",
            server: "https://lb.example.com:6443",
        };
        let yaml = issued.kubeconfig(&ca, of).expect("a kubeconfig");
        let kubeconfig = Kubeconfig::parse(&yaml).expect("parses");
        let creds = kubeconfig.client_credentials().expect("credentials");
        assert_eq!(creds.server, "https://lb.example.com:6443");
        assert_eq!(creds.ca_pem, ca.trust_pem());
        assert_eq!(
            (creds.cert_pem, creds.key_pem),
            (issued.cert_pem.clone(), issued.key_pem.clone())
        );
        assert!(String::from_utf8_lossy(&yaml).contains("current-context: kubernetes-admin@prod"));
        let renewed = issue(row, &request, new_key(), By::Ca(&ca)).expect("issued again");
        let updated = renewed
            .kubeconfig(&ca, KubeconfigOf::Existing(&kubeconfig))
            .expect("updated");
        let updated = Kubeconfig::parse(&updated).expect("parses");
        let creds = updated.client_credentials().expect("credentials");
        assert_eq!(creds.server, "https://lb.example.com:6443");
        assert_eq!(creds.cert_pem, renewed.cert_pem);
    }
}
