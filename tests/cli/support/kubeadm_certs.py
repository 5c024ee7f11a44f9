"""kubeadm's kubeadm-certs Secret, done independently of kubepki, with Python's
`cryptography` (AES-GCM) and PyYAML, following kubeadm's copycerts.go and crypto.go:
each file below the cert dir is sealed with AES-256-GCM under the 32 bytes of the hex
certificate key, a random 12-byte nonce prepended to the sealed data, no additional data,
and stored base64 in the Secret's data under its name with '/' replaced by '-'.

  open KEY BUNDLE OUTDIR   decrypt every entry of the Secret in BUNDLE into OUTDIR/<entry>
                           (what `kubeadm join --control-plane` downloads); empty entries
                           are skipped, as kubeadm does
  seal KEY PKIDIR OUT      write the Secret as `kubectl get secret kubeadm-certs -o yaml`
                           prints one kubeadm uploaded, from PKIDIR's shared files
"""
import base64
import os
import sys

import yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SHARED = ["ca.crt", "ca.key", "front-proxy-ca.crt", "front-proxy-ca.key",
          "sa.pub", "sa.key", "etcd/ca.crt", "etcd/ca.key"]
NONCE = 12


def the_secret(documents):
    for document in documents:
        if document and document.get("kind") == "Secret" \
                and document["metadata"]["name"] == "kubeadm-certs":
            return document
    raise SystemExit("no kubeadm-certs Secret")


def open_bundle(key, bundle, outdir):
    with open(bundle) as f:
        secret = the_secret(yaml.safe_load_all(f))
    assert secret["metadata"]["namespace"] == "kube-system", secret["metadata"]
    for name, value in secret["data"].items():
        sealed = base64.b64decode(value or "")
        if not sealed:
            continue
        plain = AESGCM(key).decrypt(sealed[:NONCE], sealed[NONCE:], None)
        with open(os.path.join(outdir, name), "wb") as out:
            out.write(plain)


def seal(key, pkidir, out):
    data = {}
    for name in SHARED:
        path = os.path.join(pkidir, name)
        sealed = b""
        if os.path.exists(path):
            nonce = os.urandom(NONCE)
            with open(path, "rb") as f:
                sealed = nonce + AESGCM(key).encrypt(nonce, f.read(), None)
        data[name.replace("/", "-")] = base64.b64encode(sealed).decode()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": "kubeadm-certs",
            "namespace": "kube-system",
            "uid": "6a1c2f3e-0000-4000-8000-000000000000",
            "resourceVersion": "4242",
            "creationTimestamp": "2026-11-27T10:00:00Z",
            "ownerReferences": [{"apiVersion": "v1", "kind": "Secret", "controller": True,
                                 "name": "bootstrap-token-abcdef", "uid": "0"}],
        },
        "data": data,
    }
    with open(out, "w") as f:
        yaml.safe_dump(secret, f)


if __name__ == "__main__":
    command, key_hex, source, target = sys.argv[1:]
    key = bytes.fromhex(key_hex)
    assert len(key) == 32
    {"open": open_bundle, "seal": seal}[command](key, source, target)
