package agent

import (
	"testing"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func TestShiftPorts(t *testing.T) {
	spec := &rollwavev1.ReleaseSpec{
		Slots:   &rollwavev1.SlotsSpec{BluePort: 8081, GreenPort: 8082},
		Traffic: &rollwavev1.TrafficSpec{Listen: "127.0.0.1:8080"},
	}
	if err := shiftPorts(spec, 0); err != nil || spec.GetSlots().GetBluePort() != 8081 {
		t.Fatalf("offset 0 must change nothing: %v %v", spec, err)
	}
	if err := shiftPorts(spec, 100); err != nil {
		t.Fatal(err)
	}
	if spec.GetSlots().GetBluePort() != 8181 || spec.GetSlots().GetGreenPort() != 8182 || spec.GetTraffic().GetListen() != "127.0.0.1:8180" {
		t.Fatalf("shifted spec wrong: %v", spec)
	}
	bad := &rollwavev1.ReleaseSpec{Traffic: &rollwavev1.TrafficSpec{Listen: "nonsense"}}
	if err := shiftPorts(bad, 1); err == nil {
		t.Fatal("a traffic address without a port must be an error")
	}
}
