//! The control-plane tier (#13, #23): upstream kube-apiserver, kube-controller-manager and
//! kube-scheduler with etcd, at the versions `scripts/upstream/go.mod` pins (v1.37.2, etcd
//! 3.7.0), on loopback, each started with `kubepki flags`
//! (see `support::controlplane`), on an RSA-2048 and on an ECDSA-P256 tree. The API
//! server's audit log is the witness of who each client is.
//!
//! One control plane per algorithm runs the proofs in two rounds: on the tree `init` wrote,
//! then after `kubepki certs renew all` and a restart of every component. Each proof is a
//! function that panics, naming what broke, when its claim does not hold:
//!
//! - `identities`: every kubeconfig (and the API server's kubelet client certificate) is
//!   the user, in the groups, the tree says; init's manifests applied with
//!   `super-admin.conf` make `admin.conf` cluster-admin through `kubeadm:cluster-admins`; the
//!   front proxy's certificate makes `X-Remote-User` the user, and no other certificate does;
//! - `controllers`: the controller manager and the scheduler lead (leases renewed as
//!   themselves), `kube-root-ca.crt` equals `ca.crt`, and service-account tokens signed with
//!   `sa.key` are accepted (and verify with `sa.pub`), while one signed by another key is not;
//! - `workers`: `token create`, the bootstrap signer's signature of cluster-info, `kubepki
//!   join`, a CSR made with `bootstrap-kubelet.conf` approved and signed by the controllers,
//!   `kubepki kubelet repair` pointing the worker's `kubelet.conf` at the signed
//!   `kubelet-client-current.pem`, which authenticates as `system:node:<name>`, and
//!   kube-proxy's ConfigMap kubeconfig with a token holding `system:node-proxier`'s rights;
//! - `published` (#17): the joined worker's bootstrap token reads the `kubeadm-config` and
//!   `kubelet-config` ConfigMaps, its node `kubelet-config`, and both parse;
//! - `kubeadm` (#23): the real `kubeadm join --dry-run` of a worker, and the real
//!   `kubeadm join phase control-plane-prepare download-certs` and `certs` of a second
//!   control-plane host reading the `kubeadm-certs` Secret kubepki wrote;
//! - `kubelet`: the API server (`--verify-kubelets`) reaches a kubelet stand-in serving the
//!   `kubelet serving-cert` pair through the node proxy and refuses a self-signed one; the
//!   real kubelet loads and validates `kubelet config`; `kubelet repair` on the control
//!   plane writes a working `kubelet.conf` for another node. The serving pair is renewed by
//!   `certs renew all --kubelet-cert-dir` and served again in round 2.
//!
//! And `ha`, which the bundle test calls: three hosts' API servers, each on its own tree
//! from one bundle, against one etcd cluster, each taking every host's kubeconfigs.
//!
//! - `rotation`: `certs rotate-ca` of every CA and the service-account key through its
//!   three stages on a third control plane (RSA-2048, the cluster CA rotated to
//!   ECDSA-P256), with the restarts kubepki prints: see that module.
//!
//! - `from_kubepki_static_pod_manifests` (#22): every component started from the command of
//!   the static pod manifest `kubepki init phase control-plane|etcd local` wrote for
//!   kubernetesVersion v1.33.1 (ports, etcd's data directory and metrics URL and the API
//!   server's preferred address types are the harness's; no flag had to be dropped for the
//!   v1.20.2 binaries).
//!
//! The control planes run one after the other (a lock), each on its own ports.

mod controllers;
pub mod ha;
mod identities;
mod kubeadm;
mod kubelet;
mod published;
mod rotation;
mod workers;

use crate::support::controlplane::{Component, ControlPlane, Setup};
use std::sync::{Mutex, PoisonError};

/// One control plane at a time: two would share the machine's two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn upstream_control_plane_on_an_rsa_2048_tree() {
    run_tier("RSA-2048");
}

#[test]
fn upstream_control_plane_on_an_ecdsa_p256_tree() {
    run_tier("ECDSA-P256");
}

#[test]
fn upstream_control_plane_through_a_rotation_of_every_ca() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let mut plane = ControlPlane::start(Setup::new("RSA-2048"));
    rotation::run(&mut plane);
}

/// Issue 24: the tree kubeadm's external-CA flow assembles (`certs generate-csr`, openssl
/// signing every CSR with CAs whose keys stay outside, `init` taking it as it is) runs an
/// upstream control plane: etcd, the API server, both controllers lead, and every kubeconfig
/// is its identity.
#[test]
fn upstream_control_plane_on_a_tree_an_outside_ca_signed() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let plane = ControlPlane::start_on(Setup::new("ECDSA-P256"), &|tree, port| {
        crate::external_ca::assemble(tree, &["--apiserver-bind-port", port]);
    });
    let algorithm = "ECDSA-P256 (outside CA)";
    step(
        algorithm,
        1,
        "every kubeconfig authenticates as its identity",
        &mut || identities::kubeconfigs(&plane),
    );
    step(
        algorithm,
        1,
        "controller manager and scheduler lead; kube-root-ca.crt",
        &mut || controllers::leaders_and_root_ca(&plane),
    );
}

/// #22: etcd, the API server, the controller manager and the scheduler each started from the
/// command line of the static pod manifest `kubepki init phase control-plane|etcd local`
/// wrote (parsed from its YAML; ports, data directory and metrics URL are the harness's):
/// the API server serves, both controllers lead, every kubeconfig is its identity and
/// service-account tokens work.
#[test]
fn upstream_control_plane_from_kubepki_static_pod_manifests() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let mut setup = Setup::new("RSA-2048");
    setup.from_manifests = true;
    let plane = ControlPlane::start(setup);
    let prove = |proof: &str, check: &mut dyn FnMut()| step("manifests", 1, proof, check);
    prove(
        "every kubeconfig authenticates as its identity",
        &mut || identities::kubeconfigs(&plane),
    );
    prove(
        "controller manager and scheduler lead; kube-root-ca.crt",
        &mut || controllers::leaders_and_root_ca(&plane),
    );
    prove("service-account tokens signed with sa.key", &mut || {
        controllers::service_account_tokens(&plane)
    });
}

/// Starts a control plane on a fresh tree of `algorithm`, runs every proof, renews every
/// certificate, restarts every component and runs every proof again.
fn run_tier(algorithm: &str) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let mut setup = Setup::new(algorithm);
    let verify_kubelets = vec!["--verify-kubelets".to_string()];
    setup
        .flags_args
        .push((Component::Apiserver, verify_kubelets));
    let mut plane = ControlPlane::start(setup);
    let mut nodes = Vec::new();
    step(
        algorithm,
        1,
        "admin.conf is no admin before init's manifests",
        &mut || identities::admin_needs_the_manifests(&plane),
    );
    proofs(&plane, algorithm, 1, &mut nodes);
    step(
        algorithm,
        1,
        "certs renew all, then a restart of every component",
        &mut || identities::renew_and_restart(&mut plane),
    );
    proofs(&plane, algorithm, 2, &mut nodes);
}

/// Every proof, in an order where each one's cluster objects exist: round `round` of them.
fn proofs(plane: &ControlPlane, algorithm: &str, round: u32, nodes: &mut Vec<workers::Node>) {
    let prove = |proof: &str, check: &mut dyn FnMut()| step(algorithm, round, proof, check);
    prove(
        "every kubeconfig authenticates as its identity",
        &mut || identities::kubeconfigs(plane),
    );
    prove(
        "init's manifests applied with super-admin.conf; admin.conf is cluster-admin",
        &mut || identities::manifests_make_admin_an_admin(plane, round),
    );
    prove("the front proxy's X-Remote-User", &mut || {
        identities::front_proxy(plane)
    });
    prove(
        "controller manager and scheduler lead; kube-root-ca.crt",
        &mut || controllers::leaders_and_root_ca(plane),
    );
    prove("service-account tokens signed with sa.key", &mut || {
        controllers::service_account_tokens(plane)
    });
    prove(
        "a worker joins and its kubelet's CSR is signed",
        &mut || nodes.push(workers::join_a_worker(plane, round)),
    );
    prove("every node certificate so far is its node", &mut || {
        workers::nodes_authenticate(plane, nodes)
    });
    prove(
        "kube-proxy's kubeconfig has system:node-proxier's rights",
        &mut || workers::kube_proxy(plane, round),
    );
    prove(
        "a bootstrap token and a node read what kubeadm join reads (#17)",
        &mut || {
            let node = nodes.last().expect("this round's node");
            published::join_reads_the_published_configuration(plane, node, round)
        },
    );
    prove(
        "a real kubeadm join --dry-run discovers and reads the cluster (#23)",
        &mut || kubeadm::join_dry_run(plane, round),
    );
    prove(
        "real kubeadm control-plane join phases download kubepki's kubeadm-certs (#23)",
        &mut || kubeadm::control_plane_join_downloads_the_certs(plane, round),
    );
    prove(
        "the API server verifies a kubelet's kubepki serving certificate",
        &mut || kubelet::apiserver_verifies_the_kubelet(plane, round),
    );
    prove("the real kubelet loads kubepki kubelet config", &mut || {
        kubelet::kubelet_loads_the_config(plane, round)
    });
    prove("kubelet repair on the control-plane host", &mut || {
        kubelet::repair_on_the_control_plane(plane, round)
    });
}

/// Runs one proof, saying on stderr which (the test shows it when something fails).
fn step(algorithm: &str, round: u32, proof: &str, check: &mut dyn FnMut()) {
    eprintln!("[tier {algorithm}, round {round}] {proof}");
    check();
}
