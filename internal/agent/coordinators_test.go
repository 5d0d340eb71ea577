package agent

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rollwave/rollwave/internal/gossip"
)

func server(id, gossipAddr, grpcAddr string, st gossip.Status) gossip.Member {
	return gossip.Member{Name: id, Addr: gossipAddr, Status: st,
		Meta: gossip.Meta{Role: gossip.RoleServer, NodeID: id, GRPCAddr: grpcAddr}}
}

// The book persists the coordinators seen alive, survives a restart (a
// new book on the same dir reads them back), rewrites the file only when
// an address changes, keeps a coordinator it no longer sees alive, and
// stays bounded.
func TestCoordinatorBookPersistsWhatGossipShowed(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	path := filepath.Join(dir, coordinatorsFile)

	b := loadCoordinatorBook(dir, log)
	if !b.empty() {
		t.Fatal("a fresh data dir gave a non-empty book")
	}
	b.observe([]gossip.Member{
		server("c1", "127.0.0.1:7001", "127.0.0.1:9001", gossip.StatusAlive),
		server("c2", "127.0.0.1:7002", "127.0.0.1:9002", gossip.StatusAlive),
		server("c3", "127.0.0.1:7003", "", gossip.StatusDead), // not alive: not recorded
		{Name: "h1", Addr: "127.0.0.1:7100", Status: gossip.StatusAlive, Meta: gossip.Meta{Role: gossip.RoleAgent}},
	})
	st1, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no record written: %v", err)
	}

	// Read back at start.
	b = loadCoordinatorBook(dir, log)
	if got, want := b.gossipAddrs(), []string{"127.0.0.1:7001", "127.0.0.1:7002"}; !slices.Equal(got, want) {
		t.Fatalf("gossip addresses after a restart %v, want %v", got, want)
	}
	seen := map[string]bool{}
	for range 4 {
		seen[b.nextGRPCAddr()] = true
	}
	if len(seen) != 2 || !seen["127.0.0.1:9001"] || !seen["127.0.0.1:9002"] {
		t.Fatalf("direct dials rotate over %v, want both gRPC addresses", seen)
	}

	// Nothing changed: no write (same inode, same modification time).
	b.observe([]gossip.Member{server("c2", "127.0.0.1:7002", "127.0.0.1:9002", gossip.StatusAlive)})
	if st2, _ := os.Stat(path); !os.SameFile(st1, st2) || !st2.ModTime().Equal(st1.ModTime()) {
		t.Fatal("the record was rewritten although no address changed")
	}
	// A coordinator that moved is updated, c1 (not seen now) is kept.
	b.observe([]gossip.Member{server("c2", "127.0.0.1:7012", "127.0.0.1:9012", gossip.StatusAlive)})
	b = loadCoordinatorBook(dir, log)
	if got, want := b.gossipAddrs(), []string{"127.0.0.1:7012", "127.0.0.1:7001"}; !slices.Equal(got, want) {
		t.Fatalf("after c2 moved: %v, want %v", got, want)
	}

	// Bounded: the least recently seen go first.
	var many []gossip.Member
	for i := range 2 * maxKnownCoordinators {
		many = append(many, server(fmt.Sprintf("s%02d", i), fmt.Sprintf("127.0.0.1:%d", 8000+i), "", gossip.StatusAlive))
	}
	b.observe(many)
	if n := len(loadCoordinatorBook(dir, log).gossipAddrs()); n != maxKnownCoordinators {
		t.Fatalf("%d coordinators recorded, want the bound %d", n, maxKnownCoordinators)
	}
}

// A damaged record is ignored (logged), never a reason not to start.
func TestCoordinatorBookIgnoresDamagedRecord(t *testing.T) {
	for name, content := range map[string]string{
		"not json":        "{",
		"unknown version": `{"version": 7, "coordinators": [{"node_id": "c1", "gossip_addr": "127.0.0.1:1"}]}`,
		"too large":       string(make([]byte, maxCoordinatorsFileSize+1)),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, coordinatorsFile), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			b := loadCoordinatorBook(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if !b.empty() {
				t.Fatalf("damaged record read as %v", b.gossipAddrs())
			}
		})
	}
}
