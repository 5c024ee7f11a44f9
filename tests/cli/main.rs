//! The one integration-test binary: every module drives the built `kubepki` and checks its
//! output with the real consumers (openssl, kubectl, etcd).

mod audit;
mod broken;
mod bundle;
mod certs;
mod config;
mod crash;
mod day2;
mod durability;
mod errors;
mod etcd;
mod examples;
mod external_ca;
mod flags;
mod hostile;
mod hostile_server;
mod init;
mod join;
mod keys;
mod kubectl;
mod kubelet;
mod layers;
mod lock;
mod manpages;
mod openssl;
mod operator;
mod package;
mod reconcile;
mod recorded;
mod restarts;
mod rotate;
mod secrets;
mod staticpods;
mod support;
mod tier;
mod token;
