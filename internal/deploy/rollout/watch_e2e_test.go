package rollout_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	"github.com/rollwave/rollwave/internal/testutil"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// watchInjectAfter is how far into the post_rollout watch the fault is
// injected: far enough in that the watch has read passing traffic first.
// The acceptance figure (a fault 30 s after the last phase) is measured
// with ROLLWAVE_WATCH_INJECT_AFTER=30s; the time to roll back does not
// depend on it.
func watchInjectAfter(t *testing.T) time.Duration {
	if s := os.Getenv("ROLLWAVE_WATCH_INJECT_AFTER"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("ROLLWAVE_WATCH_INJECT_AFTER: %v", err)
		}
		return d
	}
	return 5 * time.Second
}

// appState is the demo app's slot state on host.
func (f *reqFleet) appState(host string) slot.State {
	f.t.Helper()
	st, ok := f.agents[host].Manager().AppState("demo")
	if !ok {
		f.t.Fatalf("%s has no slot state for demo", host)
	}
	return st
}

// oldSlotAnswers reports whether host's inactive slot accepts connections.
func (f *reqFleet) oldSlotAnswers(host string) (bool, string) {
	st := f.appState(host)
	old := st.Slots[st.Active.Other()]
	if old == nil {
		return false, "no old slot"
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort(f.ips[host], strconv.Itoa(old.Port)), time.Second)
	if err != nil {
		return false, fmt.Sprintf("old slot %s (%s) port %d: %v", st.Active.Other(), old.Version, old.Port, err)
	}
	c.Close()
	return true, fmt.Sprintf("old slot %s (%s) port %d answers", st.Active.Other(), old.Version, old.Port)
}

// waitOldSlotsStopped waits until no host's old slot accepts connections.
func (f *reqFleet) waitOldSlotsStopped(within time.Duration) {
	f.t.Helper()
	testutil.WaitFor(f.t, within, func() (bool, string) {
		for _, h := range f.hosts {
			if ok, why := f.oldSlotAnswers(h); ok {
				return false, h + ": " + why
			}
		}
		return true, ""
	})
}

// injectErrors makes the app on host's active slot fail every request
// from now on (the demo app reads config/error_rate again every 250ms).
func (f *reqFleet) injectErrors(host string) {
	f.t.Helper()
	st := f.appState(host)
	dir := filepath.Join(f.agents[host].DataDir, "apps", "demo", string(st.Active), "config")
	if err := os.WriteFile(filepath.Join(dir, "error_rate"), []byte("1"), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// watchRemaining reads rollwave_release_watch_remaining_seconds of
// release from the leader's metrics registry.
func watchRemaining(t *testing.T, f *reqFleet, release string) (float64, bool) {
	t.Helper()
	fams, err := f.leader().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range fams {
		if fam.GetName() != "rollwave_release_watch_remaining_seconds" {
			continue
		}
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "release" && l.GetValue() == release {
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// eventsOfKind returns the release's events of kind.
func (f *fleet) eventsOfKind(id, kind string) []*v1.Event {
	var out []*v1.Event
	for _, e := range f.eventsOf(id) {
		if e.GetKind() == kind {
			out = append(out, e)
		}
	}
	return out
}

// eventOf returns the release's first event of kind; nil if none.
func (f *fleet) eventOf(id, kind string) *v1.Event {
	if evs := f.eventsOfKind(id, kind); len(evs) > 0 {
		return evs[0]
	}
	return nil
}

// TestE2EWatchAfterRollout (issue 14 item 5): a release with
// post_rollout.watch keeps its gates running over every host after the
// last phase, with the old slots hot. A fault injected on one host inside
// the window rolls every host back by local slot swaps; an operator's
// rollback inside the window does the same; at the window's end the old
// slots are stopped and a rollback is refused as before.
func TestE2EWatchAfterRollout(t *testing.T) {
	f := newReqFleet(t)
	var addrs []string
	for _, h := range f.hosts {
		addrs = append(addrs, f.proxyAddr(h))
	}
	startLoad(t, addrs, 8*time.Millisecond) // ~125 requests/s per host
	const gates = "    max_error_rate = \"5%\"\n    min_requests = 20"

	f.release("demo-1", "1.0.0", "2s", map[string]string{}, gates)
	f.waitRelease("demo-1", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 90*time.Second)
	f.waitServing(f.hosts, "1.0.0", 30*time.Second)

	f.extra = "  post_rollout {\n    watch = \"10m\"\n  }\n"
	t.Run("a fault inside the window rolls every host back", func(t *testing.T) {
		f.release("demo-2", "2.0.0", "2s", map[string]string{}, gates)
		r := f.waitRelease("demo-2", v1.ReleaseState_RELEASE_STATE_WATCHING, 90*time.Second)
		f.waitServing(f.hosts, "2.0.0", 30*time.Second)
		if r.GetWatchUntilUnixNano() == 0 || f.eventOf("demo-2", "release.watching") == nil {
			t.Fatalf("watching with no window end or event: until %d\n%s", r.GetWatchUntilUnixNano(), f.dump("demo-2"))
		}
		if f.eventOf("demo-2", "release.finalizing") != nil {
			t.Fatalf("hosts finalized at the start of the watch:\n%s", f.dump("demo-2"))
		}
		if left, ok := watchRemaining(t, f, "demo-2"); !ok || left <= 0 || left > 600 {
			t.Fatalf("rollwave_release_watch_remaining_seconds{release=demo-2} = %v (present %v), want in (0, 600]", left, ok)
		}
		// keep_old = "hot": every old slot still runs.
		for _, h := range f.hosts {
			if ok, why := f.oldSlotAnswers(h); !ok {
				t.Fatalf("%s: %s, want it hot during the watch", h, why)
			}
		}
		start := time.Unix(0, r.GetWatchUntilUnixNano()).Add(-10 * time.Minute)
		after := watchInjectAfter(t)
		testutil.WaitFor(t, after+time.Minute, func() (bool, string) {
			return time.Since(start) >= after, fmt.Sprintf("waiting until %s into the watch", after)
		})
		if st := f.fleet.release("demo-2").GetState(); st != v1.ReleaseState_RELEASE_STATE_WATCHING {
			t.Fatalf("release %s before the fault, want watching:\n%s", st, f.dump("demo-2"))
		}

		victim := f.hosts[len(f.hosts)-1]
		injected := time.Now()
		f.injectErrors(victim)
		f.waitServing(f.hosts, "1.0.0", 60*time.Second)
		back := time.Now()
		r = f.waitRelease("demo-2", v1.ReleaseState_RELEASE_STATE_ROLLED_BACK, 60*time.Second)

		failed := f.gateEvent("demo-2", "gate.failed", "max_error_rate")
		rolling := f.eventOf("demo-2", "release.rolling_back")
		if failed == nil || rolling == nil || !strings.Contains(rolling.GetMessage(), "post_rollout watch") {
			t.Fatalf("no gate.failed / release.rolling_back of the watch:\n%s", f.dump("demo-2"))
		}
		if !strings.Contains(failed.GetEvidence()["per_host"], victim+"=") {
			t.Fatalf("gate evidence does not name %s: %v", victim, failed.GetEvidence())
		}
		_, reverted := f.movesFromEvents("demo-2")
		for _, h := range f.hosts {
			if len(reverted[h]) != 1 {
				t.Fatalf("%s reverted %d time(s), want 1:\n%s", h, len(reverted[h]), f.dump("demo-2"))
			}
		}
		decided := time.Unix(0, rolling.GetTimeUnixNano())
		t.Logf("TIMING watch rollback: fault injected %s into the window on %s; gate decision %s after the fault; every host serving 1.0.0 %s after the decision (%s after the fault); release: %s",
			after, victim, decided.Sub(injected).Round(time.Millisecond), back.Sub(decided).Round(time.Millisecond),
			back.Sub(injected).Round(time.Millisecond), r.GetReason())
	})

	f.extra = "  post_rollout {\n    watch = \"10m\"\n    keep_old = \"stopped\"\n  }\n"
	t.Run("rollback inside the window, old slots stopped", func(t *testing.T) {
		f.release("demo-3", "3.0.0", "2s", map[string]string{}, gates)
		f.waitRelease("demo-3", v1.ReleaseState_RELEASE_STATE_WATCHING, 90*time.Second)
		f.waitServing(f.hosts, "3.0.0", 30*time.Second)
		// keep_old = "stopped": each verified host stopped its old slot.
		f.waitOldSlotsStopped(30 * time.Second)
		asked := time.Now()
		if _, err := f.client().RollbackRelease(ctxT(t), &v1.ReleaseActionRequest{Id: "demo-3", Actor: "test", Reason: "operator saw a problem"}); err != nil {
			t.Fatal(err)
		}
		f.waitServing(f.hosts, "1.0.0", 60*time.Second)
		t.Logf("TIMING watch rollback by operator, old slots stopped: every host serving 1.0.0 %s after the rollback call", time.Since(asked).Round(time.Millisecond))
		f.waitRelease("demo-3", v1.ReleaseState_RELEASE_STATE_ROLLED_BACK, 60*time.Second)
	})

	f.extra = "  post_rollout {\n    watch = \"4s\"\n  }\n"
	t.Run("the window's end stops the old slots; rollback refused after it", func(t *testing.T) {
		f.release("demo-4", "4.0.0", "2s", map[string]string{}, gates)
		f.waitRelease("demo-4", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 120*time.Second)
		if f.eventOf("demo-4", "release.watching") == nil || f.eventOf("demo-4", "release.watch_ended") == nil {
			t.Fatalf("no release.watching / release.watch_ended:\n%s", f.dump("demo-4"))
		}
		f.waitServing(f.hosts, "4.0.0", 30*time.Second)
		f.waitOldSlotsStopped(30 * time.Second)
		_, err := f.client().RollbackRelease(ctxT(t), &v1.ReleaseActionRequest{Id: "demo-4", Actor: "test", Reason: "too late"})
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("rollback after the window: %v, want FailedPrecondition", err)
		}
	})
}

// TestE2ELeaderKilledDuringWatch: the watch's end is in raft; a leader
// killed inside the window hands the same window to the next one, which
// keeps the old slots until watch_until and then ends the watch once.
func TestE2ELeaderKilledDuringWatch(t *testing.T) {
	f := newFleet(t)
	f.start("demo-1", "1.0.0", specOpts{bake: "1s"})
	f.waitRelease("demo-1", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 60*time.Second)
	f.start("demo-2", "2.0.0", specOpts{bake: "1s", top: "  post_rollout {\n    watch = \"20s\"\n  }"})
	r := f.waitRelease("demo-2", v1.ReleaseState_RELEASE_STATE_WATCHING, 60*time.Second)
	until := r.GetWatchUntilUnixNano()

	old := f.c.Index(f.leader())
	f.c.Kill(old)
	killed := time.Now()
	nl := f.c.Index(f.c.Leader(15 * time.Second))
	t.Logf("leader %s killed during the watch; %s leads after %.2fs", f.c.Configs[old].NodeID, f.c.Configs[nl].NodeID, time.Since(killed).Seconds())
	if now := time.Now().UnixNano(); now < until {
		if st := f.release("demo-2").GetState(); st != v1.ReleaseState_RELEASE_STATE_WATCHING {
			t.Fatalf("release %s under the new leader before the window's end, want watching:\n%s", st, f.dump("demo-2"))
		}
	}

	r = f.waitRelease("demo-2", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 60*time.Second)
	if r.GetWatchUntilUnixNano() != until {
		t.Fatalf("watch_until changed across the failover: %d -> %d", until, r.GetWatchUntilUnixNano())
	}
	if r.GetUpdatedUnixNano() < until {
		t.Fatalf("release succeeded at %d, before the window's end %d", r.GetUpdatedUnixNano(), until)
	}
	if ended := len(f.eventsOfKind("demo-2", "release.watch_ended")); ended != 1 {
		t.Fatalf("%d release.watch_ended events, want 1:\n%s", ended, f.dump("demo-2"))
	}
	f.assignedOnce("demo-2")
	f.waitServing(f.hosts, "2.0.0", 10*time.Second)
}
