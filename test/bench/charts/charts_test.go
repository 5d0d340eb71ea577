package charts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollwave/rollwave/test/bench/fleet"
	"github.com/rollwave/rollwave/test/bench/realhost"
)

func TestWriteDrawsEveryChartWithData(t *testing.T) {
	dir := t.TempDir()
	var rs []*fleet.Result
	for i, n := range []int{1000, 500, 2000} {
		rs = append(rs, &fleet.Result{N: n,
			Coordinators: []fleet.CoordUsage{{Name: "c1", Leader: true, PeakRSSMiB: float64(60 + 70*i)}},
			Rollout:      &fleet.RolloutResult{PhaseOverhead: fleet.Dist{P50: 10, P99: float64(100 * (i + 1))}}})
	}
	kill := &fleet.Result{N: 200, Kill: &fleet.KillResult{Seconds: []float64{0.9, 1.0, 1.1, 0.95, 1.3, 0.97}}}
	rh := &realhost.Result{Hosts: 50, Phases: []int{1, 2, 5}, Rounds: []realhost.Round{
		{Version: "v1", RollwaveSeconds: 4, AnsibleSeconds: 30}, {Version: "v2", RollwaveSeconds: 4.2, AnsibleSeconds: 31}},
		RollwaveMedian: 4.1, AnsibleMedian: 30.5, AnsibleFreeMedian: 28,
		Rollback: &realhost.Rollback{RollwaveSeconds: 1.2, AnsibleSeconds: 9},
		BadHost:  &realhost.BadHost{RollwaveOldSeconds: 14, AnsibleOldSeconds: 40}}
	files, err := Write(dir, Input{Fleet: rs, Kill: kill, RealHost: rh})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"leader-memory.svg", "phase-overhead.svg", "failover.svg", "ansible.svg"}
	if len(files) != len(want) {
		t.Fatalf("wrote %v, want %v", files, want)
	}
	for _, name := range want {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "<svg") {
			t.Errorf("%s is not an SVG: %.80q", name, b)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "ansible.svg"))
	for _, text := range []string{"Ansible serial", "strategy free", "rollback", "one bad host"} {
		if !strings.Contains(string(b), text) {
			t.Errorf("ansible.svg has no %q", text)
		}
	}
}

func TestWriteSkipsChartsWithoutData(t *testing.T) {
	dir := t.TempDir()
	files, err := Write(dir, Input{Fleet: []*fleet.Result{{N: 1000}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 0 {
		t.Fatalf("one fleet size and nothing else drew %v; want no charts", files)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("files left in %s: %v", dir, entries)
	}
}
