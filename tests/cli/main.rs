//! The one integration-test binary: every module drives the built `kubepki` and checks its
//! output with the real consumers (openssl, kubectl, etcd).

mod audit;
mod bundle;
mod certs;
mod config;
mod crash;
mod day2;
mod durability;
mod errors;
mod etcd;
mod examples;
mod flags;
mod hostile;
mod hostile_server;
mod init;
mod join;
mod kubeadm;
mod kubectl;
mod kubelet;
mod layers;
mod lock;
mod openssl;
mod reconcile;
mod rotate;
mod secrets;
mod support;
mod tier;
mod token;
