package tlsutil

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// pki is a CA in a temp dir that issues certificates for tests.
type pki struct {
	t             *testing.T
	dir           string
	caCert, caKey string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	g, err := CreateCA(CAOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return &pki{t: t, dir: dir, caCert: g.CertFile, caKey: g.KeyFile}
}

// issue creates a certificate of kind; mod may change the options.
func (p *pki) issue(kind Role, mod ...func(*CertOptions)) *Generated {
	p.t.Helper()
	o := CertOptions{CAFile: p.caCert, CAKeyFile: p.caKey, Kind: kind, Dir: p.dir}
	for _, m := range mod {
		m(&o)
	}
	g, err := CreateCert(o)
	if err != nil {
		p.t.Fatal(err)
	}
	return g
}

// config is a Config for a certificate this pki issued.
func (p *pki) config(g *Generated) Config {
	c := DefaultConfig()
	c.CAFile, c.CertFile, c.KeyFile = p.caCert, g.CertFile, g.KeyFile
	return c
}

func (p *pki) reloader(g *Generated) *Reloader {
	p.t.Helper()
	r, err := NewReloader(p.config(g))
	if err != nil {
		p.t.Fatal(err)
	}
	return r
}

// clientConfig is a Config-built client TLS configuration for kind.
func (p *pki) clientConfig(kind Role) *tls.Config {
	p.t.Helper()
	cfg, err := p.reloader(p.issue(kind)).ClientTLSConfig(kind)
	if err != nil {
		p.t.Fatal(err)
	}
	return cfg
}

// rawClient is a hand-built client configuration presenting g (which
// NewReloader might refuse to load, e.g. when expired) and trusting p's CA.
func (p *pki) rawClient(g *Generated) *tls.Config {
	p.t.Helper()
	cert, err := tls.LoadX509KeyPair(g.CertFile, g.KeyFile)
	if err != nil {
		p.t.Fatal(err)
	}
	cfg := p.clientConfig(RoleCLI)
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	return cfg
}

// echoServer accepts TLS connections and echoes lines; it records each
// handshake's peer role or error.
type echoServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	roles []Role
	errs  []error
}

func startEcho(t *testing.T, cfg *tls.Config) *echoServer {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				tc := c.(*tls.Conn)
				_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
				err := tc.Handshake()
				s.mu.Lock()
				if err != nil {
					s.errs = append(s.errs, err)
				} else {
					role, rerr := PeerRole(tc.ConnectionState())
					s.roles = append(s.roles, role)
					if rerr != nil {
						s.errs = append(s.errs, rerr)
					}
				}
				s.mu.Unlock()
				if err != nil {
					return
				}
				_ = tc.SetDeadline(time.Time{})
				r := bufio.NewReader(tc)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := tc.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *echoServer) addr() string { return s.ln.Addr().String() }

// conn is an open client connection to an echoServer.
type conn struct {
	c *tls.Conn
	r *bufio.Reader
}

// dial connects and completes one echo round trip, which in TLS 1.3 is
// what reveals that the server refused the client's certificate.
func dial(t *testing.T, addr string, cfg *tls.Config) (*conn, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	cn := &conn{c: c, r: bufio.NewReader(c)}
	if err := cn.ping(); err != nil {
		_ = c.Close()
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	return cn, nil
}

func (c *conn) ping() error {
	_ = c.c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.c.SetDeadline(time.Time{})
	if _, err := c.c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "ping\n" {
		return errors.New("bad echo " + line)
	}
	return nil
}

// copyFile overwrites dst with src's content (as an operator replacing
// a certificate in place before SIGHUP).
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(filepath.Dir(dst), ".tmp-"+filepath.Base(dst))
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}
