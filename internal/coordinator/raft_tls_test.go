package coordinator

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/internal/tlsutil"
)

// tlsStream returns a raft stream on 127.0.0.1 with mutual TLS from a new
// CA, and a client configuration for role from the same CA.
func tlsStream(t *testing.T, role tlsutil.Role) (*raftStream, *tls.Config) {
	t.Helper()
	dir := t.TempDir()
	ca, err := tlsutil.CreateCA(tlsutil.CAOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	reloader := func(r tlsutil.Role) *tlsutil.Reloader {
		g, err := tlsutil.CreateCert(tlsutil.CertOptions{CAFile: ca.CertFile, CAKeyFile: ca.KeyFile, Kind: r, Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		c := tlsutil.DefaultConfig()
		c.CAFile, c.CertFile, c.KeyFile = ca.CertFile, g.CertFile, g.KeyFile
		rl, err := tlsutil.NewReloader(c)
		if err != nil {
			t.Fatal(err)
		}
		return rl
	}
	srv := reloader(tlsutil.RoleServer)
	sc, err := srv.ServerOnlyTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	cc, err := srv.ClientTLSConfig(tlsutil.RoleServer)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newRaftStream("127.0.0.1:0", nil, raftNetHooks{})
	if err != nil {
		t.Fatal(err)
	}
	s.enableTLS(sc, cc, testutil.Logger(t))
	t.Cleanup(func() { s.Close() })
	peer := cc
	if role != tlsutil.RoleServer {
		if peer, err = reloader(role).ClientTLSConfig(role); err != nil {
			t.Fatal(err)
		}
	}
	return s, peer
}

// acceptOne accepts in the background and delivers what Accept returns.
func acceptOne(s *raftStream) <-chan net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := s.Accept()
		if err == nil {
			ch <- c
		}
	}()
	return ch
}

// TestSecurityRaftHandshakeDeadline: a peer that connects to the TLS raft
// port and says nothing holds neither the accept loop (a real server gets
// through meanwhile) nor its connection past the handshake deadline; more
// silent connections from one address than allowed are closed at once.
func TestSecurityRaftHandshakeDeadline(t *testing.T) {
	s, _ := tlsStream(t, tlsutil.RoleServer)
	s.tls.timeout = 300 * time.Millisecond
	addr := s.Addr().String()
	accepted := acceptOne(s)

	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// A server dials while the silent peer waits: it is accepted.
	c, err := s.Dial(raft.ServerAddress(addr), 5*time.Second)
	if err != nil {
		t.Fatalf("server dial: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	select {
	case ac := <-accepted:
		ac.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("a server's connection was not accepted while a silent peer was connected")
	}
	// The silent peer is dropped after the deadline.
	_ = silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Fatal("the silent connection got data")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the silent connection was still open 10s later (handshake deadline 300ms)")
	}

	// The per-address bound: with the slots full, the next connection is
	// closed at once (long before the deadline).
	s, _ = tlsStream(t, tlsutil.RoleServer)
	s.tls.timeout, s.tls.perIP = time.Minute, 2
	addr = s.Addr().String()
	acceptOne(s)
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		s.tls.mu.Lock()
		defer s.tls.mu.Unlock()
		return s.tls.pending["127.0.0.1"] == 2, "waiting for two pending handshakes"
	})
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); err == nil {
		t.Fatal("the extra connection got data")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the connection over the per-address bound was kept")
	}
}

// The early-campaign probe still tells a live TLS raft port from a dead one.
func TestSecurityRaftProbeWorksWithTLS(t *testing.T) {
	s, _ := tlsStream(t, tlsutil.RoleServer)
	acceptOne(s)
	addr := s.Addr().String()
	if err := probeRaftPort(addr, nil); err != nil {
		t.Fatalf("live TLS raft port: %v", err)
	}
	s.Close()
	if err := probeRaftPort(addr, nil); err == nil {
		t.Fatal("closed TLS raft port answered the probe")
	}
}

// An accepted TLS connection still reports its end (failover.go).
func TestSecurityRaftTLSStreamReportsEndedConnections(t *testing.T) {
	s, _ := tlsStream(t, tlsutil.RoleServer)
	accepted := acceptOne(s)
	client, err := s.Dial(raft.ServerAddress(s.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var server net.Conn
	select {
	case server = <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("not accepted")
	}
	defer server.Close()
	go func() { _, _ = server.Read(make([]byte, 1)) }()
	client.Close()
	select {
	case <-s.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the peer's close was not reported")
	}
}

// TestSecurityRaftTLSReload: the raft stream takes its certificates from
// the same Reloader as gRPC, so a SIGHUP rotation applies to new raft
// connections too, in both directions.
func TestSecurityRaftTLSReload(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsutil.CreateCA(tlsutil.CAOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	issue := func(sub string) *tlsutil.Generated {
		g, err := tlsutil.CreateCert(tlsutil.CertOptions{CAFile: ca.CertFile, CAKeyFile: ca.KeyFile, Kind: tlsutil.RoleServer, Dir: filepath.Join(dir, sub)})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	first, second := issue("first"), issue("second")
	c := tlsutil.DefaultConfig()
	c.CAFile, c.CertFile, c.KeyFile = ca.CertFile, first.CertFile, first.KeyFile
	rl, err := tlsutil.NewReloader(c)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := rl.ServerOnlyTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	cc, err := rl.ClientTLSConfig(tlsutil.RoleServer)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newRaftStream("127.0.0.1:0", nil, raftNetHooks{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.enableTLS(sc, cc, testutil.Logger(t))

	// serials dials the stream from itself and returns the serial numbers
	// of the certificates each side presented.
	serials := func() (server, client string) {
		t.Helper()
		accepted := acceptOne(s)
		conn, err := s.Dial(raft.ServerAddress(s.Addr().String()), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var ac net.Conn
		select {
		case ac = <-accepted:
		case <-time.After(10 * time.Second):
			t.Fatal("not accepted")
		}
		defer ac.Close()
		srv := conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.String()
		cli := ac.(*watchedConn).Conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.String()
		return srv, cli
	}
	serialOf := func(path string) string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			t.Fatalf("%s: no PEM", path)
		}
		leaf, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return leaf.SerialNumber.String()
	}
	firstSerial, secondSerial := serialOf(first.CertFile), serialOf(second.CertFile)
	if srv, cli := serials(); srv != firstSerial || cli != firstSerial {
		t.Fatalf("before the reload: server presented %s, client %s; want %s", srv, cli, firstSerial)
	}
	for _, f := range [][2]string{{second.CertFile, first.CertFile}, {second.KeyFile, first.KeyFile}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := rl.Reload(); err != nil {
		t.Fatal(err)
	}
	if srv, cli := serials(); srv != secondSerial || cli != secondSerial {
		t.Fatalf("after the reload: server presented %s, client %s; want %s", srv, cli, secondSerial)
	}
}
