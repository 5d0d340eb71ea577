package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCreateCA(t *testing.T) {
	dir := t.TempDir()
	g, err := CreateCA(CAOptions{Dir: dir, Days: 10})
	if err != nil {
		t.Fatal(err)
	}
	if g.CertFile != filepath.Join(dir, "rollwave-ca.pem") || g.KeyFile != filepath.Join(dir, "rollwave-ca-key.pem") {
		t.Errorf("files %s %s", g.CertFile, g.KeyFile)
	}
	if fi, err := os.Stat(g.KeyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v", fi.Mode(), err)
	}
	certs, err := readCerts(g.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	ca := certs[0]
	if !ca.IsCA || ca.MaxPathLen != 0 || !ca.MaxPathLenZero || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA flags: isCA=%v maxPathLen=%d zero=%v usage=%v", ca.IsCA, ca.MaxPathLen, ca.MaxPathLenZero, ca.KeyUsage)
	}
	if d := ca.NotAfter.Sub(ca.NotBefore); d != 10*24*time.Hour {
		t.Errorf("validity %v", d)
	}
	// Never overwritten.
	if _, err := CreateCA(CAOptions{Dir: dir}); !errors.Is(err, ErrExists) {
		t.Errorf("second CreateCA: %v, want ErrExists", err)
	}
	// Another domain names other files.
	g2, err := CreateCA(CAOptions{Dir: dir, Domain: "corp", NameConstraint: true})
	if err != nil || filepath.Base(g2.CertFile) != "corp-ca.pem" {
		t.Fatalf("domain corp: %v %v", g2, err)
	}
}

func TestCreateCert(t *testing.T) {
	p := newPKI(t)
	cases := []struct {
		kind     Role
		file     string
		dns      []string
		ips      []string
		usage    []x509.ExtKeyUsage
		modifier func(*CertOptions)
	}{
		// A server: its role name, localhost and 127.0.0.1, plus extras.
		{RoleServer, "global-server-rollwave-0.pem", []string{"server.global.rollwave", "localhost", "coord1.example.com"}, []string{"127.0.0.1", "10.0.0.1"},
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			func(o *CertOptions) {
				o.AdditionalDNS = []string{"coord1.example.com"}
				o.AdditionalIPs = []net.IP{net.ParseIP("10.0.0.1")}
			}},
		// A second server certificate gets the next index.
		{RoleServer, "global-server-rollwave-1.pem", []string{"server.global.rollwave", "localhost"}, []string{"127.0.0.1"},
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, nil},
		// An agent in region eu: no localhost.
		{RoleAgent, "eu-agent-rollwave-0.pem", []string{"agent.eu.rollwave"}, nil,
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			func(o *CertOptions) { o.Region = "eu" }},
		// The CLI: client auth only.
		{RoleCLI, "global-cli-rollwave-0.pem", []string{"cli.global.rollwave"}, nil,
			[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil},
	}
	for _, tc := range cases {
		var mods []func(*CertOptions)
		if tc.modifier != nil {
			mods = append(mods, tc.modifier)
		}
		g := p.issue(tc.kind, mods...)
		if filepath.Base(g.CertFile) != tc.file || g.KeyFile != strings.TrimSuffix(g.CertFile, ".pem")+"-key.pem" {
			t.Errorf("%s: files %s %s, want %s", tc.kind, g.CertFile, g.KeyFile, tc.file)
		}
		if fi, err := os.Stat(g.KeyFile); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: key mode %v %v", tc.kind, fi.Mode(), err)
		}
		certs, err := readCerts(g.CertFile)
		if err != nil {
			t.Fatal(err)
		}
		c := certs[0]
		if !slices.Equal(c.DNSNames, tc.dns) {
			t.Errorf("%s: DNS %v, want %v", tc.kind, c.DNSNames, tc.dns)
		}
		var ips []string
		for _, ip := range c.IPAddresses {
			ips = append(ips, ip.String())
		}
		if !slices.Equal(ips, tc.ips) {
			t.Errorf("%s: IPs %v, want %v", tc.kind, ips, tc.ips)
		}
		if !slices.Equal(c.ExtKeyUsage, tc.usage) || c.IsCA {
			t.Errorf("%s: usage %v isCA %v", tc.kind, c.ExtKeyUsage, c.IsCA)
		}
		if id, err := CertIdentity(c); err != nil || id.Role != tc.kind {
			t.Errorf("%s: identity %v %v", tc.kind, id, err)
		}
	}

	// Refusals.
	bad := []struct {
		name string
		opts CertOptions
		want string
	}{
		{"missing CA", CertOptions{CAFile: filepath.Join(p.dir, "nope.pem"), CAKeyFile: p.caKey, Kind: RoleServer, Dir: p.dir}, "no such file"},
		{"role label in extra name", CertOptions{CAFile: p.caCert, CAKeyFile: p.caKey, Kind: RoleAgent, Dir: p.dir, AdditionalDNS: []string{"server.global.rollwave"}}, "role label"},
		{"unknown kind", CertOptions{CAFile: p.caCert, CAKeyFile: p.caKey, Kind: "admin", Dir: p.dir}, "unknown role"},
		{"bad region", CertOptions{CAFile: p.caCert, CAKeyFile: p.caKey, Kind: RoleAgent, Region: "eu.west", Dir: p.dir}, "invalid region"},
		{"leaf as CA", CertOptions{CAFile: filepath.Join(p.dir, "global-cli-rollwave-0.pem"), CAKeyFile: filepath.Join(p.dir, "global-cli-rollwave-0-key.pem"), Kind: RoleServer, Dir: p.dir}, "not a CA"},
		{"key of another CA", CertOptions{CAFile: p.caCert, CAKeyFile: newPKI(t).caKey, Kind: RoleServer, Dir: p.dir}, "does not match"},
	}
	for _, tc := range bad {
		if _, err := CreateCert(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestMutualTLS(t *testing.T) {
	p := newPKI(t)
	srv := p.reloader(p.issue(RoleServer))
	scfg, err := srv.ServerTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	s := startEcho(t, scfg)

	other := newPKI(t)
	expired := p.issue(RoleAgent, func(o *CertOptions) {
		o.NotBefore = time.Now().Add(-72 * time.Hour)
		o.Days = 1
	})
	future := p.issue(RoleAgent, func(o *CertOptions) { o.NotBefore = time.Now().Add(48 * time.Hour) })
	tls12 := p.clientConfig(RoleAgent)
	tls12.MinVersion, tls12.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	noCert := p.clientConfig(RoleAgent)
	noCert.GetClientCertificate = nil

	cases := []struct {
		name string
		cfg  *tls.Config
		ok   bool
		role Role
	}{
		// Each role with its own certificate gets in; the server sees the role.
		{"agent", p.clientConfig(RoleAgent), true, RoleAgent},
		{"cli", p.clientConfig(RoleCLI), true, RoleCLI},
		{"server", p.clientConfig(RoleServer), true, RoleServer},
		// No client certificate at all.
		{"no client certificate", noCert, false, ""},
		// A certificate from another CA.
		{"other CA", p.rawClient(other.issue(RoleAgent)), false, ""},
		// Expired and not yet valid certificates.
		{"expired", p.rawClient(expired), false, ""},
		{"not yet valid", p.rawClient(future), false, ""},
		// TLS 1.2 is refused even with a good certificate.
		{"tls 1.2", tls12, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dial(t, s.addr(), tc.cfg)
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatal("accepted")
			}
		})
	}
	s.mu.Lock()
	roles := slices.Clone(s.roles)
	s.mu.Unlock()
	if want := []Role{RoleAgent, RoleCLI, RoleServer}; !slices.Equal(roles, want) {
		t.Errorf("server saw roles %v, want %v", roles, want)
	}
}

// Clients accept only a server certificate from their CA, for their region.
func TestClientVerifiesServer(t *testing.T) {
	p := newPKI(t)
	other := newPKI(t)
	serve := func(g *Generated, pk *pki) string {
		// A listener presenting g without any checks of its own.
		cert, err := tls.LoadX509KeyPair(g.CertFile, g.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		return startEcho(t, &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}).addr()
	}
	expired := p.issue(RoleServer, func(o *CertOptions) { o.NotBefore = time.Now().Add(-72 * time.Hour); o.Days = 1 })
	cases := []struct {
		name string
		addr string
		ok   bool
	}{
		{"server", serve(p.issue(RoleServer), p), true},
		{"agent posing as server", serve(p.issue(RoleAgent), p), false},
		{"server of another CA", serve(other.issue(RoleServer), other), false},
		{"server of another region", serve(p.issue(RoleServer, func(o *CertOptions) { o.Region = "eu" }), p), false},
		{"expired server", serve(expired, p), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dial(t, tc.addr, p.clientConfig(RoleAgent))
			if tc.ok != (err == nil) {
				t.Fatalf("ok=%v, err=%v", tc.ok, err)
			}
		})
	}
}

func TestConfigRefusesMismatchedMaterial(t *testing.T) {
	p := newPKI(t)
	agent := p.issue(RoleAgent)
	// A CLI configured with an agent certificate.
	if _, err := p.config(agent).ClientTLSConfig(RoleCLI); err == nil || !strings.Contains(err.Error(), "agent certificate") {
		t.Errorf("CLI with agent cert: %v", err)
	}
	// A CLI certificate cannot serve.
	if _, err := p.config(p.issue(RoleCLI)).ServerTLSConfig(); err == nil {
		t.Error("CLI certificate served")
	}
	// Region mismatch between config and certificate.
	c := p.config(agent)
	c.Region = "eu"
	if _, err := NewReloader(c); err == nil || !strings.Contains(err.Error(), `region "eu"`) {
		t.Errorf("region mismatch: %v", err)
	}
	// An expired own certificate is refused with its reason.
	exp := p.issue(RoleAgent, func(o *CertOptions) { o.NotBefore = time.Now().Add(-72 * time.Hour); o.Days = 1 })
	if _, err := NewReloader(p.config(exp)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired: %v", err)
	}
	// Missing fields are all named.
	err := Config{}.Validate()
	for _, f := range []string{"CAFile", "CertFile", "KeyFile", "Region", "Domain"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("Validate does not name %s: %v", f, err)
		}
	}
}

func TestReload(t *testing.T) {
	p := newPKI(t)
	first := p.issue(RoleServer)
	r := p.reloader(first)
	scfg, err := r.ServerTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	s := startEcho(t, scfg)
	client := p.clientConfig(RoleAgent)

	c1, err := dial(t, s.addr(), client)
	if err != nil {
		t.Fatal(err)
	}
	serial1 := c1.c.ConnectionState().PeerCertificates[0].SerialNumber

	// Replace the files in place, as an operator would, and reload.
	second := p.issue(RoleServer)
	copyFile(t, second.CertFile, first.CertFile)
	copyFile(t, second.KeyFile, first.KeyFile)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	c2, err := dial(t, s.addr(), client)
	if err != nil {
		t.Fatal(err)
	}
	serial2 := c2.c.ConnectionState().PeerCertificates[0].SerialNumber
	if serial1.Cmp(serial2) == 0 {
		t.Fatal("new connection still gets the old certificate")
	}
	if r.Certificate().SerialNumber.Cmp(serial2) != 0 {
		t.Error("Certificate() does not report the served certificate")
	}
	// The connection opened before the reload still works.
	if err := c1.ping(); err != nil {
		t.Fatalf("open connection broken by reload: %v", err)
	}

	// A bad file: error, and the current certificate stays.
	if err := os.WriteFile(first.CertFile, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err == nil || !strings.Contains(err.Error(), "still using the previous certificate") {
		t.Fatalf("bad reload: %v", err)
	}
	// A valid file for another role: refused too.
	agent := p.issue(RoleAgent)
	copyFile(t, agent.CertFile, first.CertFile)
	copyFile(t, agent.KeyFile, first.KeyFile)
	if err := r.Reload(); err == nil || !strings.Contains(err.Error(), "agent.global.rollwave") {
		t.Fatalf("role change on reload: %v", err)
	}
	c3, err := dial(t, s.addr(), client)
	if err != nil {
		t.Fatal(err)
	}
	if got := c3.c.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(serial2) != 0 {
		t.Error("failed reload changed the served certificate")
	}
	if err := c1.ping(); err != nil {
		t.Fatalf("open connection broken: %v", err)
	}
}

// Reloading the CA: clients of a new CA are accepted only after Reload.
func TestReloadCA(t *testing.T) {
	p := newPKI(t)
	srvCert := p.issue(RoleServer)
	cfg := p.config(srvCert)
	// Trust a bundle file that starts with the old CA only.
	bundle := filepath.Join(t.TempDir(), "ca-bundle.pem")
	copyFile(t, p.caCert, bundle)
	cfg.CAFile = bundle
	r, err := NewReloader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	scfg, err := r.ServerTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	s := startEcho(t, scfg)
	next := newPKI(t)
	// The client must also trust the old CA to accept this server.
	oldCA, _ := os.ReadFile(p.caCert)
	newCA, _ := os.ReadFile(next.caCert)
	combined := filepath.Join(t.TempDir(), "both.pem")
	if err := os.WriteFile(combined, append(append([]byte{}, newCA...), oldCA...), 0o644); err != nil {
		t.Fatal(err)
	}
	nc := next.config(next.issue(RoleAgent))
	nc.CAFile = combined
	nr, err := NewReloader(nc)
	if err != nil {
		t.Fatal(err)
	}
	newClient, err := nr.ClientTLSConfig(RoleAgent)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(t, s.addr(), newClient); err == nil {
		t.Fatal("client of the new CA accepted before the server trusts it")
	}
	if err := os.WriteFile(bundle, append(append([]byte{}, oldCA...), newCA...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := dial(t, s.addr(), newClient); err != nil {
		t.Fatalf("client of the new CA refused after reload: %v", err)
	}
}

func TestCertIdentity(t *testing.T) {
	cases := []struct {
		dns  []string
		want Identity
		ok   bool
	}{
		{[]string{"server.global.rollwave", "localhost"}, Identity{RoleServer, "global", "rollwave"}, true},
		{[]string{"host1.example.com", "agent.eu.corp.example"}, Identity{RoleAgent, "eu", "corp.example"}, true},
		// Disagreeing role names are no identity.
		{[]string{"agent.global.rollwave", "server.global.rollwave"}, Identity{}, false},
		// Nothing that looks like a role name.
		{[]string{"localhost", "server.local"}, Identity{}, false},
		{nil, Identity{}, false},
	}
	for _, tc := range cases {
		id, err := CertIdentity(&x509.Certificate{DNSNames: tc.dns})
		if tc.ok != (err == nil) || id != tc.want {
			t.Errorf("%v: %v %v, want %v ok=%v", tc.dns, id, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrNoRole) {
			t.Errorf("%v: error %v does not wrap ErrNoRole", tc.dns, err)
		}
	}
	if _, err := PeerRole(tls.ConnectionState{PeerCertificates: []*x509.Certificate{{DNSNames: []string{"server.global.rollwave"}}}}); !errors.Is(err, ErrNoRole) {
		t.Errorf("unverified peer certificate gave a role: %v", err)
	}
}

func TestWriteNewNeverOverwrites(t *testing.T) {
	f := filepath.Join(t.TempDir(), "x")
	if err := writeNew(f, []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeNew(f, []byte("b"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write: %v", err)
	}
	if b, _ := os.ReadFile(f); string(b) != "a" {
		t.Errorf("content %q", b)
	}
}

// TestSecurityRaftServerOnlyTLSConfig: the raft listener's configuration
// lets in only server certificates of the cluster; agent and cli
// certificates from the same CA fail the handshake, and a node holding a
// non-server certificate cannot build it.
func TestSecurityRaftServerOnlyTLSConfig(t *testing.T) {
	p := newPKI(t)
	scfg, err := p.reloader(p.issue(RoleServer)).ServerOnlyTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	s := startEcho(t, scfg)
	other := newPKI(t)
	cases := []struct {
		name string
		cfg  *tls.Config
		ok   bool
	}{
		{"server", p.clientConfig(RoleServer), true},
		{"agent", p.clientConfig(RoleAgent), false},
		{"cli", p.clientConfig(RoleCLI), false},
		{"server of another CA", p.rawClient(other.issue(RoleServer)), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dial(t, s.addr(), tc.cfg)
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if _, err := p.reloader(p.issue(RoleAgent)).ServerOnlyTLSConfig(); err == nil || !strings.Contains(err.Error(), "only a server certificate") {
		t.Fatalf("an agent certificate built a server-only listener config: %v", err)
	}
}
