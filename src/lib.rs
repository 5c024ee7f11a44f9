//! kubepki: a Kubernetes control-plane PKI (certificates, keys, kubeconfigs) written exactly
//! as kubeadm writes it, from one declarative profile table. Module list only; no logic.

#![warn(missing_docs)]

pub mod apply;
pub mod bootstrap;
pub mod cli;
pub mod commands;
pub mod config;
pub mod discovery;
pub mod duration;
pub mod expiry;
pub mod https;
pub mod inspect;
pub mod issue;
pub mod jws;
pub mod keys;
pub mod kubeconfig;
pub mod lock;
pub mod manifests;
pub mod netaddr;
pub mod pem;
pub mod pin;
pub mod plan;
pub mod profile;
pub mod recovery;
pub mod renewal;
pub mod report;
pub mod spec;
pub mod store;
#[cfg(test)]
mod testgen;
pub mod tree;
pub mod user;
