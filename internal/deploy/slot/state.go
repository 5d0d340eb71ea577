package slot

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/rollwave/rollwave/internal/fsutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// ErrCorruptState is returned (wrapped) when an app's state file exists
// but cannot be read. The file is moved aside (state.json.corrupt-<ts>)
// for an operator to look at.
var ErrCorruptState = errors.New("corrupt slot state file")

// stateFormat is the state file's format version.
const stateFormat = 1

// maxResults is how many generations' results a state file keeps.
const maxResults = 16

// Operation kinds.
const (
	OpSwap   = "swap"
	OpRevert = "revert"
)

// State is one app's slot state on this host, as persisted in
// <dataDir>/apps/<app>/state.json. It is the only thing Revert and
// Reconcile need to put the host back in order after a restart.
type State struct {
	Format int    `json:"format"`
	App    string `json:"app"`
	// Active is the slot traffic goes to; empty before the first swap.
	Active Name `json:"active,omitempty"`
	// Slots describes what is installed in each slot.
	Slots map[Name]*SlotState `json:"slots,omitempty"`
	// Traffic is the switch in use, so a restarted agent can rebuild it.
	Traffic *TrafficState `json:"traffic,omitempty"`
	// KeepOld is the last swap's keep_old ("hot" or "cold").
	KeepOld string `json:"keep_old,omitempty"`
	// Split is set while weighted traffic steps (traffic.steps) run: the
	// Active slot gets Split.Weight percent of new traffic and From (kept
	// hot) the rest. nil: all traffic goes to Active.
	Split *Split `json:"split,omitempty"`

	// Generation is the newest generation accepted; From and To are the
	// old and new slot of its swap; Phase is where it got.
	Generation uint64 `json:"generation,omitempty"`
	From       Name   `json:"from,omitempty"`
	To         Name   `json:"to,omitempty"`
	Phase      string `json:"phase,omitempty"`
	// Verified: the generation's phase was verified; an isolated agent
	// must not revert it any more.
	Verified bool `json:"verified,omitempty"`

	// Op is the operation in flight; nil when none. A restarted agent
	// finds here where it stopped.
	Op *Operation `json:"op,omitempty"`
	// Resume names the step at which a swap of Generation was interrupted
	// (the agent stopped or was killed) before traffic moved. Reconcile
	// put the old slot back; Swap of the same generation redoes the swap
	// instead of reporting "already applied". Empty otherwise.
	Resume string `json:"resume,omitempty"`

	// Release is Generation's release name; Hooks are its lifecycle
	// hooks, run from here by a revert or finalize (after a restart too).
	Release string    `json:"release,omitempty"`
	Hooks   []HookDef `json:"hooks,omitempty"`

	// Results holds the outcome of the last few generations, newest last,
	// so a restarted agent can still report them.
	Results []Result `json:"results,omitempty"`

	// Rehearsal is the last rollback rehearsal (rollback.rehearse), of
	// generation Rehearsal.Generation.
	Rehearsal *Rehearsal `json:"rehearsal,omitempty"`
}

// Split is a weighted traffic step in effect.
type Split struct {
	// Weight is the Active slot's share of new traffic, 1-99; 0 during a
	// dark phase.
	Weight int `json:"weight"`
	// Sticky is traffic.sticky ("", "client_ip" or "cookie").
	Sticky string `json:"sticky,omitempty"`
	// Dark marks the dark phase (phases.dark): the Active (new) slot runs
	// and is checked, From gets every user request.
	Dark bool `json:"dark,omitempty"`
	// Shadow, during the dark phase, mirrors a sample of From's requests
	// to the Active slot (phases.shadow).
	Shadow *Shadow `json:"shadow,omitempty"`
}

// SlotState is what is installed in one slot.
type SlotState struct {
	Version    string `json:"version"`
	Generation uint64 `json:"generation"`
	Port       int    `json:"port"`
	UnitHash   string `json:"unit_hash"`
	// Unit is the rendered unit, so it can be installed again after a
	// restart (the process driver keeps units in memory only).
	Unit *Unit `json:"unit,omitempty"`
}

// TrafficState is the traffic switch configuration.
type TrafficState struct {
	Mode    string   `json:"mode,omitempty"`
	Listen  string   `json:"listen,omitempty"`
	Command []string `json:"command,omitempty"`
	// Protocol of a proxy: "tcp" (also "") or "http". A change keeps the
	// proxy (it switches in place, see Proxy.SetProtocol).
	Protocol string `json:"protocol,omitempty"`
}

// equal reports whether two traffic configs need the same switch (only
// the fields of their mode count).
func (t *TrafficState) equal(o *TrafficState) bool {
	if t == nil || o == nil {
		return t == o
	}
	mode := func(m string) string {
		if m == "" {
			return "none"
		}
		return m
	}
	if mode(t.Mode) != mode(o.Mode) {
		return false
	}
	switch mode(t.Mode) {
	case "proxy":
		return t.Listen == o.Listen
	case "exec":
		return slices.Equal(t.Command, o.Command)
	}
	return true
}

// Operation is a swap or revert in flight.
type Operation struct {
	Kind       string `json:"kind"`
	Generation uint64 `json:"generation"`
	From       Name   `json:"from,omitempty"`
	To         Name   `json:"to"`
	// Step is the step being run; StepDone says it completed.
	Step      string    `json:"step"`
	StepDone  bool      `json:"step_done"`
	StartedAt time.Time `json:"started_at"`
	Reason    string    `json:"reason,omitempty"`
	// Isolated: a revert the agent decided alone (lost contact).
	Isolated bool `json:"isolated,omitempty"`
	// RollbackMS: a rehearsal's measured rollback time, once traffic is
	// back on the old slot.
	RollbackMS int64 `json:"rollback_ms,omitempty"`
}

// Result is where a generation ended up.
type Result struct {
	Generation uint64    `json:"generation"`
	State      string    `json:"state"`
	Reason     string    `json:"reason,omitempty"`
	Time       time.Time `json:"time"`
}

// AssignmentState converts the result's state.
func (r Result) AssignmentState() rollwavev1.AssignmentState { return parsePhase(r.State) }

func parsePhase(s string) rollwavev1.AssignmentState {
	return rollwavev1.AssignmentState(rollwavev1.AssignmentState_value[s])
}

// PhaseState is the generation's assignment state.
func (s *State) PhaseState() rollwavev1.AssignmentState { return parsePhase(s.Phase) }

func (s *State) setResult(gen uint64, st rollwavev1.AssignmentState, reason string, at time.Time) {
	s.Phase = st.String()
	for i := range s.Results {
		if s.Results[i].Generation == gen {
			s.Results[i] = Result{gen, st.String(), reason, at}
			return
		}
	}
	s.Results = append(s.Results, Result{gen, st.String(), reason, at})
	if len(s.Results) > maxResults {
		s.Results = append([]Result(nil), s.Results[len(s.Results)-maxResults:]...)
	}
}

// LastResult returns the newest generation's result.
func (s *State) LastResult() (Result, bool) {
	if len(s.Results) == 0 {
		return Result{}, false
	}
	return s.Results[len(s.Results)-1], true
}

// clone deep-copies a state.
func (s *State) clone() State {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // plain data; cannot fail
	}
	var c State
	if err := json.Unmarshal(b, &c); err != nil {
		panic(err)
	}
	return c
}

func statePath(dataDir, app string) string {
	return filepath.Join(dataDir, "apps", app, "state.json")
}

// loadState reads an app's state. A missing file is a fresh host: an
// empty state, no error. A file that does not parse is moved aside and
// reported with ErrCorruptState.
func loadState(dataDir, app string, now time.Time) (*State, error) {
	p := statePath(dataDir, app)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return &State{Format: stateFormat, App: app, Slots: map[Name]*SlotState{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read slot state: %w", err)
	}
	var s State
	err = json.Unmarshal(b, &s)
	if err == nil {
		err = s.check(app)
	}
	if err != nil {
		aside := fmt.Sprintf("%s.corrupt-%s", p, now.UTC().Format("20060102T150405.000000000Z"))
		if rerr := os.Rename(p, aside); rerr != nil {
			return nil, fmt.Errorf("%w: %s: %v (and could not move it aside: %v)", ErrCorruptState, p, err, rerr)
		}
		return nil, fmt.Errorf("%w: %s: %v; moved to %s — inspect it, then let the coordinator redeploy the app", ErrCorruptState, p, err, aside)
	}
	if s.Slots == nil {
		s.Slots = map[Name]*SlotState{}
	}
	return &s, nil
}

// check validates a decoded state.
func (s *State) check(app string) error {
	if s.Format != stateFormat {
		return fmt.Errorf("format %d, want %d", s.Format, stateFormat)
	}
	if s.App != app {
		return fmt.Errorf("app %q in the file, want %q", s.App, app)
	}
	for _, n := range []Name{s.Active, s.From, s.To} {
		if n != "" && !n.Valid() {
			return fmt.Errorf("bad slot name %q", n)
		}
	}
	for n := range s.Slots {
		if !n.Valid() {
			return fmt.Errorf("bad slot name %q", n)
		}
	}
	if s.Op != nil && (s.Op.Kind != OpSwap && s.Op.Kind != OpRevert && s.Op.Kind != OpRehearse || !s.Op.To.Valid()) {
		return fmt.Errorf("bad operation %+v", *s.Op)
	}
	return nil
}

// saveState writes the state atomically: temp file, fsync, rename over
// state.json, fsync the directory. A crash leaves either the old or the
// new file, never a torn one.
func saveState(dataDir string, s *State) error {
	p := statePath(dataDir, s.App)
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save slot state: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("save slot state: %w", err)
	}
	if err := fsutil.WriteFileAtomic(p, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save slot state: %w", err)
	}
	return nil
}

// unitHash is a stable digest of a unit (JSON of a struct, map keys sorted).
func unitHash(u Unit) string {
	b, _ := json.Marshal(u)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
