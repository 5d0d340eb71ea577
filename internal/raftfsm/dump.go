package raftfsm

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// Equal reports whether two states hold the same objects and applied index.
func (s *State) Equal(other *State) bool {
	a, b := s.copyForSnapshot(), other.copyForSnapshot()
	if a.appliedIndex != b.appliedIndex {
		return false
	}
	ra, rb := a.recordsLocked(), b.recordsLocked()
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
	recACLBootstrap: "acl_bootstrap", recACLToken: "acl_token",
}

// Dump renders the whole state, one object per line, in snapshot order. It
// is for tests and debugging: the same state dumps to the same text within
// one binary, but the protobuf text format may differ between builds, so
// never persist or parse it.
func (s *State) Dump() string {
	c := s.copyForSnapshot()
	var b strings.Builder
	fmt.Fprintf(&b, "applied_index: %d\n", c.appliedIndex)
	for _, r := range c.recordsLocked() {
		fmt.Fprintf(&b, "%s: %s\n", recordNames[r.typ], prototext.MarshalOptions{}.Format(r.msg))
	}
	return b.String()
}
