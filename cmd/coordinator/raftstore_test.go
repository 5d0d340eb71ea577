package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecurityCorruptRaftDBExitsOne (issue 11, item 9): `rollwave server`
// on a data dir whose raft.db is garbage exits 1 with an error naming the
// file and what to do, instead of a panic.
func TestSecurityCorruptRaftDBExitsOne(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "raft", "raft.db")
	if err := os.MkdirAll(filepath.Dir(db), 0o700); err != nil {
		t.Fatal(err)
	}
	garbage := make([]byte, 32<<10)
	for i := range garbage {
		garbage[i] = byte(i*13 + 5)
	}
	if err := os.WriteFile(db, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, "server", "-node", "c1", "-data-dir", dir,
		"-grpc-addr", "127.0.0.1:0", "-raft-addr", "127.0.0.1:0", "-gossip-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{db, "damaged", "rollwave operator snapshot restore", "rollwave operator raft remove-peer -id c1"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
}
