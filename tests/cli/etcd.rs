//! A real three-member etcd cluster on 127.0.0.1 running on the certificates `kubepki init`
//! writes, with client and peer mTLS, driven by `etcdctl`. The etcd server is the one
//! `scripts/kubernetes-tier` builds (the version `scripts/upstream/go.mod` pins), etcdctl
//! Debian's. (`Cluster::start_on` also starts
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

use crate::support::controlplane::{ETCD, kubernetes_bin};
use crate::support::{TempTree, check, require_tool};

const INSTALL_ETCDCTL: &str = "apt-get update && apt-get install -y etcd-client";
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

/// One etcd process, where it listens, and how it was started (to start it again).
struct Member {
    client_url: String,
    log: PathBuf,
    process: Child,
    program: PathBuf,
    args: Vec<String>,
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
        let etcd = kubernetes_bin().join(ETCD);
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

    /// Stops member `index` (SIGTERM, then SIGKILL after a bounded grace) and starts it
    /// again as it was started, on its data directory: it rejoins the cluster with
    /// whatever certificates its files hold now.
    pub fn restart_member(&mut self, index: usize) {
        let member = &mut self.members[index];
        if let Ok(pid) = i32::try_from(member.process.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && matches!(member.process.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = member.process.kill();
        let _ = member.process.wait();
        member.process = start_member(&member.program, &member.args, &member.log);
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
        let args: Vec<String> = [
            "--name",
            &self.name,
            "--data-dir",
            &data_dir.display().to_string(),
            "--listen-client-urls",
            self.client_url,
            "--advertise-client-urls",
            self.client_url,
            "--listen-peer-urls",
            self.peer_url,
            "--initial-advertise-peer-urls",
            self.peer_url,
            "--initial-cluster",
            self.initial_cluster,
            "--initial-cluster-state",
            "new",
            "--initial-cluster-token",
            "kubepki-test",
            "--cert-file",
            &file("server.crt"),
            "--key-file",
            &file("server.key"),
            "--client-cert-auth",
            "--trusted-ca-file",
            &file("ca.crt"),
            "--peer-cert-file",
            &file("peer.crt"),
            "--peer-key-file",
            &file("peer.key"),
            "--peer-client-cert-auth",
            "--peer-trusted-ca-file",
            &file("ca.crt"),
        ]
        .map(String::from)
        .into();
        let process = start_member(etcd, &args, &log);
        Member {
            client_url: self.client_url.to_string(),
            log,
            process,
            program: etcd.to_path_buf(),
            args,
        }
    }
}

/// Starts etcd with `args`, appending its output to `log`.
fn start_member(etcd: &Path, args: &[String], log: &Path) -> Child {
    let log_file = File::options()
        .create(true)
        .append(true)
        .open(log)
        .expect("opening the etcd log");
    Command::new(etcd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("cloning log handle"))
        .stderr(log_file)
        .spawn()
        .expect("starting etcd")
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
        let etcdctl = require_tool("etcdctl", INSTALL_ETCDCTL);
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

/// `kubepki certs rotate-ca etcd-ca <stage> [extra]` on `tree`.
fn rotate_etcd_ca(tree: &TempTree, stage: &str, extra: &[&str]) {
    let mut args: Vec<String> = ["certs", "rotate-ca", "etcd-ca", stage]
        .map(String::from)
        .into();
    args.extend(extra.iter().map(|a| a.to_string()));
    args.extend(tree.dir_args());
    crate::support::assert_success(&crate::support::kubepki(&args), &format!("etcd-ca {stage}"));
}

/// A three-member etcd cluster on 127.0.0.1-3, one member per control-plane host, stays
/// healthy and keeps its data while the etcd CA is rotated: each stage run on every host
/// (the new CA made on the first, taken by the others with `trust --from`), then the members
/// restarted one at a time, each rejoining with its files as they are then. The API server's
/// etcd client certificate from before the rotation is accepted until finish and refused
/// after it; every host's current one, always.
#[test]
fn three_members_keep_their_data_through_a_rotation_of_the_etcd_ca() {
    let hosts = [TempTree::new(), TempTree::new(), TempTree::new()];
    let addresses = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];
    for (i, (host, address)) in hosts.iter().zip(addresses).enumerate() {
        if i > 0 {
            std::fs::create_dir_all(host.pki().join("etcd")).expect("the cert dir");
            for file in check::SHARED_FILES {
                std::fs::copy(hosts[0].pki().join(file), host.pki().join(file)).expect("copy");
            }
        }
        let node = format!("cp{}", i + 1);
        host.init(
            "ECDSA-P256",
            &[
                "--node-name",
                &node,
                "--apiserver-advertise-address",
                address,
            ],
        );
    }
    let members: Vec<(&TempTree, &str)> = hosts.iter().zip(addresses).collect();
    let mut cluster = Cluster::start_on(&members);
    let endpoints = cluster.client_urls();
    let ctl = |host: &TempTree| Etcdctl {
        pki: host.pki(),
        endpoints: endpoints.clone(),
    };
    cluster.wait_healthy(&ctl(&hosts[0]));
    let old = tempfile::tempdir().expect("a directory for the old client");
    for ext in ["crt", "key"] {
        let name = format!("apiserver-etcd-client.{ext}");
        std::fs::copy(hosts[0].pki().join(&name), old.path().join(&name)).expect("copy");
    }
    // An absolute identity: `Etcdctl::run` joins it to the cert dir, which it replaces.
    let old_client = old
        .path()
        .join("apiserver-etcd-client")
        .display()
        .to_string();
    let put = ctl(&hosts[0]).run(
        "apiserver-etcd-client",
        &endpoints[..1],
        &["put", "/kubepki/before", "kept"],
    );
    assert!(put.status.success(), "{}", text(&put));
    let next = hosts[0].pki().join("next").display().to_string();
    for stage in ["trust", "sign", "finish"] {
        rotate_etcd_ca(&hosts[0], stage, &[]);
        for host in &hosts[1..] {
            match stage {
                "trust" => rotate_etcd_ca(host, stage, &["--from", &next]),
                _ => rotate_etcd_ca(host, stage, &[]),
            }
        }
        for (i, host) in hosts.iter().enumerate() {
            cluster.restart_member(i);
            cluster.wait_healthy(&ctl(host));
            check_all_healthy(&ctl(host), "apiserver-etcd-client");
            let get = ctl(host).run(
                "apiserver-etcd-client",
                &endpoints[i..=i],
                &["get", "/kubepki/before", "--print-value-only"],
            );
            assert_eq!(
                String::from_utf8_lossy(&get.stdout).trim(),
                "kept",
                "{stage}, member {i}: {}",
                text(&get)
            );
            let key = format!("/kubepki/{stage}/{i}");
            let put = ctl(host).run(
                "apiserver-etcd-client",
                &endpoints[i..=i],
                &["put", &key, "written"],
            );
            assert!(put.status.success(), "{stage}, member {i}: {}", text(&put));
        }
        let root = ctl(&hosts[0]);
        let by_old = root.run(
            &old_client,
            &endpoints,
            &["get", "/kubepki/before", "--print-value-only"],
        );
        let accepted =
            by_old.status.success() && String::from_utf8_lossy(&by_old.stdout).trim() == "kept";
        assert_eq!(
            accepted,
            stage != "finish",
            "the old etcd client after {stage}: {}",
            text(&by_old)
        );
        let list = root.run("apiserver-etcd-client", &endpoints, &["member", "list"]);
        assert_eq!(
            String::from_utf8_lossy(&list.stdout).lines().count(),
            3,
            "{}",
            text(&list)
        );
    }
    for (stage, i) in ["trust", "sign", "finish"]
        .iter()
        .flat_map(|s| (0..3).map(move |i| (s, i)))
    {
        let get = ctl(&hosts[2]).run(
            "apiserver-etcd-client",
            &endpoints[2..],
            &[
                "get",
                &format!("/kubepki/{stage}/{i}"),
                "--print-value-only",
            ],
        );
        assert_eq!(
            String::from_utf8_lossy(&get.stdout).trim(),
            "written",
            "{}",
            text(&get)
        );
    }
}
