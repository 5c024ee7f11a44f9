//! `kubepki init` and `kubepki init phase certs|kubeconfig <name>`: the same plan over a
//! narrower selection of the profile table.

use super::{lock_tree, warn_open_secrets};
use crate::cli::{InitArgs, InitCommand, Phase};
use crate::config::InitConfig;
use crate::engine::apply::apply;
use crate::engine::bootstrap::{admin_after, manifests};
use crate::engine::plan::{ensure_no_refusal, plan_init};
use crate::profile::{self, Group, Selection};
use crate::report::{InitReport, describe_dirs, detail, note};
use crate::spec::ClusterSpec;
use crate::tree::TreeDirs;
use anyhow::{Result, anyhow};
use std::process::ExitCode;
use std::time::Instant;
use time::OffsetDateTime;

/// Runs init (or one phase of it).
pub fn run(args: &InitArgs, verbose: u8) -> Result<ExitCode> {
    let started = Instant::now();
    let file = match &args.config {
        Some(path) => InitConfig::load(path)?,
        None => InitConfig::default(),
    };
    for line in &file.notes {
        note("config", line);
    }
    let cluster = file.merge_flags(&args.cluster.input());
    let spec = file.complete(ClusterSpec::resolve(&cluster, OffsetDateTime::now_utc())?);
    let dirs = TreeDirs::new(
        file.cert_dir(args.tree.cert_dir.as_deref()),
        args.tree.kubeconfig_dir.clone(),
    );
    let _lock = if args.dry_run {
        None
    } else {
        Some(lock_tree(&dirs, &args.lock, command_name(args))?)
    };
    detail(
        verbose,
        format_args!(
            "{}; node {}, advertise {}",
            describe_dirs(&dirs),
            spec.node_name,
            spec.advertise_address
        ),
    );
    let plan = plan_init(&spec, &dirs, selection(args)?);
    detail(verbose, format_args!("planned in {:?}", started.elapsed()));
    let mut report = InitReport::of_plan(&plan, &spec, args.dry_run);
    if args.dry_run {
        report.print(args.output.into())?;
        return Ok(if report.failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    ensure_no_refusal(&plan)?;
    warn_open_secrets(&dirs);
    // A whole init also keeps the bootstrap manifests in step with admin.conf, written in
    // the same batch as the PKI.
    let applied = apply(plan, &spec, |new| match args.phase {
        None => manifests(&admin_after(&dirs, new)?, &dirs.manifests_dir(), spec.now),
        Some(_) => Ok(Vec::new()),
    })?;
    detail(verbose, format_args!("written in {:?}", started.elapsed()));
    report.ca_cert_hash = applied.ca_pin;
    report.manifests = applied
        .derived
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    report.print(args.output.into())?;
    Ok(ExitCode::SUCCESS)
}

/// The command as recorded in the tree lock.
fn command_name(args: &InitArgs) -> &'static str {
    match args.phase {
        None => "init",
        Some(_) => "init phase",
    }
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
    };
    if name == "all" {
        return Ok(Selection::Group(group));
    }
    profile::by_name(name)
        .map(Selection::One)
        .ok_or_else(|| anyhow!("unknown phase {name:?}"))
}
