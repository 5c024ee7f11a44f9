//! Detached HS256 JWS over the `cluster-info` kubeconfig, as Kubernetes' cluster-bootstrap
//! library computes it: header `{"alg":"HS256","kid":"<token-id>"}`, key = the token secret,
//! stored as `header..signature` (payload removed). Knows nothing of tokens or files.

use aws_lc_rs::{constant_time, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;

/// The detached JWS of `payload`, signed with `key` and naming `key_id`.
pub fn sign(payload: &str, key_id: &str, key: &[u8]) -> String {
    let header = B64URL.encode(format!(r#"{{"alg":"HS256","kid":"{key_id}"}}"#));
    let signing_input = format!("{header}.{}", B64URL.encode(payload));
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, key),
        signing_input.as_bytes(),
    );
    format!("{header}..{}", B64URL.encode(tag.as_ref()))
}

/// Whether `detached` is exactly the JWS of `payload` with `key_id` and `key` (compared in
/// constant time, the whole string, as cluster-bootstrap does).
pub fn verify(payload: &str, key_id: &str, key: &[u8], detached: &str) -> bool {
    let expected = sign(payload, key_id, key);
    constant_time::verify_slices_are_equal(expected.as_bytes(), detached.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The vector of cluster-bootstrap's `jws_test.go`.
    const PAYLOAD: &str = "Hello from the other side. I must have called a thousand times.";
    const SIGNED: &str =
        "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..VShe2taLd-YTrmWuRkcL_8QTNDHYxQIEBsAYYiIj1_8";

    #[test]
    fn matches_the_upstream_test_vector() {
        assert_eq!(sign(PAYLOAD, "joshua", b"my voice is my passcode"), SIGNED);
        assert!(verify(
            PAYLOAD,
            "joshua",
            b"my voice is my passcode",
            SIGNED
        ));
    }

    #[test]
    fn a_zero_padded_key_gives_the_same_signature() {
        let mut padded = b"my voice is my passcode".to_vec();
        padded.resize(32, 0);
        assert_eq!(sign(PAYLOAD, "joshua", &padded), SIGNED);
    }

    #[test]
    fn any_change_fails_verification() {
        let key = b"my voice is my passcode";
        assert!(!verify(
            PAYLOAD,
            "joshua",
            b"my voice is my passcodf",
            SIGNED
        ));
        assert!(!verify(PAYLOAD, "joshub", key, SIGNED));
        assert!(!verify(&format!("{PAYLOAD} "), "joshua", key, SIGNED));
        assert!(!verify(
            PAYLOAD,
            "joshua",
            key,
            &SIGNED.replace("..", ".x.")
        ));
        assert!(!verify(PAYLOAD, "joshua", key, ""));
    }

    #[test]
    fn round_trips() {
        let signed = sign("apiVersion: v1\n", "abcdef", b"0123456789abcdef");
        assert!(signed.starts_with("eyJhbGciOiJIUzI1NiIsImtpZCI6ImFiY2RlZiJ9.."));
        assert!(verify(
            "apiVersion: v1\n",
            "abcdef",
            b"0123456789abcdef",
            &signed
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn any_detached_signature_is_checked_without_panic(
            payload in any::<String>(),
            key_id in any::<String>(),
            key in any::<Vec<u8>>(),
            detached in any::<String>(),
        ) {
            let expected = sign(&payload, &key_id, &key);
            prop_assert_eq!(verify(&payload, &key_id, &key, &detached), detached == expected);
        }

        #[test]
        fn a_signature_verifies_and_any_change_of_it_does_not(
            payload in any::<String>(),
            key_id in "[a-z0-9]{6}",
            key in "[a-z0-9]{16}",
            at in any::<prop::sample::Index>(),
            replacement in any::<char>(),
        ) {
            let signed = sign(&payload, &key_id, key.as_bytes());
            prop_assert!(verify(&payload, &key_id, key.as_bytes(), &signed));
            let mut changed: Vec<char> = signed.chars().collect();
            *at.get_mut(&mut changed) = replacement;
            let changed: String = changed.into_iter().collect();
            prop_assert_eq!(verify(&payload, &key_id, key.as_bytes(), &changed), changed == signed);
        }
    }
}
