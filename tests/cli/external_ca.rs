//! kubeadm's external-CA flow (issue 24): `certs generate-csr` writes keys and CSRs, an
//! outside CA (openssl, its keys never in the tree) signs them, the certificates are put in
//! place as kubeadm documents, and `kubepki init` takes the assembled tree as it is.

use crate::support::{TempTree, assert_success, kubepki, openssl};
use base64::Engine;
use std::path::Path;

/// `init`'s node flags, so that the CSRs carry what a kubepki init would.
const NODE: [&str; 6] = [
    "--node-name",
    "cp1",
    "--apiserver-advertise-address",
    "127.0.0.1",
    "--encryption-algorithm",
    "ECDSA-P256",
];

fn on(tree: &TempTree, args: &[&str]) -> std::process::Output {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(NODE.iter().map(|s| s.to_string()));
    all.extend(tree.dir_args());
    kubepki(&all)
}

fn ok(out: std::process::Output, what: &str) -> String {
    assert_success(&out, what);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// An openssl CA named `cn`: its key in `outside`, its certificate at `cert`.
fn outside_ca(outside: &Path, name: &str, cn: &str, cert: &Path) -> (String, String) {
    let key = outside.join(format!("{name}.key"));
    ok(
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &path(&key),
            "-out",
            &path(cert),
            "-subj",
            &format!("/CN={cn}"),
            "-days",
            "3650",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign",
            // As kubeadm's CAs, so that the audit has nothing to say about the CAs.
            "-addext",
            &format!("subjectAltName=DNS:{cn}"),
        ]),
        "openssl req -x509",
    );
    (path(cert), path(&key))
}

/// openssl signs `csr` with the CA, copying the requested extensions; returns the PEM.
fn sign(csr: &Path, ca: &(String, String), out: &Path) -> Vec<u8> {
    ok(
        openssl(&[
            "x509",
            "-req",
            "-in",
            &path(csr),
            "-CA",
            &ca.0,
            "-CAkey",
            &ca.1,
            "-CAcreateserial",
            "-copy_extensions",
            "copy",
            "-days",
            "365",
            "-out",
            &path(out),
        ]),
        &format!("openssl x509 -req {}", csr.display()),
    );
    std::fs::read(out).expect("signed")
}

/// kubeadm's documented step: the signed certificate, base64, as client-certificate-data.
fn embed(kubeconfig: &Path, cert_pem: &[u8]) {
    let text = std::fs::read_to_string(kubeconfig).expect("kubeconfig");
    let mut yaml: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
    let encoded = base64::engine::general_purpose::STANDARD.encode(cert_pem);
    yaml["users"][0]["user"]["client-certificate-data"] = encoded.into();
    std::fs::write(kubeconfig, serde_yaml::to_string(&yaml).expect("YAML")).expect("writing");
}

/// The outside CAs' certificates and keys (the keys never in the tree).
pub struct OutsideCas {
    /// The cluster CA: certificate in the tree, key here.
    pub ca: (String, String),
    _keys: tempfile::TempDir,
}

/// The whole external-CA flow on `tree`, for node cp1 on 127.0.0.1 with `extra` init flags:
/// openssl CAs (their keys outside the tree) and sa key pair in place, `certs generate-csr`,
/// every CSR signed by openssl copying its extensions, the certificates put where kubeadm
/// says, then `kubepki init`, which must write nothing over them.
pub fn assemble(tree: &TempTree, extra: &[&str]) -> OutsideCas {
    let outside = tempfile::tempdir().expect("the outside CA's own directory");
    let pki = tree.pki();
    std::fs::create_dir_all(pki.join("etcd")).expect("mkdir");
    let ca = outside_ca(outside.path(), "ca", "kubernetes", &pki.join("ca.crt"));
    let front_proxy = outside_ca(
        outside.path(),
        "front-proxy-ca",
        "front-proxy-ca",
        &pki.join("front-proxy-ca.crt"),
    );
    let etcd = outside_ca(
        outside.path(),
        "etcd-ca",
        "etcd-ca",
        &pki.join("etcd/ca.crt"),
    );
    let sa = pki.join("sa.key");
    ok(openssl(&["genrsa", "-out", &path(&sa), "2048"]), "sa.key");
    ok(
        openssl(&[
            "rsa",
            "-in",
            &path(&sa),
            "-pubout",
            "-out",
            &path(&pki.join("sa.pub")),
        ]),
        "sa.pub",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sa, std::fs::Permissions::from_mode(0o600)).expect("chmod");

    let generated = ok(
        on(tree, &[&["certs", "generate-csr"], extra].concat()),
        "certs generate-csr",
    );
    assert_eq!(
        generated.matches("[certs] Wrote ").count(),
        2 * (7 + 5),
        "{generated}"
    );
    let leaves = [
        ("apiserver", &ca),
        ("apiserver-kubelet-client", &ca),
        ("front-proxy-client", &front_proxy),
        ("etcd/server", &etcd),
        ("etcd/peer", &etcd),
        ("etcd/healthcheck-client", &etcd),
        ("apiserver-etcd-client", &etcd),
    ];
    for (name, signer) in leaves {
        sign(
            &pki.join(format!("{name}.csr")),
            signer,
            &pki.join(format!("{name}.crt")),
        );
    }
    for conf in [
        "admin.conf",
        "super-admin.conf",
        "controller-manager.conf",
        "scheduler.conf",
        "kubelet.conf",
    ] {
        let signed = outside.path().join(format!("{conf}.crt"));
        let pem = sign(&tree.root().join(format!("{conf}.csr")), &ca, &signed);
        embed(&tree.root().join(conf), &pem);
    }
    let assembled = tree.pki_contents();
    let init = ok(
        on(tree, &[&["init"], extra].concat()),
        "kubepki init on the assembled tree",
    );
    assert_eq!(
        tree.pki_contents(),
        assembled,
        "init wrote over the assembled tree:\n{init}"
    );
    OutsideCas { ca, _keys: outside }
}

#[test]
fn issue_24_an_outside_ca_signs_generate_csr_and_init_takes_the_tree() {
    let tree = TempTree::new();
    let outside = assemble(&tree, &[]);
    let pki = tree.pki();
    let apiserver_csr = String::from_utf8_lossy(
        &openssl(&[
            "req",
            "-in",
            &path(&pki.join("apiserver.csr")),
            "-noout",
            "-text",
        ])
        .stdout,
    )
    .into_owned();
    for wanted in [
        "Subject: CN = kube-apiserver",
        "DNS:cp1, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local, IP Address:10.96.0.1, IP Address:127.0.0.1",
        "TLS Web Server Authentication",
    ] {
        assert!(
            apiserver_csr.contains(wanted),
            "{wanted} in\n{apiserver_csr}"
        );
    }
    let before = tree.snapshot();
    let again = on(&tree, &["certs", "generate-csr"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("exists: generate-csr never replaces"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(tree.snapshot(), before, "a refused run writes nothing");

    let plain = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(tree.dir_args());
        kubepki(&all)
    };
    let expiry = ok(
        plain(&["certs", "check-expiration", "-o", "json"]),
        "check-expiration",
    );
    let expiry: serde_json::Value = serde_json::from_str(&expiry).expect("JSON");
    let certificates = expiry["certificates"].as_array().expect("certificates");
    assert_eq!(certificates.len(), 12, "{expiry:#}");
    assert!(
        certificates
            .iter()
            .all(|c| c["externallyManaged"] == true && c["missing"] != true),
        "{expiry:#}"
    );
    let verify = openssl(&[
        "verify",
        "-CAfile",
        &outside.ca.0,
        "-purpose",
        "sslserver",
        &path(&pki.join("apiserver.crt")),
    ]);
    assert_success(&verify, "openssl verify apiserver.crt");
    let audit = on(&tree, &["certs", "audit", "--fail-on", "error"]);
    assert_eq!(
        audit.status.code(),
        Some(0),
        "audit finds no error in the assembled tree (the .csr files are warnings):\n{}",
        String::from_utf8_lossy(&audit.stdout)
    );
}

#[test]
fn issue_24_a_kubelet_serving_csr_is_signed_on_the_control_plane_and_the_key_stays() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    let node = tempfile::tempdir().expect("the node's kubelet directory");
    let node_dir = path(node.path());
    ok(
        kubepki(&[
            "kubelet",
            "serving-cert",
            "--csr-only",
            "--node-name",
            "w1",
            "--node-ip",
            "10.0.0.21,fd00::21",
            "--encryption-algorithm",
            "ECDSA-P256",
            "--out-dir",
            &node_dir,
        ]),
        "kubelet serving-cert --csr-only",
    );
    use std::os::unix::fs::PermissionsExt;
    let key = node.path().join("kubelet.key");
    let mode = std::fs::metadata(&key)
        .expect("kubelet.key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!node.path().join("kubelet.crt").exists());

    let signed = tree.root().join("w1.crt");
    let sign = |csr: &Path, name: &str, out: &Path| {
        let mut args: Vec<String> = ["certs", "sign-csr", &path(csr), "--for", name, "--out"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(path(out));
        args.extend(tree.dir_args());
        kubepki(&args)
    };
    let out = sign(&node.path().join("kubelet.csr"), "kubelet-serving", &signed);
    assert_success(&out, "certs sign-csr --for kubelet-serving");
    std::fs::copy(&signed, node.path().join("kubelet.crt")).expect("to the node");
    let crt = path(&node.path().join("kubelet.crt"));
    let verify = openssl(&[
        "verify",
        "-CAfile",
        &path(&tree.pki().join("ca.crt")),
        "-purpose",
        "sslserver",
        &crt,
    ]);
    assert_success(&verify, "openssl verify the kubelet serving certificate");
    let public = |args: &[&str]| openssl(args).stdout;
    assert_eq!(
        public(&["x509", "-in", &crt, "-noout", "-pubkey"]),
        public(&["pkey", "-in", &path(&key), "-pubout"]),
        "the certificate is for the node's own key"
    );
    let text = String::from_utf8_lossy(&openssl(&["x509", "-in", &crt, "-noout", "-text"]).stdout)
        .into_owned();
    for wanted in [
        "Subject: O = system:nodes, CN = system:node:w1",
        "DNS:w1, IP Address:10.0.0.21, IP Address:FD00:0:0:0:0:0:0:21",
        "CA:FALSE",
    ] {
        assert!(text.contains(wanted), "{wanted} in\n{text}");
    }
    let expiry = ok(
        kubepki(
            &[
                vec![
                    "certs".to_string(),
                    "check-expiration".into(),
                    "--kubelet-cert-dir".into(),
                    node_dir.clone(),
                ],
                tree.dir_args(),
            ]
            .concat(),
        ),
        "check-expiration with the node's directory",
    );
    assert!(expiry.contains("kubelet-serving"), "{expiry}");

    // A subject the row does not give is refused, and nothing is written.
    let foreign = tempfile::tempdir().expect("temp dir");
    let masters_csr = foreign.path().join("masters.csr");
    ok(
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &path(&foreign.path().join("masters.key")),
            "-out",
            &path(&masters_csr),
            "-subj",
            "/O=system:masters/CN=system:node:w1",
        ]),
        "openssl req",
    );
    let refused_out = foreign.path().join("masters.crt");
    let refused = sign(&masters_csr, "kubelet-serving", &refused_out);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("system:masters") && stderr.contains("refused"),
        "{stderr}"
    );
    assert!(!refused_out.exists());

    // A CSR asking to be a CA gets the row's usages: CA:FALSE.
    let ca_csr = foreign.path().join("ca.csr");
    ok(
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &path(&foreign.path().join("ca-wannabe.key")),
            "-out",
            &path(&ca_csr),
            "-subj",
            "/CN=kube-apiserver",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ]),
        "openssl req CA:TRUE",
    );
    let issued = foreign.path().join("apiserver.crt");
    assert_success(
        &sign(&ca_csr, "apiserver", &issued),
        "sign-csr --for apiserver",
    );
    let text = String::from_utf8_lossy(
        &openssl(&["x509", "-in", &path(&issued), "-noout", "-text"]).stdout,
    )
    .into_owned();
    assert!(
        text.contains("CA:FALSE") && !text.contains("CA:TRUE"),
        "{text}"
    );
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
}
