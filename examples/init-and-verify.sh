#!/usr/bin/env bash
# Write a control-plane PKI tree into a scratch directory and check it the way its consumers
# will: openssl verifies every certificate against its CA, and a second run reuses
# everything untouched. Usage: examples/init-and-verify.sh [OUTDIR]
# Uses $KUBEPKI if set, else `kubepki` on PATH.
set -euo pipefail
kubepki=${KUBEPKI:-kubepki}
out=${1:-$(mktemp -d)}

init=(init --cert-dir "$out/pki" --kubeconfig-dir "$out"
    --node-name cp1 --apiserver-advertise-address 192.0.2.10
    --control-plane-endpoint cluster.example.com:6443
    --apiserver-cert-extra-sans 192.0.2.100,api.example.com
    --encryption-algorithm ECDSA-P256)
"$kubepki" "${init[@]}"

pki=$out/pki
openssl verify -purpose sslserver -CAfile "$pki/ca.crt" "$pki/apiserver.crt"
openssl verify -purpose sslclient -CAfile "$pki/ca.crt" "$pki/apiserver-kubelet-client.crt"
openssl verify -purpose sslclient -CAfile "$pki/front-proxy-ca.crt" "$pki/front-proxy-client.crt"
for cert in server peer healthcheck-client; do
    openssl verify -CAfile "$pki/etcd/ca.crt" "$pki/etcd/$cert.crt"
done
openssl verify -purpose sslclient -CAfile "$pki/etcd/ca.crt" "$pki/apiserver-etcd-client.crt"
openssl x509 -in "$pki/apiserver.crt" -noout -ext subjectAltName

before=$(cd "$out" && find . -type f -exec sha256sum {} + | sort)
"$kubepki" "${init[@]}" >/dev/null
after=$(cd "$out" && find . -type f -exec sha256sum {} + | sort)
[ "$before" = "$after" ] || { echo "second run changed the tree" >&2; exit 1; }
echo "tree in $out verified; a second run reused every file"
