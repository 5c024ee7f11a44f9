//! The static pod manifests of kubeadm's `control-plane` and `etcd local` phases, for one
//! tree and its configuration: each component's command line is the component flags table
//! (`kubepki flags` plus the manifest-only flags) merged with the configuration's
//! `extraArgs`, and around it kubeadm's image, hostPath volumes, probes, resources and
//! priority class. Builds the files; the caller writes them.

use crate::config::{ClusterConfiguration, ComponentExtras, HostPathMount};
use crate::engine::flags::{FlagSetting, flags_for};
use crate::profile::{Component, ETCD_METRICS_PORT, When};
use crate::spec::ClusterSpec;
use crate::tree::TreeDirs;
use crate::tree::store::{FileWrite, SECRET_MODE};
use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// kubeadm's default `imageRepository`.
pub const DEFAULT_IMAGE_REPOSITORY: &str = "registry.k8s.io";
/// kubeadm's default `etcd.local.dataDir`.
pub const DEFAULT_ETCD_DATA_DIR: &str = "/var/lib/etcd";
/// kubeadm's default `--manifests-dir`, the kubelet's static pod path.
pub const DEFAULT_MANIFESTS_DIR: &str = "/etc/kubernetes/manifests";
/// The priority of `system-node-critical`, which kubeadm writes beside its name.
const NODE_CRITICAL_PRIORITY: u64 = 2_000_001_000;
/// The controller manager's and the scheduler's secure ports, which their probes ask.
const CONTROLLER_MANAGER_PORT: u16 = 10257;
const SCHEDULER_PORT: u16 = 10259;
/// Where the API server and the controller manager find the host's CA certificates.
const CA_CERTS: &str = "/etc/ssl/certs";
/// The host's other CA directories, mounted as kubeadm does only where the host has them.
const CA_CERTS_EXTRA: [(&str, &str); 4] = [
    ("etc-ca-certificates", "/etc/ca-certificates"),
    ("etc-pki", "/etc/pki"),
    (
        "usr-local-share-ca-certificates",
        "/usr/local/share/ca-certificates",
    ),
    ("usr-share-ca-certificates", "/usr/share/ca-certificates"),
];
/// The controller manager's FlexVolume plugin directory.
const FLEXVOLUME_DIR: &str = "/usr/libexec/kubernetes/kubelet-plugins/volume/exec";

/// The etcd image tag kubeadm pins for each Kubernetes minor (its `SupportedEtcdVersion`);
/// a newer minor takes the last one.
const ETCD_VERSIONS: [(u32, &str); 6] = [
    (29, "3.5.16-0"),
    (30, "3.5.16-0"),
    (31, "3.5.16-0"),
    (32, "3.5.16-0"),
    (33, "3.5.21-0"),
    (34, "3.6.4-0"),
];
/// The oldest Kubernetes minor kubepki writes manifests for.
const OLDEST_MINOR: u32 = 29;

/// A static pod manifest: its component and file.
pub struct StaticPod {
    /// The component.
    pub component: Component,
    /// The file, in the manifests directory.
    pub write: FileWrite,
}

/// What the manifests come from: the spec, the tree, the configuration's extras and where
/// they go.
pub struct PodInputs<'a> {
    /// The resolved cluster spec.
    pub spec: &'a ClusterSpec,
    /// The tree (made absolute here: a manifest's paths are the kubelet's).
    pub dirs: &'a TreeDirs,
    /// The configuration (kubernetesVersion, imageRepository, extraArgs, extraVolumes).
    pub cluster: &'a ClusterConfiguration,
    /// The manifests directory.
    pub manifests_dir: &'a Path,
}

/// The manifests of `components` (the control plane's three, or etcd), mode 0600 as
/// kubeadm writes them. An unknown or unusable `kubernetesVersion` is refused here, before
/// anything is written.
pub fn static_pods(components: &[Component], inputs: &PodInputs) -> Result<Vec<StaticPod>> {
    let version = KubeVersion::of(inputs.cluster.kubernetes_version.as_deref())?;
    if inputs.spec.external_etcd && components.contains(&Component::Etcd) {
        bail!(
            "etcd.external is set: kubeadm runs no local etcd, so there is no etcd manifest to \
             write"
        );
    }
    let mut dirs = inputs.dirs.clone();
    dirs.cert_dir = absolute(&dirs.cert_dir)?;
    dirs.kubeconfig_dir = absolute(&dirs.kubeconfig_dir)?;
    let root = absolute(inputs.manifests_dir)?;
    components
        .iter()
        .map(|&component| {
            let pod = pod(component, inputs, &dirs, &version)?;
            let yaml = serde_yaml::to_string(&pod).context("writing a manifest as YAML")?;
            Ok(StaticPod {
                component,
                write: FileWrite {
                    root: root.clone(),
                    rel: format!("{}.yaml", component.name()).into(),
                    content: yaml.into_bytes(),
                    mode: SECRET_MODE,
                },
            })
        })
        .collect()
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("{}: no absolute path", path.display()))
}

/// `kubernetesVersion`, `v<major>.<minor>.<patch>` as kubeadm pins it.
struct KubeVersion {
    text: String,
    minor: u32,
}

impl KubeVersion {
    fn of(version: Option<&str>) -> Result<KubeVersion> {
        let text = version.ok_or_else(|| {
            anyhow!(
                "no kubernetesVersion: the manifests name an image; give --kubernetes-version \
                 (e.g. v1.33.1) or a --config with kubernetesVersion"
            )
        })?;
        let bad = || {
            anyhow!(
                "kubernetesVersion {text:?}: not a release version v1.MINOR.PATCH (kubepki asks \
                 no one which release is the latest)"
            )
        };
        let numbers = text.strip_prefix('v').ok_or_else(bad)?;
        let core = numbers.split(['-', '+']).next().unwrap_or_default();
        let parts: Vec<u32> = core
            .split('.')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        let [1, minor, _patch] = parts[..] else {
            return Err(bad());
        };
        if minor < OLDEST_MINOR {
            bail!(
                "kubernetesVersion {text}: kubepki writes manifests as kubeadm v1.{OLDEST_MINOR} \
                 and later do"
            );
        }
        Ok(KubeVersion {
            text: text.to_string(),
            minor,
        })
    }

    fn etcd_tag(&self) -> &'static str {
        ETCD_VERSIONS
            .iter()
            .rev()
            .find(|(minor, _)| *minor <= self.minor)
            .map_or(ETCD_VERSIONS[0].1, |(_, tag)| tag)
    }

    /// Whether kubeadm's etcd is 3.6, whose corruption check is a feature gate.
    fn etcd_36(&self) -> bool {
        self.etcd_tag().starts_with("3.6")
    }
}

/// One hostPath volume and its mount.
struct Mount {
    name: String,
    host_path: String,
    mount_path: String,
    read_only: bool,
    path_type: Option<String>,
}

impl Mount {
    fn dir(name: &str, path: &Path, read_only: bool) -> Mount {
        let path = path.display().to_string();
        Mount {
            name: name.into(),
            host_path: path.clone(),
            mount_path: path,
            read_only,
            path_type: Some("DirectoryOrCreate".into()),
        }
    }

    fn extra(volume: &HostPathMount) -> Mount {
        Mount {
            name: volume.name.clone(),
            host_path: volume.host_path.display().to_string(),
            mount_path: volume.mount_path.display().to_string(),
            read_only: volume.read_only,
            path_type: volume.path_type.clone(),
        }
    }

    fn volume(&self) -> Value {
        let mut host_path = json!({"path": self.host_path});
        if let Some(kind) = &self.path_type {
            host_path["type"] = json!(kind);
        }
        json!({"name": self.name, "hostPath": host_path})
    }

    fn mount(&self) -> Value {
        let mut mount = json!({"name": self.name, "mountPath": self.mount_path});
        if self.read_only {
            mount["readOnly"] = json!(true);
        }
        mount
    }
}

/// An HTTP(S) probe as kubeadm's `ComponentProbe`.
fn probe(host: &str, port: u16, path: &str, scheme: &str, failures: u32) -> Value {
    let mut probe = json!({
        "httpGet": {"host": host, "path": path, "port": port, "scheme": scheme},
        "failureThreshold": failures,
        "initialDelaySeconds": 10,
        "periodSeconds": 10,
        "timeoutSeconds": 15,
    });
    if failures == 3 {
        // readiness: asked every second, from the start
        probe["periodSeconds"] = json!(1);
        if let Some(fields) = probe.as_object_mut() {
            fields.remove("initialDelaySeconds");
        }
    }
    probe
}

/// Liveness, readiness (when given) and startup probes.
struct Probes {
    host: String,
    port: u16,
    scheme: &'static str,
    live: &'static str,
    ready: Option<&'static str>,
    startup: &'static str,
}

fn pod(
    component: Component,
    inputs: &PodInputs,
    dirs: &TreeDirs,
    version: &KubeVersion,
) -> Result<Value> {
    let (spec, cluster) = (inputs.spec, inputs.cluster);
    let repository = cluster
        .image_repository
        .as_deref()
        .unwrap_or(DEFAULT_IMAGE_REPOSITORY);
    let loopback = match spec.advertise_address {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    let kubeconfig = |file: &str| {
        let path = dirs.kubeconfig_dir.join(file).display().to_string();
        Mount {
            name: "kubeconfig".into(),
            host_path: path.clone(),
            mount_path: path,
            read_only: true,
            path_type: Some("FileOrCreate".into()),
        }
    };
    let k8s_certs = Mount::dir("k8s-certs", &dirs.cert_dir, true);
    let data_dir = cluster
        .etcd_data_dir
        .clone()
        .unwrap_or_else(|| DEFAULT_ETCD_DATA_DIR.into());
    let mut annotations = json!({});
    let (extras, mut mounts, cpu, probes): (&ComponentExtras, Vec<Mount>, &str, Probes) =
        match component {
            Component::KubeApiserver => {
                annotations["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"] = json!(
                    format!("{}:{}", host_text(spec.advertise_address), spec.bind_port)
                );
                let mut mounts = ca_mounts();
                mounts.push(k8s_certs);
                let probes = Probes {
                    host: spec.advertise_address.to_string(),
                    port: spec.bind_port,
                    scheme: "HTTPS",
                    live: "/livez",
                    ready: Some("/readyz"),
                    startup: "/livez",
                };
                (&cluster.api_server, mounts, "250m", probes)
            }
            Component::KubeControllerManager => {
                let mut mounts = ca_mounts();
                mounts.push(Mount::dir(
                    "flexvolume-dir",
                    Path::new(FLEXVOLUME_DIR),
                    false,
                ));
                mounts.push(k8s_certs);
                mounts.push(kubeconfig("controller-manager.conf"));
                let probes = Probes {
                    host: loopback.to_string(),
                    port: CONTROLLER_MANAGER_PORT,
                    scheme: "HTTPS",
                    live: "/healthz",
                    ready: None,
                    startup: "/healthz",
                };
                (&cluster.controller_manager, mounts, "200m", probes)
            }
            Component::KubeScheduler => {
                let probes = Probes {
                    host: loopback.to_string(),
                    port: SCHEDULER_PORT,
                    scheme: "HTTPS",
                    live: "/livez",
                    ready: Some("/readyz"),
                    startup: "/livez",
                };
                let mounts = vec![kubeconfig("scheduler.conf")];
                (&cluster.scheduler, mounts, "100m", probes)
            }
            Component::Etcd => {
                annotations["kubeadm.kubernetes.io/etcd.advertise-client-urls"] = json!(format!(
                    "https://{}:2379",
                    host_text(spec.advertise_address)
                ));
                let certs = Mount::dir("etcd-certs", &dirs.cert_dir.join("etcd"), false);
                let mounts = vec![certs, Mount::dir("etcd-data", &data_dir, false)];
                let probes = Probes {
                    host: loopback.to_string(),
                    port: ETCD_METRICS_PORT,
                    scheme: "HTTP",
                    live: "/livez",
                    ready: Some("/readyz"),
                    startup: "/readyz",
                };
                (&cluster.etcd_local, mounts, "100m", probes)
            }
            Component::Kubelet => bail!("the kubelet runs from no static pod"),
        };
    mounts.extend(extras.extra_volumes.iter().map(Mount::extra));
    mounts.sort_by(|a, b| a.name.cmp(&b.name));
    let mut command = vec![json!(component.name())];
    command.extend(
        arguments(component, inputs, dirs, version, &data_dir)?
            .into_iter()
            .map(Value::from),
    );
    let image = match component {
        Component::Etcd => format!("{repository}/etcd:{}", version.etcd_tag()),
        _ => format!("{repository}/{}:{}", component.name(), version.text),
    };
    let mut resources = json!({"requests": {"cpu": cpu}});
    if component == Component::Etcd {
        resources["requests"]["memory"] = json!("100Mi");
    }
    let mut container = json!({
        "name": component.name(),
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "livenessProbe": probe(&probes.host, probes.port, probes.live, probes.scheme, 8),
        "startupProbe": probe(&probes.host, probes.port, probes.startup, probes.scheme, 24),
        "resources": resources,
        "volumeMounts": mounts.iter().map(Mount::mount).collect::<Vec<_>>(),
    });
    if let Some(ready) = probes.ready {
        container["readinessProbe"] = probe(&probes.host, probes.port, ready, probes.scheme, 3);
    }
    let mut metadata = json!({
        "name": component.name(),
        "namespace": "kube-system",
        "labels": {"component": component.name(), "tier": "control-plane"},
    });
    if annotations.as_object().is_some_and(|a| !a.is_empty()) {
        metadata["annotations"] = annotations;
    }
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "containers": [container],
            "hostNetwork": true,
            "priority": NODE_CRITICAL_PRIORITY,
            "priorityClassName": "system-node-critical",
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": mounts.iter().map(Mount::volume).collect::<Vec<_>>(),
        },
        "status": {},
    }))
}

/// An address as a URL's host part: IPv6 bracketed.
fn host_text(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// `/etc/ssl/certs`, and the host's other CA directories where it has them.
fn ca_mounts() -> Vec<Mount> {
    let mut mounts = vec![Mount::dir("ca-certs", Path::new(CA_CERTS), true)];
    mounts.extend(
        CA_CERTS_EXTRA
            .iter()
            .filter(|(_, path)| Path::new(path).is_dir())
            .map(|(name, path)| Mount::dir(name, Path::new(path), true)),
    );
    mounts
}

/// The component's arguments as kubeadm builds them: the table's flags (and etcd's data
/// directory and tuning), each replaced by an `extraArgs` of the same name, sorted by name.
fn arguments(
    component: Component,
    inputs: &PodInputs,
    dirs: &TreeDirs,
    version: &KubeVersion,
    data_dir: &Path,
) -> Result<Vec<String>> {
    let mut base: Vec<(String, String)> =
        flags_for(component, inputs.spec, dirs, &[When::Manifest])?
            .flags
            .iter()
            .map(|f: &FlagSetting| (f.flag.trim_start_matches('-').to_string(), f.value.clone()))
            .collect();
    if component == Component::Etcd {
        base.push(("data-dir".into(), data_dir.display().to_string()));
        let tuning = match version.etcd_36() {
            true => [
                ("feature-gates", "InitialCorruptCheck=true"),
                ("watch-progress-notify-interval", "5s"),
            ],
            false => [
                ("experimental-initial-corrupt-check", "true"),
                ("experimental-watch-progress-notify-interval", "5s"),
            ],
        };
        base.extend(tuning.map(|(k, v)| (k.to_string(), v.to_string())));
    }
    let extras = match component {
        Component::KubeApiserver => &inputs.cluster.api_server,
        Component::KubeControllerManager => &inputs.cluster.controller_manager,
        Component::KubeScheduler => &inputs.cluster.scheduler,
        _ => &inputs.cluster.etcd_local,
    };
    base.retain(|(name, _)| !extras.extra_args.iter().any(|(extra, _)| extra == name));
    base.extend(extras.extra_args.iter().cloned());
    base.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(base
        .into_iter()
        .map(|(name, value)| format!("--{name}={value}"))
        .collect())
}
