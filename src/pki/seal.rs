//! Sealing with a certificate key, exactly as kubeadm's `cryptoutil.EncryptBytes` and
//! `DecryptBytes` (`cmd/kubeadm/app/util/crypto`): AES-256-GCM under the 32 bytes the hex
//! certificate key stands for, a random 12-byte nonce per message, no additional data, and
//! the nonce prepended to the sealed data (`nonce || ciphertext || 16-byte tag`). Values and
//! crypto only: no I/O, and no key ever shown (`Debug` redacts it).

use anyhow::{Result, anyhow};
use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use std::fmt;
use std::str::FromStr;

/// Bytes of a certificate key (kubeadm's `CertificateKeySize`): AES-256.
const KEY_LEN: usize = 32;
/// Bytes of the GCM tag after the ciphertext.
const TAG_LEN: usize = 16;
/// The shortest sealed message: a nonce and the tag of empty data.
const MIN_SEALED_LEN: usize = NONCE_LEN + TAG_LEN;

/// A certificate key: 32 secret bytes, written as 64 hexadecimal characters.
#[derive(Clone, PartialEq, Eq)]
pub struct CertificateKey([u8; KEY_LEN]);

impl CertificateKey {
    /// A new key from the system's random generator (`kubeadm certs certificate-key`).
    pub fn generate() -> Result<CertificateKey> {
        let mut bytes = [0u8; KEY_LEN];
        aws_lc_rs::rand::fill(&mut bytes)
            .map_err(|_| anyhow!("the system random generator failed"))?;
        Ok(CertificateKey(bytes))
    }

    /// The key as kubeadm prints it: 64 lower-case hexadecimal characters.
    pub fn to_hex(&self) -> String {
        super::pem::hex(&self.0)
    }

    fn aead(&self) -> Result<RandomizedNonceKey> {
        RandomizedNonceKey::new(&AES_256_GCM, &self.0)
            .map_err(|_| anyhow!("AES-256-GCM refused the certificate key"))
    }
}

impl FromStr for CertificateKey {
    type Err = anyhow::Error;

    /// Reads 64 hexadecimal characters (either case). The error never quotes the text: it
    /// is a secret, even when mistyped.
    fn from_str(text: &str) -> Result<CertificateKey> {
        let digits = text.as_bytes();
        let hex_value = |digit: u8| char::from(digit).to_digit(16);
        if digits.len() != 2 * KEY_LEN || !digits.iter().all(|d| hex_value(*d).is_some()) {
            return Err(anyhow!(
                "must be {} hexadecimal characters ({KEY_LEN} bytes), as `kubepki certs \
                 certificate-key` prints; got {} characters",
                2 * KEY_LEN,
                text.chars().count()
            ));
        }
        let mut bytes = [0u8; KEY_LEN];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
            let (high, low) = (hex_value(pair[0]), hex_value(pair[1]));
            *byte = (high.unwrap_or_default() * 16 + low.unwrap_or_default()) as u8;
        }
        Ok(CertificateKey(bytes))
    }
}

impl fmt::Debug for CertificateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CertificateKey(<redacted>)")
    }
}

/// Why sealed data did not open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// Shorter than a nonce and a tag: cut short.
    TooShort,
    /// The tag does not verify: another key, or altered data.
    NotAuthentic,
}

/// `plaintext` sealed under `key`: a new random nonce, then the ciphertext and its tag.
pub fn seal(key: &CertificateKey, plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut in_out = plaintext.to_vec();
    let nonce = key
        .aead()?
        .seal_in_place_append_tag(Aad::empty(), &mut in_out)
        .map_err(|_| anyhow!("AES-256-GCM sealing failed"))?;
    let mut sealed = Vec::with_capacity(NONCE_LEN + in_out.len());
    sealed.extend_from_slice(nonce.as_ref());
    sealed.append(&mut in_out);
    Ok(sealed)
}

/// The plaintext of `sealed` (`nonce || ciphertext || tag`), if `key` sealed it unaltered.
pub fn open(key: &CertificateKey, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
    if sealed.len() < MIN_SEALED_LEN {
        return Err(OpenError::TooShort);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError::TooShort)?;
    let mut in_out = ciphertext.to_vec();
    let aead = key.aead().map_err(|_| OpenError::NotAuthentic)?;
    let plaintext = aead
        .open_in_place(nonce, Aad::empty(), &mut in_out)
        .map_err(|_| OpenError::NotAuthentic)?;
    Ok(plaintext.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn key() -> CertificateKey {
        KEY.parse().expect("a valid key")
    }

    /// NIST's GCM test case 14 (AES-256, zero key, zero nonce, one zero block): a fixed
    /// vector, independent of this code, checks the layout `nonce || ciphertext || tag`.
    #[test]
    fn opens_a_known_answer_laid_out_as_kubeadm_does() {
        let zero_key: CertificateKey = "0".repeat(64).parse().expect("a key");
        let ciphertext_and_tag = "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919";
        let sealed: Vec<u8> = [vec![0u8; 12], decode_hex(ciphertext_and_tag)].concat();
        assert_eq!(open(&zero_key, &sealed), Ok(vec![0u8; 16]));
    }

    fn decode_hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn seals_with_a_fresh_nonce_and_opens_only_unaltered_with_the_key() {
        let sealed = seal(&key(), b"-----BEGIN CERTIFICATE-----\n").expect("sealed");
        assert_eq!(sealed.len(), 12 + 28 + 16);
        let again = seal(&key(), b"-----BEGIN CERTIFICATE-----\n").expect("sealed");
        assert_ne!(sealed[..12], again[..12], "a new random nonce each time");
        assert_eq!(
            open(&key(), &sealed).as_deref(),
            Ok(&b"-----BEGIN CERTIFICATE-----\n"[..])
        );
        let other = CertificateKey::generate().expect("a key");
        assert_eq!(open(&other, &sealed), Err(OpenError::NotAuthentic));
        for at in [0, 12, sealed.len() - 1] {
            let mut altered = sealed.clone();
            altered[at] ^= 1;
            assert_eq!(open(&key(), &altered), Err(OpenError::NotAuthentic), "{at}");
        }
        assert_eq!(
            open(&key(), &sealed[..sealed.len() - 1]),
            Err(OpenError::NotAuthentic)
        );
        assert_eq!(open(&key(), &sealed[..27]), Err(OpenError::TooShort));
    }

    #[test]
    fn a_key_is_64_hex_digits_and_never_shown() {
        assert_eq!(key().to_hex(), KEY);
        assert_eq!(
            KEY.to_uppercase().parse::<CertificateKey>().ok(),
            Some(key())
        );
        let generated = CertificateKey::generate().expect("a key");
        assert_eq!(
            generated.to_hex().parse::<CertificateKey>().ok(),
            Some(generated)
        );
        for bad in [&KEY[..62], &format!("{KEY}00"), &KEY.replace('a', "g"), ""] {
            let error = bad
                .parse::<CertificateKey>()
                .expect_err("refused")
                .to_string();
            assert!(error.starts_with("must be 64 hexadecimal"), "{error}");
            assert!(bad.len() < 8 || !error.contains(&bad[..8]), "{error}");
        }
        assert_eq!(format!("{:?}", key()), "CertificateKey(<redacted>)");
    }

    proptest! {
        #[test]
        fn any_text_is_a_key_or_a_one_line_error(text in ".{0,80}") {
            match text.parse::<CertificateKey>() {
                Ok(parsed) => prop_assert_eq!(parsed.to_hex(), text.to_lowercase()),
                Err(error) => prop_assert!(!error.to_string().contains('\n')),
            }
        }

        #[test]
        fn any_sealed_data_opens_to_itself_and_any_edit_is_refused(
            plaintext in proptest::collection::vec(any::<u8>(), 0..300),
            flip in any::<prop::sample::Index>(),
        ) {
            let sealed = seal(&key(), &plaintext).expect("sealed");
            prop_assert_eq!(open(&key(), &sealed), Ok(plaintext));
            let mut altered = sealed.clone();
            altered[flip.index(sealed.len())] ^= 0x80;
            prop_assert!(open(&key(), &altered).is_err());
        }
    }
}
