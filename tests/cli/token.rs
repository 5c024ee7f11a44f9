//! `kubepki token generate|create|manifests`, and the manifests `init` writes: every object is
//! parsed back and checked field by field against what kubeadm creates; cluster-info's JWS is
//! recomputed here independently (HMAC-SHA256 with the token secret).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::bootstrap::{read_manifest, secret_data};
use crate::support::{TempTree, assert_success, kubepki};

const DEFAULT_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";

/// Runs `kubepki token <args>` on `tree`.
pub fn token(tree: &TempTree, args: &[&str]) -> std::process::Output {
    let mut all: Vec<String> = std::iter::once("token")
        .chain(args.iter().copied())
        .map(String::from)
        .collect();
    all.extend(tree.dir_args());
    kubepki(&all)
}

/// `token create <args>` on `tree`; returns the token it printed.
pub fn create_token(tree: &TempTree, args: &[&str]) -> String {
    let out = token(tree, &[&["create"], args].concat());
    assert_success(&out, "kubepki token create");
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_string()
}

/// Every YAML document of a manifest file, as JSON values.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("a YAML document"))
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

fn is_token(text: &str) -> bool {
    let ok = |part: &str, len: usize| {
        part.len() == len
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    text.split_once('.')
        .is_some_and(|(id, secret)| ok(id, 6) && ok(secret, 16))
}

#[test]
fn generate_prints_distinct_well_formed_tokens() {
    let tokens: Vec<String> = (0..3)
        .map(|_| {
            let out = kubepki(&["token", "generate"]);
            assert_success(&out, "kubepki token generate");
            String::from_utf8(out.stdout).expect("UTF-8")
        })
        .collect();
    for token in &tokens {
        assert!(
            token.ends_with('\n') && is_token(token.trim_end()),
            "{token:?}"
        );
    }
    assert!(tokens[0] != tokens[1] && tokens[1] != tokens[2]);
}

#[test]
fn create_writes_kubeadms_secret() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let before = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("time");
    let token = create_token(&tree, &["--description", "for the workers"]);
    assert!(is_token(&token), "{token:?}");
    let (id, secret_half) = token.split_once('.').expect("a dot");
    let dir = tree.root().join("bootstrap");
    let path = dir.join(format!("bootstrap-token-{id}.yaml"));
    assert_eq!(mode(&path), 0o600);
    let secret = read_manifest(&dir, &format!("bootstrap-token-{id}.yaml")).expect("the Secret");
    assert_eq!(secret["apiVersion"], "v1");
    assert_eq!(secret["kind"], "Secret");
    assert_eq!(
        secret["metadata"],
        json!({"name": format!("bootstrap-token-{id}"), "namespace": "kube-system"})
    );
    assert_eq!(secret["type"], "bootstrap.kubernetes.io/token");
    let keys: Vec<&String> = secret["data"].as_object().expect("data").keys().collect();
    assert_eq!(
        keys,
        [
            "auth-extra-groups",
            "description",
            "expiration",
            "token-id",
            "token-secret",
            "usage-bootstrap-authentication",
            "usage-bootstrap-signing"
        ]
    );
    let data = |key: &str| secret_data(&secret, key).expect(key);
    assert_eq!(data("token-id"), id);
    assert_eq!(data("token-secret"), secret_half);
    assert_eq!(data("auth-extra-groups"), DEFAULT_GROUP);
    assert_eq!(data("description"), "for the workers");
    assert_eq!(data("usage-bootstrap-authentication"), "true");
    assert_eq!(data("usage-bootstrap-signing"), "true");
    let expiration = data("expiration");
    assert!(
        expiration.ends_with('Z') && !expiration.contains('.'),
        "{expiration}"
    );
    let expires = OffsetDateTime::parse(&expiration, &Rfc3339).expect("RFC 3339");
    let ttl = expires - before;
    assert!(
        ttl >= time::Duration::hours(24)
            && ttl <= time::Duration::hours(24) + time::Duration::seconds(60),
        "{ttl}"
    );
}

#[test]
fn create_honours_ttl_usages_groups_and_a_given_token() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let given = "abcdef.0123456789abcdef";
    assert_eq!(
        create_token(
            &tree,
            &[
                given,
                "--ttl",
                "0",
                "--groups",
                "system:bootstrappers:workers,system:bootstrappers:gpu"
            ]
        ),
        given
    );
    let dir = tree.root().join("bootstrap");
    let secret = read_manifest(&dir, "bootstrap-token-abcdef.yaml").expect("the Secret");
    assert_eq!(
        secret["data"].get("expiration"),
        None,
        "--ttl 0 never expires"
    );
    assert_eq!(secret["data"].get("description"), None);
    assert_eq!(
        secret_data(&secret, "auth-extra-groups").as_deref(),
        Some("system:bootstrappers:workers,system:bootstrappers:gpu")
    );
    let signing = create_token(&tree, &["--usages", "signing"]);
    let id = signing.split_once('.').expect("a dot").0;
    let secret = read_manifest(&dir, &format!("bootstrap-token-{id}.yaml")).expect("the Secret");
    assert_eq!(
        secret_data(&secret, "usage-bootstrap-signing").as_deref(),
        Some("true")
    );
    assert_eq!(secret["data"].get("usage-bootstrap-authentication"), None);
    assert_eq!(
        secret["data"].get("auth-extra-groups"),
        None,
        "no groups without authentication"
    );
}

/// The JWS kubeadm's cluster-bootstrap computes, written here from its definition.
fn expected_jws(payload: &str, id: &str, secret: &str) -> String {
    let header = B64URL.encode(format!(r#"{{"alg":"HS256","kid":"{id}"}}"#));
    let input = format!("{header}.{}", B64URL.encode(payload));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{header}..{}", B64URL.encode(tag.as_ref()))
}

#[test]
fn manifests_are_kubeadms_objects() {
    let tree = TempTree::new();
    tree.init("RSA-2048", &["--control-plane-endpoint", "cp.example:7443"]);
    let valid = create_token(&tree, &[]);
    let expiring = create_token(&tree, &["--ttl", "1s"]);
    let not_signing = create_token(&tree, &["--usages", "authentication"]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let out = token(&tree, &["manifests"]);
    assert_success(&out, "kubepki token manifests");
    let dir = tree.root().join("bootstrap");
    for file in [
        "bootstrap-rbac.yaml",
        "cluster-info.yaml",
        "kube-proxy.yaml",
    ] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    check_rbac(&documents(&dir.join("bootstrap-rbac.yaml")));
    let cluster_info = documents(&dir.join("cluster-info.yaml"));
    assert_eq!(cluster_info.len(), 1);
    check_cluster_info(&tree, &cluster_info[0], &valid, &[&expiring, &not_signing]);
    check_kube_proxy(&documents(&dir.join("kube-proxy.yaml")));
}

fn rbac_subject(kind: &str, name: &str) -> Value {
    json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name}])
}

fn binding(
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    role: (&str, &str),
    subjects: Value,
) -> Value {
    let mut metadata = json!({"name": name});
    if let Some(namespace) = namespace {
        metadata["namespace"] = json!(namespace);
    }
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role.0, "name": role.1},
        "subjects": subjects,
    })
}

fn check_rbac(objects: &[Value]) {
    let csr = "system:certificates.k8s.io:certificatesigningrequests:";
    let expected = vec![
        binding(
            "ClusterRoleBinding",
            "kubeadm:kubelet-bootstrap",
            None,
            ("ClusterRole", "system:node-bootstrapper"),
            rbac_subject("Group", DEFAULT_GROUP),
        ),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "kubeadm:get-nodes"},
            "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}],
        }),
        binding(
            "ClusterRoleBinding",
            "kubeadm:get-nodes",
            None,
            ("ClusterRole", "kubeadm:get-nodes"),
            rbac_subject("Group", DEFAULT_GROUP),
        ),
        binding(
            "ClusterRoleBinding",
            "kubeadm:node-autoapprove-bootstrap",
            None,
            ("ClusterRole", &format!("{csr}nodeclient")),
            rbac_subject("Group", DEFAULT_GROUP),
        ),
        binding(
            "ClusterRoleBinding",
            "kubeadm:node-autoapprove-certificate-rotation",
            None,
            ("ClusterRole", &format!("{csr}selfnodeclient")),
            rbac_subject("Group", "system:nodes"),
        ),
        binding(
            "ClusterRoleBinding",
            "kubeadm:apiserver-kubelet-client",
            None,
            ("ClusterRole", "system:kubelet-api-admin"),
            rbac_subject("User", "kube-apiserver-kubelet-client"),
        ),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "kubeadm:bootstrap-signer-clusterinfo", "namespace": "kube-public"},
            "rules": [{"apiGroups": [""], "resourceNames": ["cluster-info"], "resources": ["configmaps"], "verbs": ["get"]}],
        }),
        binding(
            "RoleBinding",
            "kubeadm:bootstrap-signer-clusterinfo",
            Some("kube-public"),
            ("Role", "kubeadm:bootstrap-signer-clusterinfo"),
            rbac_subject("User", "system:anonymous"),
        ),
        binding(
            "ClusterRoleBinding",
            "kubeadm:cluster-admins",
            None,
            ("ClusterRole", "cluster-admin"),
            rbac_subject("Group", "kubeadm:cluster-admins"),
        ),
    ];
    assert_eq!(objects.len(), expected.len());
    for (object, expected) in objects.iter().zip(&expected) {
        assert_eq!(object, expected);
    }
}

fn check_cluster_info(tree: &TempTree, config_map: &Value, valid: &str, unsigned: &[&str]) {
    assert_eq!(config_map["apiVersion"], "v1");
    assert_eq!(config_map["kind"], "ConfigMap");
    assert_eq!(
        config_map["metadata"],
        json!({"name": "cluster-info", "namespace": "kube-public"})
    );
    let kubeconfig = config_map["data"]["kubeconfig"]
        .as_str()
        .expect("data.kubeconfig");
    let parsed: Value = serde_yaml::from_str(kubeconfig).expect("a kubeconfig");
    let admin: Value = serde_yaml::from_slice(&tree.read("admin.conf")).expect("admin.conf");
    assert_eq!(
        parsed,
        json!({
            "apiVersion": "v1",
            "clusters": [{"cluster": admin["clusters"][0]["cluster"], "name": ""}],
            "contexts": null,
            "current-context": "",
            "kind": "Config",
            "users": null,
        })
    );
    assert_eq!(
        parsed["clusters"][0]["cluster"]["server"],
        "https://cp.example:7443"
    );
    let (id, secret) = valid.split_once('.').expect("a dot");
    let keys: Vec<&String> = config_map["data"]
        .as_object()
        .expect("data")
        .keys()
        .collect();
    assert_eq!(
        keys,
        [&format!("jws-kubeconfig-{id}"), "kubeconfig"],
        "only the valid signing token signs"
    );
    assert_eq!(
        config_map["data"][format!("jws-kubeconfig-{id}")],
        expected_jws(kubeconfig, id, secret)
    );
    for token in unsigned {
        let id = token.split_once('.').expect("a dot").0;
        assert!(
            config_map["data"]
                .get(format!("jws-kubeconfig-{id}"))
                .is_none(),
            "{id} signed"
        );
    }
}

fn check_kube_proxy(objects: &[Value]) {
    assert_eq!(objects.len(), 5);
    assert_eq!(
        objects[0],
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "kube-proxy", "namespace": "kube-system"}})
    );
    assert_eq!(
        objects[1],
        binding(
            "ClusterRoleBinding",
            "kubeadm:node-proxier",
            None,
            ("ClusterRole", "system:node-proxier"),
            json!([{"kind": "ServiceAccount", "name": "kube-proxy", "namespace": "kube-system"}])
        )
    );
    let config_map = &objects[2];
    assert_eq!(config_map["kind"], "ConfigMap");
    assert_eq!(
        config_map["metadata"],
        json!({"name": "kube-proxy", "namespace": "kube-system", "labels": {"app": "kube-proxy"}})
    );
    let kubeconfig: Value = serde_yaml::from_str(
        config_map["data"]["kubeconfig.conf"]
            .as_str()
            .expect("kubeconfig.conf"),
    )
    .expect("YAML");
    let sa = "/var/run/secrets/kubernetes.io/serviceaccount";
    assert_eq!(
        kubeconfig,
        json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"cluster": {"certificate-authority": format!("{sa}/ca.crt"), "server": "https://cp.example:7443"}, "name": "default"}],
            "contexts": [{"context": {"cluster": "default", "namespace": "default", "user": "default"}, "name": "default"}],
            "current-context": "default",
            "users": [{"name": "default", "user": {"tokenFile": format!("{sa}/token")}}],
        })
    );
    let config: Value = serde_yaml::from_str(
        config_map["data"]["config.conf"]
            .as_str()
            .expect("config.conf"),
    )
    .expect("YAML");
    assert_eq!(config["kind"], "KubeProxyConfiguration");
    assert_eq!(config["apiVersion"], "kubeproxy.config.k8s.io/v1alpha1");
    assert_eq!(
        config["clientConnection"]["kubeconfig"],
        "/var/lib/kube-proxy/kubeconfig.conf"
    );
    assert_eq!(
        objects[3],
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
            "rules": [{"apiGroups": [""], "resourceNames": ["kube-proxy"], "resources": ["configmaps"], "verbs": ["get"]}],
        })
    );
    assert_eq!(
        objects[4],
        binding(
            "RoleBinding",
            "kube-proxy",
            Some("kube-system"),
            ("Role", "kube-proxy"),
            rbac_subject("Group", DEFAULT_GROUP)
        )
    );
}

#[test]
fn init_writes_the_manifests_and_a_rerun_leaves_them_alone() {
    let tree = TempTree::new();
    let out = tree.init("ECDSA-P256", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = tree.root().join("bootstrap");
    for file in [
        "bootstrap-rbac.yaml",
        "cluster-info.yaml",
        "kube-proxy.yaml",
    ] {
        assert!(
            stdout.contains(&format!(
                "[bootstrap-token] Wrote {}",
                dir.join(file).display()
            )),
            "{stdout}"
        );
        assert_eq!(mode(&dir.join(file)), 0o600);
    }
    let cluster_info = read_manifest(&dir, "cluster-info.yaml").expect("cluster-info");
    assert_eq!(
        cluster_info["data"].as_object().expect("data").len(),
        1,
        "no token yet, no signature"
    );
    let before = tree.snapshot();
    tree.init("ECDSA-P256", &[]);
    let out = token(&tree, &["manifests"]);
    assert_success(&out, "kubepki token manifests");
    assert_eq!(out.stdout, b"", "nothing changed, nothing written");
    assert_eq!(tree.snapshot(), before);
    let mut dry_run = vec![
        "init".to_string(),
        "--dry-run".into(),
        "--node-name".into(),
        "cp1".into(),
    ];
    dry_run.extend(["--apiserver-advertise-address".into(), "127.0.0.1".into()]);
    dry_run.extend(tree.dir_args());
    let dry = kubepki(&dry_run);
    assert_success(&dry, "init --dry-run");
    assert!(!String::from_utf8_lossy(&dry.stdout).contains("bootstrap-token"));
}
