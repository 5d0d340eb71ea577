package coordinator_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/rollwave/rollwave/internal/coordinator"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// stoppedServerDB runs a one-server cluster, writes a few entries, stops
// it and returns its config (the data dir kept) and its raft.db path.
func stoppedServerDB(t *testing.T) (coordinator.Config, string) {
	t.Helper()
	c := coordtest.NewCluster(t, 1)
	l := c.Leader(30 * time.Second)
	for i := 0; i < 5; i++ {
		if _, err := c.Client(l).SetCell(ctx(t), &rollwavev1.SetCellRequest{Cell: &rollwavev1.Cell{Name: fmt.Sprintf("cell-%d", i), Criticality: "low"}}); err != nil {
			t.Fatal(err)
		}
	}
	c.Kill(0)
	cfg := c.Configs[0]
	return cfg, filepath.Join(cfg.DataDir, "raft", "raft.db")
}

// breakFreelist marks the freelist pages both bbolt meta pages point at as
// branch pages: bbolt's Open panics with "invalid freelist page".
func breakFreelist(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Page header: id u64, flags u16, count u16, overflow u32 (16 bytes);
	// the meta follows: magic, version, page size, flags (u32 each), root
	// bucket (16 bytes), freelist page id (u64) at 48.
	pageSize := int(binary.LittleEndian.Uint32(b[16+8:]))
	for _, meta := range []int{0, pageSize} {
		fl := int(binary.LittleEndian.Uint64(b[meta+48:]))
		binary.LittleEndian.PutUint16(b[fl*pageSize+8:], 0x01) // branch page
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// dropMiddleLogs deletes every log entry but the first and the last:
// raft panics with "log not found" replaying the configuration.
func dropMiddleLogs(t *testing.T, path string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		logs := tx.Bucket([]byte("logs"))
		if logs == nil {
			return errors.New("no logs bucket")
		}
		var keys [][]byte
		if err := logs.ForEach(func(k, _ []byte) error { keys = append(keys, append([]byte(nil), k...)); return nil }); err != nil {
			return err
		}
		if len(keys) < 3 {
			return fmt.Errorf("only %d log entries", len(keys))
		}
		for _, k := range keys[1 : len(keys)-1] {
			if err := logs.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSecurityCorruptRaftDB (issue 11, item 9): a damaged raft.db makes
// New return an error that names the file and says what to do — never a
// panic (bbolt's "invalid freelist page", raft's "log not found"), which
// would end the test binary here.
func TestSecurityCorruptRaftDB(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		// Cut short, as by a full disk or a partial copy.
		{"truncated", func(t *testing.T, path string) {
			if err := os.Truncate(path, 1000); err != nil {
				t.Fatal(err)
			}
		}},
		// Overwritten with garbage.
		{"garbled", func(t *testing.T, path string) {
			b := make([]byte, 64<<10)
			for i := range b {
				b[i] = byte(i*7 + 3)
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		// bbolt panics opening it.
		{"invalid freelist page", breakFreelist},
		// raft panics replaying it.
		{"log entries missing", dropMiddleLogs},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, path := stoppedServerDB(t)
			tc.damage(t, path)
			s, err := coordinator.New(cfg)
			if err == nil {
				s.Shutdown()
				t.Fatal("New started on a damaged raft.db")
			}
			t.Logf("New: %v", err)
			if !errors.Is(err, coordinator.ErrRaftStoreDamaged) {
				t.Errorf("error is not ErrRaftStoreDamaged: %v", err)
			}
			for _, want := range []string{path, "rollwave operator snapshot restore", "rollwave operator raft remove-peer -id " + cfg.NodeID, "empty data dir"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q: %v", want, err)
				}
			}
		})
	}
}
