//! Who the tree's credentials are to the real API server: every kubeconfig and the API
//! server's kubelet client certificate; `admin.conf` becoming cluster-admin through the
//! `kubeadm:cluster-admins` binding of init's manifests, applied with `super-admin.conf`; the
//! front proxy; and `certs renew all` with a restart.

use crate::support::check;
use crate::support::controlplane::ControlPlane;
use crate::support::endpoint::Identity;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// The identity of `user` in `groups`, as the API server adds `system:authenticated`.
pub fn identity(user: &str, groups: &[&str]) -> Identity {
    let groups = groups.iter().chain(&["system:authenticated"]);
    Identity {
        user: user.to_string(),
        groups: groups.map(|g| g.to_string()).collect(),
    }
}

/// Every kubeconfig, untouched, and `apiserver-kubelet-client`'s certificate are the user,
/// in the groups, the tree says, as the audit log saw them (and, for the kubeconfigs, as
/// their own SelfSubjectReview says).
pub fn kubeconfigs(plane: &ControlPlane) {
    for (file, user, groups) in check::KUBECONFIG_IDENTITIES {
        let seen = plane.whoami(&plane.kubeconfig(file));
        assert_eq!(
            seen,
            identity(user, groups),
            "{file}, as the API server saw it"
        );
        // The API server's own answer too: a SelfSubjectReview (`kubectl auth whoami`).
        let review = plane.kubectl_ok(&plane.kubeconfig(file), &["auth", "whoami", "-o", "json"]);
        let review: serde_json::Value = serde_json::from_str(&review).expect("a SelfSubjectReview");
        let info = &review["status"]["userInfo"];
        let reviewed = Identity {
            user: info["username"].as_str().unwrap_or_default().to_string(),
            groups: info["groups"]
                .as_array()
                .map(|g| {
                    g.iter()
                        .filter_map(|g| g.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        };
        assert_eq!(
            reviewed,
            identity(user, groups),
            "{file}, as its SelfSubjectReview says"
        );
    }
    let cert = plane.tree.read("pki/apiserver-kubelet-client.crt");
    let key = plane.tree.read("pki/apiserver-kubelet-client.key");
    let client = plane.client(Some((&cert, &key)));
    let seen = plane.whoami_by(|path| {
        client.get(path, &[]);
    });
    let expected = identity("kube-apiserver-kubelet-client", &[]);
    assert_eq!(
        seen, expected,
        "apiserver-kubelet-client.crt, as the API server saw it"
    );
}

/// Before init's manifests, `admin.conf` authenticates but may not read Secrets: its rights
/// come from the manifests' binding, not from its certificate.
pub fn admin_needs_the_manifests(plane: &ControlPlane) {
    let answer = can_i(plane, "admin.conf", &["list", "secrets", "-A"]);
    assert_eq!(
        answer, "no",
        "admin.conf before kubeadm:cluster-admins is bound"
    );
}

/// `kubectl apply` of `<kubeconfig-dir>/bootstrap/` with `super-admin.conf` (as
/// `kubernetes-super-admin`, per the audit log, in round 1); then `admin.conf` may do
/// anything, through the binding of its group `kubeadm:cluster-admins` to `cluster-admin`.
pub fn manifests_make_admin_an_admin(plane: &ControlPlane, round: u32) {
    let manifests = plane.tree.root().join("bootstrap");
    let manifests = manifests.display().to_string();
    let super_admin = plane.kubeconfig("super-admin.conf");
    plane.kubectl_ok(&super_admin, &["apply", "-f", &manifests]);
    if round == 1 {
        let created = plane.audit().events().into_iter().find(|e| {
            e.verb == "create"
                && e.path() == "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"
                && e.name == "kubeadm:cluster-admins"
                && e.code == 201
        });
        let creator = created.map(|e| e.identity.user);
        assert_eq!(
            creator.as_deref(),
            Some("kubernetes-super-admin"),
            "who created kubeadm:cluster-admins"
        );
    }
    let binding = plane.kubectl_ok(
        &super_admin,
        &[
            "get",
            "clusterrolebinding",
            "kubeadm:cluster-admins",
            "-o",
            "jsonpath={.roleRef.name} {.subjects[*].kind}/{.subjects[*].name}",
        ],
    );
    assert_eq!(binding, "cluster-admin Group/kubeadm:cluster-admins");
    assert_eq!(
        can_i(plane, "admin.conf", &["*", "*", "-A"]),
        "yes",
        "admin.conf: cluster-admin"
    );
    plane.kubectl_ok(
        &plane.kubeconfig("admin.conf"),
        &["get", "secrets", "-n", "kube-system"],
    );
}

/// A request with `front-proxy-client`'s certificate and `X-Remote-User`/`X-Remote-Group`
/// is taken as that user in that group; the same headers with a certificate of the cluster
/// CA (`admin.conf`'s) are ignored.
pub fn front_proxy(plane: &ControlPlane) {
    let headers = [
        ("X-Remote-User", "tier-proxied-user"),
        ("X-Remote-Group", "tier-proxied-group"),
    ];
    let cert = plane.tree.read("pki/front-proxy-client.crt");
    let key = plane.tree.read("pki/front-proxy-client.key");
    let proxy = plane.client(Some((&cert, &key)));
    let seen = plane.whoami_by(|path| {
        proxy.get(path, &headers);
    });
    let expected = identity("tier-proxied-user", &["tier-proxied-group"]);
    assert_eq!(seen, expected, "front-proxy-client with X-Remote-User");
    let (cert, key) = embedded_credentials(plane, "admin.conf");
    let admin = plane.client(Some((&cert, &key)));
    let seen = plane.whoami_by(|path| {
        admin.get(path, &headers);
    });
    assert_eq!(
        seen.user, "kubernetes-admin",
        "X-Remote-User from a non-proxy certificate"
    );
}

/// `kubepki certs renew all` (with the kubelet's serving pair of the kubelet proofs); every
/// certificate and kubeconfig is new; every component is restarted, and the API server
/// serves the renewed `apiserver.crt`.
pub fn renew_and_restart(plane: &mut ControlPlane) {
    let before = (
        plane.tree.read("pki/apiserver.crt"),
        plane.tree.read("admin.conf"),
    );
    let serving = plane.kubelet_dir().join("kubelet.crt");
    let serving_before = std::fs::read(&serving).ok();
    let kubelet_dir = plane.kubelet_dir().display().to_string();
    let out = plane.kubepki(&["certs", "renew", "all", "--kubelet-cert-dir", &kubelet_dir]);
    crate::support::assert_success(&out, "kubepki certs renew all");
    let after = (
        plane.tree.read("pki/apiserver.crt"),
        plane.tree.read("admin.conf"),
    );
    assert!(
        before.0 != after.0 && before.1 != after.1,
        "renew all left files unchanged"
    );
    assert!(
        serving_before.is_some() && std::fs::read(&serving).ok() != serving_before,
        "renew all left the kubelet's serving certificate {} unchanged",
        serving.display()
    );
    plane.restart();
    let served = plane.client(None).get("/version", &[]).server_cert;
    let renewed = first_der(&after.0);
    assert!(
        served == renewed,
        "the restarted API server serves the renewed apiserver.crt"
    );
}

/// `kubectl auth can-i` as a kubeconfig of the tree: `yes` or `no`.
pub fn can_i(plane: &ControlPlane, kubeconfig: &str, question: &[&str]) -> String {
    let mut args = vec!["auth", "can-i"];
    args.extend(question);
    let out = plane.kubectl(&plane.kubeconfig(kubeconfig), &args);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The client certificate and key PEM embedded in a kubeconfig of the tree.
pub fn embedded_credentials(plane: &ControlPlane, file: &str) -> (Vec<u8>, Vec<u8>) {
    let config: serde_yaml::Value =
        serde_yaml::from_slice(&plane.tree.read(file)).expect("a kubeconfig");
    let user = &config["users"][0]["user"];
    let decode = |key: &str| {
        let data = user[key]
            .as_str()
            .unwrap_or_else(|| panic!("{file}: no {key}"));
        BASE64
            .decode(data)
            .unwrap_or_else(|e| panic!("{file}: {key}: {e}"))
    };
    (decode("client-certificate-data"), decode("client-key-data"))
}

/// The DER of the first certificate of `pem`.
fn first_der(pem: &[u8]) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem)
        .expect("a certificate")
        .to_vec()
}
