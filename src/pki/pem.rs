//! PEM (and hex) text: encoding as Go's `pem.Encode` does (64-column lines, `\n` endings) and reading
//! certificates with the `PemObject` API of `rustls-pki-types` (the maintained successor of
//! the archived `rustls-pemfile`).

use anyhow::{Result, anyhow, bail};
use base64::Engine;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// One PEM block with `label` around `der`, ending in a newline.
pub fn encode(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

/// Lower-case hex, as kubeadm prints pins and certificate keys.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first `CERTIFICATE` block of `pem` (later blocks are intermediates, as for kubeadm).
pub fn first_certificate(pem: &[u8]) -> Result<CertificateDer<'static>> {
    match CertificateDer::pem_slice_iter(pem).next() {
        Some(cert) => {
            cert.map_err(|e| anyhow!("malformed PEM certificate block: {}", describe(&e)))
        }
        None => bail!("no PEM CERTIFICATE block found"),
    }
}

/// A PEM reading error in words: `rustls-pki-types` shows the markers as lists of bytes.
pub fn describe(error: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error;
    match error {
        Error::MissingSectionEnd { end_marker } => format!(
            "no end line -----END {}-----",
            String::from_utf8_lossy(end_marker)
        ),
        Error::IllegalSectionStart { line } => {
            format!("malformed begin line {:?}", String::from_utf8_lossy(line))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testgen::ca_pem;
    use proptest::prelude::*;

    #[test]
    fn encodes_64_column_lines() {
        let text = encode("CERTIFICATE", &[7u8; 100]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last(), Some(&"-----END CERTIFICATE-----"));
        assert!(text.ends_with('\n'));
        assert_eq!(
            first_certificate(text.as_bytes()).unwrap().as_ref(),
            &[7u8; 100]
        );
    }

    #[test]
    fn a_truncated_block_names_its_end_line_in_words() {
        let text = encode("CERTIFICATE", &[7u8; 100]);
        let error = first_certificate(&text.as_bytes()[..text.len() / 2]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "malformed PEM certificate block: no end line -----END CERTIFICATE-----"
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(first_certificate(b"not pem").is_err());
        assert!(
            first_certificate(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")
                .is_err()
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn any_der_is_encoded_and_read_back(der in any::<Vec<u8>>()) {
            let text = encode("CERTIFICATE", &der);
            prop_assert!(text.lines().all(|line| line.len() <= 64));
            prop_assert_eq!(first_certificate(text.as_bytes()).map(|c| c.to_vec()).ok(), Some(der));
        }

        #[test]
        fn a_certificate_cut_before_its_end_line_is_an_error(
            pem in Just(ca_pem()),
            at in any::<prop::sample::Index>(),
        ) {
            let end = pem.find("-----END CERTIFICATE-----").unwrap() + 25;
            prop_assert!(first_certificate(&pem.as_bytes()[..at.index(end)]).is_err());
        }
    }
}
