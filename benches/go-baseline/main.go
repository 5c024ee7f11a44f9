// Command go-baseline writes the control-plane PKI tree that `kubeadm init phase certs all &&
// kubeadm init phase kubeconfig all` writes, the way kubeadm writes it: Go's standard library
// only (crypto/ecdsa, crypto/x509, encoding/pem, os), one file after the other, os.WriteFile
// without fsync. It is the baseline kubepki's ECDSA-P256 `init` is timed against.
//
//	go-baseline OUTDIR [ECDSA-P256]
//
//	OUTDIR/pki/...   ca, apiserver, apiserver-kubelet-client, front-proxy-ca,
//	                 front-proxy-client, etcd/{ca,server,peer,healthcheck-client},
//	                 apiserver-etcd-client (.crt 0644, .key 0600), sa.key and sa.pub (0600)
//	OUTDIR/*.conf    admin, super-admin, kubelet, controller-manager, scheduler (0600)
//
// As kubeadm: P-256 keys in SEC1 PEM (EC PRIVATE KEY), sa.pub in PKIX PEM (PUBLIC KEY),
// 63-bit random serials, NotBefore back-dated 5 minutes, CAs valid 10 years with their CN as
// DNS SAN, leaves 1 year; kubeadm's subjects, SANs and extended key usages; kubeconfigs with
// embedded data. Node cp1, advertise address 127.0.0.1 (NODE_NAME, ADVERTISE_ADDRESS),
// service CIDR 10.96.0.0/12, DNS domain cluster.local, bind port 6443.
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

const (
	backdate      = 5 * time.Minute
	caValidity    = 10 * 365 * 24 * time.Hour
	leafValidity  = 365 * 24 * time.Hour
	publicMode    = 0o644
	secretMode    = 0o600
	directoryMode = 0o755
)

// ca is a signing CA: its certificate and key.
type ca struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// leaf is one certificate to issue: its subject, SANs and extended key usages.
type leaf struct {
	cn    string
	orgs  []string
	dns   []string
	ips   []net.IP
	usage []x509.ExtKeyUsage
}

var (
	server = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	client = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	both   = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
)

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 || (len(os.Args) == 3 && os.Args[2] != "ECDSA-P256") {
		fmt.Fprintln(os.Stderr, "usage: go-baseline OUTDIR [ECDSA-P256]")
		os.Exit(2)
	}
	// Modes as kubeadm gets them under the usual umask, whatever this one's.
	syscall.Umask(0o022)
	if err := run(os.Args[1], env("NODE_NAME", "cp1"), env("ADVERTISE_ADDRESS", "127.0.0.1")); err != nil {
		fmt.Fprintln(os.Stderr, "go-baseline:", err)
		os.Exit(1)
	}
}

func env(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

// run writes the tree in kubeadm's order: init phase certs all, then init phase kubeconfig all.
func run(out, node, address string) error {
	pki := filepath.Join(out, "pki")
	advertise := net.ParseIP(address)
	if advertise == nil {
		return fmt.Errorf("%q is not an IP address", address)
	}
	now := time.Now()
	local := uniqueIPs(advertise, net.ParseIP("127.0.0.1"), net.IPv6loopback)

	clusterCA, err := newCA(pki, "ca", "kubernetes", now)
	if err != nil {
		return err
	}
	apiserverDNS := []string{node, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc.cluster.local"}
	apiserverIPs := uniqueIPs(net.ParseIP("10.96.0.1"), advertise)
	steps := []struct {
		file string
		ca   **ca
		leaf leaf
	}{
		{"apiserver", &clusterCA, leaf{"kube-apiserver", nil, apiserverDNS, apiserverIPs, server}},
		{"apiserver-kubelet-client", &clusterCA,
			leaf{"kube-apiserver-kubelet-client", nil, nil, nil, client}},
	}
	for _, step := range steps {
		if err := newLeaf(pki, step.file, *step.ca, step.leaf, now); err != nil {
			return err
		}
	}
	frontProxyCA, err := newCA(pki, "front-proxy-ca", "front-proxy-ca", now)
	if err != nil {
		return err
	}
	if err := newLeaf(pki, "front-proxy-client", frontProxyCA,
		leaf{"front-proxy-client", nil, nil, nil, client}, now); err != nil {
		return err
	}
	etcdCA, err := newCA(pki, "etcd/ca", "etcd-ca", now)
	if err != nil {
		return err
	}
	etcdServing := []string{node, "localhost"}
	for _, step := range []struct {
		file string
		leaf leaf
	}{
		{"etcd/server", leaf{node, nil, etcdServing, local, both}},
		{"etcd/peer", leaf{node, nil, etcdServing, local, both}},
		{"etcd/healthcheck-client", leaf{"kube-etcd-healthcheck-client", nil, nil, nil, client}},
		{"apiserver-etcd-client", leaf{"kube-apiserver-etcd-client", nil, nil, nil, client}},
	} {
		if err := newLeaf(pki, step.file, etcdCA, step.leaf, now); err != nil {
			return err
		}
	}
	if err := newServiceAccountKey(pki); err != nil {
		return err
	}

	endpoint := "https://" + net.JoinHostPort(address, "6443")
	for _, kc := range []struct {
		file string
		user leaf
	}{
		{"admin.conf", leaf{"kubernetes-admin", []string{"kubeadm:cluster-admins"}, nil, nil, client}},
		{"super-admin.conf", leaf{"kubernetes-super-admin", []string{"system:masters"}, nil, nil, client}},
		{"kubelet.conf", leaf{"system:node:" + node, []string{"system:nodes"}, nil, nil, client}},
		{"controller-manager.conf", leaf{"system:kube-controller-manager", nil, nil, nil, client}},
		{"scheduler.conf", leaf{"system:kube-scheduler", nil, nil, nil, client}},
	} {
		if err := newKubeconfig(filepath.Join(out, kc.file), clusterCA, kc.user, endpoint, now); err != nil {
			return err
		}
	}
	return nil
}

// uniqueIPs drops repeated addresses, the first seen wins (as kubeadm does).
func uniqueIPs(ips ...net.IP) []net.IP {
	var unique []net.IP
	for _, ip := range ips {
		seen := false
		for _, known := range unique {
			seen = seen || known.Equal(ip)
		}
		if !seen {
			unique = append(unique, ip)
		}
	}
	return unique
}

// serial is a random positive 63-bit serial number, as kubeadm's.
func serial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).SetInt64(math.MaxInt64-1))
	if err != nil {
		return nil, err
	}
	return n.Add(n, big.NewInt(1)), nil
}

// newCA writes a self-signed CA's key and certificate as BASE.key and BASE.crt below pki.
func newCA(pki, base, cn string, now time.Time) (*ca, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	number, err := serial()
	if err != nil {
		return nil, err
	}
	template := &x509.Certificate{
		SerialNumber:          number,
		Subject:               pkix.Name{CommonName: cn},
		DNSNames:              []string{cn},
		NotBefore:             now.Add(-backdate).UTC(),
		NotAfter:              now.Add(caValidity).UTC(),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := writePair(pki, base, key, der); err != nil {
		return nil, err
	}
	return &ca{cert, key}, nil
}

// issue makes a new key and a certificate for it, signed by signer.
func issue(signer *ca, l leaf, now time.Time) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	number, err := serial()
	if err != nil {
		return nil, nil, err
	}
	template := &x509.Certificate{
		SerialNumber:          number,
		Subject:               pkix.Name{CommonName: l.cn, Organization: l.orgs},
		DNSNames:              l.dns,
		IPAddresses:           l.ips,
		NotBefore:             signer.cert.NotBefore,
		NotAfter:              now.Add(leafValidity).UTC(),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           l.usage,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, signer.cert, key.Public(), signer.key)
	return key, der, err
}

// newLeaf writes a key and certificate signed by signer as BASE.key and BASE.crt below pki.
func newLeaf(pki, base string, signer *ca, l leaf, now time.Time) error {
	key, der, err := issue(signer, l, now)
	if err != nil {
		return err
	}
	return writePair(pki, base, key, der)
}

// newServiceAccountKey writes sa.key and sa.pub below pki.
func newServiceAccountKey(pki string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	keyPEM, err := privatePEM(key)
	if err != nil {
		return err
	}
	public, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(pki, "sa.key"), keyPEM, secretMode); err != nil {
		return err
	}
	return writeFile(filepath.Join(pki, "sa.pub"), encode("PUBLIC KEY", public), secretMode)
}

// newKubeconfig writes a kubeconfig for user at path, with a client certificate from signer.
func newKubeconfig(path string, signer *ca, user leaf, endpoint string, now time.Time) error {
	key, der, err := issue(signer, user, now)
	if err != nil {
		return err
	}
	keyPEM, err := privatePEM(key)
	if err != nil {
		return err
	}
	b64 := base64.StdEncoding.EncodeToString
	name := user.cn
	yaml := fmt.Sprintf(`apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: %s
    server: %s
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: %s
  name: %s@kubernetes
current-context: %s@kubernetes
kind: Config
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
`, b64(encode("CERTIFICATE", signer.cert.Raw)), endpoint, name, name, name, name,
		b64(encode("CERTIFICATE", der)), b64(keyPEM))
	return writeFile(path, []byte(yaml), secretMode)
}

// writePair writes BASE.key (0600) and BASE.crt (0644) below pki, key first, as kubeadm.
func writePair(pki, base string, key *ecdsa.PrivateKey, der []byte) error {
	keyPEM, err := privatePEM(key)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(pki, base+".key"), keyPEM, secretMode); err != nil {
		return err
	}
	return writeFile(filepath.Join(pki, base+".crt"), encode("CERTIFICATE", der), publicMode)
}

// privatePEM is key in SEC1 form, as kubeadm writes EC keys.
func privatePEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return encode("EC PRIVATE KEY", der), nil
}

func encode(label string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: label, Bytes: der})
}

// writeFile is what kubeadm's keyutil.WriteKey and certutil.WriteCert do: MkdirAll, then
// os.WriteFile; no temp file, no fsync.
func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), directoryMode); err != nil {
		return err
	}
	return os.WriteFile(path, data, mode)
}
