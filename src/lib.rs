//! kubepki: a Kubernetes control-plane PKI (certificates, keys, kubeconfigs) written exactly
//! as kubeadm writes it, from one declarative profile table. Module list only; no logic.
//!
//! The folders are the layers, and every dependency points down (`tests/cli/layers.rs`
//! checks it): `commands` and `report` (with `cli`) on top, then `engine`, then `tree` (the
//! disk, read through the table), then `config`, `spec`, `profile` and `cluster`, and at the
//! bottom `pki`, `net`, `duration` and `usage`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::self_named_module_files)]

pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod duration;
pub mod engine;
pub mod net;
pub mod pki;
pub mod profile;
pub mod report;
pub mod spec;
#[cfg(test)]
mod testgen;
#[cfg(test)]
mod testtree;
pub mod tree;
pub mod usage;
