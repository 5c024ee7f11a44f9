//! CA pins as kubeadm writes and reads them (`pubkeypin`): `sha256:` + hex of SHA-256 over a
//! certificate's DER SubjectPublicKeyInfo. Parsing accepts the format in any case and the hex
//! in any case; only `sha256` exists.

use crate::inspect::CertInfo;
use crate::pem;
use anyhow::{Result, anyhow};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::fmt;
use std::str::FromStr;

/// A `sha256:<hex>` public-key pin.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CaPin([u8; 32]);

impl CaPin {
    /// The pin of a certificate's public key.
    pub fn of(cert: &CertInfo) -> Result<CaPin> {
        cert.pin()?.parse().map_err(anyhow::Error::msg)
    }

    /// The pins of every certificate in a PEM bundle (later blocks included).
    pub fn of_bundle(pem_bundle: &[u8]) -> Result<Vec<CaPin>> {
        pem::first_certificate(pem_bundle)?;
        CertificateDer::pem_slice_iter(pem_bundle)
            .map(|der| {
                let der = der.map_err(|e| {
                    anyhow!("malformed PEM certificate block: {}", pem::describe(&e))
                })?;
                CaPin::of(&CertInfo::parse(der)?)
            })
            .collect()
    }
}

impl fmt::Display for CaPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", crate::inspect::hex(&self.0))
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
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(invalid("not 32 bytes"));
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| invalid("not hex"))?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| invalid("not hex"))?;
        }
        Ok(CaPin(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
