package rollout_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rollwave/rollwave/internal/testutil"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// submit submits a release without starting it, retrying while leadership
// settles.
func (f *fleet) submit(name, version string, o specOpts) {
	f.t.Helper()
	src := []byte(f.spec(name, version, o))
	testutil.WaitFor(f.t, 20*time.Second, func() (bool, string) {
		_, err := f.client().SubmitRelease(ctxT(f.t), &v1.SubmitReleaseRequest{SourceName: name + ".hcl", Source: src, Actor: "test"})
		switch status.Code(err) {
		case codes.OK, codes.AlreadyExists:
			return true, ""
		case codes.Unavailable, codes.DeadlineExceeded:
			return false, fmt.Sprintf("submit %s: %v", name, err)
		}
		f.t.Fatalf("submit %s: %v", name, err)
		return false, ""
	})
}

// resume resumes (starts) a release, retrying while leadership settles,
// and returns the first answer that is not about leadership.
func (f *fleet) resume(id string) error {
	f.t.Helper()
	var err error
	testutil.WaitFor(f.t, 20*time.Second, func() (bool, string) {
		_, err = f.client().ResumeRelease(ctxT(f.t), &v1.ReleaseActionRequest{Id: id, Actor: "test"})
		switch status.Code(err) {
		case codes.Unavailable, codes.DeadlineExceeded:
			return false, fmt.Sprintf("resume %s: %v", id, err)
		}
		return true, ""
	})
	return err
}

func planHosts(r *v1.Release) []string {
	var hs []string
	for _, p := range r.GetPhases() {
		hs = append(hs, p.GetHosts()...)
	}
	slices.Sort(hs)
	return hs
}

// TestE2EStartPlansAgainstTheFleetOfThatMoment: a host that joins between
// submit and start is in the plan made at start, the start's evidence
// names it, and it gets the release.
func TestE2EStartPlansAgainstTheFleetOfThatMoment(t *testing.T) {
	f := newFleet(t)
	f.submit("demo-1", "1.0.0", specOpts{})
	if hs := planHosts(f.release("demo-1")); len(hs) != 9 {
		t.Fatalf("preview plan covers %v, want the 9 hosts of the fleet", hs)
	}
	late := f.addHost("edge")
	f.waitRegistered()

	if err := f.resume("demo-1"); err != nil {
		t.Fatalf("start demo-1: %v", err)
	}
	r := f.release("demo-1")
	if hs := planHosts(r); len(hs) != 10 || !slices.Contains(hs, late) {
		t.Fatalf("plan at start covers %v, want 10 hosts including %s", hs, late)
	}
	var replanned *v1.Event
	for _, e := range f.eventsOf("demo-1") {
		if e.GetKind() == "release.replanned" {
			replanned = e
		}
	}
	if replanned == nil {
		t.Fatalf("no release.replanned event:\n%s", f.dump("demo-1"))
	}
	if ev := replanned.GetEvidence(); ev["added"] != late || ev["hosts_added"] != "1" || ev["hosts_removed"] != "0" ||
		ev["preview_hosts"] != "9" || ev["planned_hosts"] != "10" {
		t.Fatalf("release.replanned evidence = %v, want %s added (9 -> 10 hosts)", ev, late)
	}
	f.waitRelease("demo-1", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 3*time.Minute)
	f.waitServing(f.hosts, "1.0.0", 20*time.Second)
}

// TestE2EStartRefusesAnEmptyTargetSet: a pending release whose target
// matches no live host is not started; nothing changes.
func TestE2EStartRefusesAnEmptyTargetSet(t *testing.T) {
	f := newFleet(t)
	f.submit("demo-1", "1.0.0", specOpts{target: `  target {
    cells = ["nowhere-*"]
  }`})
	before := f.release("demo-1")
	events := len(f.eventsOf("demo-1"))

	err := f.resume("demo-1")
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("start with no target hosts: %v, want FailedPrecondition", err)
	}
	t.Logf("refused: %v", err)
	after := f.release("demo-1")
	if after.GetState() != v1.ReleaseState_RELEASE_STATE_PENDING || after.GetUpdatedUnixNano() != before.GetUpdatedUnixNano() {
		t.Fatalf("refused start changed the release: %v -> %v", before, after)
	}
	if n := len(f.eventsOf("demo-1")); n != events {
		t.Fatalf("refused start wrote %d event(s):\n%s", n-events, f.dump("demo-1"))
	}
}
