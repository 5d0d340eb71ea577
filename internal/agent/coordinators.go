package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/rollwave/rollwave/internal/fsutil"
	"github.com/rollwave/rollwave/internal/gossip"
)

const (
	// coordinatorsFile, in the data dir, holds the coordinators this agent
	// last knew, so that an agent that starts while every coordinator is
	// down (or that lost them all from gossip) still knows where to look.
	coordinatorsFile = "coordinators.json"
	// maxKnownCoordinators bounds the file: a cluster has 3 or 5 servers;
	// the rest is room for servers replaced over time. The least recently
	// seen entry goes first.
	maxKnownCoordinators = 16
	// maxCoordinatorsFileSize bounds what is read back at start.
	maxCoordinatorsFileSize = 64 << 10
)

// finder is the session loop's background gossip re-join: at most one at
// a time, all waited for when the loop ends.
type finder struct {
	joining   atomic.Bool
	joins     sync.WaitGroup
	searching atomic.Bool
}

// Searching reports whether the agent is looking for the coordinators:
// it has no session and gossip lists none alive, so it re-joins and dials
// the last known ones.
func (a *Agent) Searching() bool { return a.find.searching.Load() && !a.Connected() }

// knownCoordinator is one coordinator as gossip advertised it.
type knownCoordinator struct {
	NodeID     string `json:"node_id"`
	GossipAddr string `json:"gossip_addr"`
	GRPCAddr   string `json:"grpc_addr,omitempty"`
}

type coordinatorsRecord struct {
	Version      int                `json:"version"`
	Coordinators []knownCoordinator `json:"coordinators"`
}

// coordinatorBook remembers the coordinators the agent has seen alive in
// gossip, most recently seen first, and persists them (atomically, only
// when an address changes) in the data dir. Safe for concurrent use.
type coordinatorBook struct {
	path string
	log  *slog.Logger

	mu    sync.Mutex
	list  []knownCoordinator
	dirty bool // the file is behind list (a write failed)
	next  int  // rotation over gRPC addresses for direct dials
}

// loadCoordinatorBook reads the data dir's record. A missing file is an
// empty book; a damaged one is logged and ignored (the join addresses
// still work), never a reason not to start.
func loadCoordinatorBook(dataDir string, log *slog.Logger) *coordinatorBook {
	b := &coordinatorBook{path: filepath.Join(dataDir, coordinatorsFile), log: log}
	list, err := readCoordinators(b.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		log.Warn("ignoring the record of known coordinators", "path", b.path, "error", err)
	default:
		b.list = list
	}
	return b
}

func readCoordinators(path string) ([]knownCoordinator, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCoordinatorsFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxCoordinatorsFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxCoordinatorsFileSize)
	}
	var rec coordinatorsRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	if rec.Version != 1 {
		return nil, fmt.Errorf("%s: unknown version %d", path, rec.Version)
	}
	var out []knownCoordinator
	for _, c := range rec.Coordinators {
		if c.GossipAddr == "" && c.GRPCAddr == "" {
			continue
		}
		out = append(out, c)
		if len(out) == maxKnownCoordinators {
			break
		}
	}
	return out, nil
}

// empty reports whether the agent never knew a coordinator.
func (b *coordinatorBook) empty() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.list) == 0
}

// observe records the alive servers gossip lists now, and writes the file
// when an address was added or changed. It does file I/O: call it from
// the agent's own goroutines, never from a gossip delegate.
func (b *coordinatorBook) observe(servers []gossip.Member) {
	b.mu.Lock()
	defer b.mu.Unlock()
	changed := false
	for i := len(servers) - 1; i >= 0; i-- { // the first listed ends up first
		s := servers[i]
		if s.Status != gossip.StatusAlive || s.Meta.Role != gossip.RoleServer || s.Addr == "" {
			continue
		}
		id := s.Meta.NodeID
		if id == "" {
			id = s.Name
		}
		kc := knownCoordinator{NodeID: id, GossipAddr: s.Addr, GRPCAddr: s.Meta.GRPCAddr}
		at := slices.IndexFunc(b.list, func(c knownCoordinator) bool { return c.NodeID == id })
		if at >= 0 {
			if b.list[at] != kc {
				changed = true
			}
			b.list = slices.Delete(b.list, at, at+1)
		} else {
			changed = true
		}
		b.list = slices.Insert(b.list, 0, kc)
	}
	if len(b.list) > maxKnownCoordinators {
		b.list = b.list[:maxKnownCoordinators]
	}
	if !changed && !b.dirty {
		return
	}
	data, err := json.MarshalIndent(coordinatorsRecord{Version: 1, Coordinators: b.list}, "", "  ")
	if err == nil {
		err = fsutil.WriteFileAtomic(b.path, append(data, '\n'), 0o600)
	}
	if err != nil {
		b.dirty = true
		b.log.Warn("could not record the known coordinators; will retry", "path", b.path, "error", err)
		return
	}
	b.dirty = false
	b.log.Debug("recorded known coordinators", "count", len(b.list))
}

// gossipAddrs returns the gossip addresses of the known coordinators.
func (b *coordinatorBook) gossipAddrs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, c := range b.list {
		if c.GossipAddr != "" {
			out = append(out, c.GossipAddr)
		}
	}
	return out
}

// nextGRPCAddr returns the known coordinators' gRPC addresses one after the
// other, round robin; "" when none is known.
func (b *coordinatorBook) nextGRPCAddr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var addrs []string
	for _, c := range b.list {
		if c.GRPCAddr != "" {
			addrs = append(addrs, c.GRPCAddr)
		}
	}
	if len(addrs) == 0 {
		return ""
	}
	b.next = (b.next + 1) % len(addrs)
	return addrs[b.next]
}
