//! The only printer. Results go to stdout as text for people (kubeadm's `[certs] ...` lines
//! and a summary) or as one JSON document; extra detail for `-v` goes to stderr. Nothing
//! secret is ever part of a report: it holds names, paths, reasons and public hashes.

use crate::cluster::bootstrap::BootstrapToken;
use crate::duration::Duration;
use crate::engine::expiry::{Expiration, ExpirationInfo, short_human_duration};
use crate::engine::plan::{Action, Plan};
use crate::engine::renew::{Outcome, Renewal};
use crate::pki::pin::CaPin;
use crate::profile::{Group, Kind, Profile};
use crate::spec::ClusterSpec;
use crate::tree::TreeDirs;
use anyhow::{Context, Result};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// How a result is printed on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Lines (or kubeadm's tables) for people.
    Text,
    /// One JSON document.
    Json,
    /// One YAML document.
    Yaml,
}

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
    /// Bootstrap manifests written (RBAC, cluster-info, kube-proxy); absent when none were.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<String>,
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
                && step
                    .profile
                    .ekus
                    .contains(&crate::pki::issue::Eku::ServerAuth);
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
            manifests: Vec::new(),
            join_endpoint: control_plane.trim_start_matches("https://").to_string(),
        }
    }

    /// Prints the report in `format`.
    pub fn print(&self, format: Format) -> Result<()> {
        let mut out = std::io::stdout().lock();
        let text = match format {
            Format::Json => serde_json::to_string_pretty(self)? + "\n",
            Format::Yaml => serde_yaml::to_string(self)?,
            Format::Text => self.text(),
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
        for path in &self.manifests {
            text.push_str(&manifest_line(Path::new(path)));
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
             kubeadm join {endpoint} --token <token> --discovery-token-ca-cert-hash {hash}\n\n\
             Create such a token, and print the join commands, with:\n\n  \
             kubepki token create --kubeconfig-dir {dir} --print-join-command\n",
            admin = admin.display(),
            dir = self.kubeconfig_dir,
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

/// A note on stderr, kubeadm-style (`[config] skipping ...`).
pub fn note(group: &str, message: &str) {
    eprintln!("[{group}] {message}");
}

/// Says that a replacement a killed run left half done was completed.
pub fn recovered(path: &Path) {
    note(
        "recover",
        &format!(
            "completed the replacement of {} left by an interrupted run",
            path.display()
        ),
    );
}

/// A document (YAML, lines of a check) on stdout, as it is.
pub fn print_document(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing to stdout")
}

/// The tree's directories, for detail lines.
pub fn describe_dirs(dirs: &TreeDirs) -> String {
    format!(
        "cert dir {}, kubeconfig dir {}",
        dirs.cert_dir.display(),
        dirs.kubeconfig_dir.display()
    )
}

/// Prints check-expiration's result in `format`.
pub fn print_expiration(info: &ExpirationInfo, format: Format) -> Result<()> {
    let text = match format {
        Format::Json => serde_json::to_string_pretty(info)? + "\n",
        Format::Yaml => serde_yaml::to_string(info)?,
        Format::Text => expiration_tables(info),
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("writing to stdout")
}

/// kubeadm's two tables, laid out as Go's tabwriter does (minwidth 10, padding 3).
pub fn expiration_tables(info: &ExpirationInfo) -> String {
    let row = |e: &Expiration, with_ca: bool| -> Vec<String> {
        if e.missing {
            let blanks = if with_ca { 4 } else { 3 };
            return std::iter::once(format!("!MISSING! {}", e.name))
                .chain(std::iter::repeat_n(String::new(), blanks))
                .collect();
        }
        let expires = e.not_after.map(format_expiry).unwrap_or_default();
        let mut cells = vec![
            e.name.to_string(),
            expires,
            short_human_duration(e.residual_time),
        ];
        if with_ca {
            cells.push(e.ca_name.unwrap_or_default().to_string());
        }
        cells.push(format!(
            "{:<8}",
            if e.externally_managed { "yes" } else { "no" }
        ));
        cells
    };
    let certificates = [
        "CERTIFICATE",
        "EXPIRES",
        "RESIDUAL TIME",
        "CERTIFICATE AUTHORITY",
        "EXTERNALLY MANAGED",
    ];
    let authorities = [
        "CERTIFICATE AUTHORITY",
        "EXPIRES",
        "RESIDUAL TIME",
        "EXTERNALLY MANAGED",
    ];
    let first = tabulate(
        &certificates,
        info.certificates.iter().map(|e| row(e, true)).collect(),
    );
    let second = tabulate(
        &authorities,
        info.certificate_authorities
            .iter()
            .map(|e| row(e, false))
            .collect(),
    );
    format!("{first}\n{second}")
}

fn format_expiry(when: OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[month repr:short] [day], [year] [hour]:[minute] UTC");
    when.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

/// Lays out rows: every column but the last padded to its widest cell + 3 (at least 10).
fn tabulate(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let columns = header.len();
    let mut widths = vec![0usize; columns - 1];
    let header_cells: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for cells in std::iter::once(&header_cells).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count() + 3).max(10);
        }
    }
    let mut text = String::new();
    for cells in std::iter::once(&header_cells).chain(&rows) {
        for (width, cell) in widths.iter().zip(cells) {
            text.push_str(&format!("{cell:<width$}"));
        }
        text.push_str(cells.last().map(String::as_str).unwrap_or_default());
        text.push('\n');
    }
    text
}

/// A metric's name, help text and value for one certificate (`None`: no sample).
type MetricFamily = (&'static str, &'static str, fn(&Expiration) -> Option<i64>);

/// check-expiration's facts in Prometheus text format, for node_exporter's textfile collector.
pub fn expiration_metrics(info: &ExpirationInfo) -> String {
    let mut text = String::new();
    let families: [MetricFamily; 4] = [
        (
            "kubepki_certificate_expiration_timestamp_seconds",
            "NotAfter of the certificate, in seconds since the Unix epoch.",
            |e| e.not_after.map(|t| t.unix_timestamp()),
        ),
        (
            "kubepki_certificate_is_ca",
            "1 for a certificate authority, else 0.",
            |e| Some(i64::from(e.ca_name.is_none())),
        ),
        (
            "kubepki_certificate_externally_managed",
            "1 when the signing CA's key is absent (external CA), else 0.",
            |e| Some(i64::from(e.externally_managed)),
        ),
        (
            "kubepki_certificate_missing",
            "1 when the certificate's file is missing, else 0.",
            |e| Some(i64::from(e.missing)),
        ),
    ];
    for (metric, help, value) in families {
        text.push_str(&format!("# HELP {metric} {help}\n# TYPE {metric} gauge\n"));
        for entry in info.entries() {
            if let Some(value) = value(entry) {
                let ca = entry.ca_name.unwrap_or(entry.name);
                text.push_str(&format!(
                    "{metric}{{name=\"{}\",ca=\"{ca}\"}} {value}\n",
                    entry.name
                ));
            }
        }
    }
    text
}

/// Says on stderr which certificates made `--fail-within` fail.
pub fn due_notice(due: &[&str], window: Duration) {
    eprintln!(
        "kubepki: expired or expiring within {window}: {}",
        due.join(", ")
    );
}

/// Prints what `certs renew` did, then which components must restart for which files.
pub fn print_renewal(renewal: &Renewal, due_within: Option<Duration>) -> Result<()> {
    let mut text = String::new();
    for (profile, outcome) in &renewal.outcomes {
        let long = profile.long_name;
        text.push_str(&match outcome {
            Outcome::Renewed => format!("[renew] {long} renewed\n"),
            Outcome::NotDue(left) => {
                format!("[renew] {long}: not due (expires in {left}), skipped\n")
            }
            Outcome::Missing => format!("MISSING! {long}\n"),
            Outcome::Delegated(path) => format!(
                "[renew] {}: left alone, it points at the kubelet's own rotated certificate {}\n",
                profile.cert_name(),
                path.display()
            ),
            Outcome::External(ca) => format!(
                "[renew] {long} can't be renewed: its CA {ca:?} is external (its key is absent)\n"
            ),
        });
    }
    let renewed: Vec<_> = renewal
        .outcomes
        .iter()
        .filter(|(_, o)| *o == Outcome::Renewed)
        .map(|(p, _)| *p)
        .collect();
    match (&renewal.backup_dir, renewed.is_empty()) {
        (_, true) => text.push_str(&match due_within {
            Some(window) => {
                format!("\nNothing to renew: no certificate expires within {window}.\n")
            }
            None => "\nNothing was renewed.\n".to_string(),
        }),
        (Some(backup), false) => {
            text.push_str(&format!(
                "\nOld files were backed up in {}\n",
                backup.display()
            ));
            text.push_str(&restart_hints(&renewed));
        }
        (None, false) => {}
    }
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("writing to stdout")
}

fn restart_hints(renewed: &[&'static Profile]) -> String {
    let mut components: Vec<&str> = renewed.iter().filter_map(|p| p.restart).collect();
    components.dedup();
    components.sort_unstable();
    components.dedup();
    if components.is_empty() {
        return "Done renewing certificates. No component needs a restart.\n".into();
    }
    let mut text =
        "Done renewing certificates. Restart these components so that they use the new files:\n"
            .to_string();
    for component in components {
        let names: Vec<&str> = renewed
            .iter()
            .filter(|p| p.restart == Some(component))
            .map(|p| p.cert_name())
            .collect();
        text.push_str(&format!("  {component}: {}\n", names.join(", ")));
    }
    text
}

/// Prints a token, the result of `token generate` and `token create`.
pub fn print_token(token: &BootstrapToken) -> Result<()> {
    stdout(&format!("{}\n", token.expose()))
}

/// The join commands `token create --print-join-command` prints.
#[derive(Debug)]
pub struct JoinCommand {
    /// `host:port` of the API server.
    pub endpoint: String,
    /// The token.
    pub token: BootstrapToken,
    /// The cluster CA's pin.
    pub pin: CaPin,
}

/// Prints the `kubepki join` line, then the same for `kubeadm join`.
pub fn print_join_commands(join: &JoinCommand) -> Result<()> {
    let args = format!(
        "{} --token {} --discovery-token-ca-cert-hash {}",
        join.endpoint,
        join.token.expose(),
        join.pin
    );
    stdout(&format!("kubepki join {args}\nkubeadm join {args}\n"))
}

/// Lists the manifest files written: on stdout when they are the result, else on stderr.
pub fn print_manifests(paths: &[PathBuf], to_stderr: bool) -> Result<()> {
    let text: String = paths.iter().map(|p| manifest_line(p)).collect();
    match to_stderr {
        true => {
            eprint!("{text}");
            Ok(())
        }
        false => stdout(&text),
    }
}

fn manifest_line(path: &Path) -> String {
    format!("[bootstrap-token] Wrote {}\n", path.display())
}

/// Warns that a file holding a private key is open to group or others.
pub fn open_secret(path: &Path, mode: u32) {
    eprintln!(
        "[security] WARNING: {} has mode {mode:04o}: group or others may read a private key; \
         kubeadm writes it 0600 (chmod 600 {})",
        path.display(),
        path.display()
    );
}

/// A warning on stderr, kubeadm's way.
pub fn warn(message: &str) {
    eprintln!("[discovery] WARNING: {message}");
}

/// What `join` wrote.
#[derive(Debug)]
pub struct JoinReport {
    /// The worker's `ca.crt`.
    pub ca: PathBuf,
    /// Whether `ca.crt` was written (else the same file was already there).
    pub ca_written: bool,
    /// `bootstrap-kubelet.conf`.
    pub kubeconfig: PathBuf,
    /// The API server the kubelet will bootstrap against.
    pub server: String,
    /// `--node-name`, for the kubelet hint.
    pub node_name: Option<String>,
}

/// Prints what join wrote and how to start the kubelet with it.
pub fn print_join(join: &JoinReport) -> Result<()> {
    let ca = match join.ca_written {
        true => format!(
            "[kubelet-start] Wrote the cluster CA to {}\n",
            join.ca.display()
        ),
        false => format!(
            "[kubelet-start] Using the existing cluster CA {}\n",
            join.ca.display()
        ),
    };
    let kubeconfig_dir = join.kubeconfig.parent().unwrap_or(Path::new("."));
    let node = join
        .node_name
        .as_ref()
        .map(|name| format!(" --hostname-override={name}"))
        .unwrap_or_default();
    stdout(&format!(
        "{ca}[kubelet-start] Wrote the TLS bootstrap kubeconfig {} (API server {})\n\n\
         This node can now bootstrap its kubelet:\n\n  \
         kubelet --bootstrap-kubeconfig={} --kubeconfig={}{node} ...\n",
        join.kubeconfig.display(),
        join.server,
        join.kubeconfig.display(),
        kubeconfig_dir.join("kubelet.conf").display(),
    ))
}

fn stdout(text: &str) -> Result<()> {
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("writing to stdout")
}
