package raftfsm

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/rollwave/rollwave/internal/testutil"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"google.golang.org/protobuf/proto"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for typ := range messageTypeNames {
		msg := handlers[typ].newMsg()
		for _, flagged := range []MessageType{typ, typ | IgnoreUnknownTypeFlag} {
			buf, err := Encode(flagged, msg)
			if err != nil {
				t.Fatalf("encode %v: %v", flagged, err)
			}
			if buf[0] != byte(flagged) {
				t.Errorf("%v: type byte %d", flagged, buf[0])
			}
			got, m, err := Decode(buf)
			if err != nil || got != flagged || !proto.Equal(m, msg) {
				t.Errorf("decode %v: %v %v %v", flagged, got, m, err)
			}
		}
	}
	// A populated message survives too.
	in := submitCmd("r", "api", 2).m
	buf, _ := Encode(SubmitRelease, in)
	if _, out, err := Decode(buf); err != nil || !proto.Equal(in, out) {
		t.Fatalf("round trip: %v %v", out, err)
	}
}

func TestMessageTypeNumbersAreForever(t *testing.T) {
	// These numbers are in every log ever written; this test fails loudly if
	// anyone renumbers a command.
	want := map[MessageType]uint8{
		UpsertHosts: 1, DeleteHost: 2, SetCell: 3, DeleteCell: 4, SubmitRelease: 5, SetReleaseState: 6,
		SetPhaseState: 7, ApprovePhase: 8, CreateAssignments: 9, UpdateAssignments: 10, AppendEvents: 11,
		AddFreeze: 12, RemoveFreeze: 13, SetGlobalFreeze: 14, SetReleasePlan: 15, AdvancePhase: 16,
		ACLBootstrap: 17, UpsertACLToken: 18, DeleteACLToken: 19, AbortRelease: 20, Prune: 21, SetNotifyCursors: 22, AckRelease: 23, OverrideFreeze: 24,
		SubmitChain: 27, StartChainStep: 28, SetChainState: 29, SetRegionState: 31, IgnoreUnknownTypeFlag: 0x80,
	}
	for typ, n := range want {
		if uint8(typ) != n {
			t.Errorf("%v = %d, want %d", typ, uint8(typ), n)
		}
	}
	if len(handlers) != 28 {
		t.Errorf("%d handlers registered, want 28", len(handlers))
	}
}

func TestMessageTypeString(t *testing.T) {
	for typ, want := range map[MessageType]string{
		SubmitRelease:                        "SubmitRelease",
		SetGlobalFreeze:                      "SetGlobalFreeze",
		AppendEvents | IgnoreUnknownTypeFlag: "AppendEvents|IgnoreUnknown",
		99:                                   "MessageType(99)",
		99 | IgnoreUnknownTypeFlag:           "MessageType(99)|IgnoreUnknown",
	} {
		if got := typ.String(); got != want {
			t.Errorf("%d: %q, want %q", uint8(typ), got, want)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	if _, err := Encode(SubmitRelease, &v1.DeleteHostCommand{}); !errors.Is(err, ErrWrongMessage) {
		t.Errorf("wrong message: %v", err)
	}
	if _, err := Encode(SubmitRelease, nil); !errors.Is(err, ErrWrongMessage) {
		t.Errorf("nil message: %v", err)
	}
	if _, err := Encode(99, &v1.DeleteHostCommand{}); !errors.Is(err, ErrUnknownType) {
		t.Errorf("unknown type: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	if _, _, err := Decode(nil); !errors.Is(err, ErrEmptyEntry) {
		t.Errorf("empty: %v", err)
	}
	if typ, _, err := Decode([]byte{99, 1, 2}); !errors.Is(err, ErrUnknownType) || typ != 99 {
		t.Errorf("unknown: %v %v", typ, err)
	}
	// Field 1 declared as length-delimited with a length past the end.
	if _, _, err := Decode([]byte{byte(DeleteHost), 0x0a, 0x50}); !errors.Is(err, ErrBadBody) {
		t.Errorf("bad body: %v", err)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(fmt.Sprint(r), "registered twice") {
			t.Fatalf("recover = %v, want a 'registered twice' panic", r)
		}
	}()
	register(DeleteHost, noResult(applyDeleteHost))
}

// expectPanic runs fn and returns the panic message, failing if none.
func expectPanic(t *testing.T, fn func()) (msg string) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("no panic")
		}
		msg = fmt.Sprint(r)
	}()
	fn()
	return ""
}

func TestUnknownTypeFlaggedIsSkipped(t *testing.T) {
	f := New(testutil.Logger(t))
	mustApply(t, f, base()...)
	before := dumpNoIndex(f.State())
	ch := f.State().Changed()
	// 0x80|99: a command from a newer server that older ones may skip.
	res := f.Apply(&raft.Log{Index: 50, Type: raft.LogCommand, Data: []byte{byte(99 | IgnoreUnknownTypeFlag), 0x0a, 0x01, 'x'}})
	if res != nil {
		t.Fatalf("result %v, want nil", res)
	}
	if after := dumpNoIndex(f.State()); after != before {
		t.Error("skipped command changed state")
	}
	if f.State().AppliedIndex() != 50 {
		t.Errorf("applied index %d, want 50", f.State().AppliedIndex())
	}
	select {
	case <-ch:
	default:
		t.Error("Changed not signalled")
	}
}

func TestUnknownTypeUnflaggedPanics(t *testing.T) {
	f := New(testutil.Logger(t))
	msg := expectPanic(t, func() {
		f.Apply(&raft.Log{Index: 12, Type: raft.LogCommand, Data: []byte{99, 0x0a, 0x01, 'x'}})
	})
	want := "raftfsm: unknown command type 99 at index 12: refusing to apply; upgrade this server"
	if msg != want {
		t.Errorf("panic %q, want %q", msg, want)
	}
	if f.State().AppliedIndex() != 0 {
		t.Error("applied index moved on a refused entry")
	}
}

func TestUndecodableBodyPanics(t *testing.T) {
	f := New(testutil.Logger(t))
	msg := expectPanic(t, func() {
		f.Apply(&raft.Log{Index: 7, Type: raft.LogCommand, Data: []byte{byte(SubmitRelease), 0x12, 0x50}})
	})
	if !strings.Contains(msg, "SubmitRelease") || !strings.Contains(msg, "index 7") || !strings.Contains(msg, "refusing to apply") {
		t.Errorf("panic %q does not name type and index", msg)
	}
	msg = expectPanic(t, func() {
		f.Apply(&raft.Log{Index: 8, Type: raft.LogCommand, Data: nil})
	})
	if !strings.Contains(msg, "index 8") {
		t.Errorf("empty entry panic %q", msg)
	}
}

func TestNonCommandLogsIgnored(t *testing.T) {
	f := New(testutil.Logger(t))
	if res := f.Apply(&raft.Log{Index: 3, Type: raft.LogConfiguration, Data: []byte{1, 2, 3}}); res != nil {
		t.Fatalf("result %v", res)
	}
	if f.State().AppliedIndex() != 0 {
		t.Error("applied index moved")
	}
}
