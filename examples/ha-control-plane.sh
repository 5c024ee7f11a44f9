#!/usr/bin/env bash
# High availability: the first control plane makes the CAs and the service-account key;
# the others get exactly those as kubeadm's encrypted kubeadm-certs bundle (what
# `kubeadm init --upload-certs` and `kubeadm join --control-plane --certificate-key` move),
# without a cluster: `certs bundle export` there, copy the file, `certs bundle import` on
# each, then `kubepki init`, which reuses them and issues that host's own certificates.
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
key=$("$kubepki" certs certificate-key) # a secret: pass it on as you would a password
"$kubepki" certs bundle export --certificate-key "$key" -o "$work/kubeadm-certs.yaml" \
    --cert-dir "$work/cp1/pki" --kubeconfig-dir "$work/cp1" >/dev/null
for node in cp2 cp3; do # on each new host, with kubeadm-certs.yaml copied there
    "$kubepki" certs bundle import --certificate-key "$key" "$work/kubeadm-certs.yaml" \
        --cert-dir "$work/$node/pki" --kubeconfig-dir "$work/$node" >/dev/null
done
init cp2 192.0.2.12
init cp3 192.0.2.13

for node in cp2 cp3; do
    for file in "${shared[@]}"; do
        cmp "$work/cp1/pki/$file" "$work/$node/pki/$file"
    done
    openssl verify -CAfile "$work/cp1/pki/ca.crt" "$work/$node/pki/apiserver.crt"
    openssl verify -CAfile "$work/cp1/pki/etcd/ca.crt" "$work/$node/pki/etcd/peer.crt"
done
echo "3 control planes in $work share one CA and one service-account key"
