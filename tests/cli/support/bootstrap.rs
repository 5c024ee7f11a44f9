//! The bootstrap side of the test API server: `cluster-info` from a manifests directory, and
//! bearer-token authentication against the `bootstrap-token-*.yaml` Secrets in it, decided as
//! kube-apiserver's bootstrap-token authenticator does (written here independently of kubepki).

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::endpoint::{Identity, not_found};

/// The API path of the `cluster-info` ConfigMap.
pub const CLUSTER_INFO_PATH: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";

/// Reads a YAML manifest of `dir` as a JSON value.
pub fn read_manifest(dir: &Path, name: &str) -> Option<Value> {
    let text = std::fs::read(dir.join(name)).ok()?;
    serde_yaml::from_slice(&text).ok()
}

/// A decoded `data` entry of a Secret.
pub fn secret_data(secret: &Value, key: &str) -> Option<String> {
    let encoded = secret["data"][key].as_str()?;
    String::from_utf8(BASE64.decode(encoded).ok()?).ok()
}

/// Answers the bootstrap routes: `cluster-info` and files under `<dir>/files/`.
pub fn respond(dir: &Path, request_line: &str) -> Option<(&'static str, String)> {
    let target = request_line.split(' ').nth(1)?;
    if target == CLUSTER_INFO_PATH {
        return Some(match read_manifest(dir, "cluster-info.yaml") {
            Some(config_map) => ("200 OK", config_map.to_string()),
            None => ("404 Not Found", not_found(target)),
        });
    }
    let file = dir.join("files").join(target.trim_start_matches('/'));
    std::fs::read_to_string(file)
        .ok()
        .map(|body| ("200 OK", body))
}

/// The identity of `bearer` when a Secret of `dir` makes it a valid bootstrap token.
pub fn token_identity(dir: &Path, bearer: &str) -> Option<Identity> {
    let (id, secret_half) = bearer.split_once('.')?;
    let secret = read_manifest(dir, &format!("bootstrap-token-{id}.yaml"))?;
    let valid = secret["type"] == "bootstrap.kubernetes.io/token"
        && secret["metadata"]["namespace"] == "kube-system"
        && secret["metadata"]["name"] == format!("bootstrap-token-{id}").as_str()
        && secret_data(&secret, "token-id").as_deref() == Some(id)
        && secret_data(&secret, "token-secret").as_deref() == Some(secret_half)
        && secret_data(&secret, "usage-bootstrap-authentication").as_deref() == Some("true")
        && !expired(&secret);
    if !valid {
        return None;
    }
    let extra = secret_data(&secret, "auth-extra-groups").unwrap_or_default();
    Some(Identity {
        user: format!("system:bootstrap:{id}"),
        groups: std::iter::once("system:bootstrappers")
            .chain(extra.split(',').filter(|g| !g.is_empty()))
            .map(str::to_string)
            .collect(),
    })
}

fn expired(secret: &Value) -> bool {
    secret_data(secret, "expiration").is_some_and(|text| {
        OffsetDateTime::parse(&text, &Rfc3339).map_or(true, |at| at <= OffsetDateTime::now_utc())
    })
}
