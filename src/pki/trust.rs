//! Trust bundles as values: what a reader accepts signatures from, as PEM blocks in one
//! file. For a CA, certificates (`ca-bundle.crt`, an `etcd/ca.crt` holding two); for the
//! service-account key pair, public keys (`sa.pub` holding two). The first one is the one
//! that signs, as kubeadm reads a `ca.crt` holding several; during a rotation the other one
//! is the CA (or key) coming or going. Parsing is strict: every block must be of the kind
//! the file holds (a private key or a certificate request in a trust file is refused). No
//! I/O.

use crate::pki::inspect::{self, CertInfo};
use crate::pki::keys::Algorithm;
use crate::pki::pem;
use crate::pki::pin::CaPin;
use anyhow::{Result, anyhow, bail};
use rcgen::{KeyPair, PublicKeyData};
use rustls_pki_types::pem::{PemObject, SectionKind};

/// What the blocks of a trust file are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnchorKind {
    /// `CERTIFICATE` blocks: CA certificates.
    Certificate,
    /// `PUBLIC KEY` blocks: PKIX public keys (`sa.pub`).
    PublicKey,
}

impl AnchorKind {
    /// The PEM label.
    pub fn label(self) -> &'static str {
        match self {
            AnchorKind::Certificate => "CERTIFICATE",
            AnchorKind::PublicKey => "PUBLIC KEY",
        }
    }
}

/// One certificate or public key a reader trusts.
#[derive(Clone, Debug)]
pub struct Anchor {
    der: Vec<u8>,
    spki: Vec<u8>,
    key: Vec<u8>,
    cert: Option<CertInfo>,
}

/// Two CA certificates are the same when they are byte for byte; two public keys when their
/// keys are (however each was encoded).
impl PartialEq for Anchor {
    fn eq(&self, other: &Anchor) -> bool {
        match (&self.cert, &other.cert) {
            (Some(_), Some(_)) => self.der == other.der,
            (None, None) => self.key == other.key,
            _ => false,
        }
    }
}

impl Anchor {
    /// A CA certificate.
    pub fn of_cert(cert: CertInfo) -> Anchor {
        Anchor {
            der: cert.der.to_vec(),
            spki: cert.spki_der.clone(),
            key: cert.public_key.clone(),
            cert: Some(cert),
        }
    }

    /// A public key, DER SubjectPublicKeyInfo.
    pub fn of_public_key(spki_der: Vec<u8>) -> Result<Anchor> {
        Ok(Anchor {
            key: inspect::spki_key_bits(&spki_der)?,
            der: spki_der.clone(),
            spki: spki_der,
            cert: None,
        })
    }

    /// The public key of `key`, as a key pair's trust file holds it.
    pub fn of_key(key: &KeyPair) -> Anchor {
        let spki = key.subject_public_key_info();
        Anchor {
            der: spki.clone(),
            spki,
            key: key.der_bytes().to_vec(),
            cert: None,
        }
    }

    /// Whether `key` is its private key.
    pub fn matches(&self, key: &KeyPair) -> bool {
        key.der_bytes() == self.key.as_slice()
    }

    /// The algorithm of its key, when it is one kubepki generates.
    pub fn algorithm(&self) -> Option<Algorithm> {
        match &self.cert {
            Some(cert) => cert.key_algorithm,
            None => inspect::spki_algorithm(&self.spki),
        }
    }

    /// The certificate, for a CA's anchor.
    pub fn cert(&self) -> Option<&CertInfo> {
        self.cert.as_ref()
    }

    /// The DER SubjectPublicKeyInfo of its key.
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// The pin of its key, `sha256:<hex>`, as `join` takes it.
    pub fn pin(&self) -> CaPin {
        CaPin::of_spki(&self.spki)
    }

    /// Its kind.
    pub fn kind(&self) -> AnchorKind {
        match self.cert {
            Some(_) => AnchorKind::Certificate,
            None => AnchorKind::PublicKey,
        }
    }

    /// Its PEM block.
    pub fn to_pem(&self) -> String {
        pem::encode(self.kind().label(), &self.der)
    }
}

/// The PEM of `anchors`, one block each, in order: a trust file's content.
pub fn to_pem<'a>(anchors: impl IntoIterator<Item = &'a Anchor>) -> Vec<u8> {
    anchors
        .into_iter()
        .map(Anchor::to_pem)
        .collect::<String>()
        .into_bytes()
}

/// The anchors of a trust file holding `kind` blocks, in order: at least one, every PEM
/// block of that kind, each parsing.
pub fn parse(kind: AnchorKind, bytes: &[u8]) -> Result<Vec<Anchor>> {
    let mut anchors = Vec::new();
    for (n, section) in <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes).enumerate() {
        let (section, der) =
            section.map_err(|e| anyhow!("malformed PEM block {}: {}", n + 1, pem::describe(&e)))?;
        let anchor = match (kind, section) {
            (AnchorKind::Certificate, SectionKind::Certificate) => CertInfo::parse(der.into())
                .map(Anchor::of_cert)
                .map_err(|e| anyhow!("certificate {}: {e:#}", n + 1))?,
            (AnchorKind::PublicKey, SectionKind::PublicKey) => {
                Anchor::of_public_key(der).map_err(|e| anyhow!("public key {}: {e:#}", n + 1))?
            }
            (_, other) => bail!(
                "block {} is {}, not {}",
                n + 1,
                section_label(other),
                kind.label()
            ),
        };
        anchors.push(anchor);
    }
    if anchors.is_empty() {
        bail!("no PEM {} block found", kind.label());
    }
    Ok(anchors)
}

/// The PEM label of a section kind, for messages.
fn section_label(kind: SectionKind) -> &'static str {
    match kind {
        SectionKind::Certificate => "CERTIFICATE",
        SectionKind::PublicKey => "PUBLIC KEY",
        SectionKind::RsaPrivateKey => "RSA PRIVATE KEY",
        SectionKind::PrivateKey => "PRIVATE KEY",
        SectionKind::EcPrivateKey => "EC PRIVATE KEY",
        SectionKind::Crl => "X509 CRL",
        SectionKind::Csr => "CERTIFICATE REQUEST",
        _ => "another kind of block",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::keys::{Algorithm, generate, public_key_pem};
    use crate::testgen::ca_pem;
    use proptest::prelude::*;

    #[test]
    fn certificates_and_public_keys_read_back_in_order() {
        let one = parse(AnchorKind::Certificate, ca_pem().as_bytes()).expect("a CA");
        assert_eq!(one.len(), 1);
        let two = [ca_pem(), ca_pem()].concat();
        let both = parse(AnchorKind::Certificate, two.as_bytes()).expect("two");
        assert_eq!(both.len(), 2);
        assert_eq!(to_pem(&both), two.into_bytes());
        assert_eq!(both[0].pin(), CaPin::of(both[0].cert().expect("a cert")));
        let keys = [generate(Algorithm::EcdsaP256), generate(Algorithm::Rsa2048)]
            .map(|key| public_key_pem(&key.expect("a key")));
        let pub_file = keys.concat();
        let read = parse(AnchorKind::PublicKey, pub_file.as_bytes()).expect("public keys");
        assert_eq!(to_pem(&read), pub_file.into_bytes());
        assert!(read.iter().all(|a| a.cert().is_none()));
    }

    #[test]
    fn a_block_of_another_kind_is_refused_naming_it() {
        let key = generate(Algorithm::EcdsaP256).expect("a key");
        let mixed = [ca_pem(), crate::pki::keys::to_pem(&key).expect("PEM")].concat();
        let error = parse(AnchorKind::Certificate, mixed.as_bytes()).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "block 2 is EC PRIVATE KEY, not CERTIFICATE"
        );
        let error = parse(AnchorKind::PublicKey, ca_pem().as_bytes()).expect_err("refused");
        assert_eq!(error.to_string(), "block 1 is CERTIFICATE, not PUBLIC KEY");
        let error = parse(AnchorKind::Certificate, b"nothing").expect_err("refused");
        assert_eq!(error.to_string(), "no PEM CERTIFICATE block found");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn edited_bundles_are_anchors_or_one_line_errors(
            bytes in crate::testgen::edited([ca_pem(), ca_pem()].concat().into_bytes())
        ) {
            for kind in [AnchorKind::Certificate, AnchorKind::PublicKey] {
                if let Err(e) = parse(kind, &bytes) {
                    prop_assert!(crate::testgen::one_line(&e.to_string()), "{}", e);
                }
            }
        }
    }
}
