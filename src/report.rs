//! The only printer. Results go to stdout as text for people (kubeadm's `[certs] ...` lines
//! and a summary) or as one JSON document; extra detail for `-v` goes to stderr. Nothing
//! secret is ever part of a report: it holds names, paths, reasons and public hashes.

use crate::cli::OutputFormat;
use crate::plan::{Action, Plan};
use crate::profile::{Group, Kind};
use crate::spec::{ClusterSpec, TreeDirs};
use anyhow::{Context, Result};
use serde::Serialize;
use std::io::Write;

/// What `init` did or would do, per row. Field names are documented in the README.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitReport {
    /// Whether this is a plan only (`--dry-run`).
    pub dry_run: bool,
    /// The cert directory.
    pub cert_dir: String,
    /// The kubeconfig directory.
    pub kubeconfig_dir: String,
    /// One entry per selected row, in table order.
    pub steps: Vec<StepReport>,
    /// `sha256:<hex>` of the cluster CA's public key, once the CA exists.
    pub ca_cert_hash: Option<String>,
    /// Whether any step is an error (nothing was or would be written).
    pub failed: bool,
    #[serde(skip)]
    join_endpoint: String,
}

/// One row of the report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    /// Row name (`apiserver`, `admin`, ...).
    pub name: &'static str,
    /// `certs` or `kubeconfig`.
    pub group: &'static str,
    /// `create`, `complete`, `reuse` or `error`.
    pub action: &'static str,
    /// Why.
    pub reason: String,
    /// The files of the row.
    pub files: Vec<String>,
    /// DNS SANs of a new serving certificate.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
    /// IP SANs of a new serving certificate.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    #[serde(skip)]
    kind: Kind,
}

impl InitReport {
    /// The report of `plan`, before it is applied.
    pub fn of_plan(plan: &Plan, spec: &ClusterSpec, dry_run: bool) -> InitReport {
        let steps = plan.steps.iter().map(|step| {
            let serving = step.action != Action::Reuse
                && step.profile.ekus.contains(&crate::issue::Eku::ServerAuth);
            let (dns_names, ips) = if serving {
                step.profile.alt_names(spec)
            } else {
                Default::default()
            };
            StepReport {
                name: step.profile.name,
                group: match step.profile.group() {
                    Group::Certs => "certs",
                    Group::Kubeconfig => "kubeconfig",
                },
                action: step.action.as_str(),
                reason: step.reason.clone(),
                files: step.files.iter().map(|f| f.display().to_string()).collect(),
                dns_names,
                ips: ips.iter().map(|ip| ip.to_string()).collect(),
                kind: step.profile.kind,
            }
        });
        let ca_cert_hash = plan
            .steps
            .iter()
            .chain(&plan.context)
            .filter(|s| s.profile.name == "ca")
            .find_map(|s| s.existing_cert.as_ref().and_then(|c| c.pin().ok()));
        let control_plane = spec.control_plane_url();
        InitReport {
            dry_run,
            cert_dir: plan.dirs.cert_dir.display().to_string(),
            kubeconfig_dir: plan.dirs.kubeconfig_dir.display().to_string(),
            failed: plan.first_refusal().is_some(),
            steps: steps.collect(),
            ca_cert_hash,
            join_endpoint: control_plane.trim_start_matches("https://").to_string(),
        }
    }

    /// Prints the report in `format`.
    pub fn print(&self, format: OutputFormat) -> Result<()> {
        let mut out = std::io::stdout().lock();
        let text = match format {
            OutputFormat::Json => serde_json::to_string_pretty(self)? + "\n",
            OutputFormat::Text => self.text(),
        };
        out.write_all(text.as_bytes()).context("writing to stdout")
    }

    fn text(&self) -> String {
        let mut text = String::new();
        for step in &self.steps {
            text.push_str(&step.line(self.dry_run));
        }
        if self.dry_run || self.failed {
            return text;
        }
        if let Some(hash) = &self.ca_cert_hash {
            text.push_str(&self.summary(hash));
        }
        text
    }

    fn summary(&self, hash: &str) -> String {
        let admin = std::path::Path::new(&self.kubeconfig_dir).join("admin.conf");
        format!(
            "\nYour Kubernetes control-plane PKI is ready.\n\n\
             To start using your cluster once its control plane runs, run the following as a regular user:\n\n  \
             mkdir -p $HOME/.kube\n  sudo cp -i {admin} $HOME/.kube/config\n  sudo chown $(id -u):$(id -g) $HOME/.kube/config\n\n\
             The cluster CA is pinned by:\n\n  --discovery-token-ca-cert-hash {hash}\n\n\
             Worker nodes join with a bootstrap token and that pin:\n\n  \
             kubeadm join {endpoint} --token <token> --discovery-token-ca-cert-hash {hash}\n",
            admin = admin.display(),
            endpoint = self.join_endpoint,
        )
    }
}

impl StepReport {
    fn file_name(&self) -> String {
        self.files
            .first()
            .and_then(|f| std::path::Path::new(f).file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn line(&self, dry_run: bool) -> String {
        let group = self.group;
        let name = self.name;
        let what = match self.kind {
            Kind::Ca | Kind::Leaf => "certificate and key",
            Kind::KeyPair => "key and public key",
            Kind::Kubeconfig(_) => "kubeconfig file",
        };
        let mut line = match (dry_run, self.action) {
            (_, "error") => format!("[{group}] ERROR {name:?}: {}\n", self.reason),
            (true, action) => format!(
                "[dry-run] would {action} {name:?} ({}): {}\n",
                self.files.join(", "),
                self.reason
            ),
            (false, "create") if matches!(self.kind, Kind::Kubeconfig(_)) => {
                format!("[{group}] Writing {:?} {what}\n", self.file_name())
            }
            (false, "create") => format!("[{group}] Generating {name:?} {what}\n"),
            (false, "complete") => format!("[{group}] Completing {name:?}: {}\n", self.reason),
            (false, _) if matches!(self.kind, Kind::Kubeconfig(_)) => format!(
                "[{group}] Using existing {what}: {:?}\n",
                self.files.join("")
            ),
            (false, _) => format!("[{group}] Using the existing {name:?} {what}\n"),
        };
        if !self.dns_names.is_empty() && self.action != "error" {
            line.push_str(&format!(
                "[{group}] {name} serving cert is signed for DNS names [{}] and IPs [{}]\n",
                self.dns_names.join(" "),
                self.ips.join(" ")
            ));
        }
        line
    }
}

/// A line of detail on stderr when `-v` was given.
pub fn detail(verbose: u8, message: std::fmt::Arguments<'_>) {
    if verbose > 0 {
        eprintln!("[detail] {message}");
    }
}

/// The tree's directories, for detail lines.
pub fn describe_dirs(dirs: &TreeDirs) -> String {
    format!(
        "cert dir {}, kubeconfig dir {}",
        dirs.cert_dir.display(),
        dirs.kubeconfig_dir.display()
    )
}
