//! Which components must restart after a stage, and why, from the tables alone: after
//! `trust` and `finish`, every component with a flag naming the row's trust file and the
//! owner of every kubeconfig that embeds it; after `sign`, every component with a flag
//! naming the row's key (or the signing pair), and the owner of every certificate the row
//! signs.

use super::Stage;
use crate::profile::{COMPONENT_FLAGS, Component, FileKind, FlagValue, Kind, PROFILES, Profile};

/// A component to restart, and the flags or files it must read again.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Restart {
    /// The program.
    pub component: &'static str,
    /// The flags (`--client-ca-file`) and files (`admin.conf`, `apiserver`) it reads.
    pub reads: Vec<String>,
}

/// The order components are started (and so restarted) in: each after those it talks to.
const START_ORDER: [Component; 5] = [
    Component::Etcd,
    Component::KubeApiserver,
    Component::KubeControllerManager,
    Component::KubeScheduler,
    Component::Kubelet,
];

/// The restarts after `stage` of `row`'s rotation, in start order (etcd, kube-apiserver,
/// kube-controller-manager, kube-scheduler, kubelet).
pub fn restarts(row: &Profile, stage: Stage) -> Vec<Restart> {
    let flags = COMPONENT_FLAGS.iter().filter(|f| match (stage, f.value) {
        (Stage::Trust | Stage::Finish, FlagValue::Trust(of)) => of == row.name,
        (Stage::Sign, FlagValue::SigningFile(of, _)) => of == row.name,
        (Stage::Sign, FlagValue::File(of, FileKind::Key)) => of == row.name,
        _ => false,
    });
    let mut reads: Vec<(&'static str, String)> = flags
        .map(|f| (f.component.name(), f.setting_name()))
        .collect();
    let signed = PROFILES.iter().filter(|p| p.issuer == Some(row.name));
    for signed in signed {
        let embeds_trust = matches!(signed.kind, Kind::Kubeconfig(_));
        if stage == Stage::Sign || embeds_trust {
            for component in signed.readers() {
                reads.push((component.name(), signed.cert_name().to_string()));
            }
        }
    }
    START_ORDER
        .iter()
        .map(|c| c.name())
        .filter_map(|component| {
            let mut of: Vec<String> = reads
                .iter()
                .filter(|(c, _)| *c == component)
                .map(|(_, what)| what.clone())
                .collect();
            of.dedup();
            (!of.is_empty()).then_some(Restart {
                component,
                reads: of,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::by_name;

    fn summary(row: &str, stage: Stage) -> Vec<String> {
        restarts(by_name(row).expect("a row"), stage)
            .into_iter()
            .map(|r| format!("{}: {}", r.component, r.reads.join(" ")))
            .collect()
    }

    #[test]
    fn the_cluster_ca_restarts_its_readers_then_its_signers() {
        assert_eq!(
            summary("ca", Stage::Trust),
            [
                "kube-apiserver: --client-ca-file",
                "kube-controller-manager: --client-ca-file --root-ca-file controller-manager.conf",
                "kube-scheduler: scheduler.conf",
                "kubelet: authentication.x509.clientCAFile kubelet.conf",
            ]
        );
        assert_eq!(
            summary("ca", Stage::Sign),
            [
                "kube-apiserver: apiserver apiserver-kubelet-client",
                "kube-controller-manager: --cluster-signing-cert-file --cluster-signing-key-file controller-manager.conf",
                "kube-scheduler: scheduler.conf",
                "kubelet: kubelet.conf kubelet-serving",
            ]
        );
        assert_eq!(summary("ca", Stage::Finish), summary("ca", Stage::Trust));
    }

    #[test]
    fn etcd_front_proxy_and_the_service_account_key() {
        assert_eq!(
            summary("etcd-ca", Stage::Trust),
            [
                "etcd: --peer-trusted-ca-file --trusted-ca-file",
                "kube-apiserver: --etcd-cafile"
            ]
        );
        assert_eq!(
            summary("etcd-ca", Stage::Sign),
            [
                "etcd: etcd-server etcd-peer",
                "kube-apiserver: apiserver-etcd-client"
            ]
        );
        assert_eq!(
            summary("front-proxy-ca", Stage::Trust),
            [
                "kube-apiserver: --requestheader-client-ca-file",
                "kube-controller-manager: --requestheader-client-ca-file"
            ]
        );
        assert_eq!(
            summary("front-proxy-ca", Stage::Sign),
            ["kube-apiserver: front-proxy-client"]
        );
        assert_eq!(
            summary("sa", Stage::Trust),
            ["kube-apiserver: --service-account-key-file"]
        );
        assert_eq!(
            summary("sa", Stage::Sign),
            [
                "kube-apiserver: --service-account-signing-key-file",
                "kube-controller-manager: --service-account-private-key-file"
            ]
        );
    }
}
