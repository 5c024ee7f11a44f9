//! Real kubeadm (the build's) as a client of the kubepki control plane (#23):
//!
//! - `kubeadm join --dry-run` of a worker: token discovery pinned to kubepki's
//!   `ca-cert-hash` against cluster-info as the bootstrap signer signed it, then the
//!   `kubeadm-config` and `kubelet-config` ConfigMaps `init` published, read as the token
//!   (`system:bootstrap:<id>`, per the audit log) through the real RBAC and parsed by
//!   kubeadm; it ends saying the node joined, with nothing written to the host's
//!   /etc/kubernetes (kubeadm runs chrooted, `--rootfs`, into the worker's own root, where
//!   its dry run leaves `ca.crt`, init's CA, and `bootstrap-kubelet.conf`);
//! - the real kubelet's TLS bootstrap with the `bootstrap-kubelet.conf` that dry run wrote:
//!   its `kubelet.conf` is then `system:node:<name>`;
//! - `kubeadm join phase control-plane-prepare download-certs` of a second control-plane
//!   host (chrooted into its own root): the `kubeadm-certs` Secret `kubepki certs bundle
//!   export --secret` wrote, applied with `super-admin.conf`, read as the bootstrap token
//!   through the Role that came with it and opened with the certificate key; the eight
//!   shared files land byte-identical to host 1's (keys 0600, the rest 0644); then
//!   `control-plane-prepare certs` signs host 2's own certificates with those CAs, and each
//!   verifies against host 1's CA (openssl).

use super::workers::signed_token;
use crate::support::assert_success;
use crate::support::check::SHARED_FILES;
use crate::support::controlplane::{ControlPlane, KUBEADM};
use crate::support::proc::run_bounded;
use crate::support::{kubepki, openssl};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// How long one kubeadm run may take.
const KUBEADM_RUN: Duration = Duration::from_secs(120);
/// A CRI socket that is not there: kubeadm's preflight checks are told to ignore it.
const NO_CRI: &str = "unix:///nonexistent/kubepki-test-cri.sock";

/// `kubeadm join --dry-run` with a new token of round `round`.
pub fn join_dry_run(plane: &ControlPlane, round: u32) {
    let (token, id) = signed_token(plane, &format!("kubeadm-{round}"));
    let name = format!("kubeadm-worker-{round}");
    let host = host_etc_kubernetes();
    // kubeadm's dry run writes under <root>/etc/kubernetes/tmp: the worker's own root.
    let root = plane.scratch(&format!("kubeadm-worker-{round}"));
    std::fs::create_dir_all(root.join("tmp")).expect("the worker's /tmp");
    let mut args = vec![
        "join".to_string(),
        plane.server().to_string(),
        "--token".into(),
        token,
    ];
    for pin in pins(plane) {
        args.extend(["--discovery-token-ca-cert-hash".to_string(), pin]);
    }
    args.extend(
        [
            "--node-name",
            &name,
            "--cri-socket",
            NO_CRI,
            "--dry-run",
            "--rootfs",
            &root.display().to_string(),
            "--ignore-preflight-errors=all",
            "--v=1",
        ]
        .map(str::to_string),
    );
    let out = kubeadm(plane, &args);
    assert_success(
        &out,
        "kubeadm join --dry-run against the kubepki control plane",
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("This node has joined the cluster"),
        "kubeadm join --dry-run did not end joined:\n{said}"
    );
    let bootstrap = format!("system:bootstrap:{id}");
    for config_map in ["kubeadm-config", "kubelet-config"] {
        let path = format!("/api/v1/namespaces/kube-system/configmaps/{config_map}");
        let read = plane.audit().events().into_iter().any(|e| {
            e.identity.user == bootstrap && e.verb == "get" && e.path() == path && e.code == 200
        });
        assert!(
            read,
            "no audit event of {bootstrap} reading {config_map} (200)"
        );
    }
    assert_eq!(
        host_etc_kubernetes(),
        host,
        "kubeadm join --dry-run changed the host's /etc/kubernetes"
    );
    let bootstrap = dry_run_files(plane, &root, &name);
    kubelet_bootstraps(plane, &bootstrap, &name, round);
}

/// The real kubelet, given the `bootstrap-kubelet.conf` kubeadm's dry run wrote, performs
/// its TLS bootstrap: a CSR as the token, approved and signed by the controllers, written
/// as `kubelet-client-current.pem` with a `kubelet.conf` naming it, which is then
/// `system:node:<name>`. The kubelet runs in a root directory of its own, without cgroups
/// per QoS, its CRI a socket that takes connections and never answers (with none it exits
/// before its CSR is signed); it is stopped once the certificate is there (it could go no
/// further without a container runtime).
fn kubelet_bootstraps(plane: &ControlPlane, bootstrap: &Path, name: &str, round: u32) {
    let dir = plane.scratch(&format!("kubeadm-kubelet-{round}"));
    let socket = dir.join("cri.sock");
    let _silent_cri = std::os::unix::net::UnixListener::bind(&socket).expect("a CRI socket");
    let ca = bootstrap.with_file_name("ca.crt");
    let config = dir.join("config.yaml");
    let text = format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
         authentication:\n  anonymous:\n    enabled: false\n  x509:\n    clientCAFile: {}\n\
         authorization:\n  mode: AlwaysAllow\ncgroupsPerQOS: false\nenforceNodeAllocatable: []\n\
         failCgroupV1: false\nrotateCertificates: true\nreadOnlyPort: 0\nport: 0\n\
         runtimeRequestTimeout: 2m\ncontainerRuntimeEndpoint: unix://{}\n\
         volumePluginDir: {}\n",
        ca.display(),
        socket.display(),
        dir.join("volume-plugins").display()
    );
    std::fs::write(&config, text).expect("the kubelet's configuration");
    let pki = dir.join("pki");
    let kubeconfig = dir.join("kubelet.conf");
    let mut command = Command::new(plane.binary(crate::support::controlplane::KUBELET));
    command
        .arg("--config")
        .arg(&config)
        .arg("--bootstrap-kubeconfig")
        .arg(bootstrap)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cert-dir")
        .arg(&pki)
        .arg("--root-dir")
        .arg(dir.join("root"))
        .args(["--hostname-override", name, "--v=2"]);
    let log = dir.join("kubelet.log");
    let mut kubelet = crate::support::proc::Proc::spawn("kubelet", command, &log);
    let pem = pki.join("kubelet-client-current.pem");
    let deadline = std::time::Instant::now() + KUBEADM_RUN;
    while !(pem.exists() && kubeconfig.exists()) {
        let tail = crate::support::proc::tail(&log, 20);
        assert!(
            kubelet.exited().is_none(),
            "the kubelet exited before its TLS bootstrap:\n{tail}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no kubelet-client-current.pem after {KUBEADM_RUN:?}:\n{tail}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    kubelet.stop(Duration::from_secs(10));
    let expected = super::identities::identity(&format!("system:node:{name}"), &["system:nodes"]);
    assert_eq!(
        plane.whoami(&kubeconfig),
        expected,
        "the kubelet.conf the kubelet wrote after its TLS bootstrap"
    );
}

/// What the dry run wrote in the worker's root: `ca.crt`, the cluster CA as `init` wrote it,
/// and `bootstrap-kubelet.conf` naming the API server.
fn dry_run_files(plane: &ControlPlane, root: &Path, name: &str) -> PathBuf {
    let tmp = root.join("etc/kubernetes/tmp");
    let dir = std::fs::read_dir(&tmp)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("kubeadm-join-dryrun"))
        })
        .unwrap_or_else(|| panic!("no kubeadm-join-dryrun directory in {}", tmp.display()));
    assert_eq!(
        std::fs::read(dir.join("ca.crt")).ok(),
        Some(plane.tree.read("pki/ca.crt")),
        "the ca.crt kubeadm join --dry-run wrote"
    );
    let path = dir.join("bootstrap-kubelet.conf");
    let bootstrap = std::fs::read_to_string(&path)
        .expect("the bootstrap-kubelet.conf kubeadm join --dry-run wrote");
    let server = format!("server: https://{}", plane.server());
    assert!(
        bootstrap.contains(&server),
        "bootstrap-kubelet.conf of kubeadm join --dry-run lacks {server}:\n{bootstrap}"
    );
    // What a real join's kubelet-start phase asks next (skipped by the dry run): whether a
    // Node of that name exists, as the token, through kubeadm:get-nodes.
    let out = plane.kubectl(&path, &["get", "node", name]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("NotFound") || said.contains("not found"),
        "the token of kubeadm's bootstrap-kubelet.conf looking for Node {name}: {said}"
    );
    path
}

/// Every pin `kubepki certs ca-cert-hash` prints (two during a rotation of the cluster CA).
fn pins(plane: &ControlPlane) -> Vec<String> {
    let out = plane.kubepki(&["certs", "ca-cert-hash"]);
    assert_success(&out, "kubepki certs ca-cert-hash");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Runs the build's kubeadm with `args`, bounded in time.
fn kubeadm(plane: &ControlPlane, args: &[String]) -> Output {
    let mut command = Command::new(plane.binary(KUBEADM));
    command.args(args);
    run_bounded(command, None, KUBEADM_RUN)
}

/// What is under the host's /etc/kubernetes: every path and its size ("absent" when there
/// is no such directory).
fn host_etc_kubernetes() -> Vec<String> {
    let root = Path::new("/etc/kubernetes");
    if !root.exists() {
        return vec!["absent".into()];
    }
    let mut found = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let size = entry.metadata().map(|m| m.len()).unwrap_or_default();
            found.push(format!("{} {size}", path.display()));
            if path.is_dir() {
                todo.push(path);
            }
        }
    }
    found.sort();
    found
}

/// `download-certs`, then `certs`, of `kubeadm join phase control-plane-prepare` for a
/// second control-plane host `cp2` in its own root.
pub fn control_plane_join_downloads_the_certs(plane: &ControlPlane, round: u32) {
    let key = kubepki(&["certs", "certificate-key"]);
    assert_success(&key, "kubepki certs certificate-key");
    let key = String::from_utf8_lossy(&key.stdout).trim().to_string();
    let secret = plane.kubepki(&[
        "certs",
        "bundle",
        "export",
        "--certificate-key",
        &key,
        "--secret",
    ]);
    assert_success(&secret, "kubepki certs bundle export --secret");
    let admin = plane.kubeconfig("super-admin.conf");
    let applied = plane.kubectl_with_stdin(&admin, &["apply", "-f", "-"], Some(&secret.stdout));
    assert_success(&applied, "kubectl apply of the kubeadm-certs Secret");
    let (token, id) = signed_token(plane, &format!("kubeadm-cp-{round}"));
    let root = plane.scratch(&format!("kubeadm-host2-{round}"));
    std::fs::create_dir_all(root.join("tmp")).expect("host 2's /tmp");
    let host = host_etc_kubernetes();
    let phase = |name: &str, extra: &[&str]| {
        let mut args: Vec<String> = ["--rootfs", &root.display().to_string()]
            .into_iter()
            .chain(["join", "phase", "control-plane-prepare", name])
            .map(str::to_string)
            .collect();
        args.extend([plane.server().to_string(), "--token".into(), token.clone()]);
        for pin in pins(plane) {
            args.extend(["--discovery-token-ca-cert-hash".to_string(), pin]);
        }
        args.push("--control-plane".to_string());
        args.extend(extra.iter().map(|a| a.to_string()));
        let out = kubeadm(plane, &args);
        assert_success(
            &out,
            &format!("kubeadm join phase control-plane-prepare {name}"),
        );
    };
    phase("download-certs", &["--certificate-key", &key]);
    let bootstrap = format!("system:bootstrap:{id}");
    let read = plane.audit().events().into_iter().any(|e| {
        e.identity.user == bootstrap
            && e.verb == "get"
            && e.path() == "/api/v1/namespaces/kube-system/secrets/kubeadm-certs"
            && e.code == 200
    });
    assert!(
        read,
        "no audit event of {bootstrap} reading Secret kubeadm-certs (200)"
    );
    let pki = in_root(&root, &plane.tree.pki());
    for file in SHARED_FILES {
        let (ours, theirs) = (plane.tree.pki().join(file), pki.join(file));
        assert_eq!(
            std::fs::read(&theirs).ok(),
            std::fs::read(&ours).ok(),
            "{file} as kubeadm download-certs wrote it on host 2, against host 1's"
        );
        // kubeadm writes what it downloads by kind: public (certificates, and sa.pub, which
        // its init writes 0600) 0644, private 0600.
        let want = if file.ends_with(".key") { 0o600 } else { 0o644 };
        assert_eq!(mode(&theirs), want, "{file}'s mode on host 2");
    }
    phase(
        "certs",
        &[
            "--node-name",
            "cp2",
            "--apiserver-advertise-address",
            "198.51.100.20",
        ],
    );
    let host1_ca = plane.tree.pki().join("ca.crt");
    for (cert, ca) in [
        ("apiserver.crt", host1_ca.clone()),
        ("apiserver-kubelet-client.crt", host1_ca),
        (
            "front-proxy-client.crt",
            plane.tree.pki().join("front-proxy-ca.crt"),
        ),
        ("etcd/server.crt", plane.tree.pki().join("etcd/ca.crt")),
        ("etcd/peer.crt", plane.tree.pki().join("etcd/ca.crt")),
        (
            "apiserver-etcd-client.crt",
            plane.tree.pki().join("etcd/ca.crt"),
        ),
    ] {
        let path = pki.join(cert);
        let out = openssl(&[
            "verify",
            "-CAfile",
            &ca.display().to_string(),
            &path.display().to_string(),
        ]);
        assert_success(
            &out,
            &format!("openssl verify of host 2's {cert} against host 1's CA"),
        );
    }
    let sans = openssl(&[
        "x509",
        "-noout",
        "-ext",
        "subjectAltName",
        "-in",
        &pki.join("apiserver.crt").display().to_string(),
    ]);
    let sans = String::from_utf8_lossy(&sans.stdout);
    assert!(
        sans.contains("DNS:cp2") && sans.contains("IP Address:198.51.100.20"),
        "host 2's apiserver.crt names cp2 and 198.51.100.20: {sans}"
    );
    assert_eq!(
        host_etc_kubernetes(),
        host,
        "kubeadm join phase control-plane-prepare changed the host's /etc/kubernetes"
    );
}

/// `path` (absolute) as seen from outside a chroot into `root`.
fn in_root(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// A file's permission bits.
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
