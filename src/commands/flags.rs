//! `kubepki flags <component>`: the component's flags for the tree `init` would write.

use super::resolve_cluster;
use crate::cli::FlagsArgs;
use crate::engine::flags::flags_for;
use crate::profile::{Component, When};
use crate::report::print_flags;
use anyhow::{Result, anyhow};
use std::process::ExitCode;

/// Runs `flags`.
pub fn run(args: &FlagsArgs) -> Result<ExitCode> {
    let component = Component::by_name(&args.component)
        .ok_or_else(|| anyhow!("unknown component {:?}", args.component))?;
    let (spec, dirs, _) = resolve_cluster(args.config.as_deref(), &args.tree, &args.cluster)?;
    let when: &[When] = match args.verify_kubelets {
        true => &[When::VerifyKubelets],
        false => &[],
    };
    print_flags(
        &flags_for(component, &spec, &dirs, when)?,
        args.output.into(),
    )?;
    Ok(ExitCode::SUCCESS)
}
