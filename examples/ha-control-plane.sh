#!/usr/bin/env bash
# High availability: the first control plane makes the CAs and the service-account key;
# the others get copies of exactly those (as `kubeadm join --control-plane` does with
# upload-certs), then run `kubepki init`, which reuses them and issues their own leaves.
# Usage: examples/ha-control-plane.sh [WORKDIR]. Uses $KUBEPKI if set, else `kubepki`.
set -euo pipefail
kubepki=${KUBEPKI:-kubepki}
work=${1:-$(mktemp -d)}
endpoint=cluster.example.com:6443
shared=(ca.crt ca.key front-proxy-ca.crt front-proxy-ca.key etcd/ca.crt etcd/ca.key sa.key sa.pub)

init() { # node address
    "$kubepki" init --cert-dir "$work/$1/pki" --kubeconfig-dir "$work/$1" --node-name "$1" \
        --apiserver-advertise-address "$2" --control-plane-endpoint "$endpoint" \
        --encryption-algorithm ECDSA-P256 >/dev/null
}

init cp1 192.0.2.11
for node in cp2 cp3; do
    mkdir -p "$work/$node/pki/etcd"
    for file in "${shared[@]}"; do
        install -m "$(stat -c %a "$work/cp1/pki/$file")" "$work/cp1/pki/$file" "$work/$node/pki/$file"
    done
done
init cp2 192.0.2.12
init cp3 192.0.2.13

for node in cp2 cp3; do
    cmp "$work/cp1/pki/ca.key" "$work/$node/pki/ca.key"
    openssl verify -CAfile "$work/cp1/pki/ca.crt" "$work/$node/pki/apiserver.crt"
    openssl verify -CAfile "$work/cp1/pki/etcd/ca.crt" "$work/$node/pki/etcd/peer.crt"
done
echo "3 control planes in $work share one CA and one service-account key"
