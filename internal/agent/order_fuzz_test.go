package agent

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/rollwave/rollwave/internal/deploy/slot"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// FuzzAssignmentOrder feeds arbitrary bytes to what the agent does with an
// assignment order before any slot is touched: decode, port shift, local
// policy, unit rendering. None of it may panic, whatever a coordinator (or
// someone holding its certificate) sends.
func FuzzAssignmentOrder(f *testing.F) {
	seed := &rollwavev1.AssignmentOrder{
		Assignment: &rollwavev1.Assignment{Host: "h1", App: "demo", Generation: 2, Version: "2.0.0"},
		Spec: &rollwavev1.ReleaseSpec{App: "demo", Version: "2.0.0",
			Artifact: &rollwavev1.Artifact{Url: "https://artifacts.internal/demo.tgz", Sha256: "00"},
			Unit:     &rollwavev1.UnitSpec{ExecStart: "{{slot_dir}}/bin/demo -listen 127.0.0.1:{{port}}", User: "demo", Environment: map[string]string{"A": "b"}},
			Slots:    &rollwavev1.SlotsSpec{BluePort: 8081, GreenPort: 8082},
			Traffic:  &rollwavev1.TrafficSpec{Mode: "proxy", Listen: "127.0.0.1:8080"}},
	}
	b, _ := proto.Marshal(seed)
	f.Add(b)
	f.Add([]byte{})
	f.Add([]byte{0x12, 0x02, 0x1a, 0x00})
	policy := Policy{ArtifactPrefixes: []string{"https://artifacts.internal/"}, UnitUsers: []string{"demo"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		var o rollwavev1.AssignmentOrder
		if err := proto.Unmarshal(data, &o); err != nil {
			return
		}
		spec := o.GetSpec()
		_ = shiftPorts(spec, 7)
		_ = policy.Check(spec)
		if spec == nil {
			return
		}
		u, err := slot.RenderUnit(spec, o.GetAssignment().GetApp(), slot.Green, o.GetAssignment().GetVersion(), "/var/lib/rollwave-agent/apps/x/green", 8082)
		if err == nil && len(u.ExecStart) == 0 && spec.GetUnit().GetExecStart() != "" {
			t.Fatalf("a non-empty exec_start rendered to no command: %q", spec.GetUnit().GetExecStart())
		}
	})
}
