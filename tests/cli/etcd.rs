//! A real three-member etcd cluster on 127.0.0.1 running on the certificates `kubepki init`
//! writes, with client and peer mTLS, driven by `etcdctl`. (`Cluster::start_on` also starts
//! one member per host of several trees, for `bundle.rs`.)
//!
//! All members share `etcd/server` and `etcd/peer` (a cluster only forms when the peer cert
//! works as both TLS server and client). `apiserver-etcd-client` must read and write,
//! `etcd/healthcheck-client` must pass `endpoint health`, and `front-proxy-client` (signed by
//! another CA) must be refused by etcd's TLS layer. The members are always killed (a `Drop`
//! guard) and their logs are printed when a test fails.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::{TempTree, require_tool};

const INSTALL_ETCD: &str = "apt-get update && apt-get install -y etcd-server etcd-client";
const MEMBERS: usize = 3;
/// How long the cluster may take to become healthy.
const STARTUP: Duration = Duration::from_secs(30);
/// Part of the value written by `apiserver-etcd-client`.
const VALUE_MARK: &str = "certs, written at";
/// What etcd logs when a client certificate is not signed by `--trusted-ca-file`.
const UNKNOWN_CA: &str = "x509: certificate signed by unknown authority";

#[test]
fn three_member_cluster_rsa_2048() {
    check_cluster("RSA-2048");
}

#[test]
fn three_member_cluster_ecdsa_p256() {
    check_cluster("ECDSA-P256");
}

#[test]
fn three_member_cluster_on_renewed_certs() {
    let tree = TempTree::new();
    tree.init("ECDSA-P256", &[]);
    tree.renew_all();
    check_cluster_on(&tree, "ECDSA-P256");
}

/// Starts the cluster on a fresh tree and checks the three client identities against it.
fn check_cluster(algorithm: &str) {
    let tree = TempTree::new();
    tree.init(algorithm, &[]);
    check_cluster_on(&tree, algorithm);
}

/// Starts the cluster on `tree` and checks the three client identities against it.
pub(crate) fn check_cluster_on(tree: &TempTree, algorithm: &str) {
    let mut cluster = Cluster::start(tree);
    let ctl = Etcdctl {
        pki: tree.pki(),
        endpoints: cluster.client_urls(),
    };
    cluster.wait_healthy(&ctl);
    check_all_healthy(&ctl, "apiserver-etcd-client");
    check_round_trip(&ctl, algorithm);
    check_all_healthy(&ctl, "etcd/healthcheck-client");
    check_refused(&cluster, &ctl);
}

/// One etcd process and where it listens.
struct Member {
    client_url: String,
    log: PathBuf,
    process: Child,
}

/// The members; dropping it kills them all, printing their logs if the test failed.
pub struct Cluster {
    members: Vec<Member>,
}

impl Cluster {
    /// Starts every member of a new cluster on 127.0.0.1, all with the tree's certs; their
    /// data dirs and logs live in the tree.
    fn start(tree: &TempTree) -> Cluster {
        Cluster::start_on(&[(tree, "127.0.0.1"); MEMBERS])
    }

    /// Starts one member per host: on the host's address, with the etcd certs of its tree,
    /// where its data dir and log live.
    pub fn start_on(hosts: &[(&TempTree, &str)]) -> Cluster {
        let etcd = require_tool("etcd", INSTALL_ETCD);
        let ports = free_ports(2 * hosts.len());
        let peer_urls: Vec<String> = hosts
            .iter()
            .zip(&ports[hosts.len()..])
            .map(|((_, address), port)| format!("https://{address}:{port}"))
            .collect();
        let initial_cluster: Vec<String> = peer_urls
            .iter()
            .enumerate()
            .map(|(i, url)| format!("member{i}={url}"))
            .collect();
        let mut cluster = Cluster {
            members: Vec::new(),
        };
        for (i, ((tree, address), peer_url)) in hosts.iter().zip(&peer_urls).enumerate() {
            let client_url = format!("https://{address}:{}", ports[i]);
            let member = MemberConfig {
                name: format!("member{i}"),
                client_url: &client_url,
                peer_url,
                initial_cluster: &initial_cluster.join(","),
            };
            cluster.members.push(member.spawn(&etcd, tree));
        }
        cluster
    }

    /// The members' client URLs, in order.
    pub fn client_urls(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|member| member.client_url.clone())
            .collect()
    }

    /// Polls `endpoint health` as `apiserver-etcd-client` until every member is healthy; panics
    /// with the last answer after [`STARTUP`] or as soon as a member exits.
    pub fn wait_healthy(&mut self, ctl: &Etcdctl) {
        let deadline = Instant::now() + STARTUP;
        loop {
            let out = ctl.run(
                "apiserver-etcd-client",
                &ctl.endpoints,
                &["endpoint", "health"],
            );
            if out.status.success() {
                return;
            }
            for member in &mut self.members {
                if let Ok(Some(status)) = member.process.try_wait() {
                    panic!("etcd ({}) exited early: {status}", member.log.display());
                }
            }
            assert!(
                Instant::now() < deadline,
                "etcd not healthy after {STARTUP:?}:\n{}",
                text(&out)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Every member's log so far, concatenated.
    fn logs(&self) -> String {
        self.members
            .iter()
            .map(|member| {
                let log = std::fs::read_to_string(&member.log).unwrap_or_default();
                format!("==== {} ====\n{log}", member.log.display())
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            // Already-exited members make kill fail; wait reaps either way.
            let _ = member.process.kill();
            let _ = member.process.wait();
        }
        if std::thread::panicking() {
            eprintln!("etcd logs:\n{}", self.logs());
        }
    }
}

/// The flags that differ between members.
struct MemberConfig<'a> {
    name: String,
    client_url: &'a str,
    peer_url: &'a str,
    initial_cluster: &'a str,
}

impl MemberConfig<'_> {
    /// Starts etcd with the tree's server and peer certs and mTLS on both ports.
    fn spawn(&self, etcd: &Path, tree: &TempTree) -> Member {
        let etcd_pki = tree.pki().join("etcd");
        let file = |name: &str| etcd_pki.join(name).display().to_string();
        let log = tree.root().join(format!("{}.log", self.name));
        let data_dir = tree.root().join(format!("{}.etcd", self.name));
        let log_file = File::create(&log).expect("creating etcd log");
        let mut command = Command::new(etcd);
        command
            .args([
                "--name",
                &self.name,
                "--data-dir",
                &data_dir.display().to_string(),
            ])
            .args([
                "--listen-client-urls",
                self.client_url,
                "--advertise-client-urls",
                self.client_url,
            ])
            .args([
                "--listen-peer-urls",
                self.peer_url,
                "--initial-advertise-peer-urls",
                self.peer_url,
            ])
            .args([
                "--initial-cluster",
                self.initial_cluster,
                "--initial-cluster-state",
                "new",
            ])
            .args(["--initial-cluster-token", "kubepki-test"])
            .args([
                "--cert-file",
                &file("server.crt"),
                "--key-file",
                &file("server.key"),
            ])
            .args(["--client-cert-auth", "--trusted-ca-file", &file("ca.crt")])
            .args([
                "--peer-cert-file",
                &file("peer.crt"),
                "--peer-key-file",
                &file("peer.key"),
            ])
            .args([
                "--peer-client-cert-auth",
                "--peer-trusted-ca-file",
                &file("ca.crt"),
            ])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("cloning log handle"))
            .stderr(log_file);
        let process = command.spawn().expect("starting etcd");
        Member {
            client_url: self.client_url.to_string(),
            log,
            process,
        }
    }
}

/// `etcdctl` (API v3) against the cluster, trusting `<pki>/etcd/ca.crt`.
pub struct Etcdctl {
    /// The cert dir whose client certs and etcd CA it uses.
    pub pki: PathBuf,
    /// The members it talks to.
    pub endpoints: Vec<String>,
}

impl Etcdctl {
    /// Runs etcdctl as `identity` (a cert base under `<pki>`) with short timeouts, so a refused
    /// handshake fails in seconds.
    pub fn run(&self, identity: &str, endpoints: &[String], args: &[&str]) -> Output {
        let etcdctl = require_tool("etcdctl", INSTALL_ETCD);
        let pem = |ext: &str| {
            self.pki
                .join(format!("{identity}.{ext}"))
                .display()
                .to_string()
        };
        Command::new(etcdctl)
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &endpoints.join(",")])
            .args([
                "--cacert",
                &self.pki.join("etcd/ca.crt").display().to_string(),
            ])
            .args(["--cert", &pem("crt"), "--key", &pem("key")])
            .args(["--dial-timeout", "2s", "--command-timeout", "3s"])
            .args(args)
            .output()
            .expect("running etcdctl")
    }
}

/// `apiserver-etcd-client` writes a unique value through the first member and reads it back
/// through the last one.
fn check_round_trip(ctl: &Etcdctl, algorithm: &str) {
    let key = "/kubepki/round-trip";
    let value = format!("{algorithm} {VALUE_MARK} {}ns", unix_nanos());
    let first = &ctl.endpoints[..1];
    let last = &ctl.endpoints[MEMBERS - 1..];
    let put = ctl.run("apiserver-etcd-client", first, &["put", key, &value]);
    assert!(
        put.status.success() && text(&put).contains("OK"),
        "put failed:\n{}",
        text(&put)
    );
    let get = ctl.run(
        "apiserver-etcd-client",
        last,
        &["get", key, "--print-value-only"],
    );
    assert!(get.status.success(), "get failed:\n{}", text(&get));
    assert_eq!(
        String::from_utf8_lossy(&get.stdout).trim_end(),
        value,
        "value read back through {last:?}"
    );
}

/// `endpoint health` as `identity` reports every member healthy.
fn check_all_healthy(ctl: &Etcdctl, identity: &str) {
    let out = ctl.run(identity, &ctl.endpoints, &["endpoint", "health"]);
    let output = text(&out);
    assert!(
        out.status.success(),
        "endpoint health as {identity} failed:\n{output}"
    );
    for url in &ctl.endpoints {
        assert!(
            output.contains(&format!("{url} is healthy")),
            "{url} not healthy for {identity}:\n{output}"
        );
    }
}

/// `front-proxy-client` is signed by the front-proxy CA, not the etcd CA: etcdctl must fail,
/// and etcd must log that it rejected the handshake for that reason. (etcd 3.4 speaks TLS 1.3,
/// where the client learns of the rejection only as a closed connection, so etcdctl itself
/// reports a deadline; the TLS verdict is in the server's log.)
fn check_refused(cluster: &Cluster, ctl: &Etcdctl) {
    assert!(
        !cluster.logs().contains(UNKNOWN_CA),
        "a certificate was rejected before the refusal check"
    );
    let out = ctl.run(
        "front-proxy-client",
        &ctl.endpoints,
        &["get", "/kubepki/round-trip"],
    );
    assert!(
        !out.status.success(),
        "etcd accepted front-proxy-client:\n{}",
        text(&out)
    );
    assert!(
        !text(&out).contains(VALUE_MARK),
        "front-proxy-client read data:\n{}",
        text(&out)
    );
    let logs = cluster.logs();
    let rejection = logs
        .lines()
        .find(|line| line.contains("rejected connection") && line.contains(UNKNOWN_CA));
    assert!(
        rejection.is_some(),
        "no TLS rejection in etcd's log; etcdctl said:\n{}",
        text(&out)
    );
}

/// `count` distinct free TCP ports on 127.0.0.1 (all bound at once, then released).
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("binding a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local address").port())
        .collect()
}

/// stdout then stderr of a finished command.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos()
}
