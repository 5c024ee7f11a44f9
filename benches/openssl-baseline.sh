#!/usr/bin/env bash
# openssl-baseline.sh OUTDIR [ALGORITHM]
#
# The baseline kubepki is measured against: the control-plane PKI tree that
# `kubeadm init phase certs all && kubeadm init phase kubeconfig all` writes,
# made "the Kubernetes-the-Hard-Way way" -- a plain, sequential shell script
# that runs one openssl process per step (key, CSR, signature) and writes the
# kubeconfigs with heredocs and `base64 -w0`.
#
#   OUTDIR/pki/...        the 3 CAs, 7 leaf certs, sa.key/sa.pub
#   OUTDIR/*.conf         admin, super-admin, kubelet, controller-manager, scheduler
#
# ALGORITHM: RSA-2048 (default), RSA-3072, RSA-4096, ECDSA-P256, ECDSA-P384.
# Node name / advertise address are those of the benchmark (cp1, 127.0.0.1);
# override with NODE_NAME / ADVERTISE_ADDRESS. Service CIDR 10.96.0.0/12,
# DNS domain cluster.local, bind port 6443 (kubeadm's defaults).
#
# What matches kubeadm: file layout and modes, subjects (O then CN), SANs and
# their order, keyUsage / extendedKeyUsage / basicConstraints (critical where
# kubeadm's are), SKI on CAs only, AKI on leaves only, PKCS#1 / SEC1 key PEM
# labels, signature hash (SHA-384 for P-384), kubeconfig YAML.
# What does not (irrelevant to the timing): serials are OpenSSL's 159-bit
# random ones (kubeadm: 63-bit), there is no 5-minute NotBefore backdate
# (openssl 3.0 has no -not_before), and the subject strings are UTF8String.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 OUTDIR [RSA-2048|RSA-3072|RSA-4096|ECDSA-P256|ECDSA-P384]" >&2
    exit 2
fi
OUT=$1
ALG=${2:-RSA-2048}
NODE=${NODE_NAME:-cp1}
ADDR=${ADVERTISE_ADDRESS:-127.0.0.1}
SERVER="https://${ADDR}:6443"
PKI=$OUT/pki

MD=sha256
case $ALG in
    RSA-2048) BITS=2048 ;;
    RSA-3072) BITS=3072 ;;
    RSA-4096) BITS=4096 ;;
    ECDSA-P256) CURVE=prime256v1 ;;
    ECDSA-P384) CURVE=secp384r1 MD=sha384 ;;
    *) echo "$0: unknown algorithm '$ALG'" >&2; exit 2 ;;
esac

umask 077                      # keys, sa.pub and kubeconfigs 0600; certs chmod'ed 0644 at the end
mkdir -p "$PKI/etcd"
chmod 755 "$OUT" "$PKI" "$PKI/etcd"
TMP=$(mktemp -d)               # CSRs and the kubeconfig client keys/certs; not part of the tree
trap 'rm -rf "$TMP"' EXIT

# One extensions file, one section per certificate profile (KTHW's ca.conf).
CNF=$TMP/ca.conf
cat >"$CNF" <<EOF
[req]
distinguished_name = req_dn
prompt             = no
[req_dn]
CN = unused

[ca_kubernetes]
subjectAltName   = DNS:kubernetes
keyUsage         = critical, digitalSignature, keyEncipherment, keyCertSign
subjectKeyIdentifier = hash
basicConstraints = critical, CA:TRUE
[ca_front-proxy-ca]
subjectAltName   = DNS:front-proxy-ca
keyUsage         = critical, digitalSignature, keyEncipherment, keyCertSign
subjectKeyIdentifier = hash
basicConstraints = critical, CA:TRUE
[ca_etcd-ca]
subjectAltName   = DNS:etcd-ca
keyUsage         = critical, digitalSignature, keyEncipherment, keyCertSign
subjectKeyIdentifier = hash
basicConstraints = critical, CA:TRUE

[apiserver]
authorityKeyIdentifier = keyid:always
subjectKeyIdentifier   = none
subjectAltName   = DNS:${NODE}, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local, IP:10.96.0.1, IP:${ADDR}
keyUsage         = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
basicConstraints = critical, CA:FALSE
[etcd_serving]
authorityKeyIdentifier = keyid:always
subjectKeyIdentifier   = none
subjectAltName   = DNS:${NODE}, DNS:localhost, IP:${ADDR}, IP:127.0.0.1, IP:::1
keyUsage         = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
basicConstraints = critical, CA:FALSE
[client]
authorityKeyIdentifier = keyid:always
subjectKeyIdentifier   = none
keyUsage         = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
basicConstraints = critical, CA:FALSE
EOF
if [[ $ADDR == 127.0.0.1 ]]; then   # kubeadm de-duplicates IP SANs, first seen wins
    sed -i "s/IP:${ADDR}, IP:127.0.0.1, IP:::1/IP:127.0.0.1, IP:::1/" "$CNF"
fi

# genkey FILE: a fresh private key, PKCS#1 (RSA PRIVATE KEY) or SEC1 (EC PRIVATE KEY) like kubeadm.
genkey() {
    if [[ -n ${BITS:-} ]]; then
        openssl genrsa -traditional -out "$1" "$BITS" 2>/dev/null   # 3.0 has no -quiet: drop the progress dots
    else
        openssl ecparam -name "$CURVE" -genkey -noout -out "$1"
    fi
}

# ca BASE CN: self-signed CA, 10 years.
ca() {
    genkey "$PKI/$1.key"
    openssl req -x509 -new -key "$PKI/$1.key" -subj "/CN=$2" -days 3650 -"$MD" \
        -config "$CNF" -extensions "ca_$2" -out "$PKI/$1.crt"
}

# sign KEY CRT CABASE SUBJECT SECTION: new key, CSR, CA signature (3 processes), 1 year.
sign() {
    local key=$1 crt=$2 cabase=$3 subj=$4 section=$5
    genkey "$key"
    openssl req -new -key "$key" -subj "$subj" -"$MD" -config "$CNF" -out "$TMP/req.csr"
    openssl x509 -req -in "$TMP/req.csr" -CA "$PKI/$cabase.crt" -CAkey "$PKI/$cabase.key" \
        -days 365 -"$MD" -extfile "$CNF" -extensions "$section" -out "$crt" 2>/dev/null
}

# leaf BASE CABASE SUBJECT SECTION
leaf() { sign "$PKI/$1.key" "$PKI/$1.crt" "$2" "$3" "$4"; }

# kubeconfig FILE USER [ORG]: client cert signed by ca, embedded in a kubeconfig.
kubeconfig() {
    local file=$1 user=$2 subj="/CN=$2"
    if [[ -n ${3:-} ]]; then subj="/O=$3/CN=$2"; fi
    sign "$TMP/client.key" "$TMP/client.crt" ca "$subj" client
    cat >"$OUT/$file" <<EOF
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
    server: ${SERVER}
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: ${user}
  name: ${user}@kubernetes
current-context: ${user}@kubernetes
kind: Config
users:
- name: ${user}
  user:
    client-certificate-data: $(base64 -w0 "$TMP/client.crt")
    client-key-data: $(base64 -w0 "$TMP/client.key")
EOF
}

# --- init phase certs all (kubeadm's order) ---------------------------------
ca   ca                          kubernetes
leaf apiserver                   ca             "/CN=kube-apiserver"                                   apiserver
leaf apiserver-kubelet-client    ca             "/CN=kube-apiserver-kubelet-client" client
ca   front-proxy-ca              front-proxy-ca
leaf front-proxy-client          front-proxy-ca "/CN=front-proxy-client"                               client
ca   etcd/ca                     etcd-ca
leaf etcd/server                 etcd/ca        "/CN=${NODE}"                                          etcd_serving
leaf etcd/peer                   etcd/ca        "/CN=${NODE}"                                          etcd_serving
leaf etcd/healthcheck-client     etcd/ca        "/CN=kube-etcd-healthcheck-client"                     client
leaf apiserver-etcd-client       etcd/ca        "/CN=kube-apiserver-etcd-client"                       client
genkey "$PKI/sa.key"
openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"

# --- init phase kubeconfig all (kubeadm's order) ----------------------------
kubeconfig admin.conf              kubernetes-admin               kubeadm:cluster-admins
kubeconfig super-admin.conf        kubernetes-super-admin         system:masters
kubeconfig kubelet.conf            "system:node:${NODE}"          system:nodes
kubeconfig controller-manager.conf system:kube-controller-manager
kubeconfig scheduler.conf          system:kube-scheduler

chmod 644 "$PKI"/*.crt "$PKI"/etcd/*.crt
