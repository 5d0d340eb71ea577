package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
)

// HTTPServerTLSConfig returns a configuration for the HTTP listener
// (/metrics, /v1/health, /v1/ready, pprof): TLS 1.3 only, the part's own
// certificate, and a client certificate verified against the current CA —
// and held to this cluster's domain (and region) — when the client offers
// one, but not required. The handlers decide what needs one: health and
// readiness probes (load balancers, systemd, Kubernetes-style checkers)
// usually cannot present a certificate, while /metrics and pprof can.
// ALPN offers h2 and http/1.1.
func (r *Reloader) HTTPServerTLSConfig() (*tls.Config, error) {
	if !slices.Contains(r.Certificate().ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		return nil, fmt.Errorf("tlsutil: %s is a %s certificate, which cannot serve", r.cfg.CertFile, r.Identity().Role)
	}
	base := r.httpServerConfig(r.cur.Load())
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return r.httpServerConfig(r.cur.Load()), nil
	}
	return base, nil
}

func (r *Reloader) httpServerConfig(m *material) *tls.Config {
	c := r.serverConfig(m)
	c.ClientAuth = tls.VerifyClientCertIfGiven
	c.NextProtos = []string{"h2", "http/1.1"}
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return nil
		}
		return r.verifyClient(cs)
	}
	return c
}
