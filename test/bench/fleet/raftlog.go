package fleet

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// RaftLog is what one server's raft log holds in an index range.
type RaftLog struct {
	First, Last uint64
	// Entries and Bytes count the entries in (from, Last] still in the log
	// (snapshots may have compacted older ones: Compacted says how many of
	// the range were gone) and the sum of their Data sizes.
	Entries, Compacted uint64
	Bytes              uint64
	// ByType counts entries and bytes per rollwave command type (the first
	// byte of Data).
	ByType map[byte][2]uint64
	// FileBytes is the size of raft.db.
	FileBytes int64
	sizes     map[uint64]uint64
}

// Range counts the entries and bytes with index in (from, to].
func (rl *RaftLog) Range(from, to uint64) (entries, bytes uint64) {
	for i := from + 1; i <= to; i++ {
		if n, ok := rl.sizes[i]; ok {
			entries++
			bytes += n
		}
	}
	return entries, bytes
}

// ReadRaftLog copies a (stopped or killed) server's raft.db and reads the
// entries after index from.
func ReadRaftLog(dataDir string, from uint64) (*RaftLog, error) {
	src := filepath.Join(dataDir, "raft", "raft.db")
	st, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "fleetsim-raftdb")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	dst := filepath.Join(tmp, "raft.db")
	if err := copyFile(src, dst); err != nil {
		return nil, err
	}
	store, err := raftboltdb.NewBoltStore(dst)
	if err != nil {
		return nil, fmt.Errorf("open copy of %s: %w", src, err)
	}
	defer store.Close()
	first, _ := store.FirstIndex()
	last, _ := store.LastIndex()
	rl := &RaftLog{First: first, Last: last, ByType: map[byte][2]uint64{}, FileBytes: st.Size(), sizes: map[uint64]uint64{}}
	for i := from + 1; i <= last; i++ {
		if i < first {
			rl.Compacted++
			continue
		}
		var l raft.Log
		if err := store.GetLog(i, &l); err != nil {
			rl.Compacted++
			continue
		}
		rl.Entries++
		rl.Bytes += uint64(len(l.Data))
		rl.sizes[i] = uint64(len(l.Data))
		if l.Type == raft.LogCommand && len(l.Data) > 0 {
			v := rl.ByType[l.Data[0]]
			rl.ByType[l.Data[0]] = [2]uint64{v[0] + 1, v[1] + uint64(len(l.Data))}
		}
	}
	return rl, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
