package rollout_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/drift"
	"github.com/rollwave/rollwave/internal/testutil"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Issue 18 item 3: after phases.parallel_regions_after = 1 the two regions
// (eu: cells edge and vip; us: core) run their own phases side by side.
// h6, us's second phase, cannot start 2.0.0: with rollback.on_failure =
// "fail_local" region us is rolled back (h4 and h5, verified and healthy,
// go back to 1.0.0) while eu goes on to the end; the release ends
// partially_succeeded and says which region did what.
func TestE2EParallelRegionsFailLocal(t *testing.T) {
	f := newFleetIn(t, 3, 3, map[string]string{"edge": "eu", "core": "us", "vip": "eu"})
	f.start("demo-1", "1.0.0", specOpts{})
	f.waitRelease("demo-1", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 60*time.Second)

	if err := os.WriteFile(filepath.Join(f.agents["h6"].DataDir, "fail-2.0.0"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	regional := func(src string) string {
		return strings.Replace(src, `max_size = "50%"`, "max_size = \"50%\"\n    parallel_regions_after = 1", 1)
	}
	f.start("demo-2", "2.0.0", specOpts{onFailure: "fail_local", edit: regional})
	r := f.waitRelease("demo-2", v1.ReleaseState_RELEASE_STATE_PARTIALLY_SUCCEEDED, 120*time.Second)

	// The plan: phase 0 (h1, edge) shared; eu: {h2,h3} then {h7,h8,h9};
	// us: {h4,h5} then {h6}.
	wantPhases := []struct {
		region string
		hosts  []string
	}{{"", []string{"h1"}}, {"eu", []string{"h2", "h3"}}, {"eu", []string{"h7", "h8", "h9"}}, {"us", []string{"h4", "h5"}}, {"us", []string{"h6"}}}
	if len(r.GetPhases()) != len(wantPhases) {
		t.Fatalf("phases = %v", r.GetPhases())
	}
	for i, w := range wantPhases {
		if p := r.GetPhases()[i]; p.GetRegion() != w.region || !slices.Equal(p.GetHosts(), w.hosts) {
			t.Errorf("phase %d = region %q hosts %v, want %q %v", i, p.GetRegion(), p.GetHosts(), w.region, w.hosts)
		}
	}
	states := map[string]v1.ReleaseState{}
	for _, g := range r.GetRegions() {
		states[g.GetRegion()] = g.GetState()
	}
	if states["eu"] != v1.ReleaseState_RELEASE_STATE_SUCCEEDED || states["us"] != v1.ReleaseState_RELEASE_STATE_ROLLED_BACK {
		t.Fatalf("regions = %v\n%s", r.GetRegions(), f.dump("demo-2"))
	}
	if !strings.Contains(r.GetReason(), "regions succeeded: eu") || !strings.Contains(r.GetReason(), "us (rolled_back)") {
		t.Errorf("reason = %q", r.GetReason())
	}
	f.waitServing([]string{"h1", "h2", "h3", "h7", "h8", "h9"}, "2.0.0", 10*time.Second)
	f.waitServing([]string{"h4", "h5", "h6"}, "1.0.0", 10*time.Second)
	if v := f.leader().FSM().State().App("demo").GetCurrentVersion(); v != "1.0.0" {
		t.Errorf("app current version = %q; a partial success leaves it", v)
	}
	// eu's hosts are where demo-2 put them on purpose, us's back on the
	// desired (last succeeded) 1.0.0: nothing is drifted, so nothing
	// converges eu back to 1.0.0.
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		d := drift.Hosts(f.leader().FSM().State(), "demo")
		return len(d) == 0, fmt.Sprintf("drifted: %v", d)
	})

	// The audit trail: both regions started before either ended (they
	// ran side by side); the failure, the rollback and the reverts of us
	// carry region us; eu's phases never failed and no eu host reverted.
	evs := f.eventsOf("demo-2")
	started, firstEnd := 0, -1
	for i, e := range evs {
		switch e.GetKind() {
		case "region.started":
			started++
			if firstEnd >= 0 {
				t.Errorf("region %s started after a region ended", e.GetRegion())
			}
		case "region.succeeded", "region.rolled_back", "region.failed":
			if firstEnd < 0 {
				firstEnd = i
			}
		}
	}
	if started != 2 {
		t.Errorf("%d region.started events, want 2\n%s", started, f.dump("demo-2"))
	}
	var usRollback, usFailed bool
	for _, e := range evs {
		switch {
		case e.GetKind() == "region.rolling_back" && e.GetRegion() == "us":
			usRollback = true
		case e.GetKind() == "phase.failed" && e.GetRegion() == "us" && e.GetPhase() == 4:
			usFailed = true
		case e.GetKind() == "phase.failed" && e.GetRegion() != "us":
			t.Errorf("a phase outside us failed: %v", e)
		case e.GetKind() == "revert.ordered":
			if e.GetRegion() != "us" {
				t.Errorf("revert.ordered outside us: %v", e)
			}
			for _, h := range strings.Split(e.GetEvidence()["hosts"], ",") {
				if !slices.Contains([]string{"h4", "h5", "h6"}, h) {
					t.Errorf("host %s of eu was ordered to revert: %v", h, e)
				}
			}
		}
	}
	if !usRollback || !usFailed {
		t.Errorf("us: rolling_back event %v, phase 4 failed event %v\n%s", usRollback, usFailed, f.dump("demo-2"))
	}
	_, reverted := f.movesFromEvents("demo-2")
	for h := range reverted {
		if !slices.Contains([]string{"h4", "h5", "h6"}, h) {
			t.Errorf("%s reverted: %v", h, reverted[h])
		}
	}
}
