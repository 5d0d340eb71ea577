package raftfsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/rollwave/rollwave/internal/testutil"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// memSink is an in-memory raft.SnapshotSink.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

// richState builds a state that touches every record type.
func richState(t testing.TB) *FSM {
	t.Helper()
	f := New(testutil.Logger(t))
	mustApply(t, f, with(base(), one(
		cmd{UpsertHosts, &v1.UpsertHostsCommand{TimeUnixNano: t0, Hosts: []*v1.Host{{Id: "h3", Cell: "us-1", Labels: map[string]string{"rack": "r1", "gpu": "no"},
			Apps: []*v1.SlotFacts{{App: "api", Active: v1.Slot_SLOT_BLUE, BlueVersion: "1.0"}}}}}},
		assignCmd("h1", "api", "api-1", 1), updateCmd("h1", "api", 1, asStaging),
		assignCmd("h2", "api", "api-1", 4), updateCmd("h2", "api", 4, asFailed), assignCmd("h2", "api", "api-1", 5),
		phaseCmd("api-1", 0, psDeploying),
		cmd{ApprovePhase, &v1.ApprovePhaseCommand{ReleaseId: "api-1", Index: 1, Actor: "bob"}},
		submitCmd("web-1", "web", 1), relStateCmd("web-1", rsAborted),
		cmd{AddFreeze, &v1.AddFreezeCommand{TimeUnixNano: t0, Window: &v1.FreezeWindow{Id: "xmas", FromUnixNano: 1, ToUnixNano: 2}}},
		cmd{SetGlobalFreeze, &v1.SetGlobalFreezeCommand{On: true, Reason: "incident"}},
		aclBootstrapCmd("boot", strings.Repeat("a", 64)),
		aclTokenCmd("reader", "ci", RoleRead, strings.Repeat("b", 64)),
	))...)
	return f
}

func persist(t testing.TB, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	if !sink.closed || sink.cancelled {
		t.Fatalf("sink closed=%v cancelled=%v", sink.closed, sink.cancelled)
	}
	return sink.Bytes()
}

func TestSnapshotRoundTrip(t *testing.T) {
	f := richState(t)
	data := persist(t, f)
	g := New(testutil.Logger(t))
	mustApply(t, g, hostsCmd("zz", "stale")) // Restore must discard this.
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if tok := g.State().ACLToken("reader"); tok.GetName() != "ci" || tok.GetRole() != RoleRead {
		t.Errorf("restored token = %v", tok)
	}
	if ok, at := g.State().ACLBootstrapped(); !ok || at != t0 {
		t.Errorf("restored bootstrap = %v %d", ok, at)
	}
	if !f.State().Equal(g.State()) {
		t.Fatalf("restored state differs:\n%s\nvs\n%s", f.State().Dump(), g.State().Dump())
	}
	if f.State().Dump() != g.State().Dump() {
		t.Fatal("dumps differ")
	}
	if g.State().Host("stale") != nil {
		t.Error("restore kept old state")
	}
	// Equal states write equal bytes.
	if !bytes.Equal(data, persist(t, g)) {
		t.Error("re-persisted snapshot differs")
	}
	// Both continue identically: the next event seq and assignment rules survive.
	for _, x := range []*FSM{f, g} {
		mustApply(t, x, cmd{AppendEvents, &v1.AppendEventsCommand{Events: []*v1.Event{{Kind: "k"}}}})
		if rej := asRejected(t, apply(t, x, assignCmd("h2", "api", "api-1", 5))); !errors.Is(rej, ErrConflict) {
			t.Errorf("generation rule lost: %v", rej)
		}
	}
	if !f.State().Equal(g.State()) {
		t.Error("states diverged after restore")
	}
}

func TestSnapshotIsolatedFromLaterApplies(t *testing.T) {
	f := richState(t)
	snap, _ := f.Snapshot()
	before := f.State().Dump()
	mustApply(t, f, hostsCmd("eu-1", "h9"), relStateCmd("api-1", rsPaused))
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	g := New(nil)
	if err := g.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	if g.State().Dump() != before {
		t.Error("snapshot saw applies made after Snapshot()")
	}
}

func TestRestoreRejectsBadInput(t *testing.T) {
	good := persist(t, richState(t))
	badVersion := bytes.Clone(good)
	binary.BigEndian.PutUint16(badVersion[6:], 2)
	badRecord := bytes.Clone(good)
	badRecord[16] = 0x42 // first record's type byte
	cases := []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrSnapshotTruncated, "header"},
		{"wrong magic", []byte("BOLTDB\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01"), ErrSnapshotMagic, "bad magic"},
		{"short wrong magic", []byte("XY"), ErrSnapshotMagic, "bad magic"},
		{"version", badVersion, ErrSnapshotVersion, "version: 2"},
		{"header only", good[:16], ErrSnapshotTruncated, "before end record"},
		{"cut in record", good[:len(good)/2], ErrSnapshotTruncated, "truncated"},
		{"no end record", good[:len(good)-1], ErrSnapshotTruncated, "before end record"},
		{"unknown record", badRecord, ErrSnapshotCorrupt, "unknown type 66"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := richState(t)
			before := f.State().Dump()
			err := f.Restore(io.NopCloser(bytes.NewReader(tc.data)))
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.want, tc.msg)
			}
			if f.State().Dump() != before {
				t.Error("failed restore changed state")
			}
		})
	}
}

func TestRestoreRejectsBrokenInvariants(t *testing.T) {
	// Hand-build a state whose app points at a missing release.
	s := newPlain()
	s.apps["api"] = &v1.App{Name: "api", ActiveReleaseId: "ghost"}
	var buf bytes.Buffer
	if err := writeSnapshot(&buf, &view{tx: s.load().Txn(false)}, 0); err != nil {
		t.Fatal(err)
	}
	err := New(nil).Restore(io.NopCloser(&buf))
	if !errors.Is(err, ErrSnapshotCorrupt) || !strings.Contains(err.Error(), `"ghost" does not exist`) {
		t.Fatalf("err = %v", err)
	}
}
