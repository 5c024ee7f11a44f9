#!/usr/bin/env bash
# Join a worker: on the control plane, create a bootstrap token and print the join command;
# on the worker, run that command to get ca.crt and bootstrap-kubelet.conf, then check the CA
# against the pin with openssl. The control plane's API server must be serving the manifests
# kubepki wrote (kubectl apply -f <kubeconfig-dir>/bootstrap/), so that cluster-info is signed.
# Usage: examples/join.sh CONTROL_PLANE_DIR WORKER_DIR, each laid out like /etc/kubernetes
# (kubeconfigs in it, certificates in its pki/). Uses $KUBEPKI if set.
set -euo pipefail
kubepki=${KUBEPKI:-kubepki}
control_plane=$1
worker=$2

# On the control plane (writes bootstrap/bootstrap-token-<id>.yaml and re-signs cluster-info):
join=$("$kubepki" token create --cert-dir "$control_plane/pki" --kubeconfig-dir "$control_plane" \
    --print-join-command |
    grep '^kubepki join ')
# kubectl apply -f "$control_plane/bootstrap/"   # on a real cluster

# On the worker (the same line, with this worker's directories):
read -r -a args <<<"${join#kubepki }"
"$kubepki" "${args[@]}" --cert-dir "$worker/pki" --kubeconfig-dir "$worker" --discovery-timeout 30s

pin=${join##*--discovery-token-ca-cert-hash }
actual=sha256:$(openssl x509 -in "$worker/pki/ca.crt" -noout -pubkey |
    openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1)
[ "$actual" = "$pin" ] || { echo "ca.crt does not match the pin $pin" >&2; exit 1; }
grep -q 'user: tls-bootstrap-token-user' "$worker/bootstrap-kubelet.conf"
echo "worker ready: kubelet --bootstrap-kubeconfig=$worker/bootstrap-kubelet.conf --kubeconfig=$worker/kubelet.conf"
