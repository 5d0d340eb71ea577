package drift

import (
	"testing"
	"time"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// A convergence release keeps the desired release's spec (version,
// artifact, gates) under its own name, one host per phase with the first
// phase's bake and no approval, and names the chain's root even when it
// converges a convergence.
func TestReleaseOneHostPerPhase(t *testing.T) {
	d := &rollwavev1.Release{Id: "api-2-converge-1", ConvergeOf: "api-2",
		Spec: &rollwavev1.ReleaseSpec{Name: "api-2-converge-1", App: "api", Version: "2",
			Artifact: &rollwavev1.Artifact{Sha256: "ab"}, Gates: &rollwavev1.GatesSpec{MaxCpuPercent: 80}},
		Phases: []*rollwavev1.Phase{{Index: 0, BakeMs: 4000, ApprovalRequired: true}, {Index: 1, BakeMs: 2000}}}
	now := time.Unix(100, 0)
	r := Release(d, "api-2-converge-2", []string{"h3", "h7"}, cells{"h3": "a", "h7": "b"}.of, now, "alice")
	if r.GetConvergeOf() != "api-2" || r.GetSpec().GetName() != "api-2-converge-2" || r.GetSpec().GetVersion() != "2" ||
		r.GetSpec().GetArtifact().GetSha256() != "ab" || r.GetSpec().GetGates().GetMaxCpuPercent() != 80 || r.GetCreatedBy() != "alice" {
		t.Fatalf("release %v", r)
	}
	if len(r.GetPhases()) != 2 {
		t.Fatalf("phases %v", r.GetPhases())
	}
	for i, p := range r.GetPhases() {
		want := []string{"h3", "h7"}[i]
		if p.GetIndex() != int32(i) || len(p.GetHosts()) != 1 || p.GetHosts()[0] != want || p.GetBakeMs() != 4000 || p.GetApprovalRequired() {
			t.Fatalf("phase %d = %v", i, p)
		}
	}
	if p := r.GetPhases()[1]; p.GetCells()[0] != "b" {
		t.Fatalf("phase 1 cells %v", p.GetCells())
	}
	// The desired release's spec is not aliased.
	r.GetSpec().Version = "3"
	if d.GetSpec().GetVersion() != "2" {
		t.Fatal("convergence release shares its spec with the desired release")
	}
}

type cells map[string]string

func (c cells) of(h string) string { return c[h] }
