package specpb

import (
	"os"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/rollwave/rollwave/internal/spec"
	"github.com/rollwave/rollwave/internal/spec/speccore"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// fullRelease sets every field, including the ones the example files
// leave empty, so the round trip covers them all.
func fullRelease() *spec.Release {
	r := spec.DefaultRelease()
	r.Name, r.App, r.Version = "api-2.4.0", "api", "2.4.0"
	r.Artifact = spec.Artifact{URL: "https://a.example/api.tar.gz", SHA256: "b79756009919cc1d956af23430e06cbf65088d49b09d88cb8e3c83295f0ca7a7"}
	r.Unit = spec.Unit{
		ExecStart:        "{{slot_dir}}/bin/api --port {{port}}",
		User:             "api",
		Environment:      map[string]string{"A": "1", "B": "{{slot}}"},
		WorkingDirectory: "{{slot_dir}}",
		ExecStartPre:     []string{"/bin/true", "{{slot_dir}}/migrate"},
		Restart:          "always",
	}
	r.Slots = spec.Slots{BluePort: 8081, GreenPort: 8082, KeepOld: spec.KeepCold}
	r.Traffic = spec.Traffic{Mode: spec.TrafficExec, Listen: ":8080", Command: []string{"/lb", "{{port}}"}}
	r.Target = spec.Target{Cells: []string{"eu-*"}, Exclude: []string{"eu-db"}, Labels: map[string]string{"tier": "edge"}}
	r.Phases = spec.Phases{Canary: 2, Growth: spec.GrowthLinear, Factor: 1.5, Step: 4,
		MaxSize: spec.Quantity{Value: 25, Percent: true}, PerCellMax: 10, ParallelCellsAfter: 3, ParallelRegionsAfter: 2}
	r.Bake = spec.Bake{First: 45 * time.Minute, Decay: 0.75, Min: 1500 * time.Millisecond}
	r.Health = spec.Health{
		Checks: []spec.Check{
			{Kind: spec.CheckHTTP, Name: "ready", URL: "http://127.0.0.1:{{port}}/ready", ExpectStatus: 204, BodyMatch: "ok", Interval: 3 * time.Second, Timeout: 500 * time.Millisecond},
			{Kind: spec.CheckTCP, Name: "tcp", Address: "127.0.0.1:{{port}}", Interval: time.Second, Timeout: time.Second},
			{Kind: spec.CheckExec, Name: "probe", Command: []string{"/probe", "{{port}}"}, Interval: time.Second, Timeout: time.Second},
			{Kind: spec.CheckUnit, Name: "unit", Interval: time.Second, Timeout: time.Second},
		},
		MinHealthyTime:  20 * time.Second,
		HealthyDeadline: 5 * time.Minute,
	}
	r.Gates = spec.Gates{MaxFailedHosts: spec.Quantity{Value: 5, Percent: true}, MaxUnreachable: spec.Quantity{Value: 2},
		MaxCPUPercent: 90.5, MaxMemPercent: 80, MaxRestarts: 3, Baseline: spec.BaselineCompare, BaselineMinSamples: 50,
		MaxErrorRate: 0.015, MaxLatencyP99: 300 * time.Millisecond, MinRequests: 250}
	r.Rollback = spec.Rollback{OnFailure: spec.OnFailurePause, IsolationTimeout: time.Minute, Rehearse: true, MaxRollbackTime: 45 * time.Second}
	r.Approval = spec.Approval{AfterPhases: []int{0, 2}}
	r.Converge = spec.ConvergeAuto
	r.Hooks = []spec.Hook{
		{Name: speccore.HookPreSwitch, Exec: []string{"/usr/local/bin/warm", "{{port}}"}, Timeout: 10 * time.Second},
		{Name: speccore.HookPostSwitch, Exec: []string{"{{slot_dir}}/smoke"}, Timeout: time.Minute},
	}
	return r
}

func TestRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		r    func(t *testing.T) *spec.Release
	}{
		// Every field set.
		{"full", func(*testing.T) *spec.Release { return fullRelease() }},
		// The DESIGN.md example as parsed.
		{"design example", parse("../../../examples/release.hcl")},
		// Only required fields: defaults and empty lists/maps.
		{"minimal", parse("../testdata/good/minimal.hcl")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.r(t)
			if err := want.Validate(); err != nil {
				t.Fatalf("fixture invalid: %v", err)
			}
			p := ToProto(want)
			// Through the wire format too, as the log stores it.
			b, err := proto.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			var decoded rollwavev1.ReleaseSpec
			if err := proto.Unmarshal(b, &decoded); err != nil {
				t.Fatal(err)
			}
			got := FromProto(&decoded)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, want)
			}
			if back := ToProto(got); !proto.Equal(back, p) {
				t.Fatalf("proto round trip differs:\n got %v\nwant %v", back, p)
			}
		})
	}
}

func parse(name string) func(t *testing.T) *spec.Release {
	return func(t *testing.T) *spec.Release {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		r, err := spec.ParseRelease(name, src)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
}

func TestFields(t *testing.T) {
	p := ToProto(fullRelease())
	// Durations travel as milliseconds, quantities as value+percent.
	if p.GetBake().GetFirstMs() != 45*60*1000 || p.GetBake().GetMinMs() != 1500 ||
		p.GetHealth().GetChecks()[0].GetTimeoutMs() != 500 || p.GetRollback().GetIsolationTimeoutMs() != 60000 {
		t.Errorf("durations: %v %v", p.GetBake(), p.GetHealth())
	}
	if q := p.GetPhases().GetMaxSize(); q.GetValue() != 25 || !q.GetPercent() {
		t.Errorf("max_size: %v", q)
	}
	if q := p.GetGates().GetMaxUnreachable(); q.GetValue() != 2 || q.GetPercent() {
		t.Errorf("max_unreachable: %v", q)
	}
	if p.GetConverge() != "auto" {
		t.Errorf("converge: %q", p.GetConverge())
	}
}

func TestNilAndEmpty(t *testing.T) {
	if ToProto(nil) != nil || FromProto(nil) != nil {
		t.Fatal("nil must map to nil")
	}
	// A spec with no sub-messages decodes to zero values, which Validate
	// then rejects: nothing panics.
	r := FromProto(&rollwavev1.ReleaseSpec{Name: "x"})
	if r.Name != "x" || r.Slots.BluePort != 0 || r.Health.Checks != nil {
		t.Fatalf("got %+v", r)
	}
	if err := r.Validate(); err == nil {
		t.Fatal("an empty spec validated")
	}
}

func TestNoAliasing(t *testing.T) {
	r := fullRelease()
	p := ToProto(r)
	p.Unit.Environment["A"] = "changed"
	p.Target.Cells[0] = "changed"
	if r.Unit.Environment["A"] != "1" || r.Target.Cells[0] != "eu-*" {
		t.Fatal("ToProto shares maps or slices with its input")
	}
	back := FromProto(p)
	back.Health.Checks[2].Command[0] = "changed"
	if p.Health.Checks[2].Command[0] != "/probe" {
		t.Fatal("FromProto shares slices with its input")
	}
}
