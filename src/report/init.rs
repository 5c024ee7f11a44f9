//! What `init` (and each phase) prints: a line per row in kubeadm's words, or the whole
//! plan as one JSON document, and after a full run the summary with the join pin.

use super::{Format, emit, manifest_line, report_text, serialized};
use crate::engine::plan::{Action, Drift, Plan, Step};
use crate::pki::issue::Eku;
use crate::pki::pin::CaPin;
use crate::profile::{Group, Kind, Role, by_role};
use crate::spec::ClusterSpec;
use crate::tree::{TreeDirs, shell_word};
use anyhow::Result;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The bundle file the closing text has other control-plane hosts copy.
const BUNDLE_FILE: &str = "kubeadm-certs.yaml";

/// What `init` did or would do, per row. Field names are documented in the README.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitReport {
    /// Whether this is a plan only (`--dry-run`).
    pub dry_run: bool,
    /// The cert directory.
    pub cert_dir: PathBuf,
    /// The kubeconfig directory.
    pub kubeconfig_dir: PathBuf,
    /// One entry per selected row, in table order.
    pub steps: Vec<StepReport>,
    /// The pin of the cluster CA's public key, once the CA exists.
    pub ca_cert_hash: Option<CaPin>,
    /// Whether any step is an error (nothing was or would be written).
    pub failed: bool,
    /// Bootstrap manifests written (RBAC, cluster-info, kube-proxy); absent when none were.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<PathBuf>,
    /// The tree's recorded configuration, when this run wrote it (it changed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<PathBuf>,
    /// Why the run failed, when it did; nothing was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    join_endpoint: String,
    /// `--control-plane-endpoint` as the other control-plane hosts' `init` must be given it.
    #[serde(skip)]
    control_plane_endpoint: Option<String>,
    /// The closing text of a whole `init` (not of a phase): set by `closing`.
    #[serde(skip)]
    closing: Option<Closing>,
}

/// What the closing text of a whole `init` names.
#[derive(Debug)]
struct Closing {
    /// `kubectl apply` of the manifests, with the kubeconfig that may create them.
    apply_manifests: String,
    /// `token create --print-join-command` for this tree.
    token_create: String,
    /// The tokens the run's configuration created, for join lines that work as printed.
    tokens: Vec<String>,
    /// `certs bundle export` for this tree, as a file to copy and as kubeadm's Secret.
    bundle_export: String,
    /// The same, piped to `kubectl apply` with the kubeconfig that may create the Secret.
    bundle_apply: String,
    /// `certs bundle import` on another control-plane host.
    bundle_import: String,
    /// `init` on another control-plane host.
    other_init: String,
}

/// What a step does, in the report's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepAction {
    /// A new key and what goes with it.
    Create,
    /// A missing certificate or public key for an existing key.
    Complete,
    /// The existing files, as they are.
    Reuse,
    /// The existing files are wrong.
    Error,
}

impl StepAction {
    fn of(action: &Action) -> StepAction {
        match action {
            Action::Create => StepAction::Create,
            Action::Complete => StepAction::Complete,
            Action::Reuse => StepAction::Reuse,
            Action::Refuse(_) => StepAction::Error,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            StepAction::Create => "create",
            StepAction::Complete => "complete",
            StepAction::Reuse => "reuse",
            StepAction::Error => "error",
        }
    }
}

/// One row of the report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    /// Row name (`apiserver`, `admin`, ...).
    pub name: &'static str,
    /// `certs` or `kubeconfig`.
    pub group: &'static str,
    /// What the step does.
    pub action: StepAction,
    /// Why.
    pub reason: String,
    /// The files of the row, key first.
    pub files: Vec<PathBuf>,
    /// DNS SANs of a new serving certificate.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
    /// IP SANs of a new serving certificate.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    /// How a reused file differs from what the current settings would write.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Drift>,
    /// A CA reused without its key: only what it signed already can be used.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub external_ca: bool,
    /// On the last step with drift: the command that plans the re-issue for this tree.
    #[serde(skip)]
    reconcile: Option<String>,
    #[serde(skip)]
    kind: Kind,
}

impl InitReport {
    /// The report of `plan`, before it is applied.
    pub fn of_plan(plan: &Plan, spec: &ClusterSpec, dry_run: bool) -> InitReport {
        let cluster_ca = by_role(Role::ClusterCa);
        let ca_cert_hash = plan
            .steps
            .iter()
            .chain(&plan.context)
            .filter(|s| s.row.name == cluster_ca.name)
            .find_map(|s| s.existing_cert.as_ref().map(CaPin::of));
        // Join lines name the server admin.conf really has, when it was kept despite the settings.
        let kept_admin_server = plan
            .steps
            .iter()
            .filter(|s| s.row.role == Role::Admin)
            .flat_map(|s| &s.drift)
            .find(|d| d.what == "server")
            .map(|d| d.found.clone());
        let control_plane = kept_admin_server.unwrap_or_else(|| spec.control_plane_url());
        let mut steps: Vec<StepReport> =
            plan.steps.iter().map(|s| StepReport::of(s, spec)).collect();
        // One hint, after the last file that drifts.
        if let Some(last) = steps.iter_mut().rev().find(|s| !s.drift.is_empty()) {
            last.reconcile = Some(plan.dirs.command("certs renew --reconcile --plan"));
        }
        InitReport {
            dry_run,
            cert_dir: plan.dirs.cert_dir.clone(),
            kubeconfig_dir: plan.dirs.kubeconfig_dir.clone(),
            failed: plan.refusals().next().is_some(),
            steps,
            ca_cert_hash,
            manifests: Vec::new(),
            recorded: None,
            error: None,
            join_endpoint: control_plane.trim_start_matches("https://").to_string(),
            control_plane_endpoint: spec
                .control_plane_endpoint
                .as_ref()
                .map(|_| control_plane.trim_start_matches("https://").to_string()),
            closing: None,
        }
    }

    /// Ends the text with what to do next, as a whole `init` does (a phase does not): the
    /// commands are for `dirs` as this run named them, and `tokens` (the configuration's
    /// bootstrap tokens, exposed) make the join lines complete.
    pub fn closing(&mut self, dirs: &TreeDirs, tokens: Vec<String>) {
        let super_admin = dirs.kubeconfig_dir.join(by_role(Role::SuperAdmin).file);
        let super_admin = shell_word(&super_admin.to_string_lossy());
        let manifests = dirs.manifests_dir();
        let export = "certs bundle export --certificate-key \"$KEY\"";
        let endpoint = match &self.control_plane_endpoint {
            Some(endpoint) => format!(" --control-plane-endpoint {}", shell_word(endpoint)),
            None => String::new(),
        };
        self.closing = Some(Closing {
            apply_manifests: format!(
                "kubectl --kubeconfig {super_admin} apply -f {}/",
                shell_word(&manifests.to_string_lossy())
            ),
            token_create: dirs.command("token create --print-join-command"),
            tokens,
            bundle_export: dirs.command(&format!("{export} -o {BUNDLE_FILE}")),
            bundle_apply: format!(
                "{} | kubectl --kubeconfig {super_admin} apply -f -",
                dirs.command(&format!("{export} --secret"))
            ),
            bundle_import: dirs.command(&format!(
                "certs bundle import --certificate-key \"$KEY\" {BUNDLE_FILE}"
            )),
            other_init: dirs.command(&format!(
                "init --node-name <name> --apiserver-advertise-address <address>{endpoint}"
            )),
        });
    }

    /// Prints the report in `format`: a plan (`--dry-run`), or a refusal.
    pub fn print(&self, format: Format) -> Result<()> {
        emit(format, &self.render(format)?)
    }

    /// Prints, as text, what the run is about to do, before it does it (the rest follows
    /// with `print_outcome`); JSON and YAML wait for the whole report.
    pub fn print_steps(&self, format: Format) -> Result<()> {
        match format {
            Format::Text => report_text(&self.steps_text()),
            Format::Json | Format::Yaml => Ok(()),
        }
    }

    /// Sorts the files written beside the PKI: the recorded configuration `record`, and
    /// the bootstrap manifests.
    pub fn set_written(&mut self, derived: Vec<PathBuf>, record: &Path) {
        let (recorded, manifests) = derived.into_iter().partition(|path| path == record);
        self.manifests = manifests;
        self.recorded = Vec::into_iter(recorded).next();
    }

    /// Prints what follows the steps once the run is done: as text, the manifests written
    /// and the closing lines; as JSON or YAML, the whole report.
    pub fn print_outcome(&self, format: Format) -> Result<()> {
        match format {
            Format::Text => report_text(&self.outcome_text()),
            Format::Json | Format::Yaml => self.print(format),
        }
    }

    fn render(&self, format: Format) -> Result<String> {
        Ok(match serialized("Init", self, format)? {
            Some(text) => text,
            None => self.text(),
        })
    }

    fn text(&self) -> String {
        let mut text = self.steps_text();
        if !self.dry_run && !self.failed {
            text.push_str(&self.outcome_text());
        }
        text
    }

    fn steps_text(&self) -> String {
        self.steps.iter().map(|s| s.line(self.dry_run)).collect()
    }

    fn outcome_text(&self) -> String {
        let mut text: String = self.manifests.iter().map(|p| manifest_line(p)).collect();
        if let Some(path) = &self.recorded {
            text.push_str(&format!(
                "[config] Recorded the settings of this run in {}\n",
                path.display()
            ));
        }
        if let (Some(pin), Some(closing)) = (&self.ca_cert_hash, &self.closing) {
            text.push_str(&self.summary(pin, closing));
        }
        text
    }

    fn summary(&self, pin: &CaPin, closing: &Closing) -> String {
        let admin = self.kubeconfig_dir.join(by_role(Role::Admin).file);
        let admin = shell_word(&admin.to_string_lossy());
        let endpoint = &self.join_endpoint;
        let join = |token: &str| {
            format!(
                "  kubeadm join {endpoint} --token {token} --discovery-token-ca-cert-hash {pin}\n"
            )
        };
        let joins: String = match closing.tokens.is_empty() {
            true => join("<token>"),
            false => closing.tokens.iter().map(|t| join(t)).collect(),
        };
        let control_plane_joins =
            joins.replace('\n', " --control-plane --certificate-key \"$KEY\"\n");
        format!(
            "\nYour Kubernetes control-plane PKI is ready.\n\n\
             To start using your cluster once its control plane runs, run the following as a regular user:\n\n  \
             mkdir -p $HOME/.kube\n  sudo cp -i {admin} $HOME/.kube/config\n  sudo chown $(id -u):$(id -g) $HOME/.kube/config\n\n\
             Once the API server answers, create the objects that let workers join:\n\n  {apply}\n\n\
             The cluster CA is pinned by:\n\n  --discovery-token-ca-cert-hash {pin}\n\n\
             More control-plane hosts get this host's CAs and service-account key as kubeadm's encrypted \
             kubeadm-certs bundle. Here, with a new certificate key (a secret: keep it so):\n\n  \
             KEY=$(kubepki certs certificate-key)\n  {export}\n\n\
             then, on each new control-plane host, with {BUNDLE_FILE} and the key copied there \
             (and this host's other settings):\n\n  {import}\n  {other_init}\n\n\
             Or, once the API server answers, upload the bundle as kubeadm's Secret and join with kubeadm:\n\n  \
             {bundle_apply}\n{control_plane_joins}\n\
             Worker nodes join with a bootstrap token and that pin:\n\n{joins}\n\
             Create a token, and print the join commands, with:\n\n  {token_create}\n",
            apply = closing.apply_manifests,
            token_create = closing.token_create,
            export = closing.bundle_export,
            bundle_apply = closing.bundle_apply,
            import = closing.bundle_import,
            other_init = closing.other_init,
        )
    }
}

impl StepReport {
    /// The report of one step; a new serving certificate shows the SANs it gets.
    fn of(step: &Step, spec: &ClusterSpec) -> StepReport {
        let serving = step.action != Action::Reuse && step.row.ekus.contains(&Eku::ServerAuth);
        let (dns_names, ips) = match serving {
            true => step.row.alt_names(spec),
            false => Default::default(),
        };
        StepReport {
            name: step.row.name,
            group: match step.row.group() {
                Group::Certs => "certs",
                Group::Kubeconfig => "kubeconfig",
            },
            action: StepAction::of(&step.action),
            reason: step.reason.clone(),
            files: step.files.clone(),
            dns_names,
            ips: ips.iter().map(|ip| ip.to_string()).collect(),
            drift: step.drift.clone(),
            external_ca: step.row.kind == Kind::Ca
                && step.action == Action::Reuse
                && step.existing_key.is_none(),
            reconcile: None,
            kind: step.row.kind,
        }
    }

    fn file_name(&self) -> String {
        self.files
            .first()
            .and_then(|f| f.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn files_joined(&self, separator: &str) -> String {
        let names: Vec<String> = self.files.iter().map(|f| f.display().to_string()).collect();
        names.join(separator)
    }

    fn line(&self, dry_run: bool) -> String {
        let group = self.group;
        let name = self.name;
        let what = match self.kind {
            Kind::Ca | Kind::Leaf => "certificate and key",
            Kind::KeyPair => "key and public key",
            Kind::Kubeconfig(_) => "kubeconfig file",
        };
        let kubeconfig = matches!(self.kind, Kind::Kubeconfig(_));
        let mut line = match (dry_run, self.action) {
            (_, StepAction::Error) => format!("[{group}] ERROR {name:?}: {}\n", self.reason),
            (true, action) => format!(
                "[dry-run] would {} {name:?} ({}): {}\n",
                action.verb(),
                self.files_joined(", "),
                self.reason
            ),
            (false, StepAction::Create) if kubeconfig => {
                format!("[{group}] Writing {:?} {what}\n", self.file_name())
            }
            (false, StepAction::Create) => format!("[{group}] Generating {name:?} {what}\n"),
            (false, StepAction::Complete) => {
                format!("[{group}] Completing {name:?}: {}\n", self.reason)
            }
            (false, StepAction::Reuse) if kubeconfig => format!(
                "[{group}] Using existing {what}: {:?}\n",
                self.files_joined("")
            ),
            (false, StepAction::Reuse) if self.external_ca => format!(
                "[{group}] Using the existing {name:?} certificate; its key is absent (external CA)\n"
            ),
            (false, StepAction::Reuse) => format!("[{group}] Using the existing {name:?} {what}\n"),
        };
        for drift in &self.drift {
            line.push_str(&format!(
                "[{group}] WARNING: {}: {drift}\n",
                self.files_joined(", ")
            ));
        }
        if let Some(reconcile) = &self.reconcile {
            line.push_str(&format!(
                "[{group}] init never replaces a file that is sound; to re-issue these for the \
                 current settings, run `{reconcile}` with this run's settings, then without --plan\n"
            ));
        }
        if !self.dns_names.is_empty() && self.action != StepAction::Error {
            line.push_str(&format!(
                "[{group}] {name} serving cert is signed for DNS names [{}] and IPs [{}]\n",
                self.dns_names.join(" "),
                self.ips.join(" ")
            ));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::plan_init;
    use crate::profile::{Selection, by_name};
    use crate::spec::tests::spec_for;
    use crate::tree::TreeDirs;
    use crate::tree::problem::Problem;

    fn report(steps: Vec<StepReport>, dry_run: bool) -> InitReport {
        InitReport {
            dry_run,
            cert_dir: "/etc/kubernetes/pki".into(),
            kubeconfig_dir: "/etc/kubernetes".into(),
            failed: steps.iter().any(|s| s.action == StepAction::Error),
            steps,
            ca_cert_hash: None,
            manifests: Vec::new(),
            recorded: None,
            error: None,
            join_endpoint: "192.168.1.10:6443".into(),
            control_plane_endpoint: None,
            closing: None,
        }
    }

    /// A step of `row` with `action`, as `plan_init` would make it.
    fn step(row: &str, action: Action) -> StepReport {
        let spec = spec_for(&[]);
        let row = by_name(row).expect("a row");
        let dirs = TreeDirs::new(None, None);
        let reason = match &action {
            Action::Refuse(problem) => problem.to_string(),
            _ => "why".into(),
        };
        let step = Step {
            row,
            action,
            reason,
            files: dirs.paths_of(row),
            existing_key: None,
            existing_cert: None,
            existing_trust: Vec::new(),
            drift: Vec::new(),
        };
        StepReport::of(&step, &spec)
    }

    #[test]
    fn each_action_is_one_line_in_kubeadms_words() {
        let lines = [
            (
                step("ca", Action::Create),
                "[certs] Generating \"ca\" certificate and key\n",
            ),
            (
                step("sa", Action::Create),
                "[certs] Generating \"sa\" key and public key\n",
            ),
            (
                step("admin", Action::Create),
                "[kubeconfig] Writing \"admin.conf\" kubeconfig file\n",
            ),
            (
                step("apiserver-kubelet-client", Action::Complete),
                "[certs] Completing \"apiserver-kubelet-client\": why\n",
            ),
            (
                step("front-proxy-ca", Action::Reuse),
                "[certs] Using the existing \"front-proxy-ca\" certificate; its key is absent (external CA)\n",
            ),
            (
                step("scheduler", Action::Reuse),
                "[kubeconfig] Using existing kubeconfig file: \"/etc/kubernetes/scheduler.conf\"\n",
            ),
            (
                step(
                    "etcd-ca",
                    Action::Refuse(Problem::NotCa("/etc/kubernetes/pki/etcd/ca.crt".into())),
                ),
                "[certs] ERROR \"etcd-ca\": /etc/kubernetes/pki/etcd/ca.crt: certificate is not a CA\n",
            ),
        ];
        for (step, expected) in lines {
            assert_eq!(step.line(false), expected);
        }
        let mut with_key = step("etcd-ca", Action::Reuse);
        with_key.external_ca = false;
        assert_eq!(
            with_key.line(false),
            "[certs] Using the existing \"etcd-ca\" certificate and key\n"
        );
    }

    #[test]
    fn a_new_serving_certificate_shows_its_sans_and_a_dry_run_its_files() {
        let apiserver = step("apiserver", Action::Create);
        let text = apiserver.line(false);
        assert!(
            text.ends_with(
                "[certs] apiserver serving cert is signed for DNS names [cp1 kubernetes kubernetes.default kubernetes.default.svc kubernetes.default.svc.cluster.local] and IPs [10.96.0.1 192.168.1.10]\n"
            ),
            "{text}"
        );
        assert!(step("apiserver", Action::Reuse).dns_names.is_empty());
        let dry = step("apiserver", Action::Create).line(true);
        assert!(
            dry.starts_with(
                "[dry-run] would create \"apiserver\" (/etc/kubernetes/pki/apiserver.key, /etc/kubernetes/pki/apiserver.crt): why\n"
            ),
            "{dry}"
        );
    }

    #[test]
    fn json_names_every_action_and_the_pin() {
        let steps = vec![
            step("ca", Action::Create),
            step("apiserver", Action::Complete),
            step("sa", Action::Reuse),
            step(
                "admin",
                Action::Refuse(Problem::Missing {
                    path: "/etc/kubernetes/admin.conf".into(),
                    hint: "x".into(),
                }),
            ),
        ];
        let mut report = report(steps, true);
        let pin = format!("sha256:{}", "ab".repeat(32));
        report.ca_cert_hash = Some(pin.parse().expect("a pin"));
        let json: serde_json::Value =
            serde_json::from_str(&report.render(Format::Json).expect("json")).expect("JSON");
        let actions: Vec<&str> = json["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .map(|s| s["action"].as_str().expect("an action"))
            .collect();
        assert_eq!(actions, ["create", "complete", "reuse", "error"]);
        assert_eq!(json["caCertHash"], pin.as_str());
        assert_eq!(json["failed"], true);
        assert_eq!(json["steps"][1]["group"], "certs");
        assert_eq!(json["steps"][3]["group"], "kubeconfig");
        assert_eq!(
            json["steps"][1]["files"][0],
            "/etc/kubernetes/pki/apiserver.key"
        );
        assert!(json.get("manifests").is_none());
    }

    #[test]
    fn a_failed_run_prints_its_steps_and_no_summary() {
        let refused = step(
            "ca",
            Action::Refuse(Problem::NotCa("/etc/kubernetes/pki/ca.crt".into())),
        );
        let mut report = report(vec![refused], false);
        report.ca_cert_hash = Some(format!("sha256:{}", "cd".repeat(32)).parse().expect("pin"));
        let text = report.text();
        assert_eq!(text.lines().count(), 1, "{text}");
        report.failed = false;
        report.steps.clear();
        report.manifests = vec!["/etc/kubernetes/bootstrap/cluster-info.yaml".into()];
        let wrote = "[bootstrap-token] Wrote /etc/kubernetes/bootstrap/cluster-info.yaml\n";
        assert_eq!(report.text(), wrote, "a phase has no closing text");
        let dirs = TreeDirs::new(Some("/my cluster/pki".into()), Some("/my cluster".into()));
        report.kubeconfig_dir = dirs.kubeconfig_dir.clone();
        report.closing(&dirs, vec![]);
        let text = report.text();
        assert!(text.starts_with(wrote), "{text}");
        for line in [
            "  sudo cp -i '/my cluster/admin.conf' $HOME/.kube/config\n",
            "  kubectl --kubeconfig '/my cluster/super-admin.conf' apply -f '/my cluster/bootstrap'/\n",
            &format!(
                "  --discovery-token-ca-cert-hash sha256:{}\n",
                "cd".repeat(32)
            ),
            "  kubeadm join 192.168.1.10:6443 --token <token> --discovery-token-ca-cert-hash",
            "  kubepki token create --print-join-command --cert-dir '/my cluster/pki' --kubeconfig-dir '/my cluster'\n",
            "  kubepki certs bundle export --certificate-key \"$KEY\" -o kubeadm-certs.yaml --cert-dir '/my cluster/pki' --kubeconfig-dir '/my cluster'\n",
            "  kubepki certs bundle import --certificate-key \"$KEY\" kubeadm-certs.yaml --cert-dir '/my cluster/pki' --kubeconfig-dir '/my cluster'\n",
            "  kubepki init --node-name <name> --apiserver-advertise-address <address> --cert-dir '/my cluster/pki' --kubeconfig-dir '/my cluster'\n",
            "  kubepki certs bundle export --certificate-key \"$KEY\" --secret --cert-dir '/my cluster/pki' --kubeconfig-dir '/my cluster' | kubectl --kubeconfig '/my cluster/super-admin.conf' apply -f -\n",
            " --control-plane --certificate-key \"$KEY\"\n",
        ] {
            assert!(text.contains(line), "{line:?} in {text}");
        }
        report.closing(&dirs, vec!["abcdef.0123456789abcdef".into()]);
        assert!(report.text().contains(
            "  kubeadm join 192.168.1.10:6443 --token abcdef.0123456789abcdef --discovery"
        ));
        report.control_plane_endpoint = Some("[fd00::1]:443".into());
        report.closing(&dirs, vec![]);
        assert!(
            report
                .text()
                .contains("<address> --control-plane-endpoint '[fd00::1]:443' --cert-dir")
        );
    }

    #[test]
    fn the_report_of_a_plan_on_an_empty_tree_creates_every_row() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let dirs = TreeDirs::new(Some(dir.path().join("pki")), Some(dir.path().into()));
        let spec = spec_for(&[]);
        let report = InitReport::of_plan(&plan_init(&spec, &dirs, Selection::All), &spec, true);
        assert!(report.steps.iter().all(|s| s.action == StepAction::Create));
        assert!(report.ca_cert_hash.is_none() && !report.failed);
        assert!(
            report
                .steps
                .iter()
                .all(|s| s.files.iter().all(|f| f.starts_with(dir.path())))
        );
    }
}
