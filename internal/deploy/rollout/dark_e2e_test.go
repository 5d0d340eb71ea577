package rollout_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// TestE2EDarkPhase: phases.dark with shadow traffic, in-process (real
// agents, their HTTP proxies, the demo app, steady load on the canary). A
// version answering 500 to every request to / (its /healthz is fine, so
// only the mirrored user requests show it) fails the dark phase: the
// canary reverts with the shadow evidence and not one user request ever
// reached it or failed. A good version passes its dark phase and takes
// traffic only afterwards.
func TestE2EDarkPhase(t *testing.T) {
	f := newReqFleet(t)
	// v1 everywhere: a first deploy has no old slot, so no dark phase.
	f.release("dk-1", "1.0.0", "3s", map[string]string{}, "    min_requests = 1")
	f.waitRelease("dk-1", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 90*time.Second)

	const every = 5 * time.Millisecond // ~200 requests/s to the canary
	gates := "    min_requests = 15"
	f.phasesExtra = "    dark = \"4s\"\n    shadow = true\n    shadow_sample = \"50%\"\n"

	t.Run("a version failing mirrored requests fails before user traffic", func(t *testing.T) {
		f.release("dk-2", "2.0.0", "60s", map[string]string{"error_rate": "1"}, gates)
		canary := f.canaryOf("dk-2")
		rec := record(t, f.proxyAddr(canary), every)
		stopWatch := watchWeight(f, canary, "2.0.0")
		r := f.waitRelease("dk-2", v1.ReleaseState_RELEASE_STATE_ROLLED_BACK, 120*time.Second)
		changes := stopWatch()
		rec.stop()
		a := f.leader().FSM().State().Assignment(canary, "demo")
		if a.GetReleaseId() != "dk-2" || a.GetState() != v1.AssignmentState_ASSIGNMENT_STATE_REVERTED ||
			!strings.Contains(a.GetReason(), "dark phase failed before any user traffic reached the new slot") || !strings.Contains(a.GetReason(), "shadow: new") {
			t.Fatalf("canary %s assignment %s %q (release %s: %s)\n%s", canary, a.GetState(), a.GetReason(), r.GetState(), r.GetReason(), f.dump("dk-2"))
		}
		for _, c := range changes {
			if c.weight != 0 {
				t.Fatalf("the new version's weight reached %d%% (changes %v)", c.weight, changes)
			}
		}
		samples := rec.all()
		var failed, onNew int
		for _, s := range samples {
			if s.status != 200 {
				failed++
			}
			if s.version == "2.0.0" {
				onNew++
			}
		}
		t.Logf("FIGURES dark fail: %d user requests during the release, %d answered by 2.0.0, %d failed; reason: %s", len(samples), onNew, failed, a.GetReason())
		if len(samples) < 100 || onNew != 0 || failed != 0 {
			t.Fatalf("%d user requests, %d reached 2.0.0, %d failed: want none of either", len(samples), onNew, failed)
		}
		// The switch event says the host went dark, with the mirror's share.
		var dark *v1.Event
		for _, e := range f.eventsOf("dk-2") {
			if e.GetKind() == "host.switched" && e.GetHost() == canary {
				dark = e
			}
		}
		if dark == nil || dark.GetEvidence()["dark"] != "true" || dark.GetEvidence()["weight"] != "0" || dark.GetEvidence()["shadow"] != "50%" {
			t.Fatalf("host.switched of the canary: %v", dark)
		}
	})

	t.Run("a good version passes its dark phase, then takes traffic", func(t *testing.T) {
		f.release("dk-3", "3.0.0", "2s", map[string]string{}, gates)
		canary := f.canaryOf("dk-3")
		rec := record(t, f.proxyAddr(canary), every)
		// Every host has users: with too few mirrored requests to judge, a
		// dark phase is extended and then fails, as a weighted step does.
		for _, h := range f.hosts {
			if h != canary {
				record(t, f.proxyAddr(h), 4*every)
			}
		}
		stopWatch := watchWeight(f, canary, "3.0.0")
		f.waitWeight100(canary, "3.0.0", 120*time.Second)
		changes := stopWatch()
		rec.stop()
		var fullAt time.Time
		for _, c := range changes {
			if c.weight == 100 && fullAt.IsZero() {
				fullAt = c.at
			}
		}
		if fullAt.IsZero() {
			t.Fatalf("weight changes %v: never 100", changes)
		}
		var early, onNew, n int
		for _, s := range rec.all() {
			if s.version != "3.0.0" {
				continue
			}
			onNew++
			// 50ms: the watcher polls every 5ms.
			if s.at.Before(fullAt.Add(-50 * time.Millisecond)) {
				early++
			}
		}
		n = len(rec.all())
		var switched time.Time
		for _, e := range f.eventsOf("dk-3") {
			if e.GetKind() == "host.switched" && e.GetHost() == canary && e.GetEvidence()["dark"] == "true" {
				switched = time.Unix(0, e.GetTimeUnixNano())
			}
		}
		t.Logf("FIGURES dark pass: %s from the canary's dark switch event to all traffic on 3.0.0 (dark = 4s); then %d of %d requests on 3.0.0, %d before", fullAt.Sub(switched).Round(time.Millisecond), onNew, n, early)
		if switched.IsZero() {
			t.Fatalf("no dark host.switched event for the canary\n%s", f.dump("dk-3"))
		}
		if early != 0 || onNew == 0 {
			t.Fatalf("%d requests reached 3.0.0 before its dark phase ended (%d after)", early, onNew)
		}
		// The canary's healthy report carries the dark phase's evidence.
		testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
			a := f.leader().FSM().State().Assignment(canary, "demo")
			return a.GetReleaseId() == "dk-3" && strings.Contains(a.GetReason(), "dark phase passed after") && strings.Contains(a.GetReason(), "shadow: new 0/"),
				fmt.Sprintf("canary assignment %s %q", a.GetState(), a.GetReason())
		})
		f.waitRelease("dk-3", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 180*time.Second)
	})
}
