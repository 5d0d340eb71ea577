package cli

import (
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/rollwave/rollwave/internal/tlsutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// startTLSServer serves the fake operator API over mutual TLS (server
// certificate from a fresh CA) and returns its address and the CA, cli
// certificate and key files.
func startTLSServer(t *testing.T) (addr, ca, cert, key string) {
	t.Helper()
	dir := t.TempDir()
	gen, err := tlsutil.CreateCA(tlsutil.CAOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	files := map[tlsutil.Role][2]string{}
	for _, r := range []tlsutil.Role{tlsutil.RoleServer, tlsutil.RoleCLI} {
		g, err := tlsutil.CreateCert(tlsutil.CertOptions{CAFile: gen.CertFile, CAKeyFile: gen.KeyFile, Kind: r, Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		files[r] = [2]string{g.CertFile, g.KeyFile}
	}
	cfg := tlsutil.DefaultConfig()
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = gen.CertFile, files[tlsutil.RoleServer][0], files[tlsutil.RoleServer][1]
	tc, err := cfg.ServerTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(tc)))
	rollwavev1.RegisterOperatorServiceServer(srv, fixture())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), gen.CertFile, files[tlsutil.RoleCLI][0], files[tlsutil.RoleCLI][1]
}

// Issue 11 item 12: a plaintext CLI against a TLS coordinator is told that
// the server wants TLS and how to give the CLI its certificates, not
// "Is it running?".
func TestSecurityPlaintextClientOnTLSPortIsToldToUseTLS(t *testing.T) {
	addr, ca, cert, key := startTLSServer(t)
	r := runAt(t, addr, "status").expect(t, ExitUnavailable)
	for _, want := range []string{addr, "TLS", "-ca-file", "-client-cert", "-client-key", EnvCACert, EnvClientCert, EnvClientKey} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not mention %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "Is it running?") {
		t.Errorf("stderr still asks whether the server runs:\n%s", r.stderr)
	}
	// With the certificates it works.
	runAt(t, addr, "-ca-file", ca, "-client-cert", cert, "-client-key", key, "status").expect(t, ExitOK)
}

// The other way round: a TLS CLI against a plaintext server is told so.
func TestTLSClientOnPlaintextPort(t *testing.T) {
	_, ca, cert, key := startTLSServer(t)
	addr := startServer(t, fixture())
	r := runAt(t, addr, "-ca-file", ca, "-client-cert", cert, "-client-key", key, "status").expect(t, ExitUnavailable)
	if !strings.Contains(r.stderr, "does not speak TLS") || strings.Contains(r.stderr, "Is it running?") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
}
