//! `certs renew --reconcile`: bring a tree back in line with its configuration. A plan
//! builder: for every renewable row it finds the drift (`drift`) between the certificate on
//! disk and what the profile table and the configuration now say, and decides to re-issue
//! it (subject, SANs, usages, validity or algorithm differ), to point a kubeconfig at the
//! configured server with its credentials kept (only the server differs), or to leave it.
//! CAs are never re-issued here (that is rotation). Applying goes through renew's path
//! (`renew::replace_due`), so the one issuance function signs, the old files are kept as a
//! generation and the replacement is pair-safe.

use super::drift::{self, Drift, Wanted};
use super::issue::Capped;
use super::renew::{Backups, Cas, Due, Kept, check_key, replace_due, signing_ca};
use crate::pki::keys::Algorithm;
use crate::profile::{Profile, Scope};
use crate::spec::ClusterSpec;
use crate::tree::TreeDirs;
use crate::tree::reader::{self, Client, Found};
use anyhow::{Result, anyhow};
use std::path::PathBuf;

/// What `certs renew --reconcile` was asked to do.
pub struct ReconcileRequest<'a> {
    /// What the configuration says.
    pub spec: &'a ClusterSpec,
    /// The key algorithm the configuration sets explicitly; without one, each certificate
    /// keeps its own.
    pub algorithm: Option<Algorithm>,
    /// The renewable rows to consider, in table order.
    pub rows: Vec<&'static Profile>,
    /// Where the old files are kept.
    pub backups: Backups,
}

/// What reconciling does with one row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It is as the configuration says.
    Unchanged,
    /// Re-issued with a new key.
    Reissue,
    /// A kubeconfig pointed at the configured server; its certificate and key kept.
    Repoint,
    /// The file does not exist (`init` creates it).
    Missing,
    /// kubelet.conf points at the kubelet's own rotated certificate file.
    Delegated(PathBuf),
    /// It differs, but its CA's key is absent (external CA): cannot be re-issued here.
    External(&'static str),
    /// Broken (the problem, one line: a key that is not its certificate's, a certificate
    /// its CA did not sign, an unusable CA): left as it is, since re-issuing would hide it.
    Broken(String),
}

/// The decision for one row.
pub struct RowPlan {
    /// The row.
    pub row: &'static Profile,
    /// What is done.
    pub verdict: Verdict,
    /// What differs, field by field.
    pub drifts: Vec<Drift>,
}

impl RowPlan {
    /// Whether applying changes the row's files.
    pub fn changes(&self) -> bool {
        matches!(self.verdict, Verdict::Reissue | Verdict::Repoint)
    }
}

/// A reconcile plan: one decision per row, and what applying it needs.
pub struct ReconcilePlan {
    /// One decision per considered row, in table order.
    pub rows: Vec<RowPlan>,
    due: Vec<Due>,
    cas: Cas,
}

impl ReconcilePlan {
    /// Whether anything is to change (or would, but for an external CA).
    pub fn pending(&self) -> bool {
        self.rows
            .iter()
            .any(|r| r.changes() || matches!(r.verdict, Verdict::External(_) | Verdict::Broken(_)))
    }
}

/// What applying a plan did.
pub struct Reconciled {
    /// The plan that was applied.
    pub rows: Vec<RowPlan>,
    /// Where the replaced files were kept, when anything was replaced.
    pub kept: Option<Kept>,
    /// Re-issued certificates that end with their CA, earlier than their validity asked.
    pub capped: Vec<Capped>,
}

/// Plans the reconciliation of `request.rows`; reads only. A row that is broken (a key that
/// is not its certificate's, a certificate its CA did not sign, an unusable CA) is planned
/// as `Broken`, naming the file, and every other row is planned all the same: re-issuing a
/// broken row would hide it (`certs audit` shows everything wrong).
pub fn plan(dirs: &TreeDirs, request: &ReconcileRequest) -> Result<ReconcilePlan> {
    let wanted = Wanted::of(request.spec, request.algorithm);
    let mut plan = ReconcilePlan {
        rows: Vec::new(),
        due: Vec::new(),
        cas: Cas::new(),
    };
    // The configuration says nothing of a kubelet's serving certificate (its node and
    // addresses were given to `kubelet serving-cert`): only the control plane's rows.
    let skipped = |row: &Profile| {
        (request.spec.external_etcd && row.needs_local_etcd()) || row.scope != Scope::ControlPlane
    };
    for row in request.rows.iter().filter(|row| !skipped(row)) {
        let (row_plan, due) =
            decide(dirs, row, request, &wanted, &mut plan.cas).unwrap_or_else(|problem| {
                let verdict = Verdict::Broken(format!("{problem:#}"));
                let broken = RowPlan {
                    row,
                    verdict,
                    drifts: Vec::new(),
                };
                (broken, None)
            });
        plan.rows.push(row_plan);
        plan.due.extend(due);
    }
    Ok(plan)
}

/// Applies `plan`: re-issues and re-points what it says, through renew's path; nothing is
/// written when nothing changes. `on_keys` hears how many new keys are done, of how many.
pub fn apply(
    dirs: &TreeDirs,
    plan: ReconcilePlan,
    request: &ReconcileRequest,
    on_keys: &dyn Fn(usize, usize),
) -> Result<Reconciled> {
    if plan.due.is_empty() {
        return Ok(Reconciled {
            rows: plan.rows,
            kept: None,
            capped: Vec::new(),
        });
    }
    let capped = plan
        .due
        .iter()
        .filter_map(|d| {
            let issuer = d.row.issuer.unwrap_or_default();
            let end = d.row.wanted_end(request.spec);
            Capped::of(d.row.cert_name(), issuer, d.request.as_ref()?, end)
        })
        .collect();
    let command = "certs renew --reconcile";
    let now = request.spec.now;
    let kept = replace_due(
        dirs,
        &plan.cas,
        &plan.due,
        &request.backups,
        command,
        now,
        on_keys,
    )?;
    Ok(Reconciled {
        rows: plan.rows,
        kept: Some(kept),
        capped,
    })
}

fn decide(
    dirs: &TreeDirs,
    row: &'static Profile,
    request: &ReconcileRequest,
    wanted: &Wanted,
    cas: &mut Cas,
) -> Result<(RowPlan, Option<Due>)> {
    let verdict = |verdict, drifts| RowPlan {
        row,
        verdict,
        drifts,
    };
    let Some(found) = reader::read_row(dirs, row)? else {
        return Ok((verdict(Verdict::Missing, Vec::new()), None));
    };
    if let Found::Kubeconfig(kubeconfig) = &found {
        if let Client::Pointed(cert) = &kubeconfig.client {
            let pointed = cert.path().to_path_buf();
            return Ok((verdict(Verdict::Delegated(pointed), Vec::new()), None));
        }
    }
    check_key(dirs, row, &found)?;
    let issuer = row
        .issuer_row()
        .ok_or_else(|| anyhow!("internal error: {} has no issuer", row.name))?;
    let ca = signing_ca(dirs, issuer, request.spec.now, cas)?;
    let cert = found.cert();
    cert.check_signed_by_any(&ca.trust, issuer.name)?;
    let mut drifts = drift::drifts(row, &cert.info, Some(&ca.cert.info), wanted);
    let reissue = !drifts.is_empty();
    let server = match &found {
        Found::Kubeconfig(kubeconfig) => drift::server(row, kubeconfig.server()?, wanted),
        Found::Pair { .. } => None,
    };
    let new_server = server.as_ref().map(|d| d.added.concat());
    drifts.extend(server);
    let decided = match (reissue, &new_server) {
        (false, None) => Verdict::Unchanged,
        _ if ca.is_external() => Verdict::External(issuer.name),
        (true, _) => Verdict::Reissue,
        (false, Some(_)) => Verdict::Repoint,
    };
    let algorithm = request
        .algorithm
        .or(cert.info.key_algorithm)
        .unwrap_or(request.spec.algorithm);
    let new_request = match reissue {
        true => row.request(request.spec, Some(&ca.cert.info)),
        false => None,
    };
    let due = matches!(decided, Verdict::Reissue | Verdict::Repoint).then(|| Due {
        row,
        found,
        request: new_request,
        algorithm,
        server: new_server,
        change: change_line(&drifts),
    });
    Ok((verdict(decided, drifts), due))
}

/// The drifts as one line, for a generation's record: `+DNS:lb.example.com, -O:...`.
fn change_line(drifts: &[Drift]) -> String {
    let lines: Vec<String> = drifts
        .iter()
        .flat_map(Drift::lines)
        .map(|line| line.replacen(' ', "", 1))
        .collect();
    lines.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::audit::audit;
    use crate::profile::renewable_rows;
    use crate::testtree::{TestTree, ecdsa_spec};
    use crate::tree::generations;

    fn request<'a>(
        tree: &TestTree,
        spec: &'a ClusterSpec,
        algorithm: Option<Algorithm>,
    ) -> ReconcileRequest<'a> {
        ReconcileRequest {
            spec,
            algorithm,
            rows: renewable_rows(&["all".to_string()]).expect("all"),
            backups: Backups {
                dir: generations::default_dir(&tree.dirs),
                keep: 5,
            },
        }
    }

    /// Each row that changes, with its diff lines.
    fn diffs(plan: &ReconcilePlan) -> Vec<(&'static str, Vec<String>)> {
        plan.rows
            .iter()
            .filter(|r| r.changes())
            .map(|r| {
                (
                    r.row.cert_name(),
                    r.drifts.iter().flat_map(Drift::lines).collect(),
                )
            })
            .collect()
    }

    /// Applies a reconcile of `tree` to `spec`; returns the files it changed, then checks
    /// that a second plan finds nothing and an audit nothing either.
    fn apply_and_recheck(
        tree: &TestTree,
        spec: &ClusterSpec,
        algorithm: Option<Algorithm>,
    ) -> Vec<String> {
        let before = tree.contents();
        let asked = request(tree, spec, algorithm);
        let planned = plan(&tree.dirs, &asked).expect("a plan");
        apply(
            &tree.dirs,
            planned,
            &asked,
            &crate::engine::apply::unwatched,
        )
        .expect("applied");
        let after = tree.contents();
        let again = plan(&tree.dirs, &asked).expect("a plan");
        assert!(!again.pending(), "a second plan: {:?}", diffs(&again));
        let found = audit(&tree.dirs, &Wanted::of(spec, algorithm)).expect("an audit");
        let ids: Vec<&str> = found.findings.iter().map(|f| f.check.id()).collect();
        assert_eq!(ids, Vec::<&str>::new(), "audit after reconcile");
        let changed = before
            .iter()
            .filter(|(path, content)| after.get(*path) != Some(content));
        changed
            .map(|(path, _)| {
                path.strip_prefix(&tree.dirs.kubeconfig_dir)
                    .expect("below")
                    .display()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn a_tree_as_configured_has_nothing_to_reconcile() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        let planned =
            plan(&tree.dirs, &request(&tree, &spec, Some(spec.algorithm))).expect("a plan");
        assert!(!planned.pending());
        assert!(planned.rows.iter().all(|r| r.verdict == Verdict::Unchanged));
        assert_eq!(planned.rows.len(), 12);
    }

    #[test]
    fn a_new_endpoint_reissues_the_api_server_and_repoints_the_admin_kubeconfigs() {
        let tree = TestTree::written(&ecdsa_spec(&[]));
        let moved = ecdsa_spec(&["--control-plane-endpoint", "lb.example.com:443"]);
        let planned = plan(&tree.dirs, &request(&tree, &moved, None)).expect("a plan");
        let server = [
            "- server: https://192.168.1.10:6443",
            "+ server: https://lb.example.com:443",
        ];
        assert_eq!(
            diffs(&planned),
            [
                ("apiserver", vec!["+ DNS:lb.example.com".to_string()]),
                ("admin.conf", server.map(String::from).to_vec()),
                ("super-admin.conf", server.map(String::from).to_vec()),
            ]
        );
        assert!(
            planned
                .rows
                .iter()
                .filter(|r| r.changes())
                .skip(1)
                .all(|r| r.verdict == Verdict::Repoint)
        );
        let admin_key = tree.current_key("admin");
        let changed = apply_and_recheck(&tree, &moved, None);
        assert_eq!(
            changed,
            [
                "admin.conf",
                "pki/apiserver.crt",
                "pki/apiserver.key",
                "super-admin.conf"
            ]
        );
        assert_eq!(
            tree.current_key("admin").public_key_raw(),
            admin_key.public_key_raw(),
            "credentials kept"
        );
    }

    #[test]
    fn new_and_dropped_sans_reissue_only_the_api_server() {
        let tree = TestTree::written(&ecdsa_spec(&[
            "--apiserver-cert-extra-sans",
            "old.example.com",
        ]));
        let sans = ecdsa_spec(&["--apiserver-cert-extra-sans", "api.example.com,10.0.0.5"]);
        let planned = plan(&tree.dirs, &request(&tree, &sans, None)).expect("a plan");
        let lines = [
            "- DNS:old.example.com",
            "+ DNS:api.example.com",
            "+ IP:10.0.0.5",
        ];
        assert_eq!(
            diffs(&planned),
            [("apiserver", lines.map(String::from).to_vec())]
        );
        assert_eq!(
            apply_and_recheck(&tree, &sans, None),
            ["pki/apiserver.crt", "pki/apiserver.key"]
        );
    }

    #[test]
    fn admin_conf_moves_to_kubeadm_cluster_admins() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        tree.resign(&spec, "admin", |p| {
            p.distinguished_name
                .push(rcgen::DnType::OrganizationName, "system:masters");
        });
        let planned = plan(&tree.dirs, &request(&tree, &spec, None)).expect("a plan");
        let lines = ["- O:system:masters", "+ O:kubeadm:cluster-admins"];
        assert_eq!(
            diffs(&planned),
            [("admin.conf", lines.map(String::from).to_vec())]
        );
        assert_eq!(apply_and_recheck(&tree, &spec, None), ["admin.conf"]);
    }

    #[test]
    fn another_algorithm_or_validity_reissues_every_leaf_and_no_ca() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        let planned = plan(
            &tree.dirs,
            &request(&tree, &spec, Some(Algorithm::EcdsaP384)),
        )
        .expect("a plan");
        assert_eq!(diffs(&planned).len(), 12);
        assert!(
            diffs(&planned)
                .iter()
                .all(|(_, lines)| *lines == ["- key: ECDSA-P256", "+ key: ECDSA-P384"])
        );
        let changed = apply_and_recheck(&tree, &spec, Some(Algorithm::EcdsaP384));
        assert_eq!(changed.len(), 7 * 2 + 5);
        assert!(
            !changed
                .iter()
                .any(|f| f.contains("ca.") || f.contains("sa.")),
            "{changed:?}"
        );
        let mut shorter = spec.clone();
        shorter.cert_validity = crate::duration::Duration::from_hours(2160);
        let planned = plan(&tree.dirs, &request(&tree, &shorter, None)).expect("a plan");
        let leaves: Vec<&str> = diffs(&planned).into_iter().map(|(name, _)| name).collect();
        assert_eq!(leaves.len(), 12, "every leaf and kubeconfig: {leaves:?}");
        apply_and_recheck(&tree, &shorter, None);
    }

    #[test]
    fn a_broken_row_is_planned_as_broken_and_the_others_all_the_same() {
        let spec = ecdsa_spec(&[]);
        let tree = TestTree::written(&spec);
        let other = TestTree::written(&spec);
        std::fs::copy(
            &other.files_of("apiserver")[0],
            &tree.files_of("apiserver")[0],
        )
        .expect("copying");
        let planned = plan(&tree.dirs, &request(&tree, &spec, None)).expect("a plan");
        assert!(planned.pending());
        for row in &planned.rows {
            match (&row.verdict, row.row.name) {
                (Verdict::Broken(problem), "apiserver") => assert!(
                    problem.contains("apiserver.key: does not match the certificate"),
                    "{problem}"
                ),
                (verdict, name) => assert_eq!(verdict, &Verdict::Unchanged, "{name}"),
            }
        }
    }
}
