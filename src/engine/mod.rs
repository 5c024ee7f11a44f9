//! Decide, then carry out, always over the profile table: planning `init`, applying a plan,
//! renewal, reconcile and rollback, CA rotation, expiry, user kubeconfigs, the bundle of
//! shared material, the kubelet's serving certificate and kubelet.conf repair. Commands call
//! the engine; the engine prints nothing.

mod agreement;
pub mod apply;
pub mod audit;
pub mod bootstrap;
pub mod bundle;
pub mod csr;
pub mod derived;
pub mod drift;
pub mod expiry;
pub mod flags;
pub mod issue;
pub mod join;
pub mod plan;
pub mod reconcile;
pub mod renew;
pub mod repair;
pub mod rollback;
pub mod rotate;
pub mod serving;
pub mod staticpod;
pub mod user;
