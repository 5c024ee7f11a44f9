//! What the CSR commands print: the files `certs generate-csr` and `kubelet serving-cert
//! --csr-only` wrote and what to do with them, and what `certs sign-csr` signed.

use super::{note, report_text, stdout};
use crate::engine::csr::Signed;
use anyhow::Result;
use std::path::{Path, PathBuf};

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

/// Says what `certs sign-csr` signed (on stderr), and prints the certificate on stdout
/// unless it goes to `written`.
pub fn print_signed(signed: &Signed, written: Option<&Path>) -> Result<()> {
    let request = &signed.request;
    let ips: Vec<String> = request.ips.iter().map(ToString::to_string).collect();
    note(
        "certs",
        &format!(
            "signed by {}: CN={} O={:?}, DNS {}, IP {}, valid until {}",
            signed.issuer,
            request.cn,
            request.orgs,
            request.dns_names.join(","),
            ips.join(","),
            request.not_after.date()
        ),
    );
    match written {
        Some(path) => report_text(&format!("[certs] Wrote {}\n", path.display())),
        None => stdout(&String::from_utf8_lossy(&signed.cert_pem)),
    }
}

/// Lists what `kubelet serving-cert --csr-only` wrote, and the step on the control plane.
pub fn print_serving_csr(written: &[PathBuf]) -> Result<()> {
    let mut text: String = written
        .iter()
        .map(|path| format!("[kubelet] Wrote {}\n", path.display()))
        .collect();
    if let Some(csr) = written
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "csr"))
    {
        text.push_str(&format!(
            "\nOn a control-plane host: kubepki certs sign-csr {} --for kubelet-serving --out \
             kubelet.crt; then put kubelet.crt beside kubelet.key here and restart the \
             kubelet. The key stays on this node.\n",
            csr.display()
        ));
    }
    report_text(&text)
}
