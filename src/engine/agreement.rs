//! One corpus of unusual trees, judged by every command's decision (`init`'s plan,
//! `certs audit`, `certs renew --reconcile --plan`): they must agree, because they share
//! `drift`'s rules (one SAN rule, one organizations rule). Test-only.

#![cfg(test)]

use super::audit::audit;
use super::drift::{self, Wanted};
use super::plan::{Action, kubeconfig_drift, plan_init};
use super::reconcile::{self, ReconcileRequest};
use super::renew::Backups;
use crate::profile::{PROFILES, Selection, by_name};
use crate::spec::ClusterSpec;
use crate::testtree::{TestTree, ecdsa_spec};
use crate::tree::generations;
use crate::tree::reader::{self, Found};
use rcgen::SanType;

/// What each command says of `tree` for `spec`: init's action for `row` (and any drift it
/// warns of), audit's finding ids, and whether reconcile has changes pending.
fn verdicts(
    tree: &TestTree,
    spec: &ClusterSpec,
    row: &str,
) -> (Action, usize, Vec<&'static str>, bool) {
    let plan = plan_init(spec, &tree.dirs, Selection::All);
    let step = plan
        .steps
        .iter()
        .find(|s| s.row.name == row)
        .expect("a step");
    let found = audit(&tree.dirs, &Wanted::of(spec, None)).expect("an audit");
    let ids = found.findings.iter().map(|f| f.check.id()).collect();
    let request = ReconcileRequest {
        spec,
        algorithm: None,
        rows: PROFILES.iter().filter(|r| r.is_renewable()).collect(),
        backups: Backups {
            dir: generations::default_dir(&tree.dirs),
            keep: 5,
        },
    };
    let pending = reconcile::plan(&tree.dirs, &request)
        .expect("a plan")
        .pending();
    (step.action.clone(), step.drift.len(), ids, pending)
}

#[test]
fn a_wildcard_san_that_covers_a_name_is_right_for_init_audit_and_reconcile() {
    let spec = ecdsa_spec(&["--apiserver-cert-extra-sans", "api.example.com"]);
    let tree = TestTree::written(&spec);
    tree.resign(&spec, "apiserver", |params| {
        for san in &mut params.subject_alt_names {
            if matches!(san, SanType::DnsName(name) if name.as_str() == "api.example.com") {
                *san = SanType::DnsName("*.example.com".try_into().expect("a name"));
            }
        }
    });
    let (action, drift, findings, pending) = verdicts(&tree, &spec, "apiserver");
    assert_eq!((action, drift), (Action::Reuse, 0), "init");
    assert_eq!(findings, Vec::<&str>::new(), "audit");
    assert!(!pending, "reconcile");
}

#[test]
fn repeated_groups_are_the_same_groups_for_init_audit_and_reconcile() {
    let spec = ecdsa_spec(&[]);
    let tree = TestTree::written(&spec);
    let row = by_name("admin").expect("a row");
    let Some(Found::Kubeconfig(found)) = reader::read_row(&tree.dirs, row).expect("read") else {
        panic!("admin.conf");
    };
    let mut cert = found.cert().info.clone();
    cert.orgs = [cert.orgs.clone(), cert.orgs.clone()].concat();
    let server = found.kubeconfig.server().expect("a server").to_string();
    assert_eq!(
        kubeconfig_drift(row, &spec, &server, &cert),
        Vec::new(),
        "init"
    );
    let wanted = Wanted::of(&spec, None);
    let ca = reader::read_ca(&tree.dirs, row.issuer_row().expect("a CA")).expect("the CA");
    assert_eq!(
        drift::drifts(row, &cert, Some(&ca.cert.info), &wanted),
        Vec::new(),
        "audit and reconcile"
    );
}

#[test]
fn a_leaf_longer_than_configured_that_outlives_its_ca_is_both_for_audit_and_reconcile() {
    use super::drift::{Field, ValidityDrift};
    let spec = ecdsa_spec(&[]);
    let tree = TestTree::written(&spec);
    tree.resign(&spec, "front-proxy-ca", |params| {
        params.not_after = spec.now + time::Duration::days(400);
    });
    tree.resign(&spec, "front-proxy-client", |params| {
        params.not_after = spec.now + time::Duration::days(800);
    });
    let row = by_name("front-proxy-client").expect("a row");
    let Some(found) = reader::read_row(&tree.dirs, row).expect("read") else {
        panic!("front-proxy-client");
    };
    let ca = reader::read_ca(&tree.dirs, row.issuer_row().expect("a CA")).expect("the CA");
    let wanted = Wanted::of(&spec, None);
    let fields: Vec<Field> = drift::drifts(row, &found.cert().info, Some(&ca.cert.info), &wanted)
        .iter()
        .map(|d| d.field)
        .collect();
    assert_eq!(
        fields,
        [
            Field::Validity(ValidityDrift::Longer),
            Field::Validity(ValidityDrift::OutlivesCa)
        ],
        "reconcile's reasons"
    );
    let (_, _, findings, pending) = verdicts(&tree, &spec, "front-proxy-client");
    assert_eq!(findings, ["validity-too-long", "outlives-ca"], "audit");
    assert!(pending, "reconcile");
}
