package coordinator

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// ErrRaftStoreDamaged is returned (wrapped) by New when the raft store in
// the data dir cannot be read: raft.db is truncated or garbled, log
// entries are missing, or the snapshots cannot be restored.
var ErrRaftStoreDamaged = errors.New("the raft store is damaged")

// raftStoreLockTimeout bounds the wait for raft.db's file lock: another
// process using the same data dir must not hang the start.
const raftStoreLockTimeout = 5 * time.Second

// openRaftStore opens raft.db and the snapshots in raftDir and starts
// raft on them. bbolt and raft panic on some damage (bbolt "invalid
// freelist page" while opening, raft "log not found" while replaying the
// configuration entries); both happen in this goroutine, so they are
// recovered here — memory faults on the mapped file included — and
// returned as an ErrRaftStoreDamaged error that names the file and says
// what to do, instead of taking the process down.
func (s *Server) openRaftStore(rc *raft.Config, raftDir string, trans raft.Transport) (err error) {
	dbPath := filepath.Join(raftDir, "raft.db")
	defer func() {
		if r := recover(); r != nil {
			err = s.damagedStoreError(dbPath, fmt.Errorf("panic: %v", r))
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))

	opts := *bbolt.DefaultOptions
	opts.Timeout = raftStoreLockTimeout
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: dbPath, BoltOptions: &opts})
	if errors.Is(err, bbolt.ErrTimeout) {
		return fmt.Errorf("open raft store %s: it is locked by another process (is another rollwave server using data dir %s?)", dbPath, s.cfg.DataDir)
	}
	if err != nil {
		return s.damagedStoreError(dbPath, err)
	}
	s.boltStore = bolt
	if err := checkLogStore(bolt); err != nil {
		return s.damagedStoreError(dbPath, err)
	}
	// A small cache in front of bolt keeps recent entries in memory for
	// replication to followers.
	cached, err := raft.NewLogCache(512, bolt)
	if err != nil {
		return err
	}
	fss, err := raft.NewFileSnapshotStoreWithLogger(raftDir, 2, rc.Logger.Named("snapshots"))
	if err != nil {
		return fmt.Errorf("open snapshot store in %s: %w", raftDir, err)
	}
	r, err := raft.NewRaft(rc, timedFSM{s.fsm, s.metrics}, cached, bolt, fss, trans)
	if err != nil {
		// The configuration was validated: what fails here is reading the
		// stores (the term, the last entry, a snapshot).
		return s.damagedStoreError(dbPath, fmt.Errorf("start raft: %w", err))
	}
	s.raft = r
	return nil
}

// checkLogStore reads the first and last log entries, which raft needs
// to start; a damaged store usually fails here already.
func checkLogStore(logs raft.LogStore) error {
	first, err := logs.FirstIndex()
	if err != nil {
		return fmt.Errorf("read the first log index: %w", err)
	}
	last, err := logs.LastIndex()
	if err != nil {
		return fmt.Errorf("read the last log index: %w", err)
	}
	if last == 0 {
		return nil
	}
	if first > last {
		return fmt.Errorf("first log index %d is after the last, %d", first, last)
	}
	for _, i := range []uint64{first, last} {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			return fmt.Errorf("read log entry %d (log holds %d to %d): %w", i, first, last, err)
		}
		if l.Index != i {
			return fmt.Errorf("log entry %d says it is entry %d", i, l.Index)
		}
	}
	return nil
}

// damagedStoreError says which file is damaged, how, and the two ways
// back.
func (s *Server) damagedStoreError(dbPath string, cause error) error {
	return fmt.Errorf("%w: %s cannot be read (%v). This server cannot start from it; its data dir %s has to be replaced. "+
		"If the other servers are healthy: remove this one from the cluster (rollwave operator raft remove-peer -id %s, against a healthy server), "+
		"move %s aside and start this server with an empty data dir: it rejoins and catches up. "+
		"If no healthy server is left: start a new cluster with empty data dirs and load the latest backup into it with "+
		"rollwave operator snapshot restore FILE",
		ErrRaftStoreDamaged, dbPath, cause, s.cfg.DataDir, s.cfg.NodeID, s.cfg.DataDir)
}
