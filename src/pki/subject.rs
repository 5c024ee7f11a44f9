//! Subjects rcgen cannot write: rcgen keeps one value per attribute type (two organizations
//! at most, the second under a custom type), so a certificate for a user in three or more
//! groups gets its subject here. The signed certificate's TBS part is re-encoded with the
//! subject (each O its own RDN, then CN, as rcgen and kubepki's other certificates have
//! them) and signed again by the same CA key. Pure DER; no I/O.

use anyhow::{Result, anyhow, bail};
use rcgen::SigningKey;
use rustls_pki_types::CertificateDer;

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
const PRINTABLE_STRING: u8 = 0x13;
const UTF8_STRING: u8 = 0x0c;
const VERSION_TAG: u8 = 0xa0;
/// id-at-organizationName, 2.5.4.10, as DER content.
const ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];
/// id-at-commonName, 2.5.4.3, as DER content.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// The DER Name with one RDN per organization in `orgs`, then the common name `cn`; each a
/// PrintableString when the text allows it, else a UTF8String (Go's rule).
pub fn name_der(orgs: &[String], cn: &str) -> Vec<u8> {
    let attribute = |oid: &[u8], text: &str| {
        let value = match is_printable(text) {
            true => tlv(PRINTABLE_STRING, text.as_bytes()),
            false => tlv(UTF8_STRING, text.as_bytes()),
        };
        tlv(SET, &tlv(SEQUENCE, &[tlv(OID, oid), value].concat()))
    };
    let rdns: Vec<Vec<u8>> = orgs
        .iter()
        .map(|org| attribute(ORGANIZATION, org))
        .chain([attribute(COMMON_NAME, cn)])
        .collect();
    tlv(SEQUENCE, &rdns.concat())
}

/// `cert` with its subject replaced by `subject` (a DER Name), signed again with `key`, the
/// key of the CA that signed it (the signature algorithm is unchanged).
pub fn with_subject(
    cert: &[u8],
    subject: &[u8],
    key: &impl SigningKey,
) -> Result<CertificateDer<'static>> {
    let parts = elements(content_of(SEQUENCE, cert)?)?;
    let [tbs, algorithm, _signature] = parts.as_slice() else {
        bail!("a certificate has three parts");
    };
    let mut fields = elements(content_of(SEQUENCE, tbs)?)?;
    let subject_at = match fields.first().map(|f| f[0]) {
        Some(VERSION_TAG) => 5,
        _ => 4,
    };
    let field = fields
        .get_mut(subject_at)
        .ok_or_else(|| anyhow!("a certificate without a subject"))?;
    *field = subject;
    let tbs = tlv(SEQUENCE, &fields.concat());
    let signature = key
        .sign(&tbs)
        .map_err(|e| anyhow!("signing the certificate again: {e}"))?;
    let bits = [&[0u8][..], &signature].concat();
    let cert = tlv(
        SEQUENCE,
        &[tbs, algorithm.to_vec(), tlv(BIT_STRING, &bits)].concat(),
    );
    Ok(CertificateDer::from(cert))
}

/// Whether `text` is a PrintableString (X.680): letters, digits, space and `'()+,-./:=?`.
fn is_printable(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c))
}

/// A DER TLV.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    match len {
        0..=0x7f => out.push(len as u8),
        _ => {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
    }
    out.extend_from_slice(content);
    out
}

/// The tag, header length and content length of the TLV at the start of `der`.
fn header(der: &[u8]) -> Result<(u8, usize, usize)> {
    let (&tag, rest) = der.split_first().ok_or_else(|| anyhow!("truncated DER"))?;
    let (&first, rest) = rest.split_first().ok_or_else(|| anyhow!("truncated DER"))?;
    if first < 0x80 {
        return Ok((tag, 2, usize::from(first)));
    }
    let count = usize::from(first & 0x7f);
    let bytes = rest
        .get(..count)
        .filter(|_| (1..=4).contains(&count))
        .ok_or_else(|| anyhow!("a DER length of {count} bytes"))?;
    let len = bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
    Ok((tag, 2 + count, len))
}

/// The content of the one TLV `der` holds, which must have `tag`.
fn content_of(tag: u8, der: &[u8]) -> Result<&[u8]> {
    let (found, head, len) = header(der)?;
    if found != tag || der.len() != head + len {
        bail!("unexpected DER: tag {found:#04x}, {} bytes", der.len());
    }
    Ok(&der[head..])
}

/// The consecutive TLVs of `content`, each whole.
fn elements(mut content: &[u8]) -> Result<Vec<&[u8]>> {
    let mut found = Vec::new();
    while !content.is_empty() {
        let (_, head, len) = header(content)?;
        let end = head + len;
        let element = content
            .get(..end)
            .ok_or_else(|| anyhow!("a DER element runs past its parent"))?;
        found.push(element);
        content = &content[end..];
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_rdns_of_o_then_cn() {
        let name = name_der(&["a".into(), "é".into()], "bob");
        assert_eq!(
            name,
            [
                &[0x30, 0x27][..],
                &[
                    0x31, 0x0a, 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x0a, 0x13, 0x01, b'a'
                ],
                &[
                    0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x0a, 0x0c, 0x02, 0xc3, 0xa9
                ],
                &[
                    0x31, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x04, 0x03, 0x13, 0x03
                ],
                b"bob",
            ]
            .concat()
        );
        let long = tlv(OID, &[7u8; 300]);
        assert_eq!(&long[..4], &[OID, 0x82, 0x01, 0x2c]);
        assert_eq!(header(&long).ok(), Some((OID, 4, 300)));
    }

    #[test]
    fn malformed_der_is_an_error() {
        assert!(content_of(SEQUENCE, &[0x30, 0x05, 1]).is_err());
        assert!(content_of(SEQUENCE, &[0x31, 0x00]).is_err());
        assert!(elements(&[0x02, 0x03, 1]).is_err());
        assert!(header(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err());
    }
}
