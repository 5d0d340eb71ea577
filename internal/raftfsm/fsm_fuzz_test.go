package raftfsm

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
)

func addGoldenSeeds(f *testing.F, pattern string) {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seeds for %s: %v", pattern, err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// Decode never panics; whatever it decodes re-encodes to an entry that
// decodes to the same type and an equal message.
func FuzzDecodeEntry(f *testing.F) {
	addGoldenSeeds(f, "cmd-*.bin")
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{byte(SubmitRelease | IgnoreUnknownTypeFlag)})
	f.Add([]byte{0xff, 0x0a, 0x01})
	f.Fuzz(func(t *testing.T, entry []byte) {
		typ, msg, err := Decode(entry)
		if err != nil {
			if msg != nil {
				t.Fatalf("Decode returned a message with error %v", err)
			}
			return
		}
		again, err := Encode(typ, msg)
		if err != nil {
			t.Fatalf("Encode(%v) of a decoded message: %v", typ, err)
		}
		typ2, msg2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded %v entry does not decode: %v", typ, err)
		}
		if typ2 != typ || !proto.Equal(msg, msg2) {
			t.Fatalf("round trip changed the entry: %v %v -> %v %v", typ, msg, typ2, msg2)
		}
	})
}

// snapshotBytes serialises s's current contents.
func snapshotBytes(t *testing.T, s *State) []byte {
	t.Helper()
	var buf bytes.Buffer
	v, idx := s.pointInTime()
	if err := writeSnapshot(&buf, v, idx); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Restore of arbitrary bytes never panics; it either fails and keeps the
// state it had, or installs a state that passes CheckInvariants.
func FuzzSnapshotRestore(f *testing.F) {
	addGoldenSeeds(f, "snapshot-v1.bin")
	f.Add([]byte("RWSNAP"))
	f.Add([]byte("RWSNAP\x00\x01\x00\x00\x00\x00\x00\x00\x00\x07\xff"))
	f.Add([]byte("RWSNAP\x00\x01\x00\x00\x00\x00\x00\x00\x00\x07\x01\x02\x0a\x00\xff"))
	golden, err := os.ReadFile(filepath.Join("testdata", "snapshot-v1.bin"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, snap []byte) {
		fsm := New(nil)
		if err := fsm.Restore(io.NopCloser(bytes.NewReader(golden))); err != nil {
			t.Fatalf("restore golden snapshot: %v", err)
		}
		before := snapshotBytes(t, fsm.State())
		if err := fsm.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
			if after := snapshotBytes(t, fsm.State()); !bytes.Equal(before, after) {
				t.Fatalf("failed Restore (%v) changed the state", err)
			}
			return
		}
		if err := CheckInvariants(fsm.State()); err != nil {
			t.Fatalf("restored state breaks invariants: %v", err)
		}
		// A restored state must snapshot and restore again to itself.
		first := snapshotBytes(t, fsm.State())
		again := New(nil)
		if err := again.Restore(io.NopCloser(bytes.NewReader(first))); err != nil {
			t.Fatalf("re-restore of a restored state: %v", err)
		}
		if second := snapshotBytes(t, again.State()); !bytes.Equal(first, second) {
			t.Fatal("snapshot of a restored state is not stable")
		}
	})
}
