//! The static pod settings of a configuration — `imageRepository`, each component's
//! `extraArgs` and `extraVolumes`, the local etcd's `extraArgs` and `dataDir` — written into
//! the `ClusterConfiguration` a tree records (see `publish::recorded_configuration`), so that
//! `init phase control-plane|etcd local` without `--config` writes the same manifests. Text
//! only; no I/O.

use super::model::{ClusterConfiguration, ComponentExtras, HostPathMount};
use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};

/// `recorded` (the text of `recorded_configuration`: a header, the InitConfiguration, `---`,
/// the ClusterConfiguration) with `cluster`'s static pod settings in its ClusterConfiguration.
pub fn with_pod_settings(recorded: &str, cluster: &ClusterConfiguration) -> Result<String> {
    let at = recorded
        .rfind("\n---\n")
        .ok_or_else(|| anyhow!("internal error: the recorded configuration has one document"))?;
    let (head, body) = recorded.split_at(at + "\n---\n".len());
    let mut config: Value = serde_yaml::from_str(body).context("reading back a configuration")?;
    if let Some(repository) = &cluster.image_repository {
        config["imageRepository"] = json!(repository);
    }
    for (key, extras) in [
        ("apiServer", &cluster.api_server),
        ("controllerManager", &cluster.controller_manager),
        ("scheduler", &cluster.scheduler),
    ] {
        set_extras(&mut config, key, extras);
    }
    if config["etcd"].get("local").is_some() {
        let local = &mut config["etcd"]["local"];
        if let Some(dir) = &cluster.etcd_data_dir {
            local["dataDir"] = json!(dir);
        }
        if !cluster.etcd_local.extra_args.is_empty() {
            local["extraArgs"] = args(&cluster.etcd_local);
        }
    }
    let body = serde_yaml::to_string(&config).context("writing a configuration")?;
    Ok(format!("{head}{body}"))
}

fn set_extras(config: &mut Value, key: &str, extras: &ComponentExtras) {
    if extras.extra_args.is_empty() && extras.extra_volumes.is_empty() {
        return;
    }
    if config.get(key).is_none() {
        config[key] = json!({});
    }
    if !extras.extra_args.is_empty() {
        config[key]["extraArgs"] = args(extras);
    }
    if !extras.extra_volumes.is_empty() {
        config[key]["extraVolumes"] = extras.extra_volumes.iter().map(volume).collect();
    }
}

/// v1beta4's `extraArgs`: a list of `{name, value}`.
fn args(extras: &ComponentExtras) -> Value {
    extras
        .extra_args
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect()
}

fn volume(volume: &HostPathMount) -> Value {
    let mut value = json!({
        "name": volume.name,
        "hostPath": volume.host_path,
        "mountPath": volume.mount_path,
    });
    if volume.read_only {
        value["readOnly"] = json!(true);
    }
    if let Some(kind) = &volume.path_type {
        value["pathType"] = json!(kind);
    }
    value
}
