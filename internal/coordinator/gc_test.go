package coordinator_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/coordinator"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// finishRelease submits release id of app and aborts it, through s (the
// leader), created at the given time.
func finishRelease(t *testing.T, s *coordinator.Server, id, app string, at int64) {
	t.Helper()
	if _, err := s.Apply(raftfsm.SubmitRelease, &rollwavev1.SubmitReleaseCommand{TimeUnixNano: at, Actor: "test",
		Release: &rollwavev1.Release{Id: id, CreatedUnixNano: at, Spec: &rollwavev1.ReleaseSpec{Name: id, App: app, Version: id}}}); err != nil {
		t.Fatalf("submit %s: %v", id, err)
	}
	if _, err := s.Apply(raftfsm.AbortRelease, &rollwavev1.SetReleaseStateCommand{TimeUnixNano: at, ReleaseId: id,
		State: rollwavev1.ReleaseState_RELEASE_STATE_ABORTED, Actor: "test", CurrentPhase: -1}); err != nil {
		t.Fatalf("abort %s: %v", id, err)
	}
}

func releaseIDs(s *coordinator.Server) string {
	var ids []string
	for _, r := range s.FSM().State().Releases("") {
		ids = append(ids, r.GetId())
	}
	return fmt.Sprint(ids)
}

// The leader's GC prunes finished releases beyond releases_per_app on every
// server; after the leader dies its GC stops with its term (the leader
// WaitGroup, goleak at TestMain) and the new leader's GC takes over.
func TestLeaderGCPrunesOldReleasesAndFollowsLeadership(t *testing.T) {
	c := coordtest.NewCluster(t, 3, func(_ int, cfg *coordinator.Config) {
		cfg.Retention = coordinator.Retention{ReleasesPerApp: 2, GCInterval: 50 * time.Millisecond}
	})
	leader := c.Leader(30 * time.Second)
	base := time.Now().Add(-time.Hour).UnixNano()
	for i := range 4 {
		finishRelease(t, leader, fmt.Sprintf("api-%d", i), "api", base+int64(i))
	}
	for _, s := range c.Running() {
		testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
			got := releaseIDs(s)
			return got == "[api-2 api-3]", s.NodeID() + " has releases " + got
		})
	}
	ev := leader.FSM().State().Events("", 0, 0)
	if last := ev[len(ev)-1]; last.GetKind() != "state.pruned" || last.GetActor() != "gc" {
		t.Fatalf("last event = %v, want the GC's state.pruned", last)
	}

	c.Kill(c.Index(leader))
	next := c.Leader(20 * time.Second)
	finishRelease(t, next, "api-4", "api", base+4)
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		got := releaseIDs(next)
		return got == "[api-3 api-4]", "new leader has releases " + got
	})
}

func TestRetentionConfigIsValidated(t *testing.T) {
	for _, tc := range []struct {
		r    coordinator.Retention
		want string
	}{
		{coordinator.Retention{ReleasesPerApp: -1, GCInterval: time.Minute}, "retention.releases_per_app must be 0 (keep all) to 100000, got -1"},
		{coordinator.Retention{Events: time.Minute, GCInterval: time.Minute}, "retention.events must be 0 (keep all) or at least 1h0m0s, got 1m0s"},
		{coordinator.Retention{GCInterval: 0}, "retention gc interval must be positive, got 0s"},
	} {
		cfg := coordtest.FastConfig(t, "v")
		cfg.Dev = true
		cfg.Retention = tc.r
		if err := cfg.Validate(); err == nil || err.Error() != tc.want {
			t.Errorf("%+v: err = %v, want %q", tc.r, err, tc.want)
		}
	}
}
