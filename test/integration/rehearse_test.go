//go:build e2e

package integration

import (
	"strconv"
	"strings"
	"testing"
	"time"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"github.com/rollwave/rollwave/test/integration/fleet"
)

// TestRollbackRehearsal (issue 17 item 3): on a real host (systemd
// driver, the agent from its .deb) v2 with keep_old = "cold" and
// rollback.rehearse: after the canary's gates pass the host starts the
// stopped v1 unit again, serves it, rolls forward to v2 and stops v1; the
// measured rollback time is in the phase.rehearsed event and the release
// succeeds.
func TestRollbackRehearsal(t *testing.T) {
	timed(t)
	requireEngine(t)
	f, cs, hosts := bootFleet(t, 1)
	h := hosts[0]
	deployDemo(t, f, cs, hosts, "1.0.0")

	const v2 = "2.0.0"
	spec := fleet.DemoSpec("demo-"+v2, v2, f.PublishDemo(v2, true), "2s")
	for _, r := range [][2]string{{`keep_old   = "hot"`, `keep_old   = "cold"`},
		{"  rollback {\n", "  rollback {\n    rehearse = true\n    max_rollback_time = \"30s\"\n"}} {
		if !strings.Contains(spec, r[0]) {
			t.Fatalf("demo spec has no %q", r[0])
		}
		spec = strings.Replace(spec, r[0], r[1], 1)
	}
	rel, err := cs.StartRelease(spec)
	if err != nil {
		t.Fatal(err)
	}
	cs.WaitRelease(rel.GetId(), rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED, 3*time.Minute)
	waitServes(t, h, v2)
	if st := checkServesActiveSlot(t, h); st.Slots[st.Active].Version != v2 {
		t.Fatalf("active slot %s runs %s, want %s", st.Active, st.Slots[st.Active].Version, v2)
	}
	evs, err := cs.Events(rel.GetId())
	if err != nil {
		t.Fatal(err)
	}
	var found []map[string]string
	for _, e := range evs {
		if e.GetKind() == "phase.rehearsed" {
			found = append(found, e.GetEvidence())
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d phase.rehearsed events, want 1", len(found))
	}
	ms, err := strconv.ParseInt(found[0]["rollback_ms"], 10, 64)
	if found[0]["verdict"] != "passed" || err != nil || ms <= 0 || found[0]["old_version"] != "1.0.0" {
		t.Fatalf("phase.rehearsed evidence %v, want passed with a rollback time", found[0])
	}
	t.Logf("TIMING rehearsed rollback on a real host (cold old slot started, healthy, serving): %dms", ms)
}
