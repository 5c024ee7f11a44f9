//! `kubepki init` and `kubepki init phase certs|kubeconfig <name>`: the same plan over a
//! narrower selection of the profile table.

use super::{lock_tree, pods, resolve_cluster, warn_open_secrets};
use crate::cli::{InitArgs, InitCommand, OutputFormat, Phase};
use crate::cluster::bootstrap::TokenRecord;
use crate::config::InitConfig;
use crate::engine::apply::apply;
use crate::engine::bootstrap::{init_manifests, prune_expired_tokens, record_write};
use crate::engine::drift::depends_on_node;
use crate::engine::plan::{Plan, plan_init};
use crate::profile::{self, Group, Selection};
use crate::report::{
    InitReport, Progress, capped, describe_dirs, detail, note, print_error_document,
    print_removed_tokens,
};
use crate::spec::ClusterSpec;
use crate::tree::TreeDirs;
use crate::tree::store::FileWrite;
use anyhow::{Result, anyhow};
use std::process::ExitCode;
use std::time::Instant;

/// Runs init (or one phase of it). With `-o json|yaml`, a failure is a document on stdout
/// too: the report with its `error`, or only the `error` when it came before the plan.
pub fn run(args: &InitArgs, verbose: u8) -> Result<ExitCode> {
    let mut reported = false;
    let result = run_init(args, verbose, &mut reported);
    if let Err(error) = &result {
        if !reported && args.output != OutputFormat::Text {
            print_error_document(error, args.output.into())?;
        }
    }
    result
}

fn run_init(args: &InitArgs, verbose: u8, reported: &mut bool) -> Result<ExitCode> {
    let started = Instant::now();
    let (spec, dirs, file) = resolve(args)?;
    if let Some(components) = pods::phase_components(args) {
        let built = pods::build(args, (&spec, &dirs, &file), &components)?;
        pods::write(args, built)?;
        return Ok(ExitCode::SUCCESS);
    }
    let static_pods = match args.manifests {
        true => Some(pods::build(
            args,
            (&spec, &dirs, &file),
            &pods::init_components(&spec),
        )?),
        false => None,
    };
    let _lock = match args.dry_run {
        true => None,
        false => Some(lock_tree(&dirs, &args.lock)?),
    };
    let (node, address) = (&spec.node_name, spec.advertise_address);
    let where_ = describe_dirs(&dirs);
    detail(
        verbose,
        format_args!("{where_}; node {node}, advertise {address}"),
    );
    let pick = selection(args)?;
    let with_node = uses_node(&pick) || node_given(args, &file);
    let plan = plan_init(&spec, &dirs, pick);
    detail(verbose, format_args!("planned in {:?}", started.elapsed()));
    let mut report = InitReport::of_plan(&plan, &spec, args.dry_run);
    if args.dry_run {
        report.print(args.output.into())?;
        if let Some(built) = static_pods {
            pods::write(args, built)?;
        }
        return Ok(match report.failed {
            true => ExitCode::FAILURE,
            false => ExitCode::SUCCESS,
        });
    }
    if let Err(refused) = plan.ensure_no_refusal() {
        if args.output != OutputFormat::Text {
            report.error = Some(format!("{refused:#}"));
            report.print(args.output.into())?;
            *reported = true;
        }
        return Err(refused);
    }
    let (tokens, notes) = file.token_records(spec.now)?;
    for line in &notes {
        note("config", line);
    }
    warn_open_secrets(&dirs);
    report.print_steps(args.output.into())?;
    write(
        args,
        (&spec, &dirs, &file),
        (plan, with_node),
        &tokens,
        &mut report,
    )?;
    detail(verbose, format_args!("written in {:?}", started.elapsed()));
    report.print_outcome(args.output.into())?;
    if let Some(built) = static_pods {
        pods::write(args, built)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Carries out `plan`, showing progress of slow key generation: a whole init also keeps the
/// bootstrap manifests (and the configuration's `tokens`) in step with admin.conf, written in
/// the same batch as the PKI, as every init does the tree's recorded configuration (with the
/// node `with_node`). Completes `report` with what was written.
fn write(
    args: &InitArgs,
    (spec, dirs, file): (&ClusterSpec, &TreeDirs, &InitConfig),
    (plan, with_node): (Plan, bool),
    tokens: &[TokenRecord],
    report: &mut InitReport,
) -> Result<()> {
    let progress = Progress::new("certs", "keys");
    let version = file.cluster.kubernetes_version.as_deref();
    let derive = |new: &[FileWrite]| {
        let mut files = match args.phase {
            None => init_manifests(dirs, new, tokens, spec, version)?,
            Some(_) => Vec::new(),
        };
        let record = record_write(dirs, spec, version, with_node)?;
        files.push(pods::keeping_pod_settings(record, &file.cluster)?);
        Ok(files)
    };
    let applied = apply(plan, spec, derive, &|done, total| {
        progress.update(done, total)
    })?;
    progress.finish();
    capped("certs", &applied.capped);
    report.ca_cert_hash = applied.ca_pin;
    report.set_written(applied.derived, &dirs.record_file());
    if args.phase.is_none() {
        let pruned = prune_expired_tokens(&dirs.manifests_dir(), spec.now)?;
        print_removed_tokens(&pruned, true, true)?;
        report.closing(dirs, tokens.iter().map(|t| t.token.expose()).collect());
    }
    Ok(())
}

/// The spec and the tree of `init`'s arguments (see `resolve_cluster`).
/// `--kubernetes-version` and `--image-repository` override the configuration's.
fn resolve(args: &InitArgs) -> Result<(ClusterSpec, TreeDirs, InitConfig)> {
    let (spec, dirs, mut file) =
        resolve_cluster(args.config.as_deref(), &args.tree, &args.cluster)?;
    if let Some(version) = &args.pods.kubernetes_version {
        file.cluster.kubernetes_version = Some(version.clone());
    }
    if let Some(repository) = &args.pods.image_repository {
        file.cluster.image_repository = Some(repository.clone());
    }
    Ok((spec, dirs, file))
}

/// Whether a row of `pick` depends on the node's name or address: then the run records them.
fn uses_node(pick: &Selection) -> bool {
    profile::PROFILES
        .iter()
        .any(|row| pick.includes(row) && depends_on_node(row))
}

/// Whether the node's name or address was given (flag, `--config` or the record), not taken
/// from the host: then the run records them, whatever it writes.
fn node_given(args: &InitArgs, file: &InitConfig) -> bool {
    let flags = args.cluster.input();
    flags.node_name.is_some()
        || flags.advertise_address.is_some()
        || file.init.node_name.is_some()
        || file.init.advertise_address.is_some()
}

fn selection(args: &InitArgs) -> Result<Selection> {
    let (group, name) = match &args.phase {
        None => return Ok(Selection::All),
        Some(InitCommand::Phase {
            phase: Phase::Certs { name },
        }) => (Group::Certs, name),
        Some(InitCommand::Phase {
            phase: Phase::Kubeconfig { name },
        }) => (Group::Kubeconfig, name),
        Some(InitCommand::Phase {
            phase: Phase::ControlPlane { .. } | Phase::Etcd { .. },
        }) => return Err(anyhow!("a manifest phase selects no certificate")),
    };
    if name == "all" {
        return Ok(Selection::Group(group));
    }
    profile::by_name(name)
        .map(Selection::One)
        .ok_or_else(|| anyhow!("unknown phase {name:?}"))
}
