package cli

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"google.golang.org/protobuf/proto"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// A stream the coordinator ends before the release does (a leader
// change) is opened again: -wait still sees the release succeed.
func TestReleaseStatusWaitReopensTheStream(t *testing.T) {
	f := fixture()
	full := watchScript(rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED, "")
	f.watchFirst = [][]*rollwavev1.WatchReleaseResponse{full[:1], full[:2]}
	f.watch = full
	addr := startServer(t, f)
	r := runAt(t, addr, "release", "status", "api-2.4.0", "-wait", "-timeout", "1m").expect(t, ExitOK)
	if n := len(f.requests("WatchRelease")); n != 3 {
		t.Errorf("WatchRelease called %d times, want 3 (two streams ended early)", n)
	}
	if !strings.Contains(r.stdout, "api-2.4.0: succeeded (exit 0)") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	// One line per change, not per message: running (once), succeeded, outcome.
	if n := strings.Count(r.stdout, "\n"); n != 3 {
		t.Errorf("%d lines, want 3:\n%s", n, r.stdout)
	}
}

// A release waiting for approval past -timeout: exit 3, and the message
// says how to approve it.
func TestReleaseStatusWaitTimesOutAwaitingApproval(t *testing.T) {
	f := fixture()
	waiting := proto.Clone(f.release.GetRelease()).(*rollwavev1.Release)
	waiting.State = rollwavev1.ReleaseState_RELEASE_STATE_AWAITING_APPROVAL
	f.watch = []*rollwavev1.WatchReleaseResponse{{Release: waiting}}
	addr := startServer(t, f)
	r := runAt(t, addr, "release", "status", "api-2.4.0", "-wait", "-timeout", "1s", "-json").expect(t, ExitTimedOut)
	if !strings.Contains(r.stderr, "waiting for approval of phase 1; approve it with 'rollwave release approve api-2.4.0'") {
		t.Errorf("stderr = %q", r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, `"outcome":"timed_out"`) || !strings.Contains(last, `"exit_code":3`) ||
		!strings.Contains(last, `"state":"awaiting_approval"`) {
		t.Errorf("last -json line = %s", last)
	}
}

// Rolled back: exit 1 with the reason.
func TestReleaseStatusWaitRolledBack(t *testing.T) {
	f := fixture()
	f.watch = watchScript(rollwavev1.ReleaseState_RELEASE_STATE_ROLLED_BACK, "gate cpu failed")
	addr := startServer(t, f)
	r := runAt(t, addr, "release", "status", "api-2.4.0", "-wait").expect(t, ExitError)
	if !strings.Contains(r.stderr, "release api-2.4.0 ended rolled_back: gate cpu failed") {
		t.Errorf("stderr = %q", r.stderr)
	}
}

// The coordinator enforces the deadline the CLI sent too: its
// DeadlineExceeded can arrive a moment before the CLI's own context
// expires. Near the wait's deadline that is the wait timing out (exit 3),
// not an unavailable coordinator (exit 9); earlier it is retried.
func TestReleaseStatusWaitServerDeadlineIsATimeout(t *testing.T) {
	f := fixture()
	f.errs["WatchRelease"] = status.Error(codes.DeadlineExceeded, "context deadline exceeded")
	addr := startServer(t, f)
	r := runAt(t, addr, "release", "status", "api-2.4.0", "-wait", "-timeout", "300ms").expect(t, ExitTimedOut)
	if !strings.Contains(r.stderr, "timed out after 300ms waiting for release api-2.4.0") {
		t.Errorf("stderr = %q", r.stderr)
	}
	// A longer wait retries the early DeadlineExceeded until its own
	// deadline rather than giving up at once.
	start := time.Now()
	runAt(t, addr, "release", "status", "api-2.4.0", "-wait", "-timeout", "2s").expect(t, ExitTimedOut)
	if n := len(f.requests("WatchRelease")); n < 3 {
		t.Errorf("%d WatchRelease calls in %s, want the watch retried", n, time.Since(start).Round(time.Millisecond))
	}
}

// A release whose every phase verified and whose post_rollout watch runs:
// -wait is done (exit 0) and says until when the watch runs; 'release
// get' shows the window and what is left of it.
func TestReleaseWaitStopsAtTheWatch(t *testing.T) {
	f := fixture()
	until := time.Now().Add(time.Hour)
	f.watch = watchScript(rollwavev1.ReleaseState_RELEASE_STATE_WATCHING, "every phase verified; watching for 1h0m0s")
	f.watch[len(f.watch)-1].Release.WatchUntilUnixNano = until.UnixNano()
	f.release.Release.State = rollwavev1.ReleaseState_RELEASE_STATE_WATCHING
	f.release.Release.WatchUntilUnixNano = until.UnixNano()
	addr := startServer(t, f)
	r := runAt(t, addr, "release", "status", "api-2.4.0", "-wait", "-timeout", "1m").expect(t, ExitOK)
	want := "api-2.4.0: watching until " + until.UTC().Format(time.RFC3339)
	if !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "(exit 0)") {
		t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
	}
	g := runAt(t, addr, "release", "get", "api-2.4.0").expect(t, ExitOK)
	if !strings.Contains(g.stdout, "watching until "+until.UTC().Format(time.RFC3339)) || !strings.Contains(g.stdout, "left)") {
		t.Errorf("release get:\n%s", g.stdout)
	}
}
