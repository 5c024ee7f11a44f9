//! Decide, then carry out, always over the profile table: planning `init`, applying a plan,
//! renewal, CA rotation, expiry, user kubeconfigs, the bundle of shared material. Commands call the
//! engine; the engine prints nothing.

pub mod apply;
pub mod bootstrap;
pub mod bundle;
pub mod expiry;
pub mod flags;
pub mod issue;
pub mod join;
pub mod plan;
pub mod renew;
pub mod rotate;
pub mod user;
