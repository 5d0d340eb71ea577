package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// watchScript is a WatchRelease stream: running, then a gate event, then
// the final state.
func watchScript(final rollwavev1.ReleaseState, reason string) []*rollwavev1.WatchReleaseResponse {
	base := fixture().release.GetRelease()
	running := proto.Clone(base).(*rollwavev1.Release)
	ended := proto.Clone(base).(*rollwavev1.Release)
	ended.State, ended.Reason = final, reason
	return []*rollwavev1.WatchReleaseResponse{
		{Release: running, Events: []*rollwavev1.Event{
			{Seq: 3, Kind: "gate.reading", Phase: 1, Host: "web-2", Evidence: map[string]string{"cpu_p95": "55"}},
		}},
		// The event repeats: the watch must print it once.
		{Release: running, Events: []*rollwavev1.Event{
			{Seq: 3, Kind: "gate.reading", Phase: 1, Host: "web-2", Evidence: map[string]string{"cpu_p95": "55"}},
			{Seq: 4, Kind: "gate.failed", Phase: 1, Message: "cpu above 90%", Evidence: map[string]string{"cpu_p95": "97"}},
		}},
		{Release: ended},
	}
}

func TestReleaseStatusWatch(t *testing.T) {
	cases := []struct {
		name   string
		final  rollwavev1.ReleaseState
		code   int
		stdout string
		stderr string
	}{
		{"succeeded", rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED, ExitOK, "Release api-2.4.0 succeeded", ""},
		{"rolled back", rollwavev1.ReleaseState_RELEASE_STATE_ROLLED_BACK, ExitError, "", "Error: release api-2.4.0 ended rolled_back: gate cpu failed"},
		{"aborted", rollwavev1.ReleaseState_RELEASE_STATE_ABORTED, ExitError, "", "ended aborted"},
		{"failed", rollwavev1.ReleaseState_RELEASE_STATE_FAILED, ExitError, "", "ended failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := fixture()
			f.watch = watchScript(tc.final, "gate cpu failed")
			addr := startServer(t, f)
			r := runAt(t, addr, "release", "status", "api-2.4.0", "-watch").expect(t, tc.code)
			if !strings.Contains(r.stdout, tc.stdout) || !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stdout %q / stderr %q, want %q / %q", r.stdout, r.stderr, tc.stdout, tc.stderr)
			}
			if n := strings.Count(r.stdout, "gate.reading"); n != 1 {
				t.Errorf("gate.reading printed %d times, want once", n)
			}
			if !strings.Contains(r.stdout, "gate.failed  phase=1  cpu above 90%  [cpu_p95=97]") {
				t.Errorf("stdout lacks the gate.failed event line:\n%s", r.stdout)
			}
			if req := lastRequest[*rollwavev1.WatchReleaseRequest](t, f, "WatchRelease"); req.GetId() != "api-2.4.0" {
				t.Errorf("watched %q", req.GetId())
			}
		})
	}
}

// A stream that ends while the release still runs is an error, not success.
func TestReleaseStatusWatchEndsEarly(t *testing.T) {
	f := fixture()
	f.watch = watchScript(rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED, "")[:2]
	addr := startServer(t, f)
	r := runAt(t, addr, "release", "status", "api-2.4.0", "-watch").expect(t, ExitError)
	if !strings.Contains(r.stderr, "before release api-2.4.0 finished (last state running)") {
		t.Errorf("stderr = %q", r.stderr)
	}
}

// -watch -json prints each update as a JSON object.
func TestReleaseStatusWatchJSON(t *testing.T) {
	f := fixture()
	f.watch = watchScript(rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED, "")
	addr := startServer(t, f)
	r := runAt(t, addr, "release", "status", "api-2.4.0", "-watch", "-json").expect(t, ExitOK)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3 JSON updates, one per line:\n%s", len(lines), r.stdout)
	}
	for _, l := range lines {
		var u struct {
			Release struct {
				State        string `json:"state"`
				CurrentPhase *int   `json:"current_phase"`
			} `json:"release"`
		}
		if err := json.Unmarshal([]byte(l), &u); err != nil || u.Release.State == "" || u.Release.CurrentPhase == nil {
			t.Errorf("not a release update with state and current_phase: %v\n%s", err, l)
		}
	}
	if !strings.Contains(r.stderr, "Release api-2.4.0 succeeded") {
		t.Errorf("the outcome line belongs on stderr with -json; stderr = %q", r.stderr)
	}
}
