package gossip

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
)

// Issue 11 item 12: garbage sent to the gossip port gives one ERROR line,
// not one per packet.
func TestSecurityGossipGarbagePacketsLogOnce(t *testing.T) {
	var logs testutil.SyncBuffer
	cfg := testConfig(t, "s1", Meta{Role: RoleServer, NodeID: "s1", GRPCAddr: "127.0.0.1:7420", RaftAddr: "127.0.0.1:7421"})
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()
	conn, err := net.Dial("udp", p.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := 0; i < 500; i++ {
		if _, err := conn.Write([]byte{200, byte(i), 'x', 'y'}); err != nil {
			t.Fatal(err)
		}
	}
	// A packet of another kind, after the flood: once it is logged, the
	// flood (same socket, same handler goroutine) has been processed.
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		_, _ = conn.Write([]byte{0, 0xff, 0xff})
		return strings.Contains(logs.String(), "Failed to decode ping request"), "marker packet not logged yet"
	})
	if n := strings.Count(logs.String(), "not supported"); n != 1 {
		t.Fatalf("%d log lines for 500 garbage packets, want 1:\n%.2000s", n, logs.String())
	}
}

// Later lines of a kind come at most once per interval and say how many
// were suppressed; other kinds have their own budget; the number of kinds
// is bounded.
func TestLogWriterRateLimit(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	w := &logWriter{logger: slog.New(slog.NewTextHandler(&buf, nil)), now: func() time.Time { return now }}
	for i := 0; i < 100; i++ {
		w.Write([]byte("[ERR] memberlist: msg type (" + string(rune('0'+i%10)) + ") not supported from=10.0.0.1:7946\n"))
	}
	w.Write([]byte("[WARN] memberlist: Got invalid checksum for UDP packet: 1, 2\n"))
	if got := strings.Count(buf.String(), "\n"); got != 2 {
		t.Fatalf("%d lines, want 2:\n%s", got, buf.String())
	}
	now = now.Add(logRepeatInterval)
	w.Write([]byte("[ERR] memberlist: msg type (7) not supported from=10.0.0.9:7946\n"))
	if !strings.Contains(buf.String(), "similar_lines_suppressed=99") {
		t.Fatalf("no suppressed count:\n%s", buf.String())
	}
	// Made-up kinds share one budget beyond maxLogKinds.
	buf.Reset()
	for i := 0; i < 1000; i++ {
		w.Write([]byte("[ERR] memberlist: " + strings.Repeat("z", i%200+1) + "\n"))
	}
	if got := strings.Count(buf.String(), "\n"); got > maxLogKinds {
		t.Fatalf("%d lines for made-up kinds, want at most %d", got, maxLogKinds)
	}
}
