//! The one integration-test binary: every module drives the built `kubepki` and checks its
//! output with the real consumers (openssl, kubectl, etcd).

mod etcd;
mod init;
mod kubectl;
mod openssl;
mod support;
