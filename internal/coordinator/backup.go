package coordinator

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/raft"

	"github.com/rollwave/rollwave/internal/raftfsm"
)

// A backup file (`rollwave operator snapshot save`) is:
//
//	"RWBACKUP" | uint16 format version | uint64 applied index |
//	uint64 payload length | payload (raftfsm snapshot) | sha256 of all before
//
// The checksum lets restore refuse a truncated or altered file before it
// touches the cluster.
const (
	backupMagic   = "RWBACKUP"
	backupVersion = 1
	// maxBackupSize bounds what a restore will buffer.
	maxBackupSize = 1 << 30
)

var errBadBackup = errors.New("not a valid rollwave snapshot file")

// memSink is a raft.SnapshotSink over a buffer, so the FSM's own Persist
// writes the payload.
type memSink struct{ bytes.Buffer }

func (m *memSink) ID() string    { return "backup" }
func (m *memSink) Cancel() error { return nil }
func (m *memSink) Close() error  { return nil }

var _ raft.SnapshotSink = (*memSink)(nil)

// encodeBackup snapshots the FSM into a backup file image.
func encodeBackup(fsm *raftfsm.FSM) ([]byte, error) {
	index := fsm.State().AppliedIndex()
	snap, err := fsm.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("snapshot state: %w", err)
	}
	defer snap.Release()
	var payload memSink
	if err := snap.Persist(&payload); err != nil {
		return nil, fmt.Errorf("persist state: %w", err)
	}
	var out bytes.Buffer
	out.WriteString(backupMagic)
	_ = binary.Write(&out, binary.BigEndian, uint16(backupVersion))
	_ = binary.Write(&out, binary.BigEndian, index)
	_ = binary.Write(&out, binary.BigEndian, uint64(payload.Len()))
	out.Write(payload.Bytes())
	sum := sha256.Sum256(out.Bytes())
	out.Write(sum[:])
	return out.Bytes(), nil
}

// decodeBackup checks a backup image and returns its index and payload.
func decodeBackup(b []byte) (index uint64, payload []byte, err error) {
	const header = len(backupMagic) + 2 + 8 + 8
	if len(b) < header+sha256.Size {
		return 0, nil, fmt.Errorf("%w: %d bytes is too short", errBadBackup, len(b))
	}
	if string(b[:len(backupMagic)]) != backupMagic {
		return 0, nil, fmt.Errorf("%w: wrong magic", errBadBackup)
	}
	if v := binary.BigEndian.Uint16(b[8:10]); v != backupVersion {
		return 0, nil, fmt.Errorf("%w: format version %d, this server reads version %d", errBadBackup, v, backupVersion)
	}
	index = binary.BigEndian.Uint64(b[10:18])
	n := binary.BigEndian.Uint64(b[18:26])
	if uint64(len(b)) != uint64(header)+n+sha256.Size {
		return 0, nil, fmt.Errorf("%w: payload length %d does not match file size %d (truncated?)", errBadBackup, n, len(b))
	}
	body := b[:len(b)-sha256.Size]
	want := b[len(b)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], want) {
		return 0, nil, fmt.Errorf("%w: checksum mismatch", errBadBackup)
	}
	return index, b[header : len(b)-sha256.Size], nil
}

// restoreBackup validates a backup against a scratch FSM (a bad payload
// must never reach raft, which panics on a failed restore) and then has
// raft install it on the whole cluster. Leader only.
func (s *Server) restoreBackup(b []byte) (uint64, error) {
	index, payload, err := decodeBackup(b)
	if err != nil {
		return 0, err
	}
	scratch := raftfsm.New(s.log)
	if err := scratch.Restore(io.NopCloser(bytes.NewReader(payload))); err != nil {
		return 0, fmt.Errorf("%w: %v", errBadBackup, err)
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: index, Size: int64(len(payload))}
	if err := s.raft.Restore(meta, bytes.NewReader(payload), s.cfg.ApplyTimeout*3); err != nil {
		return 0, fmt.Errorf("raft restore: %w", err)
	}
	return s.raft.AppliedIndex(), nil
}
