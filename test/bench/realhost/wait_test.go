//go:build e2e

package realhost

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"github.com/rollwave/rollwave/test/integration/fleet"
)

func startRelease(t *testing.T, cs *fleet.Coordinators, spec string) string {
	t.Helper()
	rel, err := cs.StartRelease(spec)
	if err != nil {
		t.Fatal(err)
	}
	return rel.GetId()
}

var finalStates = map[rollwavev1.ReleaseState]bool{
	rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED:   true,
	rollwavev1.ReleaseState_RELEASE_STATE_ROLLED_BACK: true,
	rollwavev1.ReleaseState_RELEASE_STATE_ABORTED:     true,
	rollwavev1.ReleaseState_RELEASE_STATE_FAILED:      true,
}

// watchRelease polls the release every 100 ms (a fixed interval: the
// comparison's rollwave time is measured by it) until done accepts it,
// and returns it as read then; a final state done does not accept, or the
// timeout, fails the test.
func watchRelease(t *testing.T, cs *fleet.Coordinators, id string, timeout time.Duration,
	done func(*rollwavev1.GetReleaseResponse) (bool, string)) *rollwavev1.GetReleaseResponse {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r, err := cs.Release(id)
		msg := ""
		if err != nil {
			msg = err.Error()
		} else {
			ok, m := done(r)
			if ok {
				return r
			}
			msg = m
			if st := r.GetRelease().GetState(); finalStates[st] {
				out, _, _ := cs.CLI("release", "events", id)
				t.Fatalf("release %s ended %s while waiting: %s\n%s", id, st, msg, out)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitRelease waits until the release is in want.
func waitRelease(t *testing.T, cs *fleet.Coordinators, id string, want rollwavev1.ReleaseState, timeout time.Duration) *rollwavev1.GetReleaseResponse {
	t.Helper()
	return watchRelease(t, cs, id, timeout, func(r *rollwavev1.GetReleaseResponse) (bool, string) {
		st := r.GetRelease().GetState()
		return st == want, fmt.Sprintf("release %s is %s, want %s", id, st, want)
	})
}

// waitPhase waits until phase idx of the release is in want.
func waitPhase(t *testing.T, cs *fleet.Coordinators, id string, idx int, want rollwavev1.PhaseState, timeout time.Duration) *rollwavev1.GetReleaseResponse {
	t.Helper()
	return watchRelease(t, cs, id, timeout, func(r *rollwavev1.GetReleaseResponse) (bool, string) {
		ps := r.GetRelease().GetPhases()
		if idx >= len(ps) {
			return false, fmt.Sprintf("release %s has %d phase(s), want phase %d %s", id, len(ps), idx, want)
		}
		return ps[idx].GetState() == want, fmt.Sprintf("phase %d is %s, want %s", idx, ps[idx].GetState(), want)
	})
}

// waitServes waits until h answers version on port (from inside h).
func waitServes(t *testing.T, h *fleet.Host, port int, version string) {
	t.Helper()
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		got, err := h.Curl(port, "/")
		if err != nil {
			return false, fmt.Sprintf("%s:%d: %v", h.Name, port, err)
		}
		got = strings.TrimSpace(got)
		return got == version, fmt.Sprintf("%s:%d serves %q, want %q", h.Name, port, got, version)
	})
}
