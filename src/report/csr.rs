//! What `certs generate-csr` prints: each file written, and what to do with them.

use super::report_text;
use anyhow::Result;
use std::path::PathBuf;

/// Lists the keys, CSRs and partial kubeconfigs written, then the next steps.
pub fn print_csrs_written(written: &[PathBuf]) -> Result<()> {
    let mut text: String = written
        .iter()
        .map(|path| format!("[certs] Wrote {}\n", path.display()))
        .collect();
    text.push_str(
        "\nHave your CA sign each .csr (its subject, SANs and usages are the ones to keep), \
         then put each certificate beside its key as <name>.crt, and into each kubeconfig \
         base64-encoded as users[0].user.client-certificate-data; with ca.crt, \
         front-proxy-ca.crt, etcd/ca.crt and sa.key/sa.pub in place, `kubepki init` uses them \
         and writes nothing over them.\n",
    );
    report_text(&text)
}
