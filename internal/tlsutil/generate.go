// Package tlsutil creates rollwave's certificates and builds the TLS
// configurations every part uses: mutual TLS 1.3 between servers, agents and
// the CLI, all signed by one cluster CA, with the part's role in its
// certificate name (server.<region>.<domain>, agent.…, cli.…), so that a
// service can authorize callers by role (see PeerRole and the gRPC
// interceptors in grpcauth.go). Certificates and the CA reload without
// dropping open connections (Reloader).
//
// The layout follows Nomad and Consul: `rollwave tls ca create` writes
// <domain>-ca.pem and <domain>-ca-key.pem; `rollwave tls cert create -server`
// writes <region>-server-<domain>-<n>.pem and …-key.pem with the next free n.
package tlsutil

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Defaults for generated material.
const (
	DefaultDomain = "rollwave"
	DefaultRegion = "global"
	// DefaultCADays is the CA's validity: five years, as Nomad and Consul.
	DefaultCADays = 5 * 365
	// DefaultCertDays is a leaf certificate's validity.
	DefaultCertDays = 365
	// clockSkew backdates NotBefore so hosts whose clocks run a little
	// behind accept a fresh certificate.
	clockSkew = time.Minute
	// maxCertIndex bounds the search for a free <n> in leaf file names.
	maxCertIndex = 10_000
)

// ErrExists is returned (wrapped) when CreateCA would overwrite a CA file.
var ErrExists = errors.New("file already exists")

// CAOptions configures CreateCA.
type CAOptions struct {
	// Domain is the cluster domain in every certificate name; "" means
	// DefaultDomain. It also names the files: <Domain>-ca.pem.
	Domain string
	// Days is the validity from NotBefore; 0 means DefaultCADays.
	Days int
	// Dir is where the files are written; "" means the current directory.
	Dir string
	// NameConstraint restricts the CA to sign DNS names under Domain and
	// "localhost" only (plus PermittedDNSDomains). Leaves with other
	// -additional-dnsname values then fail verification.
	NameConstraint bool
	// PermittedDNSDomains are further DNS domains allowed under
	// NameConstraint.
	PermittedDNSDomains []string
	// NotBefore is the start of validity; zero means now minus a minute.
	// Tests set it in the past to make expired material.
	NotBefore time.Time
}

// CertOptions configures CreateCert.
type CertOptions struct {
	// CAFile and CAKeyFile are the CA certificate and key (PEM).
	CAFile, CAKeyFile string
	// Kind is the role the certificate is for.
	Kind Role
	// Region and Domain form the role name <kind>.<region>.<domain>; ""
	// means DefaultRegion and DefaultDomain.
	Region, Domain string
	// Days is the validity from NotBefore; 0 means DefaultCertDays.
	Days int
	// AdditionalDNS and AdditionalIPs are extra subject alternative names
	// (a server's host name and address, say). A DNS name may not start
	// with a role label ("server.", "agent.", "cli."): roles come only
	// from Kind.
	AdditionalDNS []string
	AdditionalIPs []net.IP
	// Dir is where the files are written; "" means the current directory.
	Dir string
	// NotBefore is the start of validity; zero means now minus a minute.
	NotBefore time.Time
}

// Generated is what CreateCA and CreateCert produced and where they wrote it.
type Generated struct {
	CertPEM, KeyPEM   []byte
	CertFile, KeyFile string
}

// CAFileNames returns the CA certificate and key file names for domain
// ("" means DefaultDomain), as CreateCA writes them.
func CAFileNames(domain string) (cert, key string) {
	if domain == "" {
		domain = DefaultDomain
	}
	return domain + "-ca.pem", domain + "-ca-key.pem"
}

// CreateCA generates a self-signed ECDSA P-256 CA (CA:true, path length 0:
// it signs leaves only) and writes <domain>-ca.pem (0644) and
// <domain>-ca-key.pem (0600) into opts.Dir. It never overwrites: if either
// file exists it fails with ErrExists.
func CreateCA(opts CAOptions) (*Generated, error) {
	domain := opts.Domain
	if domain == "" {
		domain = DefaultDomain
	}
	if err := checkDomain(domain); err != nil {
		return nil, err
	}
	days := opts.Days
	if days == 0 {
		days = DefaultCADays
	}
	if days < 0 {
		return nil, fmt.Errorf("tlsutil: CA validity %d days: must be positive", days)
	}
	key, serial, skid, err := newKeyMaterial("CA key")
	if err != nil {
		return nil, err
	}
	notBefore := validFrom(opts.NotBefore)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   fmt.Sprintf("%s CA %s", domain, serial.Text(16)[:8]),
			Organization: []string{"rollwave"},
		},
		NotBefore:             notBefore,
		NotAfter:              notBefore.AddDate(0, 0, days),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		SubjectKeyId:          skid,
		AuthorityKeyId:        skid,
	}
	if opts.NameConstraint {
		tmpl.PermittedDNSDomainsCritical = true
		tmpl.PermittedDNSDomains = append([]string{domain, "localhost"}, opts.PermittedDNSDomains...)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: create CA certificate: %w", err)
	}
	g, err := encode(der, key)
	if err != nil {
		return nil, err
	}
	certName, keyName := CAFileNames(domain)
	g.CertFile = filepath.Join(opts.Dir, certName)
	g.KeyFile = filepath.Join(opts.Dir, keyName)
	for _, f := range []string{g.CertFile, g.KeyFile} {
		if _, err := os.Lstat(f); err == nil {
			return nil, fmt.Errorf("tlsutil: CA %s: %w; remove it or use another -dir or -domain", f, ErrExists)
		}
	}
	if err := writePair(g); err != nil {
		return nil, err
	}
	return g, nil
}

// CreateCert generates an ECDSA P-256 leaf certificate signed by the CA in
// opts.CAFile/CAKeyFile and writes <region>-<kind>-<domain>-<n>.pem and
// …-<n>-key.pem (0600) into opts.Dir, n being the lowest index whose files
// do not exist yet: existing certificates are never overwritten.
//
// Names: <kind>.<region>.<domain>; servers also get "localhost" and
// 127.0.0.1. Extended key usage: server auth and client auth for servers
// and agents, client auth only for the CLI.
func CreateCert(opts CertOptions) (*Generated, error) {
	if _, err := ParseRole(string(opts.Kind)); err != nil {
		return nil, fmt.Errorf("tlsutil: certificate kind: %w", err)
	}
	region, domain := opts.Region, opts.Domain
	if region == "" {
		region = DefaultRegion
	}
	if domain == "" {
		domain = DefaultDomain
	}
	if err := checkLabel("region", region); err != nil {
		return nil, err
	}
	if err := checkDomain(domain); err != nil {
		return nil, err
	}
	days := opts.Days
	if days == 0 {
		days = DefaultCertDays
	}
	if days < 0 {
		return nil, fmt.Errorf("tlsutil: certificate validity %d days: must be positive", days)
	}
	for _, name := range opts.AdditionalDNS {
		if name == "" {
			return nil, errors.New("tlsutil: empty additional DNS name")
		}
		if first, _, _ := strings.Cut(name, "."); isRoleLabel(first) && strings.Contains(name, ".") {
			return nil, fmt.Errorf("tlsutil: additional DNS name %q starts with a role label; the role comes from the certificate kind", name)
		}
	}
	caCert, caKey, err := loadCA(opts.CAFile, opts.CAKeyFile)
	if err != nil {
		return nil, err
	}

	key, serial, skid, err := newKeyMaterial("key")
	if err != nil {
		return nil, err
	}
	roleName := RoleName(opts.Kind, region, domain)
	dns := []string{roleName}
	var ips []net.IP
	if opts.Kind == RoleServer {
		dns = append(dns, "localhost")
		ips = append(ips, net.IPv4(127, 0, 0, 1))
	}
	dns = appendNew(dns, opts.AdditionalDNS...)
	for _, ip := range opts.AdditionalIPs {
		if ip == nil {
			return nil, errors.New("tlsutil: nil additional IP address")
		}
		if !containsIP(ips, ip) {
			ips = append(ips, ip)
		}
	}
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	if opts.Kind == RoleCLI {
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	notBefore := validFrom(opts.NotBefore)
	notAfter := notBefore.AddDate(0, 0, days)
	if notAfter.After(caCert.NotAfter) {
		notAfter = caCert.NotAfter // a leaf cannot outlive its CA usefully
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: roleName, Organization: []string{"rollwave"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           usage,
		BasicConstraintsValid: true,
		IsCA:                  false,
		DNSNames:              dns,
		IPAddresses:           ips,
		SubjectKeyId:          skid,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: sign certificate: %w", err)
	}
	g, err := encode(der, key)
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("%s-%s-%s", region, opts.Kind, domain)
	for n := 0; ; n++ {
		if n >= maxCertIndex {
			return nil, fmt.Errorf("tlsutil: no free file name %s-<n>.pem in %s", base, opts.Dir)
		}
		g.CertFile = filepath.Join(opts.Dir, fmt.Sprintf("%s-%d.pem", base, n))
		g.KeyFile = filepath.Join(opts.Dir, fmt.Sprintf("%s-%d-key.pem", base, n))
		err := writePair(g)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return g, nil
	}
}

// RoleName returns the certificate name of role in region and domain:
// "<role>.<region>.<domain>".
func RoleName(role Role, region, domain string) string {
	return string(role) + "." + region + "." + domain
}

func validFrom(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now().Add(-clockSkew).UTC().Truncate(time.Second)
	}
	return t.UTC()
}

// newKeyMaterial makes what every certificate needs: a P-256 key, a
// random serial number and the key's subject key identifier. what names
// the key in an error.
func newKeyMaterial(what string) (key *ecdsa.PrivateKey, serial *big.Int, skid []byte, err error) {
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("tlsutil: generate %s: %w", what, err)
	}
	if serial, err = newSerial(); err != nil {
		return nil, nil, nil, err
	}
	if skid, err = keyID(key.Public()); err != nil {
		return nil, nil, nil, err
	}
	return key, serial, skid, nil
}

func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("tlsutil: serial number: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil // never zero
}

// keyID is a subject key identifier: a truncated SHA-256 of the public key.
func keyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: marshal public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return sum[:20], nil
}

func encode(der []byte, key *ecdsa.PrivateKey) (*Generated, error) {
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: marshal key: %w", err)
	}
	return &Generated{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// writePair creates the key (0600) and certificate (0644) files, refusing
// to replace existing ones (the error then wraps fs.ErrExist). On failure
// nothing it created is left behind.
func writePair(g *Generated) error {
	if err := writeNew(g.KeyFile, g.KeyPEM, 0o600); err != nil {
		return err
	}
	if err := writeNew(g.CertFile, g.CertPEM, 0o644); err != nil {
		_ = os.Remove(g.KeyFile)
		return err
	}
	return nil
}

func writeNew(name string, data []byte, perm os.FileMode) error {
	// The target directory is made on demand (private: it holds keys).
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("tlsutil: %s: %w", name, err)
		}
		return fmt.Errorf("tlsutil: write %s: %w", name, err)
	}
	_, err = f.Write(data)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(name)
		return fmt.Errorf("tlsutil: write %s: %w", name, err)
	}
	return nil
}

// loadCA reads a CA certificate and its private key and checks that they
// belong together and that the certificate may sign.
func loadCA(certFile, keyFile string) (*x509.Certificate, crypto.Signer, error) {
	if certFile == "" || keyFile == "" {
		return nil, nil, errors.New("tlsutil: the CA certificate and key files are required")
	}
	certs, err := readCerts(certFile)
	if err != nil {
		return nil, nil, err
	}
	ca := certs[0]
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, nil, fmt.Errorf("tlsutil: %s is not a CA certificate", certFile)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsutil: read CA key: %w", err)
	}
	signer, err := parseKey(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsutil: CA key %s: %w", keyFile, err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(signer.Public())
	caPubDER, _ := x509.MarshalPKIXPublicKey(ca.PublicKey)
	if !bytes.Equal(pubDER, caPubDER) {
		return nil, nil, fmt.Errorf("tlsutil: CA key %s does not match certificate %s", keyFile, certFile)
	}
	return ca, signer, nil
}

func parseKey(b []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, errors.New("no PEM private key found")
		}
		var key any
		var err error
		switch block.Type {
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported key type %T", key)
		}
		return s, nil
	}
}

// readCerts parses every CERTIFICATE block in a PEM file.
func readCerts(file string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: read certificate: %w", err)
	}
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tlsutil: %s: %w", file, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("tlsutil: %s holds no PEM certificate", file)
	}
	return out, nil
}

func checkDomain(domain string) error {
	for _, l := range strings.Split(domain, ".") {
		if err := checkLabel("domain", l); err != nil {
			return fmt.Errorf("%w (in %q)", err, domain)
		}
	}
	return nil
}

// checkLabel accepts a DNS label: letters, digits and inner hyphens.
func checkLabel(what, l string) error {
	ok := l != "" && len(l) <= 63 && l[0] != '-' && l[len(l)-1] != '-'
	for _, r := range l {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("tlsutil: invalid %s %q: want a DNS label (letters, digits, hyphens)", what, l)
	}
	return nil
}

func appendNew(list []string, more ...string) []string {
	for _, m := range more {
		dup := false
		for _, l := range list {
			if strings.EqualFold(l, m) {
				dup = true
			}
		}
		if !dup {
			list = append(list, m)
		}
	}
	return list
}

func containsIP(ips []net.IP, ip net.IP) bool {
	for _, x := range ips {
		if x.Equal(ip) {
			return true
		}
	}
	return false
}
