//! kubeadm's HA shape on the real API server (#16): the control-plane hosts that
//! `bundle::three_control_planes_from_one_bundle_run_one_etcd_cluster` makes from one bundle
//! each start their own kube-apiserver, with `kubepki flags kube-apiserver` for their own
//! tree plus only an address, a port, the hosts' etcd cluster and an audit log; every API
//! server then takes every host's kubeconfigs for the identity their tree says, its audit log
//! the witness.

use crate::support::audit::{AuditLog, POLICY};
use crate::support::controlplane::{INSTALL_KUBECTL, kubernetes_bin};
use crate::support::endpoint::Identity;
use crate::support::proc::{Proc, run_bounded, tail};
use crate::support::{TempTree, assert_success, kubepki, require_tool};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::PoisonError;
use std::time::{Duration, Instant};

/// How long an API server may take to be ready.
const STARTUP: Duration = Duration::from_secs(120);
/// How long one kubectl call may take.
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an API server has to stop after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// One control-plane host: its tree and what `init` was told about it.
pub struct Host<'a> {
    /// The tree `init` wrote on it.
    pub tree: &'a TempTree,
    /// `--node-name`.
    pub node: &'a str,
    /// `--apiserver-advertise-address`, which its API server binds too.
    pub address: &'a str,
}

/// A host's running API server.
struct Apiserver {
    address: String,
    port: u16,
    work: tempfile::TempDir,
    proc: Proc,
}

impl Apiserver {
    fn url(&self) -> String {
        format!("https://{}:{}", self.address, self.port)
    }

    fn log(&self) -> PathBuf {
        self.work.path().join("kube-apiserver.log")
    }

    fn audit(&self) -> AuditLog {
        AuditLog::new(self.work.path().join("audit.log"))
    }
}

impl Drop for Apiserver {
    fn drop(&mut self) {
        self.proc.stop(STOP_GRACE);
    }
}

/// Starts every host's API server against `etcd_servers`, waits until each is ready, then
/// checks that each one takes each host's kubeconfigs as their identities.
pub fn apiservers_take_every_hosts_kubeconfigs(
    hosts: &[Host],
    endpoint: &str,
    etcd_servers: &[String],
) {
    let _one = super::ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let kubectl = require_tool("kubectl", INSTALL_KUBECTL);
    let bin = kubernetes_bin();
    let mut apiservers: Vec<Apiserver> = hosts
        .iter()
        .map(|host| start(&bin, host, endpoint, etcd_servers))
        .collect();
    for (host, apiserver) in hosts.iter().zip(&mut apiservers) {
        wait_ready(&kubectl, host, apiserver);
    }
    let mut serial = 0;
    for apiserver in &apiservers {
        for host in hosts {
            for (file, expected) in kubeconfigs(host) {
                serial += 1;
                let path =
                    format!("/api/v1/namespaces/default/configmaps/kubepki-ha-whoami-{serial}");
                let kubeconfig = host.tree.root().join(file);
                // The answer is 403 or 404: only the audit log says who asked.
                run_kubectl(
                    &kubectl,
                    &kubeconfig,
                    &apiserver.url(),
                    &["get", "--raw", &path],
                );
                let seen = apiserver.audit().last_to(&path).map(|e| e.identity);
                assert_eq!(
                    seen.as_ref(),
                    Some(&expected),
                    "{} from {} at {}'s API server\n{}",
                    file,
                    host.node,
                    apiserver.address,
                    tail(&apiserver.log(), 25)
                );
            }
        }
    }
}

/// The kubeconfigs of `host` with the identity each must have.
fn kubeconfigs(host: &Host) -> Vec<(&'static str, Identity)> {
    let identity = |user: &str, groups: &[&str]| Identity {
        user: user.to_string(),
        groups: groups
            .iter()
            .chain(&["system:authenticated"])
            .map(|g| g.to_string())
            .collect(),
    };
    vec![
        (
            "admin.conf",
            identity("kubernetes-admin", &["kubeadm:cluster-admins"]),
        ),
        (
            "super-admin.conf",
            identity("kubernetes-super-admin", &["system:masters"]),
        ),
        (
            "controller-manager.conf",
            identity("system:kube-controller-manager", &[]),
        ),
        ("scheduler.conf", identity("system:kube-scheduler", &[])),
        (
            "kubelet.conf",
            identity(&format!("system:node:{}", host.node), &["system:nodes"]),
        ),
    ]
}

/// Starts `host`'s API server: `kubepki flags kube-apiserver` for its tree, with the
/// etcd servers and port replaced, bound to its address, with an audit log.
fn start(bin: &Path, host: &Host, endpoint: &str, etcd_servers: &[String]) -> Apiserver {
    let port = free_port(host.address);
    let work = tempfile::tempdir().expect("a work directory");
    let policy = work.path().join("audit-policy.yaml");
    std::fs::write(&policy, POLICY).expect("the audit policy");
    let mut flags_args: Vec<String> = [
        "flags",
        "kube-apiserver",
        "--node-name",
        host.node,
        "--apiserver-advertise-address",
        host.address,
        "--control-plane-endpoint",
        endpoint,
    ]
    .map(String::from)
    .to_vec();
    flags_args.extend(host.tree.dir_args());
    let flags = kubepki(&flags_args);
    assert_success(&flags, "kubepki flags kube-apiserver");
    let replaced = ["--etcd-servers=", "--secure-port="];
    let mut args: Vec<String> = String::from_utf8_lossy(&flags.stdout)
        .lines()
        .filter(|line| !replaced.iter().any(|flag| line.starts_with(flag)))
        .map(str::to_string)
        .collect();
    args.extend([
        format!("--etcd-servers={}", etcd_servers.join(",")),
        format!("--secure-port={port}"),
        format!("--bind-address={}", host.address),
        format!("--audit-policy-file={}", policy.display()),
        format!(
            "--audit-log-path={}",
            work.path().join("audit.log").display()
        ),
        // Loopback addresses may not be the `kubernetes` Service's endpoints (v1.3x).
        "--endpoint-reconciler-type=none".to_string(),
    ]);
    let mut command = Command::new(bin.join("kube-apiserver"));
    command.args(&args);
    let log = work.path().join("kube-apiserver.log");
    let proc = Proc::spawn("kube-apiserver", command, &log);
    Apiserver {
        address: host.address.to_string(),
        port,
        work,
        proc,
    }
}

/// Polls `/readyz` with the host's `super-admin.conf` until it answers, for at most
/// [`STARTUP`]; fails with the log's tail when the server exits or time runs out.
fn wait_ready(kubectl: &Path, host: &Host, apiserver: &mut Apiserver) {
    let deadline = Instant::now() + STARTUP;
    let kubeconfig = host.tree.root().join("super-admin.conf");
    loop {
        let out = run_kubectl(
            kubectl,
            &kubeconfig,
            &apiserver.url(),
            &["get", "--raw", "/readyz"],
        );
        if out.status.success() {
            return;
        }
        let why = match apiserver.proc.exited() {
            Some(status) => Some(format!("exited ({status})")),
            None if Instant::now() >= deadline => Some(format!("not ready after {STARTUP:?}")),
            None => None,
        };
        if let Some(why) = why {
            panic!(
                "{}'s kube-apiserver {why}: {}\n{}",
                host.node,
                String::from_utf8_lossy(&out.stderr),
                tail(&apiserver.log(), 40)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// kubectl with `kubeconfig`, talking to `server` (the kubeconfigs name the shared endpoint).
fn run_kubectl(kubectl: &Path, kubeconfig: &Path, server: &str, args: &[&str]) -> Output {
    let mut command = Command::new(kubectl);
    command
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--server")
        .arg(server)
        .args(["--request-timeout", "20s"])
        .args(args);
    run_bounded(command, None, KUBECTL_TIMEOUT)
}

/// A TCP port free on `address` now.
fn free_port(address: &str) -> u16 {
    TcpListener::bind((address, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("a free port on {address}: {e}"))
}
