//! The controller manager and the scheduler at work on their kubeconfigs (leases renewed as
//! themselves, the root CA published), and service-account tokens signed with `sa.key`:
//! the controller manager's (its token Secrets) and the API server's (TokenRequest), both
//! accepted by the API server, which verifies them with `sa.pub` — as does this test, on its
//! own. A token signed with another key is refused.

use super::identities::identity;
use crate::support::controlplane::ControlPlane;
use crate::support::endpoint::Identity;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, UnparsedPublicKey, VerificationAlgorithm};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD as BASE64URL};
use rustls::pki_types::SubjectPublicKeyInfoDer;
use rustls::pki_types::pem::PemObject;
use std::time::Duration;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

/// How long a controller may take to do what is awaited of it.
const CONTROLLER_WAIT: Duration = Duration::from_secs(90);

/// The leases, and the user that must renew each.
const LEADERS: [(&str, &str); 2] = [
    ("kube-controller-manager", "system:kube-controller-manager"),
    ("kube-scheduler", "system:kube-scheduler"),
];

/// Both controllers renew their lease as their kubeconfig's user (per the audit log), and
/// the controller manager's `root-ca-cert-publisher` publishes `kube-root-ca.crt` equal to
/// `ca.crt` in every namespace looked at.
pub fn leaders_and_root_ca(plane: &ControlPlane) {
    for (lease, user) in LEADERS {
        let path = format!("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{lease}");
        let renewer = plane.wait(
            &format!("a renewal of lease {lease}"),
            CONTROLLER_WAIT,
            |p| {
                let events = p.audit().events();
                let renewal = events
                    .into_iter()
                    .rev()
                    .find(|e| e.verb == "update" && e.path() == path && e.code == 200);
                renewal
                    .map(|e| e.identity.user)
                    .ok_or_else(|| "none yet".to_string())
            },
        );
        assert_eq!(renewer, user, "who renews lease {lease}");
    }
    let ca = String::from_utf8_lossy(&plane.tree.read("pki/ca.crt")).into_owned();
    for namespace in ["default", "kube-system", "kube-public"] {
        let published = plane.wait(
            &format!("kube-root-ca.crt in {namespace}"),
            CONTROLLER_WAIT,
            |p| {
                let args = [
                    "-n",
                    namespace,
                    "get",
                    "configmap",
                    "kube-root-ca.crt",
                    "-o",
                    "jsonpath={.data.ca\\.crt}",
                ];
                let out = p.kubectl(&p.kubeconfig("super-admin.conf"), &args);
                match out.status.success() {
                    true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
                    false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
                }
            },
        );
        assert_eq!(
            published, ca,
            "kube-root-ca.crt in {namespace} against ca.crt"
        );
    }
}

/// The controller manager's token Secret of `default/default` and a TokenRequest token
/// verify with `sa.pub` and authenticate as the ServiceAccount; the same claims signed with
/// another key get 401.
pub fn service_account_tokens(plane: &ControlPlane) {
    let sa_pub = plane.tree.read("pki/sa.pub");
    let secret = secret_token(plane);
    let requested = request_token(plane, "default", "default");
    let expected = identity(
        "system:serviceaccount:default:default",
        &["system:serviceaccounts", "system:serviceaccounts:default"],
    );
    for (what, token) in [
        ("the token Secret", &secret),
        ("a TokenRequest token", &requested),
    ] {
        verify_jws(token, &sa_pub).unwrap_or_else(|e| panic!("{what} against sa.pub: {e}"));
        assert_eq!(
            bearer_whoami(plane, token),
            expected,
            "{what}, as the API server saw it"
        );
    }
    let forged = forge(&requested);
    assert!(
        verify_jws(&forged, &sa_pub).is_err(),
        "a forged token verified with sa.pub"
    );
    let bearer = format!("Bearer {forged}");
    let answer = plane.client(None).get(
        "/api/v1/namespaces/default/configmaps",
        &[("Authorization", &bearer)],
    );
    assert_eq!(
        answer.status, 401,
        "a token signed with another key: {}",
        answer.body
    );
}

/// Who a bearer token is to the API server.
pub fn bearer_whoami(plane: &ControlPlane, token: &str) -> Identity {
    let bearer = format!("Bearer {token}");
    let client = plane.client(None);
    plane.whoami_by(|path| {
        client.get(path, &[("Authorization", &bearer)]);
    })
}

/// The token the controller manager's token controller signs into a Secret of type
/// `kubernetes.io/service-account-token` for `default/default`, once there. (Since v1.24 it
/// makes no such Secret of its own; it still fills one that is created, as here, with
/// `kubectl apply`, so that every call finds the same Secret.)
pub fn secret_token(plane: &ControlPlane) -> String {
    let admin = plane.kubeconfig("super-admin.conf");
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: default-token-kubepki\n  \
                  namespace: default\n  annotations:\n    \
                  kubernetes.io/service-account.name: default\n\
                  type: kubernetes.io/service-account-token\n";
    // The token controller deletes such a Secret when its ServiceAccount does not exist
    // yet: wait for the ServiceAccount controller's `default` first.
    plane.wait("ServiceAccount default/default", CONTROLLER_WAIT, |p| {
        let out = p.kubectl(
            &admin,
            &["-n", "default", "get", "serviceaccount", "default"],
        );
        match out.status.success() {
            true => Ok(()),
            false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        }
    });
    let out = plane.kubectl_with_stdin(&admin, &["apply", "-f", "-"], Some(secret.as_bytes()));
    if !out.status.success() {
        plane.fail(&format!(
            "kubectl apply of a service-account-token Secret: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    plane.wait(
        "the token of Secret default/default-token-kubepki",
        CONTROLLER_WAIT,
        |p| {
            let data = p.kubectl(
                &admin,
                &[
                    "-n",
                    "default",
                    "get",
                    "secret",
                    "default-token-kubepki",
                    "-o",
                    "jsonpath={.data.token}",
                ],
            );
            let data = String::from_utf8_lossy(&data.stdout).trim().to_string();
            if data.is_empty() {
                return Err("no token yet".into());
            }
            let token = BASE64.decode(data).map_err(|e| e.to_string())?;
            String::from_utf8(token).map_err(|e| e.to_string())
        },
    )
}

/// A token of ServiceAccount `namespace/name` from the TokenRequest API (signed by the API
/// server with `--service-account-signing-key-file`), through `kubectl create --raw`.
pub fn request_token(plane: &ControlPlane, namespace: &str, name: &str) -> String {
    let uri = format!("/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token");
    let body = br#"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":3600}}"#;
    let admin = plane.kubeconfig("super-admin.conf");
    let out = plane.kubectl_with_stdin(&admin, &["create", "--raw", &uri, "-f", "-"], Some(body));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "TokenRequest for {namespace}/{name}: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    answer["status"]["token"]
        .as_str()
        .expect("a token")
        .to_string()
}

/// Checks a JWS (compact form, RS256 or ES256) against the public key `spki_pem`.
fn verify_jws(token: &str, spki_pem: &[u8]) -> Result<(), String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, sig] = parts[..] else {
        return Err(format!("{} parts, not 3", parts.len()));
    };
    let decode = |part: &str| BASE64URL.decode(part).map_err(|e| e.to_string());
    let header: serde_json::Value =
        serde_json::from_slice(&decode(header)?).map_err(|e| e.to_string())?;
    let algorithm: &'static dyn VerificationAlgorithm = match header["alg"].as_str() {
        Some("RS256") => &signature::RSA_PKCS1_2048_8192_SHA256,
        Some("ES256") => &signature::ECDSA_P256_SHA256_FIXED,
        other => return Err(format!("algorithm {other:?}")),
    };
    let spki = SubjectPublicKeyInfoDer::from_pem_slice(spki_pem).map_err(|e| e.to_string())?;
    let (_, info) = SubjectPublicKeyInfo::from_der(spki.as_ref()).map_err(|e| e.to_string())?;
    let key = UnparsedPublicKey::new(algorithm, info.subject_public_key.data.to_vec());
    key.verify(format!("{}.{payload}", parts[0]).as_bytes(), &decode(sig)?)
        .map_err(|_| "the signature does not verify".to_string())
}

/// `token`'s claims signed (ES256) with a new key that is not `sa.key`.
fn forge(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("a JWS payload");
    let header = BASE64URL.encode(br#"{"alg":"ES256","typ":"JWT"}"#);
    let signing_input = format!("{header}.{payload}");
    let key = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).expect("a key");
    let sig = key
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .expect("a signature");
    format!("{signing_input}.{}", BASE64URL.encode(sig.as_ref()))
}
