package dispatch

import (
	"maps"
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Spec validation accepts {{version}} and {{app}} in artifact.url; the
// agent must be sent the URL it will fetch (and check against its
// policy), not the template. The stored spec is left as written.
func TestAssignmentOrderExpandsArtifactURL(t *testing.T) {
	rs := &rollwavev1.ReleaseSpec{App: "api", Version: "2.4.0",
		Artifact: &rollwavev1.Artifact{Url: "https://artifacts.internal/{{app}}/{{version}}/{{app}}.tar.gz", Sha256: "ab"}}
	got := assignmentOrder(&rollwavev1.Assignment{Host: "h1"}, &rollwavev1.Release{Spec: rs}).GetAssignment().GetSpec().GetArtifact().GetUrl()
	if want := "https://artifacts.internal/api/2.4.0/api.tar.gz"; got != want {
		t.Errorf("order's artifact URL = %q, want %q", got, want)
	}
	if u := rs.GetArtifact().GetUrl(); u != "https://artifacts.internal/{{app}}/{{version}}/{{app}}.tar.gz" {
		t.Errorf("the stored spec was changed: %q", u)
	}
	plain := &rollwavev1.ReleaseSpec{App: "api", Version: "1", Artifact: &rollwavev1.Artifact{Url: "file:///srv/api.tgz"}}
	if o := assignmentOrder(nil, &rollwavev1.Release{Spec: plain}).GetAssignment().GetSpec(); o != plain {
		t.Error("a spec without placeholders was copied")
	}
}

// The per-host audit events of traffic moves (issue 13 item 8): built only
// for SWITCHED and REVERTED(_ISOLATED); raft's assignment names the
// version of its generation; the agent's evidence is kept only under the
// known keys and within bounds; a hello's slot facts say where traffic is.
func TestMoveEvent(t *testing.T) {
	cur := &rollwavev1.Assignment{Host: "h1", App: "api", Generation: 4, Version: "2.4.0"}
	if ev := moveEvent("h1", &rollwavev1.AssignmentProgress{App: "api", Generation: 4, State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING}, cur); ev != nil {
		t.Errorf("an event for BAKING: %v", ev)
	}
	long := string(make([]byte, maxMoveEvidence+1))
	sw := moveEvent("h1", &rollwavev1.AssignmentProgress{App: "api", Generation: 4, State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED,
		Evidence: map[string]string{"from_slot": "blue", "to_slot": "green", "from_version": "2.3.0", "to_version": "9.9.9", "junk": "x"}}, cur)
	want := map[string]string{"app": "api", "generation": "4", "from_slot": "blue", "to_slot": "green", "from_version": "2.3.0", "to_version": "2.4.0"}
	if sw.GetKind() != "host.switched" || sw.GetHost() != "h1" || !maps.Equal(sw.GetEvidence(), want) {
		t.Errorf("switched event = %v, want evidence %v", sw, want)
	}
	if big := moveEvent("h1", &rollwavev1.AssignmentProgress{App: "api", Generation: 4, State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED,
		Evidence: map[string]string{"from_slot": long}}, nil); big.GetEvidence()["from_slot"] != "" {
		t.Errorf("an over-long evidence value was kept: %d bytes", len(big.GetEvidence()["from_slot"]))
	}
	rv := moveEvent("h1", &rollwavev1.AssignmentProgress{App: "api", Generation: 4, State: rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED,
		Reason: "no leader ack for 5s", Evidence: SlotsEvidence([]*rollwavev1.SlotFacts{{App: "api", Active: rollwavev1.Slot_SLOT_BLUE, BlueVersion: "2.3.0", GreenVersion: "2.4.0"}}, "api")}, cur)
	want = map[string]string{"app": "api", "generation": "4", "from_slot": "green", "to_slot": "blue", "from_version": "2.4.0", "to_version": "2.3.0",
		"reason": "no leader ack for 5s", "isolated": "true"}
	if rv.GetKind() != "host.reverted" || !maps.Equal(rv.GetEvidence(), want) {
		t.Errorf("reverted event = %v, want evidence %v", rv, want)
	}
	// A first deploy, reported in a hello: nothing was switched from.
	first := SlotsEvidence([]*rollwavev1.SlotFacts{{App: "api", Active: rollwavev1.Slot_SLOT_BLUE, BlueVersion: "1.0.0"}}, "api")
	if want := map[string]string{"to_slot": "blue", "to_version": "1.0.0"}; !maps.Equal(first, want) {
		t.Errorf("first deploy evidence = %v, want %v", first, want)
	}
}
