//! CA pins as kubeadm writes and reads them (`pubkeypin`): `sha256:` + hex of SHA-256 over a
//! certificate's DER SubjectPublicKeyInfo. Parsing accepts the format in any case and the hex
//! in any case; only `sha256` exists.

use crate::pki::inspect::CertInfo;
use crate::pki::pem;
use anyhow::{Result, anyhow};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::fmt;
use std::str::FromStr;

/// A `sha256:<hex>` public-key pin.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CaPin([u8; 32]);

impl CaPin {
    /// The pin of a certificate's public key: SHA-256 over its DER SubjectPublicKeyInfo.
    pub fn of(cert: &CertInfo) -> CaPin {
        CaPin::of_spki(&cert.spki_der)
    }

    /// The pin of a DER SubjectPublicKeyInfo.
    pub fn of_spki(spki_der: &[u8]) -> CaPin {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki_der);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        CaPin(bytes)
    }

    /// The pins of every certificate in a PEM bundle (later blocks included).
    pub fn of_bundle(pem_bundle: &[u8]) -> Result<Vec<CaPin>> {
        pem::first_certificate(pem_bundle)?;
        CertificateDer::pem_slice_iter(pem_bundle)
            .map(|der| {
                let der = der.map_err(|e| {
                    anyhow!("malformed PEM certificate block: {}", pem::describe(&e))
                })?;
                CertInfo::parse(der).map(|cert| CaPin::of(&cert))
            })
            .collect()
    }
}

impl fmt::Display for CaPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", crate::pki::pem::hex(&self.0))
    }
}

impl serde::Serialize for CaPin {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Debug for CaPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaPin({self})")
    }
}

impl FromStr for CaPin {
    type Err = String;

    fn from_str(text: &str) -> Result<CaPin, String> {
        let invalid =
            |why: &str| format!("{text:?} is not a CA pin sha256:<64 hex digits> ({why})");
        let (format, hex) = text
            .split_once(':')
            .ok_or_else(|| invalid("no format prefix"))?;
        if !format.eq_ignore_ascii_case("sha256") {
            return Err(invalid("only sha256 pins exist"));
        }
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid("not hex"));
        }
        if hex.len() != 64 {
            return Err(invalid("not 32 bytes"));
        }
        let digit = |b: u8| char::from(b).to_digit(16).unwrap_or(0) as u8;
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
            *byte = (digit(pair[0]) << 4) | digit(pair[1]);
        }
        Ok(CaPin(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEX: &str = "7d1c8d5e0c7e6c1f0a3b0e2b4c1d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d";

    #[test]
    fn parses_any_case_and_prints_lower_case() {
        let upper = format!("SHA256:{}", HEX.to_uppercase());
        let pin: CaPin = upper.parse().unwrap();
        assert_eq!(pin.to_string(), format!("sha256:{HEX}"));
        assert_eq!(pin, format!("sha256:{HEX}").parse().unwrap());
    }

    #[test]
    fn refuses_other_formats_and_lengths() {
        for bad in [
            HEX.to_string(),
            format!("md5:{HEX}"),
            format!("sha256:{}", &HEX[1..]),
            format!("sha256:{}zz", &HEX[2..]),
            "sha256:".to_string(),
        ] {
            assert!(bad.parse::<CaPin>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_plus_sign_is_not_a_hex_digit() {
        let signed = format!("sha256:{}", "+0".repeat(32));
        assert!(signed.parse::<CaPin>().is_err(), "{signed} accepted");
    }

    /// Whether `text` is `sha256:` (any case) and 64 hex digits.
    fn has_pin_shape(text: &str) -> bool {
        text.split_once(':').is_some_and(|(format, hex)| {
            format.eq_ignore_ascii_case("sha256")
                && hex.len() == 64
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
        })
    }

    fn check_pin_parse(text: &str) -> Result<(), TestCaseError> {
        match text.parse::<CaPin>() {
            Ok(pin) => {
                prop_assert!(has_pin_shape(text), "{text:?} accepted");
                prop_assert_eq!(pin.to_string(), text.to_ascii_lowercase());
            }
            Err(e) => {
                prop_assert!(!has_pin_shape(text), "{text:?} refused: {e}");
                prop_assert!(crate::testgen::one_line(&e), "{}", e);
            }
        }
        Ok(())
    }

    /// A format prefix and 63 to 65 characters, mostly hex digits.
    fn pin_like() -> impl Strategy<Value = String> {
        let prefix = prop::sample::select(vec!["sha256:", "SHA256:", "sha256", "md5:", ":", ""]);
        let digit = prop_oneof![
            60 => prop::char::ranges(vec!['0'..='9', 'a'..='f', 'A'..='F'].into()),
            1 => prop::sample::select(vec!['+', '-', 'g', ' ', ':', 'é']),
        ];
        (prefix, prop::collection::vec(digit, 63..=65))
            .prop_map(|(prefix, digits)| format!("{prefix}{}", String::from_iter(digits)))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn any_text_is_a_pin_only_in_the_pin_shape(text in any::<String>()) {
            check_pin_parse(&text)?;
        }

        #[test]
        fn pin_like_text_is_a_pin_only_in_the_pin_shape(text in pin_like()) {
            check_pin_parse(&text)?;
        }

        #[test]
        fn pins_print_and_parse_back(bytes in any::<[u8; 32]>()) {
            let pin = CaPin(bytes);
            let text = pin.to_string();
            prop_assert!(text.starts_with("sha256:") && has_pin_shape(&text), "{}", text);
            prop_assert_eq!(text.parse::<CaPin>(), Ok(pin));
        }

        #[test]
        fn any_bytes_give_pins_or_an_error(bytes in any::<Vec<u8>>()) {
            let _ = CaPin::of_bundle(&bytes);
        }
    }
}
