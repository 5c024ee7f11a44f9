//! What talks Kubernetes: the kubeconfig model, bootstrap tokens, the cluster manifests,
//! detached JWS, discovery of a cluster by token or file, and kubeadm's encrypted bundle of
//! shared control-plane material. Builds and checks values; the disk belongs to `tree`.

pub mod bootstrap;
pub mod bundle;
pub mod discovery;
pub mod jws;
pub mod kubeconfig;
pub mod manifests;
pub mod yaml;
