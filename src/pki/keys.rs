//! Private keys: generation per algorithm, kubeadm's on-disk formats (PKCS#1
//! `RSA PRIVATE KEY`, SEC1 `EC PRIVATE KEY` with the named curve, PKIX `PUBLIC KEY`), and
//! loading any of those (or PKCS#8) back, converted to PKCS#8 for rcgen.

use anyhow::{Context, Result, anyhow, bail};
use pkcs8::der::asn1::{AnyRef, ObjectIdentifier};
use pkcs8::der::{Decode, Encode};
use rcgen::{KeyPair, PublicKeyData, RsaKeySize, SignatureAlgorithm};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// A key algorithm, named as kubeadm's `encryptionAlgorithm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RSA, 2048-bit modulus (kubeadm's default).
    Rsa2048,
    /// RSA, 3072-bit modulus.
    Rsa3072,
    /// RSA, 4096-bit modulus.
    Rsa4096,
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
}

impl Algorithm {
    /// Every algorithm with its kubeadm name.
    pub const ALL: [(Algorithm, &'static str); 5] = [
        (Algorithm::Rsa2048, "RSA-2048"),
        (Algorithm::Rsa3072, "RSA-3072"),
        (Algorithm::Rsa4096, "RSA-4096"),
        (Algorithm::EcdsaP256, "ECDSA-P256"),
        (Algorithm::EcdsaP384, "ECDSA-P384"),
    ];

    /// The kubeadm name, e.g. `RSA-2048`.
    pub fn name(self) -> &'static str {
        Algorithm::ALL
            .iter()
            .find(|(alg, _)| *alg == self)
            .map_or("", |(_, name)| name)
    }
}

impl FromStr for Algorithm {
    type Err = String;

    fn from_str(text: &str) -> Result<Algorithm, String> {
        Algorithm::ALL
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(text))
            .map(|(alg, _)| *alg)
            .ok_or_else(|| {
                let names: Vec<&str> = Algorithm::ALL.iter().map(|(_, n)| *n).collect();
                format!(
                    "unknown algorithm {text:?} (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Generates a new key pair; RSA keys are signed with SHA-256, P-256 with SHA-256 and P-384
/// with SHA-384, as Go does.
pub fn generate(algorithm: Algorithm) -> Result<KeyPair> {
    let rsa = |size| KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size);
    match algorithm {
        Algorithm::Rsa2048 => rsa(RsaKeySize::_2048),
        Algorithm::Rsa3072 => rsa(RsaKeySize::_3072),
        Algorithm::Rsa4096 => rsa(RsaKeySize::_4096),
        Algorithm::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        Algorithm::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
    }
    .map_err(|e| anyhow!("generating a {algorithm} key: {e}"))
}

/// Generates one key per entry of `algorithms`, in that order, on all cores: each worker
/// takes the next index from a shared counter (a work queue sized to the cores, not a
/// thread per key), so one slow RSA key does not hold up the rest. `on_done` hears, on the
/// calling thread, how many keys are done each time one is.
pub fn generate_all(algorithms: &[Algorithm], on_done: &dyn Fn(usize)) -> Result<Vec<KeyPair>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(algorithms.len());
    let next = AtomicUsize::new(0);
    let (sender, receiver) = std::sync::mpsc::channel();
    let mut slots: Vec<Option<Result<KeyPair>>> = algorithms.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let (sender, next) = (sender.clone(), &next);
            scope.spawn(move || {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(algorithm) = algorithms.get(index) else {
                        break;
                    };
                    if sender.send((index, generate(*algorithm))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        for (done, (index, key)) in receiver.iter().enumerate() {
            slots[index] = Some(key);
            on_done(done + 1);
        }
    });
    slots
        .into_iter()
        .map(|key| key.unwrap_or_else(|| Err(anyhow!("a key generation worker stopped"))))
        .collect()
}

/// The private key as kubeadm writes it: PKCS#1 for RSA, SEC1 with curve parameters and
/// public key for ECDSA.
pub fn to_pem(key: &KeyPair) -> Result<String> {
    let info = pkcs8::PrivateKeyInfo::from_der(key.serialized_der())
        .map_err(|e| anyhow!("re-reading a generated key: {e}"))?;
    if info.algorithm.oid == RSA_ENCRYPTION {
        return Ok(crate::pki::pem::encode("RSA PRIVATE KEY", info.private_key));
    }
    let curve = curve_of(&info.algorithm)?;
    let inner = sec1::EcPrivateKey::from_der(info.private_key)
        .map_err(|e| anyhow!("re-reading a generated EC key: {e}"))?;
    let public_key = key.public_key_raw();
    let sec1_key = sec1::EcPrivateKey {
        private_key: inner.private_key,
        parameters: Some(sec1::EcParameters::NamedCurve(curve)),
        public_key: Some(public_key),
    };
    let der = sec1_key
        .to_der()
        .map_err(|e| anyhow!("encoding an EC key: {e}"))?;
    Ok(crate::pki::pem::encode("EC PRIVATE KEY", &der))
}

/// The public key as PKIX `PUBLIC KEY` PEM (`sa.pub`).
pub fn public_key_pem(key: &KeyPair) -> String {
    crate::pki::pem::encode("PUBLIC KEY", &key.subject_public_key_info())
}

/// Loads a private key from PEM: `RSA PRIVATE KEY`, `EC PRIVATE KEY` (P-256 or P-384) or
/// `PRIVATE KEY` (PKCS#8) holding one of those. Anything else is an error.
pub fn from_pem(pem: &[u8]) -> Result<KeyPair> {
    let key = pem_private_key(pem)?;
    let pkcs8_der = match &key {
        PrivateKeyDer::Pkcs1(der) => wrap_pkcs8(RSA_ENCRYPTION, None, der.secret_pkcs1_der())?,
        PrivateKeyDer::Sec1(der) => {
            let ec = sec1::EcPrivateKey::from_der(der.secret_sec1_der())
                .map_err(|e| anyhow!("malformed EC private key: {e}"))?;
            let curve = match ec.parameters {
                Some(sec1::EcParameters::NamedCurve(oid)) => oid,
                None => bail!("EC private key has no curve parameters"),
            };
            wrap_pkcs8(EC_PUBLIC_KEY, Some(curve), der.secret_sec1_der())?
        }
        PrivateKeyDer::Pkcs8(der) => der.secret_pkcs8_der().to_vec(),
        _ => bail!("unsupported private key format"),
    };
    let info = pkcs8::PrivateKeyInfo::from_der(&pkcs8_der)
        .map_err(|e| anyhow!("malformed private key: {e}"))?;
    let signature = signature_algorithm(&info.algorithm)?;
    let pkcs8 = rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8_der.as_slice());
    KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, signature)
        .map_err(|e| anyhow!("invalid private key: {e}"))
}

/// The first private key block of `pem`.
fn pem_private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => anyhow!("no PEM private key block found"),
        e => anyhow!(
            "malformed PEM private key block: {}",
            crate::pki::pem::describe(&e)
        ),
    })
}

fn wrap_pkcs8(
    oid: ObjectIdentifier,
    curve: Option<ObjectIdentifier>,
    inner: &[u8],
) -> Result<Vec<u8>> {
    let parameters = match &curve {
        Some(curve) => Some(AnyRef::from(curve)),
        None => Some(AnyRef::NULL),
    };
    let info = pkcs8::PrivateKeyInfo {
        algorithm: pkcs8::AlgorithmIdentifierRef { oid, parameters },
        private_key: inner,
        public_key: None,
    };
    info.to_der()
        .map_err(|e| anyhow!("converting a private key to PKCS#8: {e}"))
}

fn curve_of(algorithm: &pkcs8::AlgorithmIdentifierRef<'_>) -> Result<ObjectIdentifier> {
    algorithm
        .parameters_oid()
        .map_err(|_| anyhow!("EC key without a named curve"))
}

fn signature_algorithm(
    algorithm: &pkcs8::AlgorithmIdentifierRef<'_>,
) -> Result<&'static SignatureAlgorithm> {
    if algorithm.oid == RSA_ENCRYPTION {
        return Ok(&rcgen::PKCS_RSA_SHA256);
    }
    if algorithm.oid != EC_PUBLIC_KEY {
        bail!("private key is neither RSA nor ECDSA");
    }
    match curve_of(algorithm)? {
        PRIME256V1 => Ok(&rcgen::PKCS_ECDSA_P256_SHA256),
        SECP384R1 => Ok(&rcgen::PKCS_ECDSA_P384_SHA384),
        other => Err(anyhow!(
            "unsupported elliptic curve {other} (expected P-256 or P-384)"
        )),
    }
}

/// The public key inside a private key PEM, read from the key's structure without loading
/// (and validating) it: the RSAPublicKey DER for RSA, the curve point for ECDSA — what a
/// certificate's subjectPublicKey holds. Cheap enough to check every pair of a tree.
pub fn public_key_of(pem: &[u8]) -> Result<Vec<u8>> {
    let key = pem_private_key(pem)?;
    let from_inner = |oid: ObjectIdentifier, inner: &[u8]| match oid {
        RSA_ENCRYPTION => rsa_public_key(inner),
        _ => ec_public_key(inner),
    };
    let public = match &key {
        PrivateKeyDer::Pkcs1(der) => rsa_public_key(der.secret_pkcs1_der()),
        PrivateKeyDer::Sec1(der) => ec_public_key(der.secret_sec1_der()),
        PrivateKeyDer::Pkcs8(der) => pkcs8::PrivateKeyInfo::from_der(der.secret_pkcs8_der())
            .map_err(|e| anyhow!("malformed private key: {e}"))
            .and_then(|info| from_inner(info.algorithm.oid, info.private_key)),
        _ => Err(anyhow!("unsupported private key format")),
    }?;
    match public {
        Some(public) => Ok(public),
        None => from_pem(pem).map(|key| key.public_key_raw().to_vec()),
    }
}

fn rsa_public_key(pkcs1: &[u8]) -> Result<Option<Vec<u8>>> {
    let key = pkcs1::RsaPrivateKey::from_der(pkcs1)
        .map_err(|e| anyhow!("malformed RSA private key: {e}"))?;
    let public = key
        .public_key()
        .to_der()
        .map_err(|e| anyhow!("encoding an RSA public key: {e}"))?;
    Ok(Some(public))
}

/// The SEC1 key's public point, when the file carries it (kubeadm's always do).
fn ec_public_key(sec1: &[u8]) -> Result<Option<Vec<u8>>> {
    let key =
        sec1::EcPrivateKey::from_der(sec1).map_err(|e| anyhow!("malformed EC private key: {e}"))?;
    Ok(key.public_key.map(<[u8]>::to_vec))
}

/// Reads a key from `bytes` of file `path`, naming the file in the error.
pub fn load(path: &std::path::Path, bytes: &[u8]) -> Result<KeyPair> {
    from_pem(bytes).with_context(|| format!("{}: not a valid private key", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testgen::{edited, one_line};
    use proptest::prelude::*;

    fn roundtrip(algorithm: Algorithm, label: &str) {
        let key = generate(algorithm).unwrap();
        let pem = to_pem(&key).unwrap();
        assert!(
            pem.starts_with(&format!("-----BEGIN {label}-----\n")),
            "{pem}"
        );
        let loaded = from_pem(pem.as_bytes()).unwrap();
        assert_eq!(loaded.public_key_raw(), key.public_key_raw());
        assert_eq!(loaded.algorithm(), key.algorithm());
    }

    #[test]
    fn every_algorithm_roundtrips_in_kubeadm_format() {
        roundtrip(Algorithm::Rsa2048, "RSA PRIVATE KEY");
        roundtrip(Algorithm::EcdsaP256, "EC PRIVATE KEY");
        roundtrip(Algorithm::EcdsaP384, "EC PRIVATE KEY");
    }

    #[test]
    fn sec1_keys_carry_the_curve_and_public_key() {
        let key = generate(Algorithm::EcdsaP384).unwrap();
        let pem = to_pem(&key).unwrap();
        let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap();
        let ec = sec1::EcPrivateKey::from_der(der.secret_der()).unwrap();
        assert_eq!(
            ec.parameters,
            Some(sec1::EcParameters::NamedCurve(SECP384R1))
        );
        assert_eq!(ec.public_key, Some(key.public_key_raw()));
    }

    #[test]
    fn pkcs8_input_is_accepted_and_garbage_refused() {
        let key = generate(Algorithm::EcdsaP256).unwrap();
        let loaded = from_pem(key.serialize_pem().as_bytes()).unwrap();
        assert_eq!(loaded.public_key_raw(), key.public_key_raw());
        assert!(from_pem(b"garbage").is_err());
        assert!(
            from_pem(b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n")
                .is_err()
        );
    }

    #[test]
    fn generate_all_keeps_the_order_of_algorithms() {
        let algorithms = [
            Algorithm::EcdsaP384,
            Algorithm::EcdsaP256,
            Algorithm::EcdsaP384,
        ];
        let done = std::cell::Cell::new(0);
        let keys = generate_all(&algorithms, &|n| done.set(n)).unwrap();
        assert_eq!(done.get(), algorithms.len());
        let sizes: Vec<usize> = keys.iter().map(|k| k.public_key_raw().len()).collect();
        assert_eq!(sizes, [97, 65, 97]);
        assert!(generate_all(&[], &|_| {}).unwrap().is_empty());
    }

    #[test]
    fn public_key_of_reads_the_structure_of_every_format() {
        for algorithm in [
            Algorithm::Rsa2048,
            Algorithm::EcdsaP256,
            Algorithm::EcdsaP384,
        ] {
            let key = generate(algorithm).unwrap();
            let kubeadm_pem = to_pem(&key).unwrap();
            assert_eq!(
                public_key_of(kubeadm_pem.as_bytes()).unwrap(),
                key.public_key_raw(),
                "{algorithm}"
            );
            assert_eq!(
                public_key_of(key.serialize_pem().as_bytes()).unwrap(),
                key.public_key_raw(),
                "{algorithm} PKCS#8"
            );
        }
        assert!(
            public_key_of(
                b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"
            )
            .is_err()
        );
    }

    #[test]
    fn algorithm_names_parse() {
        assert_eq!("ECDSA-P384".parse::<Algorithm>(), Ok(Algorithm::EcdsaP384));
        assert!("RSA-1024".parse::<Algorithm>().is_err());
    }

    /// A new key's PEM in kubeadm's format.
    fn kubeadm_pem(algorithm: Algorithm) -> Vec<u8> {
        to_pem(&generate(algorithm).unwrap()).unwrap().into_bytes()
    }

    /// The key readers on `bytes`: no panic, one-line errors naming the file, and the public
    /// key read from the structure is the loaded key's.
    fn check_key_readers(bytes: &[u8]) -> Result<(), TestCaseError> {
        let path = std::path::Path::new("/etc/kubernetes/pki/ca.key");
        let loaded = load(path, bytes);
        if let Err(e) = &loaded {
            let message = format!("{e:#}");
            prop_assert!(one_line(&message), "{}", message);
            prop_assert!(
                message.starts_with("/etc/kubernetes/pki/ca.key: "),
                "{}",
                message
            );
        }
        if let (Ok(key), Ok(public)) = (loaded, public_key_of(bytes)) {
            prop_assert_eq!(public, key.public_key_raw());
        }
        Ok(())
    }

    /// `key` read back from `pem` is the same key.
    fn check_same_key(key: &KeyPair, pem: &str) -> Result<(), TestCaseError> {
        let loaded = from_pem(pem.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(loaded.public_key_raw(), key.public_key_raw());
        prop_assert_eq!(loaded.algorithm(), key.algorithm());
        prop_assert_eq!(to_pem(&loaded).ok(), to_pem(key).ok());
        prop_assert_eq!(
            public_key_of(pem.as_bytes()).ok(),
            Some(key.public_key_raw().to_vec())
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn any_bytes_are_a_key_or_an_error(bytes in any::<Vec<u8>>()) {
            check_key_readers(&bytes)?;
        }

        #[test]
        fn edited_keys_are_keys_or_errors(
            bytes in prop_oneof![
                edited(kubeadm_pem(Algorithm::EcdsaP256)),
                edited(kubeadm_pem(Algorithm::Rsa2048)),
                edited(generate(Algorithm::EcdsaP384).unwrap().serialize_pem().into_bytes()),
            ],
        ) {
            check_key_readers(&bytes)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn algorithm_names_parse_in_any_case_and_nothing_else(text in "(RSA|ECDSA|rsa|ecdsa)?-?(2048|3072|4096|P256|p384|P521|1024)?|\\PC{0,12}") {
            let known = Algorithm::ALL.iter().find(|(_, name)| name.eq_ignore_ascii_case(&text));
            match text.parse::<Algorithm>() {
                Ok(algorithm) => {
                    prop_assert_eq!(known.map(|(a, _)| *a), Some(algorithm));
                    prop_assert_eq!(algorithm.to_string().parse(), Ok(algorithm));
                }
                Err(e) => prop_assert!(known.is_none() && one_line(&e), "{}", e),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn ecdsa_keys_read_back_in_both_formats(
            algorithm in prop::sample::select(vec![Algorithm::EcdsaP256, Algorithm::EcdsaP384]),
        ) {
            let key = generate(algorithm).unwrap();
            check_same_key(&key, &to_pem(&key).unwrap())?;
            check_same_key(&key, &key.serialize_pem())?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3))]

        #[test]
        fn rsa_keys_read_back_in_both_formats(_draw in 0..1u8) {
            let key = generate(Algorithm::Rsa2048).unwrap();
            check_same_key(&key, &to_pem(&key).unwrap())?;
            check_same_key(&key, &key.serialize_pem())?;
        }
    }
}
