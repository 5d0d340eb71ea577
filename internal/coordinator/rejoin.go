package coordinator

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/rollwave/rollwave/internal/backoff"
	"github.com/rollwave/rollwave/internal/gossip"
)

// A server that restarts with nobody but itself in its join list (or
// whose seeds are all gone) would stay alone in gossip for good:
// memberlist never calls on members it has declared dead, and the others
// declared it dead while it was down. Raft does not mind — it has the
// peers' raft addresses in its configuration — but agents and the other
// servers find the leader's gRPC address through gossip, and a leader
// missing from gossip was advertised as "" (agents redirected to nowhere
// for as long as it led).
//
// So every server remembers the servers it has seen in gossip — node id,
// gossip, gRPC and raft addresses — in <data_dir>/gossip/servers.json
// (Consul keeps a serf snapshot for the same reason), and rejoinLoop
// checks, every ReconcileInterval, whether a server of the raft
// configuration is missing from gossip; if so it joins the gossip
// addresses last known for the missing ones (all known servers when it
// sees no other server at all), with capped exponential backoff and
// jitter while that fails. The remembered gRPC addresses also stand in
// for the leader's address while the leader is not (yet) in gossip.

const (
	knownServersFile = "servers.json"
	// knownServersMaxBytes bounds what is read back from the file.
	knownServersMaxBytes = 1 << 20
	// rejoinJoinTimeout bounds one rejoin attempt.
	rejoinJoinTimeout = 5 * time.Second
	// rejoinBackoffMin and rejoinBackoffMax bound the wait between
	// failed attempts.
	rejoinBackoffMin = 500 * time.Millisecond
	rejoinBackoffMax = 30 * time.Second
	// rejoinFirstCheck bounds the wait before the first check.
	rejoinFirstCheck = 2 * time.Second
)

// knownServer is a server as last seen in gossip.
type knownServer struct {
	ID     string `json:"id"`
	Gossip string `json:"gossip_addr"`
	GRPC   string `json:"grpc_addr"`
	Raft   string `json:"raft_addr"`
}

type knownServersFileV1 struct {
	Version int           `json:"version"`
	Servers []knownServer `json:"servers"`
}

// knownServers is the remembered set; path is empty in dev mode (memory
// only).
type knownServers struct {
	mu   sync.Mutex
	path string
	byID map[string]knownServer
}

// loadKnownServers reads the file in dataDir/gossip, if any. A missing or
// unreadable file is an empty set (the file is a hint, never needed to
// start).
func loadKnownServers(dataDir string, log interface{ Warn(string, ...any) }) *knownServers {
	k := &knownServers{byID: map[string]knownServer{}}
	if dataDir == "" {
		return k
	}
	k.path = filepath.Join(dataDir, "gossip", knownServersFile)
	f, err := os.Open(k.path)
	if err != nil {
		if !os.IsNotExist(err) {
			log.Warn("cannot read the servers last seen in gossip; starting without them", "file", k.path, "error", err)
		}
		return k
	}
	defer f.Close()
	var v knownServersFileV1
	if err := json.NewDecoder(io.LimitReader(f, knownServersMaxBytes)).Decode(&v); err != nil || v.Version != 1 {
		log.Warn("ignoring the file of servers last seen in gossip", "file", k.path, "error", err, "version", v.Version)
		return k
	}
	for _, s := range v.Servers {
		if s.ID != "" && s.Gossip != "" {
			k.byID[s.ID] = s
		}
	}
	return k
}

func (k *knownServers) get(id string) (knownServer, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s, ok := k.byID[id]
	return s, ok
}

func (k *knownServers) list() []knownServer {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]knownServer, 0, len(k.byID))
	for _, s := range k.byID {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// update replaces the set with alive plus the remembered servers still in
// keep (the raft configuration), and writes the file when it changed.
func (k *knownServers) update(alive []knownServer, keep map[string]bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	next := map[string]knownServer{}
	for id, s := range k.byID {
		if keep[id] {
			next[id] = s
		}
	}
	for _, s := range alive {
		next[s.ID] = s
	}
	if mapsEqual(next, k.byID) {
		return nil
	}
	k.byID = next
	if k.path == "" {
		return nil
	}
	v := knownServersFileV1{Version: 1}
	for _, s := range next {
		v.Servers = append(v.Servers, s)
	}
	sort.Slice(v.Servers, func(i, j int) bool { return v.Servers[i].ID < v.Servers[j].ID })
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(k.path, b)
}

func mapsEqual(a, b map[string]knownServer) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// writeFileAtomic writes path through a synced temporary file and a
// rename, so a crash leaves the old or the new content.
func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// raftPeerIDs returns the ids in the raft configuration, nil on error.
func (s *Server) raftPeerIDs() map[string]bool {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	ids := map[string]bool{}
	for _, srv := range f.Configuration().Servers {
		ids[string(srv.ID)] = true
	}
	return ids
}

// refreshKnownServers records the servers alive in gossip now.
func (s *Server) refreshKnownServers(peers map[string]bool) {
	var alive []knownServer
	for _, m := range s.pool.Servers() {
		if m.Meta.NodeID == "" || m.Addr == "" {
			continue
		}
		alive = append(alive, knownServer{ID: m.Meta.NodeID, Gossip: m.Addr, GRPC: m.Meta.GRPCAddr, Raft: m.Meta.RaftAddr})
	}
	if err := s.known.update(alive, peers); err != nil {
		s.log.Warn("cannot save the servers seen in gossip", "file", s.known.path, "error", err)
	}
}

// rejoinTargets returns the raft peers missing from gossip and the gossip
// addresses to join to find them.
func (s *Server) rejoinTargets(peers map[string]bool) (missing, addrs []string) {
	inGossip := map[string]bool{}
	others := 0
	for _, m := range s.pool.Servers() {
		inGossip[m.Meta.NodeID] = true
		if m.Meta.NodeID != s.cfg.NodeID {
			others++
		}
	}
	// A server that left on purpose is being removed from raft: leave it be.
	left := map[string]bool{}
	for _, m := range s.pool.Members() {
		if m.Status == gossip.StatusLeft {
			left[m.Meta.NodeID] = true
		}
	}
	for id := range peers {
		if id != s.cfg.NodeID && !inGossip[id] && !left[id] {
			missing = append(missing, id)
		}
	}
	sort.Strings(missing)
	self := s.pool.LocalAddr()
	add := func(k knownServer) {
		if k.ID != s.cfg.NodeID && k.Gossip != self && !slices.Contains(addrs, k.Gossip) {
			addrs = append(addrs, k.Gossip)
		}
	}
	for _, id := range missing {
		if k, ok := s.known.get(id); ok {
			add(k)
		}
	}
	if others == 0 {
		// Alone in gossip: any server known may bring this one back in.
		for _, k := range s.known.list() {
			add(k)
		}
		if len(missing) == 0 && len(addrs) > 0 {
			missing = []string{"(any server)"}
		}
	}
	return missing, addrs
}

// rejoinLoop runs on every server: see the comment at the top.
func (s *Server) rejoinLoop() {
	defer s.wg.Done()
	interval := s.cfg.ReconcileInterval
	jitter := func(d time.Duration) time.Duration { return d + rand.N(d/4+1) }
	b := backoff.New(rejoinBackoffMin, rejoinBackoffMax)
	wait := jitter(min(interval, rejoinFirstCheck))
	failing := false
	for {
		select {
		case <-s.shutdownCh:
			return
		case <-time.After(wait):
		}
		wait = jitter(interval)
		peers := s.raftPeerIDs()
		s.refreshKnownServers(peers)
		missing, addrs := s.rejoinTargets(peers)
		if len(missing) == 0 || len(addrs) == 0 {
			b.Reset()
			failing = false
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), rejoinJoinTimeout)
		go func() {
			select {
			case <-s.shutdownCh:
				cancel()
			case <-ctx.Done():
			}
		}()
		n, err := s.pool.Join(ctx, addrs)
		cancel()
		if err != nil {
			if !failing {
				s.log.Warn("servers of the raft configuration are missing from gossip and the addresses they last had do not answer; retrying with backoff",
					"missing", missing, "addresses", addrs, "error", err)
			} else {
				s.log.Debug("rejoin attempt failed", "missing", missing, "addresses", addrs, "error", err)
			}
			failing = true
			wait = b.Next()
			continue
		}
		s.log.Info("rejoined gossip through the servers last known", "missing", missing, "addresses", addrs, "contacted", n)
		failing = false
		b.Reset()
		s.refreshKnownServers(s.raftPeerIDs())
	}
}

// leaderAddrForClients is LeaderGRPCAddr for what this server tells
// clients and agents: when the leader is not in gossip (yet), the gRPC
// address it last had there stands in. ok is false when no address is
// known: callers must then say so, never hand out an empty address.
func (s *Server) leaderAddrForClients() (id, addr string, ok bool) {
	id, addr, ok = s.LeaderGRPCAddr()
	if ok || id == "" {
		return id, addr, ok
	}
	if k, found := s.known.get(id); found && k.GRPC != "" {
		return id, k.GRPC, true
	}
	return id, "", false
}
