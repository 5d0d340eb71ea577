package raftfsm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/raft"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"google.golang.org/protobuf/proto"
)

// Snapshot format, version 1:
//
//	header: "RWSNAP" | format version (uint16, big endian) | applied index (uint64, big endian)
//	records: record type (1 byte) | body length (uvarint) | protobuf body
//	end:     recEnd (1 byte), nothing after it
//
// Records come in a fixed order (see records), so equal states write equal
// bytes. A new kind of record gets a new type; a change readers of version 1
// cannot skip bumps the format version, with a COMPAT shim in readSnapshot.
const (
	snapshotMagic   = "RWSNAP"
	snapshotVersion = uint16(1)
	// maxRecordLen bounds one record so a corrupt length cannot make Restore
	// allocate without limit. Far above any real object.
	maxRecordLen = 64 << 20
)

type recordType uint8

const (
	recHost       recordType = 1
	recCell       recordType = 2
	recApp        recordType = 3
	recRelease    recordType = 4
	recAssignment recordType = 5 // history in order: ascending generation per (host, app)
	recEvent      recordType = 6 // ascending seq
	recFreeze     recordType = 7
	// The global freeze flag and reason, as a SetGlobalFreezeCommand body.
	recGlobalFreeze recordType = 8
	// ACL records are written only once ACLs are bootstrapped, so a state
	// without ACLs snapshots to the same bytes as before they existed.
	recACLBootstrap recordType = 9 // an ACLBootstrapCommand body carrying only the time
	recACLToken     recordType = 10
	// Notification cursors, only once a target exists (a state without
	// them snapshots to the same bytes as before they existed).
	recNotifyCursor recordType = 11
	// Release chains, only once one exists (same bytes as before without).
	recChain recordType = 12
	recEnd   recordType = 0xFF
)

// Errors from Restore for snapshots it cannot read.
var (
	ErrSnapshotMagic     = errors.New("not a rollwave snapshot (bad magic)")
	ErrSnapshotVersion   = errors.New("unsupported snapshot format version")
	ErrSnapshotTruncated = errors.New("snapshot truncated")
	ErrSnapshotCorrupt   = errors.New("snapshot corrupt")
)

// pointInTime returns a view of the state and its applied index, taken
// together: O(1), whatever the size of the state.
func (s *State) pointInTime() (*view, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read(), s.appliedIndex.Load()
}

func newRecordMessage(t recordType) (proto.Message, bool) {
	switch t {
	case recHost:
		return &v1.Host{}, true
	case recCell:
		return &v1.Cell{}, true
	case recApp:
		return &v1.App{}, true
	case recRelease:
		return &v1.Release{}, true
	case recAssignment:
		return &v1.Assignment{}, true
	case recEvent:
		return &v1.Event{}, true
	case recFreeze:
		return &v1.FreezeWindow{}, true
	case recGlobalFreeze:
		return &v1.SetGlobalFreezeCommand{}, true
	case recACLBootstrap:
		return &v1.ACLBootstrapCommand{}, true
	case recACLToken:
		return &v1.ACLToken{}, true
	case recNotifyCursor:
		return &v1.NotifyCursor{}, true
	case recChain:
		return &v1.Chain{}, true
	}
	return nil, false
}

// writeSnapshot encodes a point-in-time view at applied index idx to w.
func writeSnapshot(w io.Writer, v *view, idx uint64) error {
	bw := bufio.NewWriter(w)
	hdr := make([]byte, 0, len(snapshotMagic)+2+8)
	hdr = append(hdr, snapshotMagic...)
	hdr = binary.BigEndian.AppendUint16(hdr, snapshotVersion)
	hdr = binary.BigEndian.AppendUint64(hdr, idx)
	if _, err := bw.Write(hdr); err != nil {
		return fmt.Errorf("write header: %w", err)
	}
	var buf, body []byte
	err := v.eachRecord(func(t recordType, m proto.Message) error {
		var err error
		body, err = marshalOpts.MarshalAppend(body[:0], m)
		if err != nil {
			return fmt.Errorf("encode record type %d: %w", t, err)
		}
		buf = append(buf[:0], byte(t))
		buf = binary.AppendUvarint(buf, uint64(len(body)))
		buf = append(buf, body...)
		if _, err := bw.Write(buf); err != nil {
			return fmt.Errorf("write record: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := bw.WriteByte(byte(recEnd)); err != nil {
		return fmt.Errorf("write end record: %w", err)
	}
	return bw.Flush()
}

// readSnapshot decodes a whole snapshot into a fresh state and checks its
// invariants. It never touches live state.
func readSnapshot(r io.Reader) (*plain, error) {
	br := bufio.NewReader(r)
	hdr := make([]byte, len(snapshotMagic)+2+8)
	if n, err := io.ReadFull(br, hdr); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			m := min(n, len(snapshotMagic))
			if string(hdr[:m]) != snapshotMagic[:m] {
				return nil, ErrSnapshotMagic
			}
			return nil, fmt.Errorf("%w: header has %d of %d bytes", ErrSnapshotTruncated, n, len(hdr))
		}
		return nil, fmt.Errorf("read header: %w", err)
	}
	if string(hdr[:len(snapshotMagic)]) != snapshotMagic {
		return nil, ErrSnapshotMagic
	}
	version := binary.BigEndian.Uint16(hdr[len(snapshotMagic):])
	// Shims for older formats go here, each marked "// COMPAT vN -> vM", so
	// they can be found and dropped once no server can hold such a snapshot.
	if version != snapshotVersion {
		return nil, fmt.Errorf("%w: %d (this server reads version %d; upgrade it)", ErrSnapshotVersion, version, snapshotVersion)
	}
	s := newPlain()
	s.appliedIndex = binary.BigEndian.Uint64(hdr[len(snapshotMagic)+2:])
	for n := 0; ; n++ {
		tb, err := br.ReadByte()
		if err != nil {
			return nil, truncated(err, "before end record (after %d records)", n)
		}
		t := recordType(tb)
		if t == recEnd {
			break
		}
		size, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, truncated(err, "record %d length", n)
		}
		if size > maxRecordLen {
			return nil, fmt.Errorf("%w: record %d claims %d bytes", ErrSnapshotCorrupt, n, size)
		}
		body := make([]byte, size)
		if _, err := io.ReadFull(br, body); err != nil {
			return nil, truncated(err, "record %d body", n)
		}
		msg, ok := newRecordMessage(t)
		if !ok {
			return nil, fmt.Errorf("%w: record %d has unknown type %d", ErrSnapshotCorrupt, n, t)
		}
		if err := proto.Unmarshal(body, msg); err != nil {
			return nil, fmt.Errorf("%w: record %d (type %d): %w", ErrSnapshotCorrupt, n, t, err)
		}
		s.addRecord(t, msg)
	}
	if err := checkInvariants(s); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSnapshotCorrupt, err)
	}
	return s, nil
}

func truncated(err error, format string, args ...any) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s", ErrSnapshotTruncated, fmt.Sprintf(format, args...))
	}
	return fmt.Errorf("read %s: %w", fmt.Sprintf(format, args...), err)
}

// replaceWith loads a restored state into a fresh memdb and swaps it in,
// keeping s (and its Changed channel chain) so pointers held by callers
// stay valid. Watches on the old memdb fire through the restored channel.
func (s *State) replaceWith(fresh *plain) {
	db := fresh.load()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.db.Store(db)
	s.appliedIndex.Store(fresh.appliedIndex)
	close(s.restored)
	s.restored = make(chan struct{})
	s.notifyLocked()
}

// fsmSnapshot holds a point-in-time view of the state; Persist may run
// while Apply continues.
type fsmSnapshot struct {
	data  *view
	index uint64
}

// Persist implements raft.FSMSnapshot.
func (f *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := writeSnapshot(sink, f.data, f.index); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("raftfsm: persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (f *fsmSnapshot) Release() { f.data = nil }
