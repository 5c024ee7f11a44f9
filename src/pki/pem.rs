//! PEM (and hex) text: encoding as Go's `pem.Encode` does (64-column lines, `\n` endings) and reading
//! certificates with the `PemObject` API of `rustls-pki-types` (the maintained successor of
//! the archived `rustls-pemfile`).

use anyhow::{Result, anyhow, bail};
use base64::Engine;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::{PemObject, SectionKind, SliceIter};

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

/// The private key labels kubepki reads: PKCS#1, SEC1 and PKCS#8.
pub const PRIVATE_KEY_LABELS: &[&str] = &["RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY"];

/// The one PEM block of `pem`, which must carry one of `labels` and be followed by nothing
/// but blank space (text before it is ignored, as Go's `pem.Decode` does): its label and
/// DER. A second block (a private key after a certificate, a foreign CA after the real one)
/// or data after the block is an error naming what was found.
pub fn sole_block(pem: &[u8], labels: &[&str]) -> Result<(String, Vec<u8>)> {
    let mut blocks = blocks(pem, labels, false)?;
    blocks.pop().ok_or_else(|| {
        anyhow!(
            "no PEM block found where one {} belongs",
            labels.join(" or ")
        )
    })
}

/// The PEM blocks of `pem`, each with its label and DER: only blocks labelled one of
/// `labels`, one of them unless `many`, and nothing but blank space after the last (text
/// before the first is ignored).
pub fn blocks(pem: &[u8], labels: &[&str], many: bool) -> Result<Vec<(String, Vec<u8>)>> {
    let found = block_labels(pem);
    let want = labels.join(" or ");
    if let Some(other) = found.iter().find(|l| !labels.contains(&l.as_str())) {
        bail!("a PEM {other} block where only {want} belongs");
    }
    match found.len() {
        0 => bail!("no PEM block found where one {want} belongs"),
        1 => {}
        _ if many => {}
        n => bail!(
            "{n} PEM blocks ({}) where one {want} belongs",
            found.join(", ")
        ),
    }
    let mut sections = SliceIter::<(SectionKind, Vec<u8>)>::new(pem);
    let mut blocks = Vec::new();
    for label in found {
        match sections.next() {
            Some(Ok((_, der))) => blocks.push((label, der)),
            Some(Err(e)) => bail!("malformed PEM {label} block: {}", describe(&e)),
            None => bail!("malformed PEM {label} block"),
        }
    }
    if !sections.remainder().iter().all(u8::is_ascii_whitespace) {
        bail!("data after the last PEM block");
    }
    Ok(blocks)
}

/// The label of every `-----BEGIN …-----` line of `pem`, in order.
pub fn block_labels(pem: &[u8]) -> Vec<String> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    pem.split(|&b| b == b'\n')
        .filter_map(|line| {
            let start = line.windows(BEGIN.len()).position(|w| w == BEGIN)?;
            let label = &line[start + BEGIN.len()..];
            let end = label.windows(5).position(|w| w == b"-----")?;
            Some(String::from_utf8_lossy(&label[..end]).into_owned())
        })
        .collect()
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

    #[test]
    fn one_block_of_the_right_label_and_nothing_after() {
        let cert = encode("CERTIFICATE", &[7u8; 100]);
        let key = encode("EC PRIVATE KEY", &[8u8; 40]);
        let sole = sole_block(
            format!("text before\n{cert}\n\n").as_bytes(),
            &["CERTIFICATE"],
        );
        assert_eq!(sole.unwrap(), ("CERTIFICATE".into(), vec![7u8; 100]));
        let message = |pem: String| {
            sole_block(pem.as_bytes(), &["CERTIFICATE"])
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            message(format!("{cert}{key}")),
            "a PEM EC PRIVATE KEY block where only CERTIFICATE belongs"
        );
        assert_eq!(
            message(format!("{cert}{cert}")),
            "2 PEM blocks (CERTIFICATE, CERTIFICATE) where one CERTIFICATE belongs"
        );
        assert_eq!(
            message(key.clone()),
            "a PEM EC PRIVATE KEY block where only CERTIFICATE belongs"
        );
        assert_eq!(
            message(format!("{cert}garbage")),
            "data after the last PEM block"
        );
        assert_eq!(
            blocks(format!("{cert}{cert}").as_bytes(), &["CERTIFICATE"], true)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            message("nothing".into()),
            "no PEM block found where one CERTIFICATE belongs"
        );
        assert!(sole_block(key.as_bytes(), PRIVATE_KEY_LABELS).is_ok());
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
