//! What `kubepki flags` prints: one `--flag=value` a line (ready for a systemd `ExecStart`
//! or a manifest's `command:`), or one JSON or YAML document; and on stderr, the flags an
//! external etcd leaves to the configuration.

use super::{Format, emit, note, serialized};
use crate::engine::flags::{ComponentFlags, FlagSetting};
use anyhow::Result;

/// Prints a component's flags in `format`.
pub fn print_flags(flags: &ComponentFlags, format: Format) -> Result<()> {
    if !flags.external_etcd.is_empty() {
        note(
            "flags",
            &format!(
                "etcd.external: --{} of {} come from the configuration's etcd.external, not \
                 from this tree",
                flags.external_etcd.join(", --"),
                flags.component
            ),
        );
    }
    let text = match serialized("ComponentFlags", flags, format)? {
        Some(text) => text,
        None => flag_lines(&flags.flags),
    };
    emit(format, &text)
}

/// One `--flag=value` a line.
fn flag_lines(flags: &[FlagSetting]) -> String {
    flags.iter().map(|f| f.arg() + "\n").collect()
}
