//go:build linux

package slot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// hookDir holds a test's hook scripts and what they record.
type hookDir struct {
	t   *testing.T
	dir string
}

func newHookDir(t *testing.T) *hookDir { return &hookDir{t: t, dir: t.TempDir()} }

// script writes an executable shell script and returns its path.
func (h *hookDir) script(name, body string) string {
	h.t.Helper()
	p := filepath.Join(h.dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		h.t.Fatal(err)
	}
	return p
}

// recorder is a hook that appends "<hook> <version>" to calls and dumps
// its ROLLWAVE_ environment to env-<hook>-<version>.
func (h *hookDir) recorder() string {
	return h.script("record.sh", `echo "$ROLLWAVE_HOOK $ROLLWAVE_VERSION" >> `+h.dir+`/calls
env | grep '^ROLLWAVE_' | sort > `+h.dir+`/env-"$ROLLWAVE_HOOK"-"$ROLLWAVE_VERSION"
pwd > `+h.dir+`/pwd-"$ROLLWAVE_HOOK"-"$ROLLWAVE_VERSION"`)
}

func (h *hookDir) calls() []string {
	b, err := os.ReadFile(filepath.Join(h.dir, "calls"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		h.t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), " ", "@"))
}

func (h *hookDir) read(name string) string {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(h.dir, name))
	if err != nil {
		h.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// withHooks sets spec's hooks: name → exec.
func withHooks(spec *rollwavev1.ReleaseSpec, timeout time.Duration, hooks map[string][]string) *rollwavev1.ReleaseSpec {
	for _, n := range []string{StepPreSwitch, StepPostSwitch, StepDrain, StepPreRevert, StepPostRevert} {
		if argv, ok := hooks[n]; ok {
			spec.Hooks = append(spec.Hooks, &rollwavev1.HookSpec{Name: n, Exec: argv, TimeoutMs: timeout.Milliseconds()})
		}
	}
	return spec
}

func allHooks(exe string) map[string][]string {
	return map[string][]string{StepPreSwitch: {exe}, StepPostSwitch: {exe}, StepDrain: {exe}, StepPreRevert: {exe}, StepPostRevert: {exe}}
}

// Every hook runs at its place, in the new slot's directory, with the
// release context in its environment; a release without hooks has no
// hook steps.
func TestHooksRunInOrderWithReleaseContext(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := newHookDir(t)
	exe := h.recorder()
	ctx := context.Background()
	if err := e.swap(1, withHooks(e.spec("v1"), 10*time.Second, allHooks(exe))); err != nil {
		t.Fatal(err)
	}
	// First deploy: nothing to drain.
	if got, want := h.calls(), []string{"pre_switch@v1", "post_switch@v1"}; !slices.Equal(got, want) {
		t.Fatalf("hooks of the first deploy = %q, want %q", got, want)
	}
	if err := e.swap(2, withHooks(e.spec("v2"), 10*time.Second, allHooks(exe))); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Revert(ctx, testApp, "operator rollback", false); err != nil {
		t.Fatal(err)
	}
	mustBody(t, e.proxyAddr(), "v1")
	if err := e.swap(3, withHooks(e.spec("v3"), 10*time.Second, allHooks(exe))); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Finalize(ctx, testApp, 3); err != nil {
		t.Fatal(err)
	}
	want := []string{"pre_switch@v1", "post_switch@v1",
		"pre_switch@v2", "post_switch@v2", "pre_revert@v2", "post_revert@v2",
		"pre_switch@v3", "post_switch@v3", "drain@v3"}
	if got := h.calls(); !slices.Equal(got, want) {
		t.Fatalf("hooks = %q\nwant %q", got, want)
	}
	// Generation 2 went blue (v1) → green (v2); its revert hooks see the
	// same context: the release's slot and the slot traffic goes back to.
	dir := e.m.slotDir(testApp, Green)
	wantEnv := strings.Join([]string{
		"ROLLWAVE_APP=web", "ROLLWAVE_HOOK=post_revert", "ROLLWAVE_HOST=" + e.m.cfg.Host,
		"ROLLWAVE_OLD_PORT=" + strconv.Itoa(e.blue), "ROLLWAVE_OLD_SLOT=blue",
		"ROLLWAVE_PORT=" + strconv.Itoa(e.green), "ROLLWAVE_PREVIOUS_VERSION=v1", "ROLLWAVE_RELEASE=web-v2",
		"ROLLWAVE_SLOT=green", "ROLLWAVE_SLOT_DIR=" + dir, "ROLLWAVE_VERSION=v2",
	}, "\n")
	if got := h.read("env-post_revert-v2"); got != wantEnv {
		t.Errorf("post_revert environment:\n%s\nwant\n%s", got, wantEnv)
	}
	if got := h.read("env-pre_switch-v1"); !strings.Contains(got, "ROLLWAVE_OLD_SLOT=\n") || !strings.Contains(got, "ROLLWAVE_PREVIOUS_VERSION=\n") {
		t.Errorf("first deploy's hooks have an old slot: %s", got)
	}
	if got := h.read("pwd-pre_switch-v2"); got != dir {
		t.Errorf("hook ran in %s, want the new slot's directory %s", got, dir)
	}
	if e.m.cfg.Host == "" {
		t.Error("ROLLWAVE_HOST is empty")
	}
}

// A failing pre_switch aborts the swap before traffic moves: the old slot
// keeps serving, the new one is stopped, FAILED names the hook and its
// output.
func TestPreSwitchHookFailureKeepsOldServing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := newHookDir(t)
	e.mustSwap(1, "v1")
	fail := h.script("warm.sh", `echo "cache not warm on port $ROLLWAVE_PORT" >&2; exit 3`)
	err := e.swap(2, withHooks(e.spec("v2"), 10*time.Second, map[string][]string{StepPreSwitch: {fail}}))
	if !errors.Is(err, ErrHookFailed) {
		t.Fatalf("swap error = %v, want a hook failure", err)
	}
	mustBody(t, e.proxyAddr(), "v1")
	if got := e.running(); !slices.Equal(got, []Name{Blue}) {
		t.Fatalf("running = %v, want [blue]", got)
	}
	last := e.prog.last(2)
	if last.state != stFailed || !strings.Contains(last.reason, "pre_switch hook failed: exit status 3") ||
		!strings.Contains(last.reason, "cache not warm on port "+strconv.Itoa(e.green)) {
		t.Fatalf("last report = %s %q", last.state, last.reason)
	}
	if slices.Contains(e.prog.states(2), stSwitched) {
		t.Fatalf("traffic moved: %v", e.prog.states(2))
	}
}

// A failing post_switch is a failed smoke test: the host reverts at once
// and reports REVERTED with the hook's output; on the app's first deploy
// there is nothing to go back to and the host reports FAILED.
func TestPostSwitchHookFailureReverts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := newHookDir(t)
	smoke := h.script("smoke.sh", `echo "smoke: GET / on $ROLLWAVE_SLOT answered 500"; exit 1`)
	err := e.swap(1, withHooks(e.spec("v1"), 10*time.Second, map[string][]string{StepPostSwitch: {smoke}}))
	if !errors.Is(err, ErrHookFailed) {
		t.Fatalf("first deploy: swap error = %v, want a hook failure", err)
	}
	if last := e.prog.last(1); last.state != stFailed || !strings.Contains(last.reason, "no old version to go back to") {
		t.Fatalf("first deploy: last report = %s %q", last.state, last.reason)
	}
	mustBody(t, e.proxyAddr(), "v1")

	e.mustSwap(2, "v2") // green
	err = e.swap(3, withHooks(e.spec("v3"), 10*time.Second, map[string][]string{StepPostSwitch: {smoke}}))
	if !errors.Is(err, ErrHookFailed) {
		t.Fatalf("swap error = %v, want a hook failure", err)
	}
	if got, want := e.prog.states(3), []rollwavev1.AssignmentState{stStaging, stSwitched, stRevertng, stReverted}; !slices.Equal(got, want) {
		t.Fatalf("progress = %v, want %v", got, want)
	}
	last := e.prog.last(3)
	if !strings.Contains(last.reason, "post_switch hook failed: exit status 1") || !strings.Contains(last.reason, "smoke: GET / on blue answered 500") {
		t.Fatalf("REVERTED reason = %q", last.reason)
	}
	if last.evidence[EvidenceToSlot] != "green" || last.evidence[EvidenceToVersion] != "v2" {
		t.Fatalf("REVERTED evidence = %v", last.evidence)
	}
	mustBody(t, e.proxyAddr(), "v2")
	if got := e.running(); !slices.Equal(got, []Name{Green}) {
		t.Fatalf("running = %v, want [green]", got)
	}
	// The agent retrying the same generation does not redo it.
	if err := e.swap(3, e.spec("v3")); err != nil {
		t.Fatal(err)
	}
	mustBody(t, e.proxyAddr(), "v2")
}

// A hook past its timeout is killed with everything it started, and
// fails.
func TestHookTimeoutKillsIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := newHookDir(t)
	e.mustSwap(1, "v1")
	hang := h.script("hang.sh", `echo started; sleep 600 & echo $! > `+h.dir+`/child; wait`)
	err := e.swap(2, withHooks(e.spec("v2"), 300*time.Millisecond, map[string][]string{StepPreSwitch: {hang}}))
	if !errors.Is(err, ErrHookFailed) || !strings.Contains(err.Error(), "killed at its timeout 300ms") {
		t.Fatalf("swap error = %v, want a hook killed at its timeout", err)
	}
	if last := e.prog.last(2); !strings.Contains(last.reason, "output: started") {
		t.Fatalf("reason = %q, want the hook's output", last.reason)
	}
	child, err := strconv.Atoi(h.read("child"))
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(child) + "/stat")
		if err != nil || strings.Contains(string(st), ") Z ") {
			return true, ""
		}
		return syscall.Kill(child, 0) != nil, "the hook's child " + strconv.Itoa(child) + " still runs"
	})
	mustBody(t, e.proxyAddr(), "v1")
}

// drain runs while the old slot still serves, right before it stops: at
// finalize (hot) or at the switch (cold). A failing drain is reported and
// the old slot stops anyway; failing revert hooks never stop a revert.
func TestDrainAndRevertHookFailuresDoNotBlock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := newHookDir(t)
	// Records whether the old slot still answered, then fails.
	drain := h.script("drain.sh", `if curl -fsS -o /dev/null "http://127.0.0.1:$ROLLWAVE_OLD_PORT/healthz"; then echo up; else echo down; fi >> `+h.dir+`/old-slot
echo "drain: 3 requests still open"; exit 2`)
	fail := h.script("fail.sh", `echo "$ROLLWAVE_HOOK: pager unreachable"; exit 1`)
	hooks := map[string][]string{StepDrain: {drain}, StepPreRevert: {fail}, StepPostRevert: {fail}}
	ctx := context.Background()
	e.mustSwap(1, "v1")
	if err := e.swap(2, withHooks(e.spec("v2"), 10*time.Second, hooks)); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Finalize(ctx, testApp, 2); err != nil {
		t.Fatal(err)
	}
	last := e.prog.last(2)
	if last.state != rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED ||
		!strings.Contains(last.reason, "drain hook failed: exit status 2") || !strings.Contains(last.reason, "3 requests still open") {
		t.Fatalf("finalize report = %s %q", last.state, last.reason)
	}
	if got := e.running(); !slices.Equal(got, []Name{Green}) {
		t.Fatalf("running after finalize = %v, want [green]", got)
	}

	// Cold: the drain runs at the switch, before the old slot stops.
	spec := withHooks(e.spec("v3"), 10*time.Second, hooks)
	spec.Slots.KeepOld = "cold"
	if err := e.swap(3, spec); err != nil {
		t.Fatal(err)
	}
	if last := e.prog.last(3); last.state != stBaking || !strings.Contains(last.reason, "drain hook failed") {
		t.Fatalf("cold swap report = %s %q", last.state, last.reason)
	}
	if got := e.running(); !slices.Equal(got, []Name{Blue}) {
		t.Fatalf("running after a cold switch = %v, want [blue]", got)
	}
	if got := h.read("old-slot"); got != "up\nup" {
		t.Fatalf("old slot during drain: %q, want up both times", got)
	}

	if err := e.m.Revert(ctx, testApp, "operator rollback", false); err != nil {
		t.Fatal(err)
	}
	mustBody(t, e.proxyAddr(), "v2")
	last = e.prog.last(3)
	if last.state != stReverted || !strings.Contains(last.reason, "operator rollback") ||
		!strings.Contains(last.reason, "pre_revert hook failed") || !strings.Contains(last.reason, "post_revert: pager unreachable") {
		t.Fatalf("revert report = %s %q", last.state, last.reason)
	}
}

// A restart in the middle of post_switch leaves no verdict: the host
// reverts at the next start.
func TestPostSwitchInterruptedRevertsAtRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := newHookDir(t)
	e.mustSwap(1, "v1")
	started := filepath.Join(h.dir, "started")
	slow := h.script("slow.sh", `touch `+started+`; sleep 600`)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- e.m.Swap(ctx, assignment(2, "v2"), withHooks(e.spec("v2"), time.Minute, map[string][]string{StepPostSwitch: {slow}}), httpReady)
	}()
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) {
		_, err := os.Stat(started)
		return err == nil, "post_switch hook not started"
	})
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, ErrInterrupted) {
			t.Fatalf("swap error = %v, want ErrInterrupted", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("swap did not return after its context ended")
	}
	if st := e.state(); st.Op == nil || st.Op.Step != StepPostSwitch {
		t.Fatalf("state after the shutdown: %+v", st.Op)
	}
	e.m.Close()
	e.drv.kill()
	e.restart(newTestDriver(t))
	if err := e.m.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := e.state()
	if r, _ := st.LastResult(); st.Active != Blue || r.AssignmentState() != stReverted || !strings.Contains(r.Reason, "post_switch") {
		t.Fatalf("after restart: active %s, result %+v", st.Active, r)
	}
	waitBody(t, e.proxyAddr(), "v1")
}

func TestTailBufferKeepsTheEndOnOneLine(t *testing.T) {
	b := &tailBuffer{max: 16}
	for _, w := range []string{"first line\n", "second\x1b[31m line\r\n", "\nlast"} {
		if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if got, want := b.String(), "…[31m line | last"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	short := &tailBuffer{max: 64}
	short.Write([]byte("  a\n\n b \n"))
	if got := short.String(); got != "a | b" {
		t.Fatalf("String() = %q", got)
	}
}
