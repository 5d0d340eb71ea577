package raftfsm

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

type record struct {
	typ recordType
	msg proto.Message
}

// records lists a view's objects (the stored ones) in snapshot order.
func (v *view) records() []record {
	var out []record
	_ = v.eachRecord(func(t recordType, m proto.Message) error {
		out = append(out, record{t, m})
		return nil
	})
	return out
}

// Equal reports whether two states hold the same objects and applied index.
func (s *State) Equal(other *State) bool {
	va, ia := s.pointInTime()
	vb, ib := other.pointInTime()
	if ia != ib {
		return false
	}
	ra, rb := va.records(), vb.records()
	if len(ra) != len(rb) {
		return false
	}
	for i := range ra {
		if ra[i].typ != rb[i].typ || !proto.Equal(ra[i].msg, rb[i].msg) {
			return false
		}
	}
	return true
}

var recordNames = map[recordType]string{
	recHost: "host", recCell: "cell", recApp: "app", recRelease: "release",
	recAssignment: "assignment", recEvent: "event", recFreeze: "freeze", recGlobalFreeze: "global_freeze",
	recACLBootstrap: "acl_bootstrap", recACLToken: "acl_token", recNotifyCursor: "notify_cursor", recChain: "chain",
}

// Dump renders the whole state, one object per line, in snapshot order. It
// is for tests and debugging: the same state dumps to the same text within
// one binary, but the protobuf text format may differ between builds, so
// never persist or parse it.
func (s *State) Dump() string {
	v, idx := s.pointInTime()
	var b strings.Builder
	fmt.Fprintf(&b, "applied_index: %d\n", idx)
	for _, r := range v.records() {
		fmt.Fprintf(&b, "%s: %s\n", recordNames[r.typ], prototext.MarshalOptions{}.Format(r.msg))
	}
	return b.String()
}
