//! kubepki: a Kubernetes control-plane PKI (certificates, keys, kubeconfigs) written exactly
//! as kubeadm writes it, from one declarative profile table. Module list only; no logic.

#![warn(missing_docs)]

pub mod apply;
pub mod cli;
pub mod commands;
pub mod config;
pub mod duration;
pub mod expiry;
pub mod inspect;
pub mod issue;
pub mod keys;
pub mod kubeconfig;
pub mod netaddr;
pub mod pem;
pub mod plan;
pub mod profile;
pub mod renewal;
pub mod report;
pub mod spec;
pub mod store;
pub mod tree;
pub mod user;
