package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Reloader holds a part's current certificate and CA and hands them to
// every new TLS handshake through callbacks (GetConfigForClient on
// servers, GetClientCertificate and VerifyConnection on clients), so that
// Reload — on SIGHUP — swaps them atomically: handshakes after it use the
// new files, connections already open are not touched. A Reloader is safe
// for concurrent use.
type Reloader struct {
	cfg Config
	mu  sync.Mutex // serialises Reload
	cur atomic.Pointer[material]
	now func() time.Time
}

// material is one consistent set of loaded files.
type material struct {
	cert  *tls.Certificate
	roots *x509.CertPool
	id    Identity // of cert
}

// NewReloader validates cfg and loads its files.
func NewReloader(cfg Config) (*Reloader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Reloader{cfg: cfg, now: time.Now}
	m, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cur.Store(m)
	return r, nil
}

// Reload reads the files again and, if they are valid — they parse, the
// key matches the certificate, the CA signed it, it is valid now, and it
// is for the same role, region and domain — makes them current. Otherwise
// it returns an error saying what is wrong, and the current material stays
// in use.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, err := r.load()
	if err != nil {
		return fmt.Errorf("%w; still using the previous certificate", err)
	}
	if old := r.cur.Load(); old.id != m.id {
		return fmt.Errorf("tlsutil: reload: %s is for %s, the running certificate for %s; still using the previous certificate",
			r.cfg.CertFile, m.id.Name(), old.id.Name())
	}
	r.cur.Store(m)
	return nil
}

// Certificate returns the current leaf certificate.
func (r *Reloader) Certificate() *x509.Certificate { return r.cur.Load().cert.Leaf }

// Identity returns the role, region and domain of the current certificate.
func (r *Reloader) Identity() Identity { return r.cur.Load().id }

func (r *Reloader) load() (*material, error) {
	cas, err := readCerts(r.cfg.CAFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	cert, err := tls.LoadX509KeyPair(r.cfg.CertFile, r.cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: load %s and %s: %w", r.cfg.CertFile, r.cfg.KeyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tlsutil: %s: %w", r.cfg.CertFile, err)
		}
		cert.Leaf = leaf
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: r.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, fmt.Errorf("tlsutil: %s does not verify against CA %s: %w", r.cfg.CertFile, r.cfg.CAFile, err)
	}
	id, err := CertIdentity(leaf)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: %s: %w", r.cfg.CertFile, err)
	}
	if id.Domain != r.cfg.Domain || id.Region != r.cfg.Region {
		return nil, fmt.Errorf("tlsutil: %s is for %s, but this node is configured for region %q and domain %q",
			r.cfg.CertFile, id.Name(), r.cfg.Region, r.cfg.Domain)
	}
	return &material{cert: &cert, roots: roots, id: id}, nil
}

// ServerTLSConfig returns a configuration for a listener (gRPC, the raft
// transport): TLS 1.3 only; every client must present a certificate that
// the current CA signed, that is valid now, that allows client auth and
// that names a role of this cluster. What a role may call is up to the
// service (UnaryAuthorizer, PeerRole). The certificate must allow server
// auth (server and agent certificates do).
//
// ALPN offers "h2" (gRPC); a client that offers no ALPN (the raft
// transport) is still accepted.
func (r *Reloader) ServerTLSConfig() (*tls.Config, error) {
	if !slices.Contains(r.Certificate().ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		return nil, fmt.Errorf("tlsutil: %s is a %s certificate, which cannot serve", r.cfg.CertFile, r.Identity().Role)
	}
	base := r.serverConfig(r.cur.Load())
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return r.serverConfig(r.cur.Load()), nil
	}
	return base, nil
}

func (r *Reloader) serverConfig(m *material) *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		Certificates:     []tls.Certificate{*m.cert},
		ClientAuth:       tls.RequireAndVerifyClientCert,
		ClientCAs:        m.roots,
		NextProtos:       []string{"h2"},
		VerifyConnection: r.verifyClient,
		// No resumption: a resumed session would skip verifying the client
		// against the CA current at that moment, and rollwave's connections
		// are few and long-lived anyway.
		SessionTicketsDisabled: true,
	}
}

// verifyClient runs after the standard chain verification on a server.
func (r *Reloader) verifyClient(cs tls.ConnectionState) error {
	id, err := PeerIdentity(cs)
	if err != nil {
		return err
	}
	return r.cfg.accepts(id)
}

// ClientTLSConfig returns a configuration for role (the part this node
// is) dialing a server: TLS 1.3 only; it presents the current certificate
// and accepts only a server certificate signed by the current CA, valid
// now, named server.<region>.<domain> (any region unless
// VerifyServerHostname). The loaded certificate must be role's.
//
// The server's chain is verified in VerifyConnection against the CA held
// by the Reloader (InsecureSkipVerify only turns off the built-in check,
// which could not see a reloaded CA); the handshake still proves the
// server holds the certificate's key.
func (r *Reloader) ClientTLSConfig(role Role) (*tls.Config, error) {
	if _, err := ParseRole(string(role)); err != nil {
		return nil, fmt.Errorf("tlsutil: %w", err)
	}
	if got := r.Identity().Role; got != role {
		return nil, fmt.Errorf("tlsutil: %s is a %s certificate; a %s needs a %s certificate (rollwave tls cert create -%s)",
			r.cfg.CertFile, got, role, role, role)
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		ServerName:         r.cfg.ServerName(),
		InsecureSkipVerify: true, // verified in verifyServer, against the current CA
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return r.cur.Load().cert, nil
		},
		VerifyConnection: r.verifyServer,
	}, nil
}

// verifyServer checks a server's certificate chain, validity period, key
// usage and role name.
func (r *Reloader) verifyServer(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tlsutil: the server presented no certificate")
	}
	m := r.cur.Load()
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{
		Roots:         m.roots,
		Intermediates: inter,
		CurrentTime:   r.now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if r.cfg.VerifyServerHostname {
		opts.DNSName = r.cfg.ServerName()
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("tlsutil: server certificate: %w", err)
	}
	id, err := CertIdentity(leaf)
	if err != nil {
		return fmt.Errorf("tlsutil: server certificate: %w", err)
	}
	if id.Role != RoleServer {
		return fmt.Errorf("tlsutil: the peer presented a %s certificate (%s), not a server certificate", id.Role, id.Name())
	}
	if err := r.cfg.accepts(id); err != nil {
		return fmt.Errorf("tlsutil: %w", err)
	}
	return nil
}

// ServerOnlyTLSConfig returns a configuration for a listener that only the
// cluster's other servers may use (the raft transport): as ServerTLSConfig,
// but the client must present a *server* certificate — an agent's or the
// CLI's certificate from the same CA fails the handshake — and no ALPN is
// offered. This part's own certificate must be a server certificate.
func (r *Reloader) ServerOnlyTLSConfig() (*tls.Config, error) {
	if got := r.Identity().Role; got != RoleServer {
		return nil, fmt.Errorf("tlsutil: %s is a %s certificate; only a server certificate may serve here (rollwave tls cert create -server)",
			r.cfg.CertFile, got)
	}
	if _, err := r.ServerTLSConfig(); err != nil {
		return nil, err
	}
	base := r.serverOnlyConfig(r.cur.Load())
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return r.serverOnlyConfig(r.cur.Load()), nil
	}
	return base, nil
}

func (r *Reloader) serverOnlyConfig(m *material) *tls.Config {
	c := r.serverConfig(m)
	c.NextProtos = nil
	c.VerifyConnection = r.verifyServerClient
	return c
}

// verifyServerClient accepts only a verified server certificate of this
// cluster on the client side of a connection.
func (r *Reloader) verifyServerClient(cs tls.ConnectionState) error {
	id, err := PeerIdentity(cs)
	if err != nil {
		return err
	}
	if id.Role != RoleServer {
		return fmt.Errorf("tlsutil: the peer presented a %s certificate (%s); only servers may connect here", id.Role, id.Name())
	}
	return r.cfg.accepts(id)
}
