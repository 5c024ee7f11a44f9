//! What the `kubelet` commands print: the serving certificate written (its files, subject,
//! SANs and end, and where the old files went), and what `kubelet repair` did.

use super::{note, report_text, stdout};
use crate::engine::repair::Repaired;
use crate::engine::serving::Served;
use anyhow::Result;
use std::net::IpAddr;

/// Prints what `kubelet serving-cert` wrote.
pub fn print_serving(served: &Served) -> Result<()> {
    report_text(&serving_text(served))
}

fn serving_text(served: &Served) -> String {
    let mut text: String = served
        .files
        .iter()
        .map(|path| format!("[kubelet] Wrote {}\n", path.display()))
        .collect();
    let ips: Vec<String> = served.ips.iter().map(IpAddr::to_string).collect();
    text.push_str(&format!(
        "[kubelet] serving certificate for {}: DNS {}, IP {}, signed by the cluster CA, valid until {}\n",
        served.cn,
        served.dns_names.join(","),
        ips.join(","),
        served.not_after.date()
    ));
    if let Some(generation) = &served.kept {
        text.push_str(&format!(
            "[kubelet] The files it replaced were kept in {}\n",
            generation.display()
        ));
    }
    text.push_str(
        "\nThe kubelet serves it when these files are in its --cert-dir (or name them with \
         tlsCertFile and tlsPrivateKeyFile) and serverTLSBootstrap is off; restart the \
         kubelet. kube-apiserver then verifies kubelets with \
         --kubelet-certificate-authority (kubepki flags kube-apiserver --verify-kubelets).\n",
    );
    text
}

/// Prints what `kubelet repair` did; a new kubelet.conf goes to stdout (`--out -`) unless
/// written to a file, when `written` names it, and `kept` the generation of the one it replaced.
pub fn print_repair(
    repaired: &Repaired,
    written: Option<&std::path::Path>,
    kept: Option<&std::path::Path>,
) -> Result<()> {
    match repaired {
        Repaired::Repointed {
            kubeconfig,
            pem,
            not_after,
            kept,
            unchanged,
        } => {
            let mut text = match unchanged {
                true => format!(
                    "[kubelet] {} already points at {}\n",
                    kubeconfig.display(),
                    pem.display()
                ),
                false => format!(
                    "[kubelet] Wrote {}: it points at {}\n",
                    kubeconfig.display(),
                    pem.display()
                ),
            };
            text.push_str(&format!(
                "[kubelet] that certificate is valid until {}, and the kubelet rotates it\n",
                not_after.date()
            ));
            if let Some(generation) = kept {
                text.push_str(&format!(
                    "[kubelet] The old kubelet.conf was kept in {}\n",
                    generation.display()
                ));
            }
            report_text(&text)
        }
        Repaired::Issued { yaml, why, .. } => {
            note(
                "kubelet",
                &format!("not pointing at the rotated certificate: {why}"),
            );
            match written {
                Some(path) => {
                    let mut text = format!(
                        "[kubelet] Wrote {}: a kubelet.conf with a new certificate signed by \
                         the cluster CA; copy it to the node's kubelet.conf and restart its \
                         kubelet\n",
                        path.display()
                    );
                    if let Some(generation) = kept {
                        text.push_str(&format!(
                            "[kubelet] The old kubelet.conf was kept in {}\n",
                            generation.display()
                        ));
                    }
                    report_text(&text)
                }
                None => {
                    note(
                        "kubelet",
                        "a kubelet.conf with a new certificate signed by the cluster CA follows on \
                         stdout; copy it to the node's kubelet.conf and restart its kubelet",
                    );
                    stdout(&String::from_utf8_lossy(yaml))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_serving_report_names_files_subject_and_backup() {
        let served = Served {
            files: vec!["/k/kubelet.key".into(), "/k/kubelet.crt".into()],
            kept: Some("/b".into()),
            cn: "system:node:w1".into(),
            dns_names: vec!["w1".into()],
            ips: vec!["10.0.0.21".parse().unwrap(), "fd00::21".parse().unwrap()],
            not_after: datetime!(2027-01-02 03:04:05 UTC),
            capped: None,
        };
        let text = serving_text(&served);
        assert!(text.starts_with(
            "[kubelet] Wrote /k/kubelet.key\n[kubelet] Wrote /k/kubelet.crt\n[kubelet] serving certificate for system:node:w1: DNS w1, IP 10.0.0.21,fd00::21, signed by the cluster CA, valid until 2027-01-02\n[kubelet] The files it replaced were kept in /b\n"
        ), "{text}");
    }
}
