//go:build linux

package slot

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

const (
	stStaging  = rollwavev1.AssignmentState_ASSIGNMENT_STATE_STAGING
	stSwitched = rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED
	stBaking   = rollwavev1.AssignmentState_ASSIGNMENT_STATE_BAKING
	stFailed   = rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED
	stRevertng = rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTING
	stReverted = rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED
)

func TestSwapAndRevertThroughProxy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustSwap(1, "v1")
	mustBody(t, e.proxyAddr(), "v1")
	if st := e.state(); st.Active != Blue {
		t.Fatalf("first deploy went to %s, want blue", st.Active)
	}

	// A connection opened before the switch stays on v1.
	old := dialKeepAlive(t, e.proxyAddr())
	if got := old.get(t); got != "v1" {
		t.Fatalf("long-lived connection got %q before the switch", got)
	}
	e.mustSwap(2, "v2")
	mustBody(t, e.proxyAddr(), "v2")
	if got := old.get(t); got != "v1" {
		t.Fatalf("long-lived connection opened before the switch got %q, want v1", got)
	}
	old.c.Close()
	if got, want := e.prog.states(2), []rollwavev1.AssignmentState{stStaging, stSwitched, stBaking}; !slices.Equal(got, want) {
		t.Fatalf("progress of generation 2 = %v, want %v", got, want)
	}
	// keep_old=hot: both run during the bake.
	if got := e.running(); len(got) != 2 {
		t.Fatalf("running during a hot bake = %v, want both", got)
	}

	ctx := context.Background()
	if err := e.m.Revert(ctx, testApp, "operator rollback", false); err != nil {
		t.Fatal(err)
	}
	mustBody(t, e.proxyAddr(), "v1")
	if got := e.running(); !slices.Equal(got, []Name{Blue}) {
		t.Fatalf("running after revert = %v, want [blue]", got)
	}
	if got := e.prog.states(2); !slices.Equal(got[len(got)-2:], []rollwavev1.AssignmentState{stRevertng, stReverted}) {
		t.Fatalf("progress after revert = %v", got)
	}
	// The traffic moves carry their evidence (the per-host audit events,
	// issue 13 item 8): blue v1 → green v2, then back.
	for _, want := range []struct {
		state rollwavev1.AssignmentState
		ev    map[string]string
	}{
		{stSwitched, map[string]string{EvidenceFromSlot: "blue", EvidenceToSlot: "green", EvidenceFromVersion: "v1", EvidenceToVersion: "v2"}},
		{stReverted, map[string]string{EvidenceFromSlot: "green", EvidenceToSlot: "blue", EvidenceFromVersion: "v2", EvidenceToVersion: "v1"}},
	} {
		var got map[string]string
		for _, p := range e.prog.all(2) {
			if p.state == want.state {
				got = p.evidence
			}
		}
		if !maps.Equal(got, want.ev) {
			t.Errorf("%s evidence = %v, want %v", want.state, got, want.ev)
		}
	}
	// Reverting again is a no-op.
	if err := e.m.Revert(ctx, testApp, "again", false); err != nil {
		t.Fatal(err)
	}
	// The next generation goes to the idle slot again (green).
	e.mustSwap(3, "v3")
	mustBody(t, e.proxyAddr(), "v3")
	if st := e.state(); st.Active != Green || st.Slots[Green].Version != "v3" {
		t.Fatalf("state after v3: active %s, %+v", st.Active, st.Slots[Green])
	}
}

func TestSwapChecksumMismatchKeepsServing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustSwap(1, "v1")
	spec := e.spec("v2")
	spec.Artifact.Sha256 = strings.Repeat("ab", 32)
	err := e.swap(2, spec)
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("swap with a wrong sha256: err = %v, want ErrChecksum", err)
	}
	ev := e.prog.last(2)
	if ev.state != stFailed || !strings.Contains(ev.reason, "checksum") || !strings.Contains(ev.reason, strings.Repeat("ab", 32)) || strings.Contains(ev.reason, testArtifact.sha) {
		t.Fatalf("last progress = %+v, want FAILED naming the checksum", ev)
	}
	mustBody(t, e.proxyAddr(), "v1")
	if got := e.running(); !slices.Equal(got, []Name{Blue}) {
		t.Fatalf("running = %v, want [blue]", got)
	}
	if st := e.state(); st.Active != Blue || st.Phase != stFailed.String() {
		t.Fatalf("state: active %s phase %s", st.Active, st.Phase)
	}
	// A revert order for the failed generation has nothing to move.
	if err := e.m.Revert(context.Background(), testApp, "rollback", false); err != nil {
		t.Fatal(err)
	}
	mustBody(t, e.proxyAddr(), "v1")
}

func TestSwapUnsafeArchiveKeepsServing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustSwap(1, "v1")
	bad := tarGz([]tarEntry{{name: "bin/", dir: true}, {name: "../evil", body: []byte("pwned")}})
	p := filepath.Join(t.TempDir(), "bad.tar.gz")
	if err := os.WriteFile(p, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	spec := e.spec("v2")
	spec.Artifact = &rollwavev1.Artifact{Url: "file://" + p, Sha256: sha256Hex(bad)}
	err := e.swap(2, spec)
	if !errors.Is(err, ErrUnsafeArchive) {
		t.Fatalf("err = %v, want ErrUnsafeArchive", err)
	}
	if ev := e.prog.last(2); ev.state != stFailed || !strings.Contains(ev.reason, "../evil") {
		t.Fatalf("last progress = %+v, want FAILED naming ../evil", ev)
	}
	_ = filepath.WalkDir(e.dataDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "evil" {
			t.Errorf("%s was written", path)
		}
		return nil
	})
	mustBody(t, e.proxyAddr(), "v1")
}

func TestSwapNotReadyKeepsServing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustSwap(1, "v1")
	spec := e.spec("v2")
	spec.Unit.ExecStart += " -healthy=false"
	spec.Health.HealthyDeadlineMs = 300
	err := e.swap(2, spec)
	if err == nil {
		t.Fatal("swap of an unhealthy version succeeded")
	}
	if ev := e.prog.last(2); ev.state != stFailed || !strings.Contains(ev.reason, "ready") {
		t.Fatalf("last progress = %+v", ev)
	}
	mustBody(t, e.proxyAddr(), "v1")
	if got := e.running(); !slices.Equal(got, []Name{Blue}) {
		t.Fatalf("running = %v, want [blue]", got)
	}
}

func TestSwapBadTemplateFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustSwap(1, "v1")
	spec := e.spec("v2")
	spec.Unit.ExecStart = "{{slot_dir}}/bin/httpd -listen 127.0.0.1:{{prot}}"
	if err := e.swap(2, spec); !errors.Is(err, ErrTemplate) {
		t.Fatalf("err = %v, want ErrTemplate", err)
	}
	if ev := e.prog.last(2); ev.state != stFailed || !strings.Contains(ev.reason, "{{prot}}") {
		t.Fatalf("last progress = %+v", ev)
	}
	mustBody(t, e.proxyAddr(), "v1")
}

func TestSwapIdempotentByGeneration(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustSwap(1, "v1")
	e.mustSwap(2, "v2")
	pid := e.m.ActivePID(testApp)
	if pid == 0 {
		t.Fatal("no active pid")
	}
	before := len(e.prog.states(2))
	// Same generation again: not redone, the last result is re-reported.
	e.mustSwap(2, "v2")
	if got := e.m.ActivePID(testApp); got != pid {
		t.Fatalf("active pid changed %d -> %d: generation 2 was redone", pid, got)
	}
	if got := e.prog.states(2)[before:]; !slices.Equal(got, []rollwavev1.AssignmentState{stBaking}) {
		t.Fatalf("re-sent generation reported %v, want [BAKING]", got)
	}
	// An older generation is refused.
	if err := e.swap(1, e.spec("v1")); !errors.Is(err, ErrStaleGeneration) {
		t.Fatalf("older generation: err = %v, want ErrStaleGeneration", err)
	}
	mustBody(t, e.proxyAddr(), "v2")
}

func TestFinalizeStopsHotOldSlot(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustSwap(1, "v1")
	e.mustSwap(2, "v2")
	if err := e.m.MarkHealthy(testApp, 2, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Finalize(context.Background(), testApp, 2); err != nil {
		t.Fatal(err)
	}
	if got := e.running(); !slices.Equal(got, []Name{Green}) {
		t.Fatalf("running after finalize = %v, want [green]", got)
	}
	if _, err := os.Stat(filepath.Join(e.dataDir, "apps", testApp, "blue", "bin", "httpd")); err != nil {
		t.Fatalf("old slot files not kept: %v", err)
	}
	if st := e.state(); st.Phase != rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED.String() {
		t.Fatalf("phase %s", st.Phase)
	}
	// A finalized generation can still be rolled back: the old slot comes up.
	if err := e.m.Revert(context.Background(), testApp, "release rolled back", false); err != nil {
		t.Fatal(err)
	}
	mustBody(t, e.proxyAddr(), "v1")
	if err := e.m.Finalize(context.Background(), testApp, 1); !errors.Is(err, ErrStaleGeneration) {
		t.Fatalf("finalize of an old generation: %v", err)
	}
}

func TestKeepOldColdStopsOldSlot(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustSwap(1, "v1")
	spec := e.spec("v2")
	spec.Slots.KeepOld = "cold"
	if err := e.swap(2, spec); err != nil {
		t.Fatal(err)
	}
	if got := e.running(); !slices.Equal(got, []Name{Green}) {
		t.Fatalf("running with keep_old=cold = %v, want [green]", got)
	}
	// Revert brings the stopped old slot back up.
	if err := e.m.Revert(context.Background(), testApp, "lost leader", true); err != nil {
		t.Fatal(err)
	}
	mustBody(t, e.proxyAddr(), "v1")
	if ev := e.prog.last(2); ev.state != rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED {
		t.Fatalf("last progress = %+v, want REVERTED_ISOLATED", ev)
	}
}

func TestIsolatedRevertRefusedWhenVerified(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustSwap(1, "v1")
	e.mustSwap(2, "v2")
	if err := e.m.MarkVerified(testApp, 2); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Revert(context.Background(), testApp, "lost leader", true); !errors.Is(err, ErrVerified) {
		t.Fatalf("isolated revert of a verified phase: %v, want ErrVerified", err)
	}
	mustBody(t, e.proxyAddr(), "v2")
	// An ordered revert still works.
	if err := e.m.Revert(context.Background(), testApp, "rollback", false); err != nil {
		t.Fatal(err)
	}
	mustBody(t, e.proxyAddr(), "v1")
}

func TestRevertFirstDeployRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.m.Revert(context.Background(), testApp, "x", false); !errors.Is(err, ErrNothingToRevert) {
		t.Fatalf("revert on a fresh host: %v", err)
	}
	e.mustSwap(1, "v1")
	if err := e.m.Revert(context.Background(), testApp, "x", false); !errors.Is(err, ErrNothingToRevert) {
		t.Fatalf("revert of the first deploy: %v", err)
	}
	mustBody(t, e.proxyAddr(), "v1")
}

func TestReconcileAfterRestartKeepsHotBake(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustSwap(1, "v1")
	e.mustSwap(2, "v2")
	// The agent restarts but the slots survive (as under systemd).
	e.m.Close()
	leftover := filepath.Join(e.dataDir, "apps", testApp, ".stage-blue-123")
	if err := os.MkdirAll(leftover, 0o755); err != nil {
		t.Fatal(err)
	}
	e.restart(e.drv)
	if err := e.m.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitBody(t, e.proxyAddr(), "v2")
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("leftover of an interrupted stage not removed: %v", err)
	}
	if got := e.running(); len(got) != 2 {
		t.Fatalf("running after reconcile during a hot bake = %v, want both", got)
	}
	facts := e.m.Facts()
	if len(facts) != 1 || facts[0].Active != rollwavev1.Slot_SLOT_GREEN || facts[0].BlueVersion != "v1" ||
		facts[0].GreenVersion != "v2" || facts[0].GreenState != "active" {
		t.Fatalf("facts = %v", facts)
	}
	if a := e.m.Applied(); len(a) != 1 || a[0].Generation != 2 || a[0].State != stBaking {
		t.Fatalf("applied = %v", a)
	}
	// After finalize a reconcile stops a stray old slot.
	if err := e.m.Finalize(context.Background(), testApp, 2); err != nil {
		t.Fatal(err)
	}
	if err := e.drv.Start(context.Background(), testApp, Blue); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.running(); !slices.Equal(got, []Name{Green}) {
		t.Fatalf("running = %v, want [green]", got)
	}
}

func TestReconcileCorruptState(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := filepath.Join(e.dataDir, "apps", testApp)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := e.m.Reconcile(context.Background())
	if !errors.Is(err, ErrCorruptState) {
		t.Fatalf("err = %v, want ErrCorruptState", err)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "state.json.corrupt-*"))
	if len(matches) != 1 {
		t.Fatalf("corrupt file not kept aside: %v", matches)
	}
	// The app is refused until an operator acts.
	if err := e.swap(1, e.spec("v1")); !errors.Is(err, ErrCorruptState) {
		t.Fatalf("swap on a corrupt app: %v", err)
	}
}

func TestManagerConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  ManagerConfig
	}{
		{"no data dir", ManagerConfig{Driver: NewFakeDriverForTest()}},
		{"relative data dir", ManagerConfig{DataDir: "rel", Driver: NewFakeDriverForTest()}},
		{"no driver", ManagerConfig{DataDir: "/tmp/x"}},
	}
	for _, c := range cases {
		if _, err := NewManager(c.cfg); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
}

// NewFakeDriverForTest returns a driver for config tests only.
func NewFakeDriverForTest() Driver {
	d, _ := NewProcessDriver(ProcessConfig{StopTimeout: time.Second})
	return d
}

func TestSwapMovesProxyToNewListenAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustSwap(1, "v1")
	oldAddr := e.proxyAddr()
	e.prox = freePort(t)
	e.mustSwap(2, "v2")
	mustBody(t, e.proxyAddr(), "v2")
	if _, err := get(oldAddr); err == nil {
		t.Fatal("old proxy address still served after the traffic spec moved")
	}
}

func TestSwapSwitchFailureKeepsOldProxy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustSwap(1, "v1")
	oldAddr := e.proxyAddr()
	// The new listen address is taken: the new switch cannot be built.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	spec := e.spec("v2")
	spec.Traffic.Listen = busy.Addr().String()
	if err := e.swap(2, spec); !errors.Is(err, ErrSwitch) {
		t.Fatalf("err = %v, want ErrSwitch", err)
	}
	if ev := e.prog.last(2); ev.state != stFailed || !strings.Contains(ev.reason, "switch") {
		t.Fatalf("last progress = %+v", ev)
	}
	mustBody(t, oldAddr, "v1")
	if got := e.running(); !slices.Equal(got, []Name{Blue}) {
		t.Fatalf("running = %v, want [blue]", got)
	}
}

func TestRevertAfterRestartUsesOnlyTheStateFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustSwap(1, "v1")
	spec := e.spec("v2")
	spec.Slots.KeepOld = "cold"
	if err := e.swap(2, spec); err != nil {
		t.Fatal(err)
	}
	// The agent dies with everything it ran; a new one comes up and loses
	// the leader before it even reconciled.
	e.m.Close()
	e.drv.kill()
	e.restart(newTestDriver(t))
	if err := e.m.Revert(context.Background(), testApp, "isolated", true); err != nil {
		t.Fatal(err)
	}
	mustBody(t, e.proxyAddr(), "v1")
	if got := e.running(); !slices.Equal(got, []Name{Blue}) {
		t.Fatalf("running = %v, want [blue]", got)
	}
	if a := e.m.Applied(); len(a) != 1 || a[0].State != rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED {
		t.Fatalf("applied = %v", a)
	}
}

// post_rollout.keep_old = "stopped": a verified generation's hot old slot
// is stopped, stays stopped across an agent restart, and an ordered
// revert starts it again before switching back.
func TestStopOldForTheWatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustSwap(1, "v1")
	e.mustSwap(2, "v2")
	if got := e.running(); !slices.Equal(got, []Name{Blue, Green}) {
		t.Fatalf("running during a hot bake = %v, want both", got)
	}
	if err := e.m.StopOld(context.Background(), testApp, 1); !errors.Is(err, ErrStaleGeneration) {
		t.Fatalf("stop old of an old generation: %v", err)
	}
	if err := e.m.StopOld(context.Background(), testApp, 2); err != nil {
		t.Fatal(err)
	}
	if got := e.running(); !slices.Equal(got, []Name{Green}) {
		t.Fatalf("running after StopOld = %v, want [green]", got)
	}
	if err := e.m.StopOld(context.Background(), testApp, 2); err != nil {
		t.Fatalf("second StopOld: %v", err)
	}
	// An agent restart keeps it stopped.
	e.m.Close()
	e.drv.kill()
	e.restart(newTestDriver(t))
	if err := e.m.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.running(); !slices.Equal(got, []Name{Green}) {
		t.Fatalf("running after a restart = %v, want [green]", got)
	}
	if err := e.m.Revert(context.Background(), testApp, "watch gate failed", false); err != nil {
		t.Fatal(err)
	}
	mustBody(t, e.proxyAddr(), "v1")
}

// An isolated revert reports how it ended, never REVERTING: that report
// would reach the leader only after the link heals, ahead of the
// REVERTED_ISOLATED, and read as a host that failed. While one is under
// way (the agent died in the middle of it), the hello's Applied leaves the
// app out rather than say REVERTING.
func TestIsolatedRevertReportsOnlyItsEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mustSwap(1, "v1")
	e.mustSwap(2, "v2")
	e.m.crashPoint = func(p string) error {
		if p == OpRevert+"/"+StepSwitchBack+"/begin" {
			return errors.New("agent killed")
		}
		return nil
	}
	if err := e.m.Revert(context.Background(), testApp, "no leader ack", true); err == nil {
		t.Fatal("revert crashed at switch_back: no error")
	}
	if got := e.prog.states(2); slices.Contains(got, stRevertng) {
		t.Fatalf("progress of an isolated revert under way = %v, want no REVERTING", got)
	}
	if a := e.m.Applied(); len(a) != 0 {
		t.Fatalf("applied during an isolated revert under way = %v, want none", a)
	}
	e.m.crashPoint = nil
	if err := e.m.Revert(context.Background(), testApp, "no leader ack", true); err != nil {
		t.Fatal(err)
	}
	mustBody(t, e.proxyAddr(), "v1")
	got := e.prog.states(2)
	if slices.Contains(got, stRevertng) || got[len(got)-1] != rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED {
		t.Fatalf("progress of an isolated revert = %v, want it to end REVERTED_ISOLATED without REVERTING", got)
	}
	if a := e.m.Applied(); len(a) != 1 || a[0].State != rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED_ISOLATED {
		t.Fatalf("applied = %v, want REVERTED_ISOLATED", a)
	}
}
