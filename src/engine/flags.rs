//! `kubepki flags`: the profile table's component flags resolved for one tree and one
//! cluster spec — each file flag to the path of its row's file, each derived flag to its
//! value — as kubeadm's static pod manifests set them. Reads the tree only to tell an
//! external CA (its certificate without its key), as kubeadm does, and whether a rotation
//! of the cluster CA points its trust flags at the bundle of old and new (`ca-bundle.crt`).

use crate::profile::{
    COMPONENT_FLAGS, Component, ComponentFlag, FileKind, FlagValue, Profile, Role, When, by_role,
    component_flags,
};
use crate::spec::ClusterSpec;
use crate::tree::TreeDirs;
use crate::tree::reader::{key_exists, read_file, separate_trust_in_use};
use anyhow::{Result, anyhow, bail};
use serde::Serialize;

/// One flag with its value for this tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlagSetting {
    /// The flag, with its leading `--`.
    pub flag: String,
    /// Its value (empty for kubeadm's external-CA signing files).
    pub value: String,
    /// The table row whose file or name it takes, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<&'static str>,
}

impl FlagSetting {
    /// `--flag=value`, as a command line takes it.
    pub fn arg(&self) -> String {
        format!("{}={}", self.flag, self.value)
    }
}

/// A component's flags for this tree.
#[derive(Clone, Debug, Serialize)]
pub struct ComponentFlags {
    /// The component's program name.
    pub component: &'static str,
    /// Its flags, sorted by name.
    pub flags: Vec<FlagSetting>,
    /// Flags left out because the configuration names an external etcd
    /// (`etcd.external`), whose values kubeadm takes from that section.
    #[serde(skip)]
    pub external_etcd: Vec<&'static str>,
}

/// The flags of `component` for the tree `dirs` and the cluster `spec`, with the conditional
/// ones `when` asks for.
pub fn flags_for(
    component: Component,
    spec: &ClusterSpec,
    dirs: &TreeDirs,
    when: &[When],
) -> Result<ComponentFlags> {
    if component == Component::Etcd && spec.external_etcd {
        bail!(
            "--config: etcd.external is set: kubeadm runs no local etcd, so etcd has no flags \
             from this tree"
        );
    }
    let external_ca = is_external_ca(dirs)?;
    let (kept, dropped): (Vec<&ComponentFlag>, Vec<&ComponentFlag>) =
        component_flags(component, when)
            .into_iter()
            .partition(|f| !(spec.external_etcd && f.needs_local_etcd()));
    let flags = kept
        .into_iter()
        .map(|f| setting(f, spec, dirs, external_ca))
        .collect::<Result<Vec<_>>>()?;
    Ok(ComponentFlags {
        component: component.name(),
        flags,
        external_etcd: dropped.iter().map(|f| f.flag).collect(),
    })
}

/// A flag of a component that names what a signing row's readers trust.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrustFlag {
    /// The component's program name.
    pub component: &'static str,
    /// The flag and its value for this tree.
    #[serde(flatten)]
    pub setting: FlagSetting,
}

/// Every component's flag that names `row`'s trust file, resolved for this tree as it is
/// now: what a rotation's restarts must start the components with.
pub fn trust_flags(row: &Profile, dirs: &TreeDirs) -> Result<Vec<TrustFlag>> {
    let flags = COMPONENT_FLAGS
        .iter()
        .filter(|f| f.value == FlagValue::Trust(row.name));
    flags
        .map(|flag| {
            Ok(TrustFlag {
                component: flag.component.name(),
                setting: FlagSetting {
                    flag: flag.setting_name(),
                    value: trust_path(flag, dirs)?,
                    row: Some(row.name),
                },
            })
        })
        .collect()
}

/// Whether the tree holds the cluster CA's certificate without its key.
fn is_external_ca(dirs: &TreeDirs) -> Result<bool> {
    let ca = by_role(Role::ClusterCa);
    let cert = ca.cert_file().unwrap_or_default();
    Ok(read_file(&dirs.cert_dir, &cert)?.is_some() && !key_exists(dirs, ca)?)
}

fn setting(
    flag: &ComponentFlag,
    spec: &ClusterSpec,
    dirs: &TreeDirs,
    external_ca: bool,
) -> Result<FlagSetting> {
    let value = match flag.value {
        FlagValue::File(_, kind) => file_path(flag, dirs, kind)?,
        FlagValue::SigningFile(_, _) if external_ca => String::new(),
        FlagValue::SigningFile(_, kind) => file_path(flag, dirs, kind)?,
        FlagValue::Trust(_) => trust_path(flag, dirs)?,
        FlagValue::CommonName(_) => row_of(flag)?.common_name(spec),
        FlagValue::BootstrapKubeconfig => dirs.bootstrap_kubeconfig().display().to_string(),
        FlagValue::Spec(value) => value.resolve(spec),
        FlagValue::Fixed(value) => value.to_string(),
    };
    Ok(FlagSetting {
        flag: format!("--{}", flag.flag),
        value,
        row: flag.row().map(|row| row.name),
    })
}

fn row_of(flag: &ComponentFlag) -> Result<&'static Profile> {
    flag.row()
        .ok_or_else(|| anyhow!("--{}: the flag table names no row", flag.flag))
}

/// The file the row's readers trust: its separate bundle while a rotation uses it, else the
/// row's own certificate (or public key) file.
fn trust_path(flag: &ComponentFlag, dirs: &TreeDirs) -> Result<String> {
    let row = row_of(flag)?;
    if let Some(bundle) = separate_trust_in_use(dirs, row)? {
        return Ok(bundle.display().to_string());
    }
    row.signer_file()
        .map(|rel| dirs.cert_dir.join(rel).display().to_string())
        .ok_or_else(|| anyhow!("--{}: row {} trusts nothing", flag.flag, row.name))
}

fn file_path(flag: &ComponentFlag, dirs: &TreeDirs, kind: FileKind) -> Result<String> {
    let row = row_of(flag)?;
    dirs.path_of(row, kind)
        .map(|path| path.display().to_string())
        .ok_or_else(|| anyhow!("--{}: row {} has no {kind:?} file", flag.flag, row.name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::spec_for;

    fn args(component: Component, cli: &[&str], dirs: &TreeDirs) -> Vec<String> {
        let flags = flags_for(component, &spec_for(cli), dirs, &[]).unwrap();
        flags.flags.iter().map(FlagSetting::arg).collect()
    }

    fn tree() -> TreeDirs {
        TreeDirs::new(Some("/k/pki".into()), Some("/k".into()))
    }

    #[test]
    fn apiserver_flags_are_kubeadms_sorted() {
        let lines = args(Component::KubeApiserver, &[], &tree());
        let mut sorted = lines.clone();
        sorted.sort();
        assert_eq!(lines, sorted);
        for expected in [
            "--advertise-address=192.168.1.10",
            "--client-ca-file=/k/pki/ca.crt",
            "--etcd-cafile=/k/pki/etcd/ca.crt",
            "--etcd-certfile=/k/pki/apiserver-etcd-client.crt",
            "--etcd-servers=https://127.0.0.1:2379",
            "--requestheader-allowed-names=front-proxy-client",
            "--secure-port=6443",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file=/k/pki/sa.pub",
            "--service-account-signing-key-file=/k/pki/sa.key",
            "--service-cluster-ip-range=10.96.0.0/12",
            "--tls-private-key-file=/k/pki/apiserver.key",
        ] {
            assert!(
                lines.contains(&expected.to_string()),
                "{expected} in {lines:#?}"
            );
        }
    }

    #[test]
    fn verifying_kubelets_adds_the_kubelet_certificate_authority() {
        let flag = "--kubelet-certificate-authority=/k/pki/ca.crt".to_string();
        let plain = args(Component::KubeApiserver, &[], &tree());
        assert!(!plain.contains(&flag), "{plain:?}");
        let spec = spec_for(&[]);
        let verified = flags_for(
            Component::KubeApiserver,
            &spec,
            &tree(),
            &[When::VerifyKubelets],
        )
        .unwrap();
        let verified: Vec<String> = verified.flags.iter().map(FlagSetting::arg).collect();
        assert_eq!(verified.len(), plain.len() + 1);
        assert!(verified.contains(&flag), "{verified:?}");
        let mut sorted = verified.clone();
        sorted.sort();
        assert_eq!(verified, sorted);
    }

    #[test]
    fn derived_values_follow_the_spec() {
        let v6 = [
            "--apiserver-advertise-address",
            "fd00::10",
            "--service-cidr",
            "fd00:10:96::/112",
        ];
        let etcd = args(Component::Etcd, &v6, &tree());
        assert!(
            etcd.contains(
                &"--listen-client-urls=https://[::1]:2379,https://[fd00::10]:2379".into()
            )
        );
        assert!(etcd.contains(&"--initial-cluster=cp1=https://[fd00::10]:2380".into()));
        let kubelet = flags_for(
            Component::Kubelet,
            &spec_for(&v6),
            &tree(),
            &[When::KubeletConfig],
        )
        .unwrap();
        let kubelet: Vec<String> = kubelet.flags.iter().map(FlagSetting::arg).collect();
        assert!(
            kubelet.contains(&"--cluster-dns=fd00:10:96::a".into()),
            "{kubelet:?}"
        );
        assert!(kubelet.contains(&"--bootstrap-kubeconfig=/k/bootstrap-kubelet.conf".into()));
        let kcm = args(Component::KubeControllerManager, &[], &tree());
        assert!(kcm.contains(&"--kubeconfig=/k/controller-manager.conf".into()));
        assert!(kcm.contains(&"--cluster-signing-key-file=/k/pki/ca.key".into()));
    }

    #[test]
    fn external_etcd_drops_the_etcd_flags_and_refuses_etcd() {
        let mut spec = spec_for(&[]);
        spec.external_etcd = true;
        let api = flags_for(Component::KubeApiserver, &spec, &tree(), &[]).unwrap();
        assert!(api.flags.iter().all(|f| !f.flag.starts_with("--etcd-")));
        assert_eq!(
            api.external_etcd,
            [
                "etcd-cafile",
                "etcd-certfile",
                "etcd-keyfile",
                "etcd-servers"
            ]
        );
        let error = flags_for(Component::Etcd, &spec, &tree(), &[]).unwrap_err();
        assert!(error.to_string().contains("etcd.external"), "{error}");
    }

    #[test]
    fn an_external_ca_leaves_the_signing_files_empty() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = TreeDirs::new(Some(dir.path().join("pki")), Some(dir.path().into()));
        std::fs::create_dir(dir.path().join("pki")).unwrap();
        std::fs::write(dir.path().join("pki/ca.crt"), crate::testgen::ca_pem()).unwrap();
        let kcm = args(Component::KubeControllerManager, &[], &dirs);
        assert!(
            kcm.contains(&"--cluster-signing-cert-file=".into()),
            "{kcm:?}"
        );
        assert!(
            kcm.contains(&"--cluster-signing-key-file=".into()),
            "{kcm:?}"
        );
        std::fs::write(dir.path().join("pki/ca.key"), "key").unwrap();
        let kcm = args(Component::KubeControllerManager, &[], &dirs);
        let ca_key = format!(
            "--cluster-signing-key-file={}",
            dir.path().join("pki/ca.key").display()
        );
        assert!(kcm.contains(&ca_key), "{kcm:?}");
    }
}
