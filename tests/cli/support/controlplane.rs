//! A real control plane on loopback, for the tier tests: upstream etcd, kube-apiserver,
//! kube-controller-manager and kube-scheduler at the release `scripts/upstream/go.mod` pins
//! (built from their Go modules and cached by `scripts/kubernetes-tier`) on a tree
//! `kubepki init` wrote.
//!
//! Each component is started with the lines `kubepki flags <component>` prints for the tree,
//! plus only its ports and endpoints (listen and peer URLs, `--etcd-servers`, bind address
//! and secure ports on 127.0.0.1, free ports chosen here), etcd's data directory and the
//! API server's audit log (policy `Metadata`: the witness of who authenticated as what) and
//! `--kubelet-preferred-address-types=InternalIP` (kubelet stand-ins are reached at their
//! Node's InternalIP, 127.0.0.1). [`ControlPlane::launch_args`] enforces that: the only
//! flags it replaces are endpoints. The kubelet and kubeadm of the same build are there too
//! ([`ControlPlane::binary`]).
//!
//! Every process is a [`Proc`]: stopped by its PID, killed when the control plane is dropped,
//! also during a panic, when the logs' last lines are printed and the work directory kept.
//! Every wait is bounded and names what it waited for, with the logs, when it gives up.
//!
//! [`Setup::flags_args`] adds arguments to a component's `kubepki flags` (the tier gives
//! the API server `--verify-kubelets`), [`ControlPlane::kubelet_dir`] is the control-plane
//! node's kubelet certificate directory, and [`ControlPlane::kubectl`],
//! [`ControlPlane::whoami`] and [`ControlPlane::client`] reach the API server as any
//! kubeconfig or certificate.

use super::apiclient::ApiClient;
use super::audit::{self, AuditLog, Event};
use super::endpoint::Identity;
use super::proc::{Proc, run_bounded};
use super::{TempTree, assert_success, kubepki, require_tool};
use std::cell::{Cell, RefCell};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Where the upstream binaries are, when not where `scripts/kubernetes-tier --locate` says.
pub const KUBERNETES_BIN_ENV: &str = "KUBEPKI_KUBERNETES_BIN";
/// How to install a kubectl.
pub const INSTALL_KUBECTL: &str = "apt-get update && apt-get install -y kubernetes-client";
/// The control plane's node name.
pub const NODE: &str = "cp1";
/// The kubelet binary, run only as far as loading and validating its configuration.
pub const KUBELET: &str = "kubelet";
/// The kubeadm binary of the same build.
pub const KUBEADM: &str = "kubeadm";
/// The etcd server of the same build.
pub const ETCD: &str = "etcd";
/// How long the API server may take to be ready, and a controller to lead.
const STARTUP: Duration = Duration::from_secs(120);
/// How long a stopped component may take to exit before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);
/// How long one kubectl or kubepki run may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);
/// How long between two looks of a bounded wait.
const POLL: Duration = Duration::from_millis(500);
/// Lines of each log shown when something fails.
const LOG_LINES: usize = 25;

/// A component of the control plane, in start order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    /// etcd (the build's).
    Etcd,
    /// kube-apiserver.
    Apiserver,
    /// kube-controller-manager.
    ControllerManager,
    /// kube-scheduler.
    Scheduler,
}

impl Component {
    /// Every component, in start order.
    pub const ALL: [Component; 4] = [
        Component::Etcd,
        Component::Apiserver,
        Component::ControllerManager,
        Component::Scheduler,
    ];

    /// The program's name, which `kubepki flags` takes too.
    pub fn name(self) -> &'static str {
        match self {
            Component::Etcd => "etcd",
            Component::Apiserver => "kube-apiserver",
            Component::ControllerManager => "kube-controller-manager",
            Component::Scheduler => "kube-scheduler",
        }
    }

    /// The lease the component holds when it leads.
    pub fn lease(self) -> Option<&'static str> {
        match self {
            Component::ControllerManager | Component::Scheduler => Some(self.name()),
            _ => None,
        }
    }
}

/// How to set up a control plane.
#[derive(Clone, Debug)]
pub struct Setup {
    /// `--encryption-algorithm` of `kubepki init`.
    pub algorithm: String,
    /// Extra arguments of `kubepki flags <component>`, per component.
    pub flags_args: Vec<(Component, Vec<String>)>,
    /// Start each component from the command of the static pod manifest `kubepki init
    /// phase control-plane|etcd` writes (see `manifest_version`), not from `kubepki flags`.
    pub from_manifests: bool,
}

/// The kubernetesVersion of the manifests a `from_manifests` control plane runs from: the
/// release the tier's binaries are, as `scripts/upstream/go.mod` pins it (one place).
pub fn manifest_version() -> String {
    let go_mod = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/upstream/go.mod");
    let text = std::fs::read_to_string(&go_mod).expect("scripts/upstream/go.mod");
    text.lines()
        .map(str::split_whitespace)
        .find_map(|mut words| match (words.next(), words.next()) {
            (Some("k8s.io/kubernetes"), Some(version)) => Some(version.to_string()),
            _ => None,
        })
        .expect("scripts/upstream/go.mod requires k8s.io/kubernetes")
}

impl Setup {
    /// A control plane on a tree of `algorithm`.
    pub fn new(algorithm: &str) -> Setup {
        Setup {
            algorithm: algorithm.to_string(),
            flags_args: Vec::new(),
            from_manifests: false,
        }
    }
}

/// A command-line flag and its value.
type Arg = (&'static str, String);

/// The loopback ports of one control plane.
#[derive(Clone, Copy, Debug)]
struct Ports {
    apiserver: u16,
    etcd_client: u16,
    etcd_peer: u16,
    controller_manager: u16,
    scheduler: u16,
}

/// A running control plane and the tree it runs on.
pub struct ControlPlane {
    /// The tree: certificates in `pki/`, kubeconfigs and `bootstrap/` in its root.
    pub tree: TempTree,
    work: tempfile::TempDir,
    setup: Setup,
    ports: Ports,
    bin: PathBuf,
    kubectl: PathBuf,
    procs: RefCell<Vec<Proc>>,
    serial: Cell<u32>,
}

impl ControlPlane {
    /// Writes a tree for node `cp1` on 127.0.0.1 with `setup`'s algorithm, then starts etcd,
    /// the API server, the controller manager and the scheduler on it, and waits until the
    /// API server is ready and both controllers lead.
    pub fn start(setup: Setup) -> ControlPlane {
        let algorithm = setup.algorithm.clone();
        ControlPlane::start_on(setup, &|tree, port| {
            tree.init(&algorithm, &["--apiserver-bind-port", port]);
        })
    }

    /// As `start`, on the tree `write_tree` writes for node `cp1` on 127.0.0.1 with the API
    /// server on the port it is given (e.g. one an outside CA signed).
    pub fn start_on(setup: Setup, write_tree: &dyn Fn(&TempTree, &str)) -> ControlPlane {
        let bin = kubernetes_bin();
        let kubectl = require_tool("kubectl", INSTALL_KUBECTL);
        let ports = free_ports();
        let tree = TempTree::new();
        let port = ports.apiserver.to_string();
        write_tree(&tree, &port);
        let work = tempfile::tempdir().expect("a work directory");
        std::fs::write(work.path().join("audit-policy.yaml"), audit::POLICY).expect("policy");
        std::fs::create_dir(work.path().join("logs")).expect("a log directory");
        std::fs::create_dir(work.path().join("kubelet-pki")).expect("a kubelet directory");
        let plane = ControlPlane {
            tree,
            work,
            setup,
            ports,
            bin,
            kubectl,
            procs: RefCell::new(Vec::new()),
            serial: Cell::new(0),
        };
        plane.start_all(&[]);
        plane
    }

    /// Stops every component by its PID (the last started first) and starts them again on
    /// the same tree and data, then waits as `start` does, and for new leaders.
    pub fn restart(&mut self) {
        let leaders: Vec<String> = Component::ALL
            .iter()
            .filter_map(|c| c.lease())
            .filter_map(|lease| self.leader(lease).ok())
            .collect();
        let mut procs = self.procs.take();
        while let Some(mut proc) = procs.pop() {
            proc.stop(STOP_GRACE);
        }
        self.start_all(&leaders);
    }

    /// Restarts `components` as an operator rolls them, each stopped by its PID and started
    /// with what `kubepki flags` prints now: the controllers among them stopped first, then
    /// etcd and the API server one at a time (its readiness awaited after each), then the
    /// controllers started, and their new leaders awaited. A controller loses its lease and
    /// exits when the API server is away longer than its renew deadline, as under kubeadm,
    /// where the kubelet starts it again; so restarting the API server restarts them too.
    pub fn restart_components(&mut self, components: &[Component]) {
        let apiserver = components.contains(&Component::Apiserver);
        let restarted: Vec<Component> = Component::ALL
            .into_iter()
            .filter(|c| components.contains(c) || (apiserver && c.lease().is_some()))
            .collect();
        let leaders: Vec<String> = restarted
            .iter()
            .filter_map(|c| c.lease())
            .filter_map(|lease| self.leader(lease).ok())
            .collect();
        let (controllers, servers): (Vec<Component>, Vec<Component>) =
            restarted.iter().partition(|c| c.lease().is_some());
        for component in &controllers {
            self.stop(*component);
        }
        for component in &servers {
            self.stop(*component);
            self.spawn(*component);
            self.wait("kube-apiserver /readyz", STARTUP, |plane| plane.ready());
        }
        for component in &controllers {
            self.spawn(*component);
        }
        for lease in controllers.iter().filter_map(|c| c.lease()) {
            self.wait(
                &format!("a new leader of lease {lease}"),
                STARTUP,
                |plane| match plane.leader(lease)? {
                    holder if leaders.contains(&holder) => Err(format!("still {holder}")),
                    holder => Ok(holder),
                },
            );
        }
    }

    /// Stops `component` by its PID, if it runs.
    fn stop(&self, component: Component) {
        let stopped = {
            let mut procs = self.procs.borrow_mut();
            let at = procs.iter().position(|p| p.name == component.name());
            at.map(|at| procs.remove(at))
        };
        if let Some(mut proc) = stopped {
            proc.stop(STOP_GRACE);
        }
    }

    fn start_all(&self, old_leaders: &[String]) {
        for component in Component::ALL {
            self.spawn(component);
            if component == Component::Apiserver {
                self.wait("kube-apiserver /readyz", STARTUP, |plane| plane.ready());
            }
        }
        for lease in Component::ALL.iter().filter_map(|c| c.lease()) {
            self.wait(
                &format!("a new leader of lease {lease}"),
                STARTUP,
                |plane| match plane.leader(lease)? {
                    holder if old_leaders.contains(&holder) => Err(format!("still {holder}")),
                    holder => Ok(holder),
                },
            );
        }
    }

    fn spawn(&self, component: Component) {
        let mut command = Command::new(self.bin.join(component.name()));
        command.args(self.launch_args(component));
        let log = self
            .work
            .path()
            .join(format!("logs/{}.log", component.name()));
        let proc = Proc::spawn(component.name(), command, &log);
        self.procs.borrow_mut().push(proc);
    }

    /// The arguments `component` is started with: `kubepki flags` for the tree, with the
    /// endpoint flags replaced by this control plane's ports, then its other endpoints, and
    /// etcd's data directory or the API server's audit log.
    pub fn launch_args(&self, component: Component) -> Vec<String> {
        let (endpoints, extras) = self.own_args(component);
        let mut replaced: Vec<&str> = endpoints.iter().map(|(flag, _)| *flag).collect();
        if self.setup.from_manifests {
            // Ports and host paths aside: the manifest's data directory, metrics port and
            // preferred address types are kubeadm's, this machine's are the harness's.
            replaced.extend(extras.iter().map(|(flag, _)| *flag));
            replaced.push("--listen-metrics-urls");
        }
        let mut args: Vec<String> = self
            .flags_of(component)
            .into_iter()
            .filter(|line| {
                !replaced
                    .iter()
                    .any(|flag| line.starts_with(&format!("{flag}=")))
            })
            .collect();
        let own = endpoints.into_iter().chain(extras);
        args.extend(own.map(|(flag, value)| format!("{flag}={value}")));
        args
    }

    /// This control plane's endpoints of `component` (which may replace `kubepki flags`
    /// lines), and the other arguments it adds (which may not).
    fn own_args(&self, component: Component) -> (Vec<Arg>, Vec<Arg>) {
        let p = self.ports;
        let url = |port: u16| format!("https://127.0.0.1:{port}");
        let work = |rel: &str| self.work.path().join(rel).display().to_string();
        let local = || ("--bind-address", "127.0.0.1".to_string());
        match component {
            Component::Etcd => (
                vec![
                    ("--listen-client-urls", url(p.etcd_client)),
                    ("--advertise-client-urls", url(p.etcd_client)),
                    ("--listen-peer-urls", url(p.etcd_peer)),
                    ("--initial-advertise-peer-urls", url(p.etcd_peer)),
                    ("--initial-cluster", format!("{NODE}={}", url(p.etcd_peer))),
                ],
                vec![("--data-dir", work("etcd"))],
            ),
            Component::Apiserver => (
                vec![("--etcd-servers", url(p.etcd_client)), local()],
                vec![
                    ("--audit-policy-file", work("audit-policy.yaml")),
                    ("--audit-log-path", work("audit.log")),
                    // Kubelet stand-ins are reached at their Node's InternalIP, 127.0.0.1.
                    ("--kubelet-preferred-address-types", "InternalIP".into()),
                    // Since v1.3x the API server refuses to publish a loopback address as
                    // the `kubernetes` Service's endpoint; nothing here needs it.
                    ("--endpoint-reconciler-type", "none".into()),
                ],
            ),
            Component::ControllerManager | Component::Scheduler => {
                let port = match component {
                    Component::Scheduler => p.scheduler,
                    _ => p.controller_manager,
                };
                let ports = vec![local(), ("--secure-port", port.to_string())];
                (ports, vec![])
            }
        }
    }

    /// What `kubepki flags <component>` prints for this tree, one argument a line (or, for a
    /// `from_manifests` plane, the arguments of its manifest's command).
    fn flags_of(&self, component: Component) -> Vec<String> {
        if self.setup.from_manifests {
            return self.manifest_command(component);
        }
        let mut args = vec!["flags".to_string(), component.name().to_string()];
        args.extend(self.cluster_args());
        for (c, extra) in &self.setup.flags_args {
            if *c == component {
                args.extend(extra.iter().cloned());
            }
        }
        let out = kubepki(&args);
        assert_success(&out, &format!("kubepki flags {}", component.name()));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The arguments of the command in the static pod manifest kubepki writes for
    /// `component`, parsed from the YAML; every file it names lies under a hostPath volume
    /// of the pod.
    fn manifest_command(&self, component: Component) -> Vec<String> {
        let dir = self.work.path().join("manifests");
        let mut args: Vec<String> = match component {
            Component::Etcd => vec!["init".into(), "phase".into(), "etcd".into(), "local".into()],
            Component::Apiserver => ["init", "phase", "control-plane", "apiserver"]
                .map(String::from)
                .to_vec(),
            Component::ControllerManager => {
                ["init", "phase", "control-plane", "controller-manager"]
                    .map(String::from)
                    .to_vec()
            }
            Component::Scheduler => ["init", "phase", "control-plane", "scheduler"]
                .map(String::from)
                .to_vec(),
        };
        args.extend(self.cluster_args());
        args.extend([
            "--kubernetes-version".to_string(),
            manifest_version(),
            "--manifests-dir".to_string(),
            dir.display().to_string(),
        ]);
        let out = kubepki(&args);
        assert_success(&out, &format!("kubepki {}", args.join(" ")));
        let path = dir.join(format!("{}.yaml", component.name()));
        let text = std::fs::read_to_string(&path).expect("the manifest kubepki wrote");
        let pod: serde_yaml::Value = serde_yaml::from_str(&text).expect("the manifest is YAML");
        let container = &pod["spec"]["containers"][0];
        let command: Vec<String> = container["command"]
            .as_sequence()
            .expect("a command")
            .iter()
            .map(|arg| arg.as_str().expect("an argument").to_string())
            .collect();
        assert_eq!(command[0], component.name(), "{}", path.display());
        let volumes: Vec<&str> = pod["spec"]["volumes"]
            .as_sequence()
            .expect("volumes")
            .iter()
            .map(|v| v["hostPath"]["path"].as_str().expect("a hostPath"))
            .collect();
        let tree_root = self.tree.root().display().to_string();
        for arg in &command[1..] {
            let Some((_, value)) = arg.split_once('=') else {
                continue;
            };
            if value.starts_with(&tree_root) {
                assert!(
                    volumes.iter().any(|v| value.starts_with(v)),
                    "{arg}: under no hostPath volume of {}",
                    path.display()
                );
            }
        }
        command[1..].to_vec()
    }

    /// The tree and cluster arguments `init` was given (for `kubepki flags`).
    pub fn cluster_args(&self) -> Vec<String> {
        let mut args = self.tree.dir_args();
        let port = self.ports.apiserver.to_string();
        for arg in [
            "--node-name",
            NODE,
            "--apiserver-advertise-address",
            "127.0.0.1",
        ] {
            args.push(arg.to_string());
        }
        args.extend(["--apiserver-bind-port".to_string(), port]);
        args
    }

    /// The API server's address.
    pub fn server(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.ports.apiserver))
    }

    /// The upstream binary `program` (`kubelet`, `kubeadm`, `etcd`).
    pub fn binary(&self, program: &str) -> PathBuf {
        self.bin.join(program)
    }

    /// The kubelet's certificate directory of this control plane's own node (created at
    /// start), where `kubelet serving-cert` writes and `certs renew` renews.
    pub fn kubelet_dir(&self) -> PathBuf {
        self.work.path().join("kubelet-pki")
    }

    /// A kubeconfig of the tree, by file name (`admin.conf`).
    pub fn kubeconfig(&self, file: &str) -> PathBuf {
        self.tree.root().join(file)
    }

    /// A directory for a test's own files, kept with the logs when the test fails.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.work.path().join(name);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        dir
    }

    /// Runs kubectl with `kubeconfig`, bounded in time; does not check the status.
    pub fn kubectl(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        self.kubectl_with_stdin(kubeconfig, args, None)
    }

    /// Runs kubectl with `kubeconfig` and `stdin`, bounded in time.
    pub fn kubectl_with_stdin(
        &self,
        kubeconfig: &Path,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Output {
        let mut command = Command::new(&self.kubectl);
        command
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--request-timeout=30s")
            .args(args);
        run_bounded(command, stdin, COMMAND_TIMEOUT)
    }

    /// kubectl's stdout; panics with its output and the logs when it fails.
    pub fn kubectl_ok(&self, kubeconfig: &Path, args: &[&str]) -> String {
        let out = self.kubectl(kubeconfig, args);
        if !out.status.success() {
            self.fail(&format!(
                "kubectl --kubeconfig {} {} failed ({}):\n{}{}",
                kubeconfig.display(),
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubepki with `args` and this tree's `--cert-dir` and `--kubeconfig-dir`.
    pub fn kubepki(&self, args: &[&str]) -> Output {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(self.tree.dir_args());
        let mut command = Command::new(env!("CARGO_BIN_EXE_kubepki"));
        command.args(&all);
        run_bounded(command, None, COMMAND_TIMEOUT)
    }

    /// The audit log.
    pub fn audit(&self) -> AuditLog {
        AuditLog::new(self.work.path().join("audit.log"))
    }

    /// Who the API server takes `kubeconfig` for, as its audit log tells it.
    pub fn whoami(&self, kubeconfig: &Path) -> Identity {
        self.whoami_by(|path| {
            self.kubectl(kubeconfig, &["get", "--raw", path]);
        })
    }

    /// Who the API server takes a request for: `request` is given a path nobody else asks
    /// for, and must send a request to it; the audit log's event for that path tells.
    pub fn whoami_by(&self, request: impl FnOnce(&str)) -> Identity {
        let serial = self.serial.get() + 1;
        self.serial.set(serial);
        let path = format!("/api/v1/namespaces/default/configmaps/kubepki-whoami-{serial}");
        request(&path);
        let event = self.audit().last_to(&path);
        match event {
            Some(Event { identity, .. }) => identity,
            None => self.fail(&format!(
                "no audit event for {path}: the request never authenticated"
            )),
        }
    }

    /// A client of the API server presenting `cert_pem` and `key_pem`, or nothing.
    pub fn client(&self, credentials: Option<(&[u8], &[u8])>) -> ApiClient {
        ApiClient::new(self.server(), &self.tree.read("pki/ca.crt"), credentials)
    }

    /// A client of the API server trusting only `ca_pem` (a bundle, during a rotation).
    pub fn client_trusting(&self, ca_pem: &[u8], credentials: Option<(&[u8], &[u8])>) -> ApiClient {
        ApiClient::new(self.server(), ca_pem, credentials)
    }

    /// etcd's client URL.
    pub fn etcd_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.ports.etcd_client)
    }

    /// The holder of the lease `name` in kube-system, or what kubectl said instead.
    pub fn leader(&self, name: &str) -> Result<String, String> {
        let args = ["-n", "kube-system", "get", "lease", name];
        let out = self.kubectl(
            &self.kubeconfig("super-admin.conf"),
            &[&args[..], &["-o", "jsonpath={.spec.holderIdentity}"]].concat(),
        );
        let holder = String::from_utf8_lossy(&out.stdout).trim().to_string();
        match (out.status.success(), holder.is_empty()) {
            (true, false) => Ok(holder),
            (true, true) => Err("no holder".into()),
            (false, _) => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        }
    }

    fn ready(&self) -> Result<(), String> {
        let out = self.kubectl(
            &self.kubeconfig("super-admin.conf"),
            &["get", "--raw", "/readyz"],
        );
        match out.status.success() {
            true => Ok(()),
            false => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        }
    }

    /// Polls `probe` until it gives a value, for at most `timeout`; fails with its last
    /// answer and the logs then, or as soon as a component has exited.
    pub fn wait<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut(&Self) -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(exited) = self.exited() {
                self.fail(&format!("waiting for {what}: {exited}"));
            }
            let last = match probe(self) {
                Ok(value) => return value,
                Err(last) => last,
            };
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "gave up after {timeout:?} waiting for {what}; last: {last}"
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// A component that has exited, said in words.
    fn exited(&self) -> Option<String> {
        let mut procs = self.procs.borrow_mut();
        procs.iter_mut().find_map(|p| {
            p.exited()
                .map(|status| format!("{} exited ({status})", p.name))
        })
    }

    /// Panics with `message` and the last lines of every component's log.
    pub fn fail(&self, message: &str) -> ! {
        panic!("{message}\n{}", self.log_tails());
    }

    /// The last lines of every component's log.
    pub fn log_tails(&self) -> String {
        Component::ALL
            .iter()
            .map(|c| {
                let log = self.work.path().join(format!("logs/{}.log", c.name()));
                let tail = super::proc::tail(&log, LOG_LINES);
                format!(
                    "--- {} (last {LOG_LINES} lines of {}):\n{tail}",
                    c.name(),
                    log.display()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let mut procs = self.procs.take();
        while let Some(proc) = procs.pop() {
            drop(proc);
        }
        if std::thread::panicking() {
            let kept = std::mem::replace(&mut self.work, tempfile::tempdir().expect("a temp dir"));
            eprintln!(
                "control plane work directory kept: {}",
                kept.keep().display()
            );
        }
    }
}

/// The directory of the upstream binaries: `$KUBEPKI_KUBERNETES_BIN`, else where
/// `scripts/kubernetes-tier --locate` finds them built; fails saying how to build them.
pub fn kubernetes_bin() -> PathBuf {
    let dir = match std::env::var_os(KUBERNETES_BIN_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => locate_built(),
    };
    let programs = Component::ALL.iter().map(|c| c.name());
    for program in programs.chain([KUBELET, KUBEADM]) {
        let binary = dir.join(program);
        assert!(
            binary.is_file(),
            "{} is missing; build it with scripts/kubernetes-tier (or run ./scripts/test, which does)",
            binary.display()
        );
    }
    dir
}

fn locate_built() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kubernetes-tier");
    let mut command = Command::new(&script);
    command.arg("--locate");
    let out = run_bounded(command, None, COMMAND_TIMEOUT);
    assert!(
        out.status.success(),
        "upstream Kubernetes is not built: {}build it with {} (or run ./scripts/test, which does), or set {KUBERNETES_BIN_ENV}",
        String::from_utf8_lossy(&out.stderr),
        script.display()
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Five free loopback ports (held together while chosen, so all differ).
fn free_ports() -> Ports {
    let listeners: Vec<TcpListener> = (0..5)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    let port = |i: usize| listeners[i].local_addr().expect("a local address").port();
    Ports {
        apiserver: port(0),
        etcd_client: port(1),
        etcd_peer: port(2),
        controller_manager: port(3),
        scheduler: port(4),
    }
}
