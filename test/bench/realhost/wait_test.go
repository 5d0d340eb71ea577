//go:build e2e

package realhost

import (
	"fmt"
	"strings"
	"testing"
	"time"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"github.com/rollwave/rollwave/test/integration/fleet"
)

// waitFor polls cond every interval until it reports true, failing the
// test with cond's last word when timeout passes.
func waitFor(t *testing.T, timeout, interval time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, msg)
		}
		time.Sleep(interval)
	}
}

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

// waitRelease polls the release every 100 ms until it is in want and
// returns it as read then; another final state fails the test.
func waitRelease(t *testing.T, cs *fleet.Coordinators, id string, want rollwavev1.ReleaseState, timeout time.Duration) *rollwavev1.GetReleaseResponse {
	t.Helper()
	var resp *rollwavev1.GetReleaseResponse
	waitFor(t, timeout, 100*time.Millisecond, func() (bool, string) {
		r, err := cs.Release(id)
		if err != nil {
			return false, err.Error()
		}
		resp = r
		st := r.GetRelease().GetState()
		if st != want && finalStates[st] {
			out, _, _ := cs.CLI("release", "events", id)
			t.Fatalf("release %s ended %s, want %s\n%s", id, st, want, out)
		}
		return st == want, fmt.Sprintf("release %s is %s, want %s", id, st, want)
	})
	return resp
}

// waitPhase waits until phase idx of the release is in want.
func waitPhase(t *testing.T, cs *fleet.Coordinators, id string, idx int, want rollwavev1.PhaseState, timeout time.Duration) *rollwavev1.GetReleaseResponse {
	t.Helper()
	var resp *rollwavev1.GetReleaseResponse
	waitFor(t, timeout, 100*time.Millisecond, func() (bool, string) {
		r, err := cs.Release(id)
		if err != nil {
			return false, err.Error()
		}
		resp = r
		if st := r.GetRelease().GetState(); finalStates[st] {
			t.Fatalf("release %s ended %s while waiting for phase %d %s", id, st, idx, want)
		}
		ps := r.GetRelease().GetPhases()
		if idx >= len(ps) {
			return false, fmt.Sprintf("release %s has %d phase(s)", id, len(ps))
		}
		return ps[idx].GetState() == want, fmt.Sprintf("phase %d is %s, want %s", idx, ps[idx].GetState(), want)
	})
	return resp
}

// waitServes waits until h answers version on port (from inside h).
func waitServes(t *testing.T, h *fleet.Host, port int, version string) {
	t.Helper()
	waitFor(t, 60*time.Second, 50*time.Millisecond, func() (bool, string) {
		got, err := h.Curl(port, "/")
		if err != nil {
			return false, fmt.Sprintf("%s:%d: %v", h.Name, port, err)
		}
		got = strings.TrimSpace(got)
		return got == version, fmt.Sprintf("%s:%d serves %q, want %q", h.Name, port, got, version)
	})
}
