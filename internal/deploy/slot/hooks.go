package slot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Lifecycle hooks (a release's hook "NAME" blocks). Each runs as a step
// of its own in the slot state file, named like the hook, with crash points
// "swap/<hook>/begin|done" or "revert/<hook>/begin|done"; a release
// without the hook has no such step.
const (
	// StepPreSwitch runs the pre_switch hook after ready, before the
	// switch; a failure fails the swap (the old slot keeps serving).
	StepPreSwitch = "pre_switch"
	// StepPostSwitch runs the post_switch hook right after the switch; a
	// failure reverts the host.
	StepPostSwitch = "post_switch"
	// StepPreRevert and StepPostRevert run the pre_revert hook before
	// start_old and the post_revert hook after switch_back; a failure is
	// noted in the revert's reason and never stops the revert.
	StepPreRevert  = "pre_revert"
	StepPostRevert = "post_revert"
	// StepDrain runs the drain hook before the old slot is stopped (in
	// keep_old when keep_old is cold, in Finalize when hot); a failure is
	// noted in the reason and the old slot is stopped anyway.
	StepDrain = "drain"
)

// OpFinalize is the op OnStep is given for the drain hook of Finalize.
const OpFinalize = "finalize"

// DefaultHookTimeout bounds a hook run whose spec sets no timeout.
const DefaultHookTimeout = 30 * time.Second

// hookOutputMax is how much of a hook's output (the end of it) is kept
// for the failure reason.
const hookOutputMax = 4 << 10

// HookDef is a lifecycle hook of the generation's release, as the state
// file keeps it: a revert or finalize, after an agent restart too, runs it
// from there without the order.
type HookDef struct {
	Name string   `json:"name"`
	Exec []string `json:"exec"`
	// Timeout is in nanoseconds in the file; 0 means DefaultHookTimeout.
	Timeout time.Duration `json:"timeout,omitempty"`
}

// ErrHookFailed is returned (wrapped, as a *HookError) when a hook exited
// with a status other than 0, was killed at its timeout, or did not start.
var ErrHookFailed = errors.New("hook failed")

// HookError is one failed hook run.
type HookError struct {
	Hook string
	// Err says how it failed: the exit status, the timeout, a start error.
	Err error
	// Output is the end (at most 4 KiB) of what it wrote to stdout and
	// stderr, trimmed.
	Output string
}

func (e *HookError) Error() string {
	msg := fmt.Sprintf("%s hook failed: %v", e.Hook, e.Err)
	if e.Output != "" {
		msg += "; output: " + e.Output
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrHookFailed) true.
func (e *HookError) Unwrap() []error { return []error{ErrHookFailed, e.Err} }

// hooksOf copies a release's hooks for the state file.
func hooksOf(spec *rollwavev1.ReleaseSpec) []HookDef {
	var out []HookDef
	for _, h := range spec.GetHooks() {
		var t time.Duration
		if ms := h.GetTimeoutMs(); ms > 0 {
			t = time.Duration(min(ms, int64(maxHookTimeout/time.Millisecond))) * time.Millisecond
		}
		out = append(out, HookDef{Name: h.GetName(), Exec: append([]string(nil), h.GetExec()...), Timeout: t})
	}
	return out
}

// maxHookTimeout caps a hook's timeout whatever the order says (the
// spec's cap, spec.MaxHookTimeout, which this package cannot import).
const maxHookTimeout = 10 * time.Minute

// hook returns the generation's hook name.
func (s *State) hook(name string) (HookDef, bool) {
	for _, h := range s.Hooks {
		if h.Name == name {
			return h, true
		}
	}
	return HookDef{}, false
}

// hasHook reports whether the generation's release defines hook name.
func (s *State) hasHook(name string) bool {
	_, ok := s.hook(name)
	return ok
}

// hookEnv is the release context a hook gets, besides PATH.
func (m *Manager) hookEnv(rt *appRT, name string) (Vars, map[string]string, string) {
	st := rt.st
	newSlot, oldSlot := st.To, st.From
	v := Vars{App: rt.name, Slot: newSlot, SlotDir: m.slotDir(rt.name, newSlot)}
	var user, prev string
	var oldPort int
	if ns := st.Slots[newSlot]; ns != nil {
		v.Port, v.Version = ns.Port, ns.Version
		if ns.Unit != nil {
			user = ns.Unit.User
		}
	}
	if oldSlot != "" {
		if old := st.Slots[oldSlot]; old != nil {
			oldPort, prev = old.Port, old.Version
		}
	}
	env := map[string]string{
		"ROLLWAVE_HOOK":             name,
		"ROLLWAVE_APP":              rt.name,
		"ROLLWAVE_RELEASE":          st.Release,
		"ROLLWAVE_VERSION":          v.Version,
		"ROLLWAVE_PREVIOUS_VERSION": prev,
		"ROLLWAVE_SLOT":             string(newSlot),
		"ROLLWAVE_PORT":             strconv.Itoa(v.Port),
		"ROLLWAVE_SLOT_DIR":         v.SlotDir,
		"ROLLWAVE_OLD_SLOT":         string(oldSlot),
		"ROLLWAVE_OLD_PORT":         "",
		"ROLLWAVE_HOST":             m.cfg.Host,
	}
	if oldPort > 0 {
		env["ROLLWAVE_OLD_PORT"] = strconv.Itoa(oldPort)
	}
	return v, env, user
}

// runHook runs the generation's hook name, if its release has one (nil
// otherwise): placeholders expanded for the new slot, in the new slot's
// directory, as the unit's user, under its timeout. A failure is a
// *HookError with the end of the output. When ctx ends first (the agent
// stops) the error wraps ErrInterrupted instead.
func (m *Manager) runHook(ctx context.Context, rt *appRT, name string) error {
	h, ok := rt.st.hook(name)
	if !ok {
		return nil
	}
	v, env, user := m.hookEnv(rt, name)
	argv := make([]string, len(h.Exec))
	for i, a := range h.Exec {
		var err error
		if argv[i], err = Render(a, v); err != nil {
			return &HookError{Hook: name, Err: fmt.Errorf("exec[%d]: %w", i, err)}
		}
	}
	if len(argv) == 0 || argv[0] == "" {
		return &HookError{Hook: name, Err: errors.New("no command")}
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	log := m.log.With("app", rt.name, "generation", rt.st.Generation, "hook", name)
	log.Info("running hook", "exec", argv, "timeout", timeout, "user", user)
	began := time.Now()
	out, err := execHook(ctx, hookCmd{argv: argv, dir: v.SlotDir, user: user, env: hookEnvList(env), timeout: timeout})
	took := time.Since(began).Round(time.Millisecond)
	if err == nil {
		log.Info("hook passed", "took", took)
		return nil
	}
	if ctx.Err() != nil {
		log.Warn("hook stopped: the agent is shutting down", "took", took)
		return fmt.Errorf("%s hook: %w", name, ErrInterrupted)
	}
	herr := &HookError{Hook: name, Err: fmt.Errorf("%w (after %s)", err, took), Output: out}
	log.Warn("hook failed", "error", err, "took", took, "output", out)
	return herr
}

// hookCmd is one hook run.
type hookCmd struct {
	argv    []string
	dir     string
	user    string
	env     []string
	timeout time.Duration
}

// hookEnvList is PATH (the agent's, or a default) and env, sorted: a
// small explicit environment, as for slot processes; the agent's own
// variables do not leak into hooks.
func hookEnvList(env map[string]string) []string {
	pathEnv := os.Getenv("PATH")
	if pathEnv == "" {
		pathEnv = "/usr/local/bin:/usr/bin:/bin"
	}
	out := []string{"PATH=" + pathEnv}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out[1:])
	return out
}

// tailBuffer keeps the last max bytes written to it. Hand-written: a
// dozen lines, where a library would bring a dependency for a bounded
// tail of a command's output.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
	cut bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
		t.cut = true
	}
	return len(p), nil
}

// String is the kept output on one line (for reasons, events and logs):
// lines trimmed and joined with " | ", other control characters replaced,
// marked "…" when its start was cut.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var lines []string
	for _, l := range strings.Split(strings.ToValidUTF8(string(t.b), "?"), "\n") {
		l = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return ' '
			}
			return r
		}, l)
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	s := strings.Join(lines, " | ")
	if t.cut && s != "" {
		s = "…" + s
	}
	return s
}

// runHookStep runs hook name as a step of the operation in flight (the
// step is persisted, timed and has crash points like every other), if the
// release defines it; ran is false when it does not.
func (m *Manager) runHookStep(ctx context.Context, rt *appRT, name string) (ran bool, err error) {
	if !rt.st.hasHook(name) {
		return false, nil
	}
	return true, m.runStep(rt, name, false, func() error { return m.runHook(ctx, rt, name) })
}

// noteHookFailure appends a non-blocking hook's failure to a reason.
func noteHookFailure(reason string, err error) string {
	note := err.Error()
	if reason == "" {
		return note
	}
	return reason + "; " + note
}

// runDrain runs the drain hook, if the release has one, timed as step
// "drain" of op (OpSwap at keep_old, OpFinalize).
func (m *Manager) runDrain(ctx context.Context, rt *appRT, op string) error {
	if !rt.st.hasHook(StepDrain) {
		return nil
	}
	began := time.Now()
	err := m.runHook(ctx, rt, StepDrain)
	if m.cfg.OnStep != nil {
		m.cfg.OnStep(rt.name, op, StepDrain, time.Since(began), err)
	}
	return err
}

// failPostSwitch ends a swap whose post_switch hook failed: traffic
// already moved, so the host reverts to the old slot at once (a failed
// smoke test), and REVERTING then REVERTED (or FAILED, if the revert
// cannot complete) are reported with the hook's failure as the reason. On
// the app's first deploy there is no old slot: FAILED is reported and the
// new slot keeps serving. The agent shutting down in the hook leaves the
// step unfinished in the state file; Reconcile reverts at the next start.
func (m *Manager) failPostSwitch(ctx context.Context, rt *appRT, cause error, ready ReadyFunc) error {
	if isCrash(cause) {
		return cause
	}
	st := rt.st
	gen := st.Generation
	if ctx.Err() != nil {
		m.log.Warn("post_switch hook interrupted by shutdown; the host reverts when the agent starts again",
			"app", rt.name, "generation", gen, "cause", cause)
		return fmt.Errorf("swap %s generation %d at step %s: %w", rt.name, gen, StepPostSwitch, ErrInterrupted)
	}
	reason := cause.Error()
	if st.From == "" {
		st.Op = nil
		reason += "; first deploy of the app on this host: no old version to go back to, the new one keeps running"
		m.log.Error("post_switch hook failed on the app's first deploy; nothing to revert to", "app", rt.name, "generation", gen, "error", cause)
		if err := m.setResult(rt, gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_FAILED, reason); err != nil {
			m.log.Error("persisting the failure failed", "app", rt.name, "error", err)
		}
		return fmt.Errorf("swap %s generation %d: %w", rt.name, gen, cause)
	}
	if err := m.beginRevert(rt, reason, false); err != nil {
		return err
	}
	if err := m.runRevert(ctx, rt, ready); err != nil {
		return err
	}
	return fmt.Errorf("swap %s generation %d: %w; the host reverted", rt.name, gen, cause)
}
