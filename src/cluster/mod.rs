//! What talks Kubernetes: the kubeconfig model, bootstrap tokens, the cluster manifests,
//! detached JWS, and discovery of a cluster by token or file. Builds and checks values; the
//! disk belongs to `tree`.

pub mod bootstrap;
pub mod discovery;
pub mod jws;
pub mod kubeconfig;
pub mod manifests;
