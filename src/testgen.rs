//! Proptest strategies shared by the parser tests: valid DNS names, and edits that break a
//! valid input the way a disk, a copy-paste or a hand edit does (truncation, a flipped or
//! inserted byte, a corrupted base64 character, a changed PEM label). Test-only.

use proptest::prelude::*;
use proptest::sample::Index;

/// A lower-case RFC 1123 subdomain of one to four labels that is not all digits (those read
/// as IP addresses).
pub fn dns_name() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", 1..5)
        .prop_map(|labels| labels.join("."))
        .prop_filter("a DNS name is at most 253 bytes", |name| name.len() <= 253)
        .prop_filter("an all-digit name reads as an IP address", |name| {
            name.bytes().any(|b| b != b'.' && !b.is_ascii_digit())
        })
}

/// The labels a PEM block may be changed to.
const LABELS: &[&str] = &[
    "CERTIFICATE",
    "RSA PRIVATE KEY",
    "EC PRIVATE KEY",
    "PRIVATE KEY",
    "PUBLIC KEY",
    "X",
    "",
];

const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";

/// One edit of a valid input; positions are fractions of the input's length.
#[derive(Clone, Debug)]
pub enum Edit {
    /// Everything from here on is cut.
    Truncate(Index),
    /// One byte XORed with a non-zero mask.
    Flip(Index, u8),
    /// One byte replaced by a base64 character: PEM framing intact, DER corrupted.
    Base64(Index, u8),
    /// A byte inserted.
    Insert(Index, u8),
    /// A byte removed.
    Delete(Index),
    /// The label of one `-----BEGIN`/`-----END` line replaced.
    Relabel(Index, &'static str),
}

/// Any edit; base64 ones weigh more, as they get past the PEM framing to the DER parsers.
fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        1 => any::<Index>().prop_map(Edit::Truncate),
        1 => (any::<Index>(), 1..=u8::MAX).prop_map(|(at, mask)| Edit::Flip(at, mask)),
        3 => (any::<Index>(), prop::sample::select(BASE64)).prop_map(|(at, c)| Edit::Base64(at, c)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Edit::Insert(at, byte)),
        1 => any::<Index>().prop_map(Edit::Delete),
        1 => (any::<Index>(), prop::sample::select(LABELS)).prop_map(|(at, l)| Edit::Relabel(at, l)),
    ]
}

impl Edit {
    fn apply(&self, bytes: &mut Vec<u8>) {
        let len = bytes.len();
        let at = |index: &Index| index.index(len.max(1)).min(len);
        match self {
            Edit::Truncate(i) => bytes.truncate(at(i)),
            Edit::Flip(i, mask) if len > 0 => bytes[i.index(len)] ^= mask,
            Edit::Base64(i, c) if len > 0 => bytes[i.index(len)] = *c,
            Edit::Insert(i, byte) => bytes.insert(i.index(len + 1), *byte),
            Edit::Delete(i) if len > 0 => {
                bytes.remove(i.index(len));
            }
            Edit::Relabel(i, label) => relabel(bytes, i, label),
            _ => {}
        }
    }
}

/// Replaces the label of the chosen `-----BEGIN `/`-----END ` line, if there is one.
fn relabel(bytes: &mut Vec<u8>, which: &Index, label: &str) {
    let starts: Vec<usize> = (0..bytes.len())
        .filter(|&i| bytes[i..].starts_with(b"-----BEGIN ") || bytes[i..].starts_with(b"-----END "))
        .map(|i| i + if bytes[i + 5] == b'B' { 11 } else { 9 })
        .collect();
    if starts.is_empty() {
        return;
    }
    let start = *which.get(&starts);
    let end = bytes[start..]
        .windows(5)
        .position(|w| w == b"-----")
        .map_or(bytes.len(), |n| start + n);
    bytes.splice(start..end, label.bytes());
}

/// `valid` after one to three edits.
pub fn edited(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(edit(), 1..4).prop_map(move |edits| {
        let mut bytes = valid.clone();
        for edit in &edits {
            edit.apply(&mut bytes);
        }
        bytes
    })
}

/// Whether `text` has no line break, as every error message must.
pub fn one_line(text: &str) -> bool {
    !text.contains(['\n', '\r'])
}

/// A self-signed ECDSA P-256 CA certificate, PEM.
pub fn ca_pem() -> String {
    let now = time::OffsetDateTime::now_utc();
    let request = crate::pki::issue::CertRequest {
        cn: "kubernetes".into(),
        orgs: vec![],
        dns_names: vec!["kubernetes".into()],
        ips: vec!["10.96.0.1".parse().expect("an IP")],
        ekus: vec![],
        is_ca: true,
        not_before: now,
        not_after: now + time::Duration::days(1),
    };
    let key = crate::pki::keys::generate(crate::pki::keys::Algorithm::EcdsaP256).expect("a key");
    let der = crate::pki::issue::self_signed_ca(&request, &key).expect("a CA");
    crate::pki::pem::encode("CERTIFICATE", &der)
}
