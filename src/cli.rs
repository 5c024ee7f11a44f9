//! The command line (clap derive): commands, flags, help and value parsers. Flags that a
//! config file may also set are `Option`s, so that "flags override the file" stays a simple
//! merge; their defaults live in `spec.rs` and are shown in the help. No I/O.

use crate::cluster::bootstrap::{BootstrapToken, ExtraGroup, Usage};
use crate::cluster::discovery::DiscoverySource;
use crate::duration::Duration;
use crate::engine::audit::Severity;
use crate::net::https::HttpsUrl;
use crate::net::netaddr::{DnsName, Endpoint, San, ServiceCidrs};
use crate::pki::keys::Algorithm;
use crate::pki::pin::CaPin;
use crate::pki::seal::CertificateKey;
use crate::profile::{
    Component, Group, phase_names, renewable_names, rotatable_rows, signable_names,
};
use crate::report::Format;
use crate::spec::{ClusterInput, JoinInput};
use crate::tree::TreeDirs;
use crate::usage::UsageError;
use clap::builder::{NonEmptyStringValueParser, PossibleValuesParser, TypedValueParser};
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// kubepki: a Kubernetes cluster's PKI, as kubeadm writes it, without kubeadm.
#[derive(Debug, Parser)]
#[command(
    name = "kubepki",
    version,
    args_override_self = true,
    propagate_version = true
)]
pub struct Cli {
    /// More detail on stderr (paths, timings).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Errors and warnings only: no progress, notes or text report (for cron). A document
    /// asked for (-o json|yaml, a kubeconfig, a pin, a token) is still printed.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run; boxing would buy nothing
pub enum Command {
    /// Write every certificate, key and kubeconfig a control-plane host needs (idempotent).
    Init(InitArgs),
    /// Keep certificates alive: expiry, renewal, audit, reconcile and rollback, the CA pin,
    /// certificate keys.
    Certs {
        /// The certs command.
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Kubeconfig files for users.
    Kubeconfig {
        /// The kubeconfig command.
        #[command(subcommand)]
        command: KubeconfigCommand,
    },
    /// Bootstrap tokens, and the cluster objects that let workers join with them.
    Token {
        /// The token command.
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Fetch a worker's ca.crt and bootstrap-kubelet.conf by token or file discovery.
    Join(JoinArgs),
    /// Print a component's certificate, key, kubeconfig and auth flags for this tree, as
    /// kubeadm's static pods set them.
    Flags(FlagsArgs),
    /// The kubelet's side: a hardened configuration, a CA-signed serving certificate, and
    /// a working kubelet.conf again.
    Kubelet {
        /// The kubelet command.
        #[command(subcommand)]
        command: KubeletCommand,
    },
    /// kubeadm configuration files: print kubepki's defaults, or check a file.
    Config {
        /// What to do.
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, ...).
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `kubepki kubelet ...`.
#[derive(Debug, Subcommand)]
pub enum KubeletCommand {
    /// Print (or write) a hardened KubeletConfiguration: kubeadm's default with the read-only
    /// port off, TLS 1.2+ with forward-secret AEAD suites, certificate rotation on.
    Config(KubeletConfigArgs),
    /// Write the kubelet's serving certificate and key, signed by the cluster CA.
    ServingCert(ServingCertArgs),
    /// Make a node's kubelet.conf work again: point it at the kubelet's valid rotated
    /// certificate, or (on a control-plane host) write one with a fresh embedded certificate.
    Repair(RepairArgs),
}

/// `kubepki kubelet config`.
#[derive(Debug, Args)]
pub struct KubeletConfigArgs {
    /// Also have the kubelet request its serving certificate from the cluster
    /// (serverTLSBootstrap; someone must approve those CSRs).
    #[arg(long)]
    pub server_tls_bootstrap: bool,
    /// Write to FILE (e.g. /var/lib/kubelet/config.yaml; mode 0644, as kubeadm's: it holds
    /// no secret) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Deprecated spelling of --out.
    #[arg(
        long = "output",
        value_name = "FILE",
        hide = true,
        conflicts_with = "out"
    )]
    pub deprecated_output: Option<PathBuf>,
    /// Replace an existing --out FILE.
    #[arg(long)]
    pub force: bool,
    /// kubeadm configuration file (InitConfiguration/ClusterConfiguration, v1beta3 or
    /// v1beta4); flags given as well override its values.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The directories of the tree (the cluster CA is `<cert-dir>/ca.crt`).
    #[command(flatten)]
    pub tree: TreeArgs,
    /// The cluster facts the configuration derives from (cluster DNS, domain).
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `kubepki kubelet serving-cert`.
#[derive(Debug, Args)]
pub struct ServingCertArgs {
    /// The node's name (a DNS name; the certificate's DNS SAN and CN system:node:NAME).
    #[arg(long, value_name = "NAME")]
    pub node_name: DnsName,
    /// The node's addresses (IP SANs), comma-separated.
    #[arg(long, value_name = "IP[,IP]", value_delimiter = ',', required = true)]
    pub node_ip: Vec<IpAddr>,
    /// The kubelet's certificate directory, where kubelet.crt and kubelet.key go (it must exist) [default: /var/lib/kubelet/pki].
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// On the node: write only a new kubelet.key and kubelet.csr there (no CA needed), for
    /// `kubepki certs sign-csr --for kubelet-serving` on a control-plane host; the key never
    /// leaves the node. Put the certificate back as kubelet.crt.
    #[arg(long)]
    pub csr_only: bool,
    /// Validity of the certificate [default: 8760h].
    #[arg(long, value_name = "DURATION")]
    pub cert_validity: Option<Duration>,
    /// Key algorithm [default: the cluster CA's algorithm].
    #[arg(long, value_name = "ALGORITHM", value_parser = algorithm_parser(), ignore_case = true)]
    pub encryption_algorithm: Option<Algorithm>,
    /// Where the files it replaces are kept first, as a generation
    /// kubepki-backup-<UTC time> there, as renew keeps them [default: <kubeconfig-dir>/tmp].
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// The directories of the tree (the cluster CA's certificate and key).
    #[command(flatten)]
    pub tree: TreeArgs,
    /// The tree lock.
    #[command(flatten)]
    pub lock: LockArgs,
}

/// `kubepki kubelet repair`.
#[derive(Debug, Args)]
pub struct RepairArgs {
    /// The node whose kubelet.conf to repair.
    #[arg(long, value_name = "NAME")]
    pub node_name: DnsName,
    /// The kubelet's certificate directory, holding kubelet-client-current.pem [default: /var/lib/kubelet/pki].
    #[arg(long, value_name = "DIR")]
    pub kubelet_cert_dir: Option<PathBuf>,
    /// The API server URL for a kubelet.conf written anew [default: the server of kubelet.conf, bootstrap-kubelet.conf or admin.conf].
    #[arg(long, value_name = "URL", value_parser = https_server)]
    pub server: Option<String>,
    /// Control-plane host: write the new kubelet.conf (it holds a new private key) to FILE,
    /// mode 0600, or to stdout with `--out -`; without it, a new kubelet.conf is refused.
    #[arg(long, value_name = "FILE|-")]
    pub out: Option<PathBuf>,
    /// Deprecated spelling of --out.
    #[arg(
        long = "output",
        value_name = "FILE",
        hide = true,
        conflicts_with = "out"
    )]
    pub deprecated_output: Option<PathBuf>,
    /// Replace an existing --out FILE (kept first as a generation in --backup-dir).
    #[arg(long)]
    pub force: bool,
    /// Where a replaced kubelet.conf (or --out FILE) is kept first, as a generation
    /// kubepki-backup-<UTC time> there, as renew keeps them [default: <kubeconfig-dir>/tmp].
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// The directories of the tree.
    #[command(flatten)]
    pub tree: TreeArgs,
    /// The tree lock.
    #[command(flatten)]
    pub lock: LockArgs,
}

/// `kubepki config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a configuration.
    Print {
        /// Which one.
        #[command(subcommand)]
        what: PrintWhat,
    },
    /// Check a kubeadm configuration file; exit 0 when kubepki can use it, else 1.
    Validate {
        /// The kubeadm configuration file (YAML).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

/// `kubepki config print ...`.
#[derive(Debug, Subcommand)]
pub enum PrintWhat {
    /// A v1beta4 InitConfiguration and ClusterConfiguration with kubepki's defaults.
    InitDefaults,
}

/// `kubepki certs ...`.
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Show when every certificate expires (kubeadm's tables, or JSON/YAML).
    CheckExpiration(CheckExpirationArgs),
    /// Re-issue leaf and kubeconfig certificates from the existing CAs.
    Renew(RenewArgs),
    /// Print the cluster CA's pin, sha256:<hex> of its public key (for joining nodes).
    CaCertHash {
        /// The directories of the tree.
        #[command(flatten)]
        tree: TreeArgs,
    },
    /// Print a new random certificate key (32 bytes, hex).
    CertificateKey,
    /// Find everything wrong with a tree; exit 3 when something is found.
    Audit(AuditArgs),
    /// List the generations: the files each renewal or rollback replaced, kept.
    Generations(GenerationsArgs),
    /// Put the tree back as it was before a generation's run (that run and every later one
    /// undone) [default: the newest].
    Rollback(RollbackArgs),
    /// Rotate a CA or the service-account key pair in stages (trust, sign, finish), or show
    /// where rotations stand (status).
    RotateCa(RotateArgs),
    /// kubeadm's external-CA flow: a key and a CSR for every certificate and kubeconfig
    /// (`<name>.key` + `<name>.csr`, `<name>.conf` holding its key + `<name>.conf.csr`), for a
    /// CA kept elsewhere to sign; put each certificate beside its key as `<name>.crt` (in a
    /// kubeconfig: base64 in client-certificate-data), then `kubepki init` uses them.
    GenerateCsr(GenerateCsrArgs),
    /// Sign a CSR made elsewhere (a kubelet's serving CSR from `kubelet serving-cert
    /// --csr-only`, ...) with the CA of the certificate named by --for: its subject must be
    /// that certificate's, its SANs are kept, its usages and validity are kubepki's.
    SignCsr(SignCsrArgs),
    /// The shared CAs and keys, sealed as kubeadm's kubeadm-certs Secret, for more
    /// control-plane hosts.
    Bundle {
        /// The bundle command.
        #[command(subcommand)]
        command: BundleCommand,
    },
}

/// `kubepki certs generate-csr`.
#[derive(Debug, Args)]
pub struct GenerateCsrArgs {
    /// kubeadm configuration file (InitConfiguration/ClusterConfiguration, v1beta3 or
    /// v1beta4); flags given as well override its values.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The directories of the tree.
    #[command(flatten)]
    pub tree: TreeArgs,
    /// The cluster facts the subjects and SANs come from (init's flags).
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `kubepki certs sign-csr`.
#[derive(Debug, Args)]
pub struct SignCsrArgs {
    /// The certificate signing request (PEM).
    #[arg(value_name = "CSR")]
    pub csr: PathBuf,
    /// Which certificate it is for: its CA signs it, with its usages and subject rule.
    #[arg(long = "for", value_name = "NAME", value_parser = PossibleValuesParser::new(signable_names()))]
    pub for_name: String,
    /// Write the certificate to FILE (mode 0644; never replacing one) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Validity of the certificate [default: 8760h; never beyond its CA's].
    #[arg(long, value_name = "DURATION")]
    pub cert_validity: Option<Duration>,
    /// The directories of the tree (the CA's certificate and key).
    #[command(flatten)]
    pub tree: TreeArgs,
}

/// `kubepki certs rotate-ca`.
#[derive(Debug, Args)]
#[command(
    after_help = "Stages, on every control-plane host, restarting what each prints:\n  \
    trust   the new CA waits in <cert-dir>/next/ and is trusted beside the old one, which signs\n  \
    sign    the new CA signs; everything it signs is re-issued; the old one is still trusted\n  \
    finish  the old CA is trusted no more\n\
    `kubepki certs rotate-ca status` shows where each rotation stands."
)]
pub struct RotateArgs {
    /// What to rotate, or `status` for where every rotation stands.
    #[arg(value_name = "CA|status", value_parser = PossibleValuesParser::new(rotatable_rows().map(|r| r.name).chain(["status"])))]
    pub target: String,
    /// The stage to run, or `status`.
    #[arg(value_name = "STAGE", value_parser = PossibleValuesParser::new(["trust", "sign", "finish", "status"]))]
    pub stage: Option<String>,
    /// trust: take the new CA (or key pair) made on another host from DIR, laid out as a
    /// cert dir (that host's <cert-dir>/next/, or a copy of it).
    #[arg(long, value_name = "DIR")]
    pub from: Option<PathBuf>,
    /// trust: the new CA's key algorithm [default: the current CA's]; sign: the re-issued
    /// certificates' [default: each certificate's own].
    #[arg(long, value_name = "ALGORITHM", value_parser = algorithm_parser(), ignore_case = true)]
    pub encryption_algorithm: Option<Algorithm>,
    /// trust: the new CA's validity [default: 87600h].
    #[arg(long, value_name = "DURATION")]
    pub ca_validity: Option<Duration>,
    /// sign: the re-issued certificates' validity; trust: the least a new CA must still
    /// run for [default: 8760h].
    #[arg(long, value_name = "DURATION")]
    pub cert_validity: Option<Duration>,
    /// sign: the directory where replaced files (the old CA key among them) are copied first,
    /// each run into a new kubepki-backup-<UTC time> there [default: <kubeconfig-dir>/tmp].
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// trust: accept a new CA that ends before the current one or within --cert-validity;
    /// sa finish: remove the old key even though sign ran less than 24h ago (tokens it
    /// signed that have not expired stop working).
    #[arg(long)]
    pub force: bool,
    /// List each file the stage would change, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// kubeadm configuration file: its certificatesDir, encryptionAlgorithm, validity periods and whether etcd is external.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The directories of the tree.
    #[command(flatten)]
    pub tree: TreeArgs,
    /// The tree lock.
    #[command(flatten)]
    pub lock: LockArgs,
}

/// `kubepki certs bundle ...`.
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Seal this tree's CAs and service-account key pair with a certificate key.
    Export(BundleExportArgs),
    /// Open a bundle with its certificate key and write its files into this tree.
    Import(BundleImportArgs),
}

/// `kubepki certs bundle export`.
#[derive(Debug, Args)]
pub struct BundleExportArgs {
    /// The key to seal with (`kubepki certs certificate-key` makes one).
    #[command(flatten)]
    pub certificate_key: CertificateKeyArgs,
    /// Write to FILE (mode 0600) instead of stdout; never a file of the tree.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Deprecated spelling of --out (`-o` is a format everywhere else).
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        hide = true,
        conflicts_with = "out"
    )]
    pub deprecated_output: Option<PathBuf>,
    /// Replace an existing --out FILE.
    #[arg(long)]
    pub force: bool,
    /// Write the Secret with kubeadm's Role and RoleBinding, for `kubectl apply -f`.
    #[arg(long)]
    pub secret: bool,
    /// kubeadm configuration file: its certificatesDir, and whether etcd is external.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The directories of the tree.
    #[command(flatten)]
    pub tree: TreeArgs,
}

/// `kubepki certs bundle import`.
#[derive(Debug, Args)]
pub struct BundleImportArgs {
    /// The bundle (`-`: standard input): what `certs bundle export` wrote, or kubeadm's
    /// Secret as `kubectl get secret kubeadm-certs -o yaml` prints it.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The key the bundle was sealed with.
    #[command(flatten)]
    pub certificate_key: CertificateKeyArgs,
    /// Replace files of the tree that differ from the bundle (backed up first).
    #[arg(long)]
    pub force: bool,
    /// Directory of the generations: replaced files are kept first in a new
    /// kubepki-backup-<UTC time> there, as renew keeps them [default: <kubeconfig-dir>/tmp].
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// kubeadm configuration file: its certificatesDir, and whether etcd is external.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The directories of the tree.
    #[command(flatten)]
    pub tree: TreeArgs,
    /// The tree lock.
    #[command(flatten)]
    pub lock: LockArgs,
}

/// Where the generations are.
#[derive(Clone, Debug, Args)]
pub struct GenerationsDirArgs {
    /// Directory of the generations [default: <kubeconfig-dir>/tmp].
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
}

/// `kubepki certs generations`.
#[derive(Debug, Args)]
pub struct GenerationsArgs {
    /// The directories of the tree.
    #[command(flatten)]
    pub tree: TreeArgs,
    /// Where the generations are.
    #[command(flatten)]
    pub generations: GenerationsDirArgs,
    /// Remove this generation (as listed), even one that holds a CA's or sa's replaced key,
    /// which --keep never removes; says what it held.
    #[arg(long, value_name = "GENERATION", conflicts_with = "output")]
    pub remove: Option<String>,
    /// The tree lock (with --remove).
    #[command(flatten)]
    pub lock: LockArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// `kubepki certs rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The generation to undo, as `certs generations` lists it: the tree goes back to as it
    /// was before that generation's run, undoing it and every later one [default: the newest].
    #[arg(long, value_name = "GENERATION")]
    pub to: Option<String>,
    /// List each file the rollback would put back, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The directories of the tree.
    #[command(flatten)]
    pub tree: TreeArgs,
    /// The tree lock.
    #[command(flatten)]
    pub lock: LockArgs,
    /// Where the generations are.
    #[command(flatten)]
    pub generations: GenerationsDirArgs,
    /// How many generations to keep; older ones are removed [default: 5].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub keep: Option<u16>,
    /// Restore certificates and kubeconfigs even when the CA on disk after the rollback did
    /// not sign them (a CA rotated since the generation).
    #[arg(long)]
    pub force: bool,
}

/// `kubepki certs audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// kubeadm configuration file to judge the tree against; flags given as well override it
    /// [default: none, and what depends on the node is not checked].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The directories of the tree.
    #[command(flatten)]
    pub tree: TreeArgs,
    /// The cluster facts the tree is judged against (init's flags).
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// The least severity that makes the exit status 3.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,
}

/// `-o/--output`: how a command's result is printed (a file is always `--out FILE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Lines for people.
    Text,
    /// One JSON document.
    Json,
    /// One YAML document.
    Yaml,
}

impl From<OutputFormat> for Format {
    fn from(format: OutputFormat) -> Format {
        match format {
            OutputFormat::Text => Format::Text,
            OutputFormat::Json => Format::Json,
            OutputFormat::Yaml => Format::Yaml,
        }
    }
}

/// `certs audit --fail-on`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// Any finding.
    Warning,
    /// Errors only.
    Error,
}

impl From<FailOn> for Severity {
    fn from(fail_on: FailOn) -> Severity {
        match fail_on {
            FailOn::Warning => Severity::Warning,
            FailOn::Error => Severity::Error,
        }
    }
}

/// `kubepki certs check-expiration`.
#[derive(Debug, Args)]
pub struct CheckExpirationArgs {
    /// The directories of the tree.
    #[command(flatten)]
    pub tree: TreeArgs,
    /// kubeadm configuration file: its certificatesDir; flags given as well override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = ExpirationFormat::Text)]
    pub output: ExpirationFormat,
    /// Exit with status 3 when a certificate is expired or expires within DURATION (e.g. 30d).
    #[arg(long, value_name = "DURATION")]
    pub fail_within: Option<Duration>,
    /// Also write the facts in Prometheus text format (node_exporter textfile collector).
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// The kubelet's certificate directory: its kubepki serving certificate is shown when there [default: /var/lib/kubelet/pki].
    #[arg(long, value_name = "DIR")]
    pub kubelet_cert_dir: Option<PathBuf>,
}

/// Output formats of check-expiration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExpirationFormat {
    /// kubeadm's two tables.
    Text,
    /// kubeadm's CertificateExpirationInfo as JSON.
    Json,
    /// kubeadm's CertificateExpirationInfo as YAML.
    Yaml,
}

impl From<ExpirationFormat> for Format {
    fn from(format: ExpirationFormat) -> Format {
        match format {
            ExpirationFormat::Text => Format::Text,
            ExpirationFormat::Json => Format::Json,
            ExpirationFormat::Yaml => Format::Yaml,
        }
    }
}

/// `kubepki certs renew`.
#[derive(Debug, Args)]
pub struct RenewArgs {
    /// `all`, or the certificates to renew [default with --reconcile: all].
    #[arg(required_unless_present = "reconcile", value_parser = PossibleValuesParser::new(std::iter::once("all").chain(renewable_names())))]
    pub names: Vec<String>,
    /// The directories of the tree.
    #[command(flatten)]
    pub tree: TreeArgs,
    /// kubeadm configuration file: its certificatesDir, certificateValidityPeriod and encryptionAlgorithm; flags given as well override it.
    /// With --reconcile, everything the tree is reconciled with [default: kubepki's defaults
    /// and this host's facts, as init].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The tree lock.
    #[command(flatten)]
    pub lock: LockArgs,
    /// Renew only certificates that expire within DURATION (e.g. 30d); for cron.
    #[arg(long, value_name = "DURATION")]
    pub expiring_within: Option<Duration>,
    /// Directory of the generations: each run keeps the files it replaces in a new
    /// kubepki-backup-<UTC time> there [default: <kubeconfig-dir>/tmp].
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Algorithm of the new keys [default: each certificate's current algorithm].
    #[arg(long, value_name = "ALGORITHM", value_parser = algorithm_parser(), ignore_case = true)]
    pub encryption_algorithm: Option<Algorithm>,
    /// Validity of the new certificates [default: 8760h].
    #[arg(long, value_name = "DURATION")]
    pub cert_validity: Option<Duration>,
    /// The kubelet's certificate directory: its kubepki serving certificate is renewed when there [default: /var/lib/kubelet/pki].
    #[arg(long, value_name = "DIR")]
    pub kubelet_cert_dir: Option<PathBuf>,
    /// How many generations to keep; older ones are removed [default: 5].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub keep: Option<u16>,
    /// Exit with status 4 when something was renewed (0: nothing was), so that a job
    /// restarts components only then.
    #[arg(long)]
    pub detailed_exit_code: bool,
    /// After renewing, write the expiry facts and this run's time and result in Prometheus
    /// text format (node_exporter textfile collector); written on failure too.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Reconciling with the configuration instead.
    #[command(flatten)]
    pub reconcile: ReconcileArgs,
}

/// `kubepki certs renew --reconcile`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Re-issue exactly the certificates whose subject, SANs, usages, validity or algorithm
    /// differ from what the table and the configuration say, and point kubeconfigs at the
    /// configured server; CAs are never re-issued.
    #[arg(long, conflicts_with = "expiring_within")]
    pub reconcile: bool,
    /// With --reconcile: print the differences field by field and write nothing; exit 3 when
    /// changes are pending.
    #[arg(long, requires = "reconcile")]
    pub plan: bool,
    /// With --reconcile: init's flags for where the control plane is, over --config.
    #[command(flatten)]
    pub node: NodeArgs,
}

/// `kubepki kubeconfig ...`.
#[derive(Debug, Subcommand)]
pub enum KubeconfigCommand {
    /// A kubeconfig for any user, with a client certificate signed by the cluster CA.
    User(KubeconfigUserArgs),
}

/// `kubepki kubeconfig user`.
#[derive(Debug, Args)]
pub struct KubeconfigUserArgs {
    /// The user name (the certificate's CN).
    #[arg(long, value_name = "NAME", value_parser = NonEmptyStringValueParser::new())]
    pub client_name: String,
    /// A group (the certificate's O); repeat for more groups.
    #[arg(long = "org", value_name = "GROUP", value_parser = NonEmptyStringValueParser::new())]
    pub orgs: Vec<String>,
    /// Validity of the certificate [default: 8760h].
    #[arg(long, value_name = "DURATION")]
    pub validity_period: Option<Duration>,
    /// API server URL, https://HOST[:PORT] [default: the server of <kubeconfig-dir>/admin.conf].
    #[arg(long, value_name = "URL", value_parser = https_server)]
    pub server: Option<String>,
    /// Key algorithm [default: the cluster CA's algorithm].
    #[arg(long, value_name = "ALGORITHM", value_parser = algorithm_parser(), ignore_case = true)]
    pub encryption_algorithm: Option<Algorithm>,
    /// Write to FILE (mode 0600) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Deprecated spelling of --out.
    #[arg(
        long = "output",
        value_name = "FILE",
        hide = true,
        conflicts_with = "out"
    )]
    pub deprecated_output: Option<PathBuf>,
    /// Replace an existing --out FILE.
    #[arg(long)]
    pub force: bool,
    /// kubeadm configuration file: its clusterName and certificatesDir.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The directories of the tree.
    #[command(flatten)]
    pub tree: TreeArgs,
}

/// kubeadm's algorithm names, offered by shell completion and help.
fn algorithm_parser() -> impl TypedValueParser<Value = Algorithm> {
    PossibleValuesParser::new(Algorithm::ALL.map(|(_, name)| name))
        .try_map(|name| name.parse::<Algorithm>())
}

/// An API server URL, `https://HOST[:PORT][/PATH]`, kept as written.
fn https_server(text: &str) -> Result<String, String> {
    text.parse::<HttpsUrl>().map(|_| text.to_string())
}

/// `kubepki init` and its phases.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// kubeadm configuration file (InitConfiguration/ClusterConfiguration, v1beta3 or
    /// v1beta4); flags given as well override its values.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The directories of the tree.
    #[command(flatten)]
    pub tree: TreeArgs,
    /// The tree lock.
    #[command(flatten)]
    pub lock: LockArgs,
    /// The cluster facts that shape certificates and kubeconfigs.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Print what would be created or reused, and write nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text, global = true)]
    pub output: OutputFormat,
    /// Also write the static pod manifests of the control plane and its local etcd (as
    /// `init phase control-plane all` and `init phase etcd local`) into --manifests-dir.
    #[arg(long)]
    pub manifests: bool,
    /// The static pod manifests.
    #[command(flatten)]
    pub pods: PodArgs,
    /// Run a single phase instead of everything.
    #[command(subcommand)]
    pub phase: Option<InitCommand>,
}

/// Where the static pod manifests go and which images they name.
#[derive(Debug, Args)]
pub struct PodArgs {
    /// Directory of the static pod manifests, the kubelet's staticPodPath.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "/etc/kubernetes/manifests"
    )]
    pub manifests_dir: PathBuf,
    /// The Kubernetes release the manifests' images are (e.g. v1.33.1) [default: the
    /// configuration's kubernetesVersion]; recorded with the tree.
    #[arg(long, global = true, value_name = "VERSION")]
    pub kubernetes_version: Option<String>,
    /// The registry of the manifests' images [default: the configuration's
    /// imageRepository, else registry.k8s.io].
    #[arg(long, global = true, value_name = "REGISTRY")]
    pub image_repository: Option<String>,
}

/// `kubepki flags`.
#[derive(Debug, Args)]
pub struct FlagsArgs {
    /// The component.
    #[arg(value_parser = PossibleValuesParser::new(Component::ALL.map(Component::name)))]
    pub component: String,
    /// kubeadm configuration file (InitConfiguration/ClusterConfiguration, v1beta3 or
    /// v1beta4); flags given as well override its values.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The directories of the tree.
    #[command(flatten)]
    pub tree: TreeArgs,
    /// The cluster facts the flags derive from.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = FlagsFormat::Text)]
    pub output: FlagsFormat,
    /// kube-apiserver: also verify the kubelets' serving certificates against the cluster
    /// CA (--kubelet-certificate-authority; see `kubepki kubelet serving-cert`).
    #[arg(long)]
    pub verify_kubelets: bool,
}

/// Output formats of `kubepki flags`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FlagsFormat {
    /// One --flag=value a line.
    Text,
    /// The component, and each flag with its value and the row it comes from, as JSON.
    Json,
    /// The same as YAML.
    Yaml,
}

impl From<FlagsFormat> for Format {
    fn from(format: FlagsFormat) -> Format {
        match format {
            FlagsFormat::Text => Format::Text,
            FlagsFormat::Json => Format::Json,
            FlagsFormat::Yaml => Format::Yaml,
        }
    }
}

/// The tree lock of commands that write.
#[derive(Clone, Debug, Args)]
pub struct LockArgs {
    /// How long to wait for another run that holds the tree's lock [default: 30s].
    #[arg(long, global = true, value_name = "DURATION")]
    pub lock_timeout: Option<Duration>,
}

/// Where the tree lives.
#[derive(Clone, Debug, Args)]
pub struct TreeArgs {
    /// Directory of certificates and keys [default: /etc/kubernetes/pki].
    #[arg(long, global = true, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Directory of kubeconfig files [default: /etc/kubernetes].
    #[arg(long, global = true, value_name = "DIR")]
    pub kubeconfig_dir: Option<PathBuf>,
}

impl TreeArgs {
    /// The directories these flags name, or the defaults.
    pub fn dirs(&self) -> TreeDirs {
        TreeDirs::new(self.cert_dir.clone(), self.kubeconfig_dir.clone())
    }
}

/// kubeadm's init flags that say where the control plane is: the node, its addresses and
/// the names and SANs its certificates carry.
#[derive(Debug, Args, Default)]
pub struct NodeArgs {
    /// Node name, the CN of etcd certs and of kubelet.conf's user [default: hostname, lower-cased].
    #[arg(long, global = true, value_name = "NAME")]
    pub node_name: Option<DnsName>,
    /// IP address the API server advertises [default: this host's first non-loopback address].
    #[arg(long, global = true, value_name = "IP")]
    pub apiserver_advertise_address: Option<IpAddr>,
    /// Port the API server binds to [default: 6443].
    #[arg(long, global = true, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub apiserver_bind_port: Option<u16>,
    /// Stable address of the control plane: HOST, HOST:PORT or [IPv6]:PORT.
    #[arg(long, global = true, value_name = "ENDPOINT")]
    pub control_plane_endpoint: Option<Endpoint>,
    /// Extra subject alternative names (IPs or DNS names) for the API server certificate.
    #[arg(long, global = true, value_name = "SAN,...", value_delimiter = ',')]
    pub apiserver_cert_extra_sans: Vec<San>,
    /// Service CIDR, or two for dual-stack (A,B) [default: 10.96.0.0/12].
    #[arg(long, global = true, value_name = "CIDR[,CIDR]")]
    pub service_cidr: Option<ServiceCidrs>,
    /// Cluster DNS domain [default: cluster.local].
    #[arg(long, global = true, value_name = "DOMAIN")]
    pub service_dns_domain: Option<DnsName>,
}

impl NodeArgs {
    /// The cluster facts these flags give, as plain input (no algorithm or validity).
    pub fn input(&self) -> ClusterInput {
        ClusterInput {
            node_name: self.node_name.clone(),
            advertise_address: self.apiserver_advertise_address,
            bind_port: self.apiserver_bind_port,
            control_plane_endpoint: self.control_plane_endpoint.clone(),
            extra_sans: self.apiserver_cert_extra_sans.clone(),
            service_cidrs: self.service_cidr.clone(),
            dns_domain: self.service_dns_domain.clone(),
            ..ClusterInput::default()
        }
    }
}

/// kubeadm's init flags that shape the PKI.
#[derive(Debug, Args, Default)]
pub struct ClusterArgs {
    /// Where the control plane is.
    #[command(flatten)]
    pub node: NodeArgs,
    /// Key algorithm: RSA-2048, RSA-3072, RSA-4096, ECDSA-P256, ECDSA-P384 [default: RSA-2048].
    #[arg(long, global = true, value_name = "ALGORITHM", value_parser = algorithm_parser(), ignore_case = true)]
    pub encryption_algorithm: Option<Algorithm>,
    /// Validity of leaf certificates [default: 8760h].
    #[arg(long, global = true, value_name = "DURATION")]
    pub cert_validity: Option<Duration>,
    /// Validity of CA certificates [default: 87600h].
    #[arg(long, global = true, value_name = "DURATION")]
    pub ca_validity: Option<Duration>,
}

impl ClusterArgs {
    /// The cluster facts these flags give, as plain input.
    pub fn input(&self) -> ClusterInput {
        ClusterInput {
            algorithm: self.encryption_algorithm,
            cert_validity: self.cert_validity,
            ca_validity: self.ca_validity,
            ..self.node.input()
        }
    }
}

/// `init phase ...`.
#[derive(Debug, Subcommand)]
pub enum InitCommand {
    /// Run one phase of init.
    Phase {
        /// Which phase.
        #[command(subcommand)]
        phase: Phase,
    },
}

/// The phase groups, with kubeadm's names.
#[derive(Debug, Subcommand)]
pub enum Phase {
    /// Certificates and keys: `all` or one of them.
    Certs {
        /// Which certificate.
        #[arg(value_parser = phase_choices(Group::Certs))]
        name: String,
    },
    /// Kubeconfig files: `all` or one of them.
    Kubeconfig {
        /// Which kubeconfig.
        #[arg(value_parser = phase_choices(Group::Kubeconfig))]
        name: String,
    },
    /// The control plane's static pod manifests (mode 0600, in --manifests-dir): `all` or
    /// one component.
    ControlPlane {
        /// Which component.
        #[arg(value_parser = PossibleValuesParser::new(["all", "apiserver", "controller-manager", "scheduler"]))]
        name: String,
    },
    /// The local etcd's static pod manifest (mode 0600, in --manifests-dir).
    Etcd {
        /// Which etcd.
        #[command(subcommand)]
        which: EtcdPhase,
    },
}

/// `init phase etcd ...`.
#[derive(Debug, Subcommand)]
pub enum EtcdPhase {
    /// The manifest of a local, static-pod etcd.
    Local,
}

fn phase_choices(group: Group) -> PossibleValuesParser {
    PossibleValuesParser::new(std::iter::once("all").chain(phase_names(group)))
}

/// `kubepki token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new random bootstrap token ([a-z0-9]{6}.[a-z0-9]{16}).
    Generate,
    /// Print a token (new unless TOKEN is given) and write its bootstrap-token Secret manifest.
    Create(TokenCreateArgs),
    /// Write the cluster objects workers need to join (RBAC, cluster-info, kube-proxy).
    Manifests(ManifestsArgs),
    /// List the tokens whose Secret manifests are in this host's manifests directory (not
    /// the cluster's Secrets).
    List(TokenListArgs),
    /// Delete tokens' Secret manifests on this host and sign cluster-info without them; it
    /// prints the `kubectl delete secret` that removes them from the cluster.
    Delete(TokenDeleteArgs),
}

/// `kubepki token list`.
#[derive(Debug, Args)]
pub struct TokenListArgs {
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// The tree and where the manifests are.
    #[command(flatten)]
    pub manifests: ManifestsArgs,
}

/// The environment variable that may hold the certificate key, out of `ps`'s sight.
const CERTIFICATE_KEY_ENV: &str = "KUBEPKI_CERTIFICATE_KEY";
/// The environment variable that may hold join's bootstrap token.
const TOKEN_ENV: &str = "KUBEPKI_TOKEN";
/// The most a secret file is read of: a certificate key or a token is one short line.
const MAX_SECRET_FILE_BYTES: u64 = 4 << 10;

/// Where the certificate key comes from: a flag (which `ps` shows every user), a file, or
/// the environment.
#[derive(Debug, Args)]
pub struct CertificateKeyArgs {
    /// The certificate key, 64 hex characters (visible in `ps`: prefer
    /// --certificate-key-file or KUBEPKI_CERTIFICATE_KEY).
    #[arg(long, value_name = "KEY", conflicts_with = "certificate_key_file")]
    pub certificate_key: Option<SecretArg>,
    /// A file holding the certificate key (blank space around it ignored).
    #[arg(long, value_name = "FILE")]
    pub certificate_key_file: Option<PathBuf>,
}

impl CertificateKeyArgs {
    /// The key: the flag, else the file, else `KUBEPKI_CERTIFICATE_KEY`; none of them is
    /// misuse. A key that does not parse is refused naming where it came from.
    pub fn key(&self) -> anyhow::Result<CertificateKey> {
        let given = secret_from(
            self.certificate_key.as_ref(),
            "--certificate-key",
            self.certificate_key_file.as_deref(),
            "--certificate-key-file",
            CERTIFICATE_KEY_ENV,
        )?;
        let (secret, source) = given.ok_or_else(|| {
            UsageError(format!(
                "a certificate key is required: --certificate-key-file FILE, \
                 {CERTIFICATE_KEY_ENV} or --certificate-key"
            ))
        })?;
        Ok(secret.certificate_key(&source)?)
    }
}

/// A secret from its flag, else its file (`file_flag`), else the environment variable `env`,
/// with the name of where it came from; `None` when none is given.
fn secret_from(
    flag: Option<&SecretArg>,
    flag_name: &str,
    file: Option<&Path>,
    file_flag: &str,
    env: &str,
) -> anyhow::Result<Option<(SecretArg, String)>> {
    if let Some(arg) = flag {
        return Ok(Some((arg.clone(), flag_name.to_string())));
    }
    if let Some(path) = file {
        let bytes = crate::net::file::read_named(path, MAX_SECRET_FILE_BYTES)
            .map_err(|e| anyhow::anyhow!("{file_flag}: reading {}: {e}", path.display()))?;
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        return Ok(Some((
            SecretArg(text),
            format!("{file_flag} {}", path.display()),
        )));
    }
    Ok(std::env::var(env)
        .ok()
        .map(|text| (SecretArg(text.trim().to_string()), env.to_string())))
}

/// `kubepki token delete`.
#[derive(Debug, Args)]
pub struct TokenDeleteArgs {
    /// The tokens to delete, by id ([a-z0-9]{6}) or whole.
    #[arg(value_name = "TOKEN-ID|TOKEN", required = true)]
    pub tokens: Vec<SecretArg>,
    /// The tree and where the manifests are.
    #[command(flatten)]
    pub manifests: ManifestsArgs,
}

/// Where the bootstrap manifests go.
#[derive(Debug, Args)]
pub struct ManifestsArgs {
    /// The directories of the tree.
    #[command(flatten)]
    pub tree: TreeArgs,
    /// Directory of the manifests (mode 0600 files) [default: <kubeconfig-dir>/bootstrap].
    #[arg(long, value_name = "DIR")]
    pub manifests_dir: Option<PathBuf>,
    /// The tree lock.
    #[command(flatten)]
    pub lock: LockArgs,
}

/// `kubepki token create`.
#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// kubeadm configuration file: its certificatesDir, and its first bootstrapTokens entry as this token's defaults; flags given as well override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The token to create, [a-z0-9]{6}.[a-z0-9]{16} [default: a new random one].
    #[arg(value_name = "TOKEN", hide_default_value = true)]
    pub token: Option<SecretArg>,
    /// Lifetime of the token; 0 for never expiring [default: 24h].
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<Duration>,
    /// A note for people, stored in the Secret.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// What the token may be used for [default: signing,authentication].
    #[arg(long, value_name = "USAGE,...", value_delimiter = ',')]
    pub usages: Vec<Usage>,
    /// Extra groups the token authenticates in [default: system:bootstrappers:kubeadm:default-node-token].
    #[arg(long, value_name = "GROUP,...", value_delimiter = ',')]
    pub groups: Vec<ExtraGroup>,
    /// Also print the `kubepki join` and `kubeadm join` commands for this token.
    #[arg(long)]
    pub print_join_command: bool,
    /// The tree and where the manifests go.
    #[command(flatten)]
    pub manifests: ManifestsArgs,
}

/// `kubepki join`.
#[derive(Clone, Debug, Args)]
pub struct JoinArgs {
    /// The API server to discover the cluster from: HOST:PORT [default port: 6443].
    #[arg(
        value_name = "ENDPOINT",
        required_unless_present_any = ["discovery_file", "config"],
        conflicts_with = "discovery_file"
    )]
    pub endpoint: Option<Endpoint>,
    /// kubeadm JoinConfiguration file (v1beta3 or v1beta4); flags given as well override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// The bootstrap token, for both discovery and TLS bootstrap (visible in `ps`: prefer
    /// --token-file or KUBEPKI_TOKEN).
    #[arg(long, value_name = "TOKEN", conflicts_with = "token_file")]
    pub token: Option<SecretArg>,
    /// A file holding the bootstrap token (blank space around it ignored), as --token.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The token for discovery [default: --token].
    #[arg(long, value_name = "TOKEN")]
    pub discovery_token: Option<SecretArg>,
    /// The token written into bootstrap-kubelet.conf [default: --token].
    #[arg(long, value_name = "TOKEN")]
    pub tls_bootstrap_token: Option<SecretArg>,
    /// Accepted pin of the cluster CA, sha256:<hex> (`kubepki certs ca-cert-hash`); repeatable.
    #[arg(long = "discovery-token-ca-cert-hash", value_name = "sha256:HEX")]
    pub pins: Vec<CaPin>,
    /// Trust the discovered CA without a pin (unsafe).
    #[arg(long)]
    pub discovery_token_unsafe_skip_ca_verification: bool,
    /// Discover from a kubeconfig file, file:// or https:// URL instead of a token.
    #[arg(long, value_name = "FILE|URL")]
    pub discovery_file: Option<DiscoverySource>,
    /// How long to keep trying to reach the API server [default: 5m].
    #[arg(long, value_name = "DURATION")]
    pub discovery_timeout: Option<Duration>,
    /// The node's name, for --hostname-override in the kubelet command printed at the end.
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<DnsName>,
    /// The directories of the tree.
    #[command(flatten)]
    pub tree: TreeArgs,
    /// The tree lock.
    #[command(flatten)]
    pub lock: LockArgs,
}

/// A secret given on the command line (a bootstrap token, a certificate key). It stays text
/// until the command parses it, so that no error (clap's would) quotes it; `Debug` never
/// shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretArg(String);

impl SecretArg {
    /// The token id it holds (`abcdef`), or the id of the whole token it holds; refused
    /// naming `flag`, never quoting the text.
    pub fn token_id(&self, flag: &str) -> Result<String, UsageError> {
        let is_id = self.0.len() == 6
            && self
                .0
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        match is_id {
            true => Ok(self.0.clone()),
            false => self.token(flag).map(|token| token.id().to_string()),
        }
    }

    /// The bootstrap token it holds; refused naming `flag`, never quoting the text.
    pub fn token(&self, flag: &str) -> Result<BootstrapToken, UsageError> {
        self.0
            .parse()
            .map_err(|e: anyhow::Error| UsageError(format!("{flag}: {e}")))
    }

    /// The certificate key it holds; refused naming `flag`, never quoting the text.
    pub fn certificate_key(&self, flag: &str) -> Result<CertificateKey, UsageError> {
        self.0
            .parse()
            .map_err(|e: anyhow::Error| UsageError(format!("{flag}: {e}")))
    }
}

impl JoinArgs {
    /// What the flags give, as plain input (`--token` stands for both tokens when the
    /// specific flag is not given).
    pub fn input(&self) -> anyhow::Result<JoinInput> {
        let general = secret_from(
            self.token.as_ref(),
            "--token",
            self.token_file.as_deref(),
            "--token-file",
            TOKEN_ENV,
        )?;
        let token = |specific: &Option<SecretArg>, flag: &str| match (specific, &general) {
            (Some(arg), _) => arg.token(flag).map(Some),
            (None, Some((arg, source))) => arg.token(source).map(Some),
            (None, None) => Ok(None),
        };
        Ok(JoinInput {
            tls_bootstrap_token: token(&self.tls_bootstrap_token, "--tls-bootstrap-token")?,
            discovery_token: token(&self.discovery_token, "--discovery-token")?,
            endpoint: self.endpoint.clone(),
            discovery_file: self.discovery_file.clone(),
            pins: self.pins.clone(),
            unsafe_skip_ca_verification: self.discovery_token_unsafe_skip_ca_verification,
            discovery_timeout: self.discovery_timeout,
            node_name: self.node_name.clone(),
            cert_dir: self.tree.cert_dir.clone(),
        })
    }
}

impl From<String> for SecretArg {
    fn from(text: String) -> SecretArg {
        SecretArg(text)
    }
}

impl fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretArg(<redacted>)")
    }
}

/// The manual pages: `kubepki.1` and one per visible subcommand (`kubepki-certs-renew.1`),
/// each as (file name, roff), generated from this command line as `--help` is.
pub fn manual_pages() -> Result<Vec<(String, Vec<u8>)>, std::io::Error> {
    let mut command = <Cli as clap::CommandFactory>::command().disable_help_subcommand(true);
    command.build();
    let mut pages = Vec::new();
    let mut pending = vec![command];
    while let Some(command) = pending.pop() {
        pending.extend(
            command
                .get_subcommands()
                .filter(|sub| !sub.is_hide_set())
                .cloned(),
        );
        let page = clap_mangen::Man::new(command);
        let mut roff = Vec::new();
        page.render(&mut roff)?;
        pages.push((page.get_filename(), roff));
    }
    pages.sort();
    Ok(pages)
}

/// A clap usage error as one line: its message, the values it lists and its tip, without
/// the usage paragraph and the pointer to `--help`.
pub fn usage_line(error: &clap::Error) -> String {
    let text = error.render().to_string();
    let line = text
        .split("\n\n")
        .filter(|part| !part.starts_with("Usage:") && !part.starts_with("For more information"))
        .flat_map(str::lines)
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    line.strip_prefix("error: ").unwrap_or(&line).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage_error(args: &[&str]) -> String {
        let error = Cli::try_parse_from(std::iter::once("kubepki").chain(args.iter().copied()))
            .expect_err("a usage error");
        usage_line(&error)
    }

    #[test]
    fn usage_errors_are_one_line_naming_the_flag() {
        let bad_value = usage_error(&["init", "--service-cidr", "10.96.0.0/99"]);
        assert!(
            bad_value.starts_with("invalid value '10.96.0.0/99' for '--service-cidr"),
            "{bad_value}"
        );
        let missing = usage_error(&["kubeconfig", "user"]);
        assert!(
            missing.contains("required arguments were not provided: --client-name"),
            "{missing}"
        );
        let unknown = usage_error(&["certs", "renew", "apiserverr"]);
        assert!(
            unknown.contains("[possible values: all,") && unknown.contains("tip:"),
            "{unknown}"
        );
        for line in [bad_value, missing, unknown] {
            assert!(!line.contains('\n') && !line.contains("Usage:"), "{line}");
        }
    }

    #[test]
    fn debug_never_shows_a_token_argument() {
        let command_lines: [&[&str]; 2] = [
            &[
                "kubepki",
                "join",
                "192.0.2.1:6443",
                "--token",
                "abcdef.0123456789abcdef",
                "--discovery-token",
                "abcdef.1123456789abcdef",
                "--tls-bootstrap-token",
                "abcdef.2123456789abcdef",
            ],
            &["kubepki", "token", "create", "abcdef.3123456789abcdef"],
        ];
        for args in command_lines {
            let shown = format!("{:?}", Cli::try_parse_from(args).unwrap());
            assert!(shown.contains("<redacted>"), "{shown}");
            assert!(!shown.contains("123456789abcdef"), "{shown}");
        }
    }
}
