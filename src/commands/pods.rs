//! `kubepki init phase control-plane <all|apiserver|controller-manager|scheduler>`,
//! `kubepki init phase etcd local` and `init --manifests`: the static pod manifests of the
//! recorded (or given) configuration, written atomically into --manifests-dir.

use crate::cli::{InitArgs, InitCommand, Phase};
use crate::config::podrecord::with_pod_settings;
use crate::config::{ClusterConfiguration, InitConfig};
use crate::engine::staticpod::{PodInputs, StaticPod, static_pods};
use crate::profile::Component;
use crate::report::{PodWritten, print_static_pods};
use crate::spec::ClusterSpec;
use crate::tree::TreeDirs;
use crate::tree::store::{self, FileWrite};
use anyhow::Result;

/// The components of a manifest phase of `args`, or None for a PKI phase or a whole init.
pub fn phase_components(args: &InitArgs) -> Option<Vec<Component>> {
    let Some(InitCommand::Phase { phase }) = &args.phase else {
        return None;
    };
    match phase {
        Phase::ControlPlane { name } => Some(match name.as_str() {
            "apiserver" => vec![Component::KubeApiserver],
            "controller-manager" => vec![Component::KubeControllerManager],
            "scheduler" => vec![Component::KubeScheduler],
            _ => CONTROL_PLANE.to_vec(),
        }),
        Phase::Etcd { .. } => Some(vec![Component::Etcd]),
        Phase::Certs { .. } | Phase::Kubeconfig { .. } => None,
    }
}

/// The control plane's three components, as kubeadm's `control-plane all`.
const CONTROL_PLANE: [Component; 3] = [
    Component::KubeApiserver,
    Component::KubeControllerManager,
    Component::KubeScheduler,
];

/// What a whole `init --manifests` writes: the control plane, and etcd when it is local.
pub fn init_components(spec: &ClusterSpec) -> Vec<Component> {
    let mut components = CONTROL_PLANE.to_vec();
    if !spec.external_etcd {
        components.push(Component::Etcd);
    }
    components
}

/// The manifests of `components` for this run, built (and so checked) before anything is
/// written.
pub fn build(
    args: &InitArgs,
    (spec, dirs, file): (&ClusterSpec, &TreeDirs, &InitConfig),
    components: &[Component],
) -> Result<Vec<StaticPod>> {
    let inputs = PodInputs {
        spec,
        dirs,
        cluster: &file.cluster,
        manifests_dir: &args.pods.manifests_dir,
    };
    static_pods(components, &inputs)
}

/// Writes `pods` (those that differ from the files there) in one batch and prints them;
/// with `dry_run`, only prints them.
pub fn write(args: &InitArgs, pods: Vec<StaticPod>) -> Result<()> {
    let written = match args.dry_run {
        true => Vec::new(),
        false => {
            let writes: Vec<_> = pods.iter().map(|pod| pod.write.clone()).collect();
            store::replace_changed(&writes)?
        }
    };
    let report: Vec<PodWritten> = pods
        .iter()
        .map(|pod| {
            let path = pod.write.path();
            let action = match (args.dry_run, written.contains(&path)) {
                (true, _) => "would write",
                (false, true) => "written",
                (false, false) => "unchanged",
            };
            PodWritten {
                component: pod.component.name(),
                path,
                action,
            }
        })
        .collect();
    print_static_pods(&report, args.output.into())
}

/// The tree's record `record` (of `record_write`) with `cluster`'s static pod settings, so
/// that a later manifest phase without `--config` writes the same files.
pub fn keeping_pod_settings(
    mut record: FileWrite,
    cluster: &ClusterConfiguration,
) -> Result<FileWrite> {
    let text = String::from_utf8_lossy(&record.content).into_owned();
    record.content = with_pod_settings(&text, cluster)?.into_bytes();
    Ok(record)
}
