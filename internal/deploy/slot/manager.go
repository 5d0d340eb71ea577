package slot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rollwave/rollwave/internal/health"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Errors callers test for.
var (
	// ErrStaleGeneration: an assignment or order older than the newest
	// generation this host accepted.
	ErrStaleGeneration = errors.New("stale generation")
	// ErrBusy: an interrupted operation waits for Reconcile.
	ErrBusy = errors.New("an interrupted slot operation needs Reconcile first")
	// ErrNothingToRevert: no swap to revert (fresh host, or the first
	// deploy of the app, which has no old slot).
	ErrNothingToRevert = errors.New("nothing to revert")
	// ErrVerified: the host's phase is verified; it does not revert on its
	// own any more.
	ErrVerified = errors.New("phase verified: no isolation revert")
	// ErrWrongState: the generation is not in a state the call applies to.
	ErrWrongState = errors.New("wrong assignment state")
	// ErrInterrupted: the caller's context ended (the agent is shutting
	// down) in the middle of an operation. Nothing is recorded as failed:
	// the operation stays in the state file, as after a crash, and
	// Reconcile takes it up at the next start.
	ErrInterrupted = errors.New("interrupted by shutdown")
)

// DefaultHealthyDeadline bounds the readiness wait when the spec sets no
// health.healthy_deadline.
const DefaultHealthyDeadline = 2 * time.Minute

// cleanupTimeout bounds the clean-up after a failed step (stopping the
// new slot), which runs even when the caller's context is done.
const cleanupTimeout = 30 * time.Second

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	// DataDir holds apps/<app>/state.json and the slot directories
	// apps/<app>/<slot>/. Required.
	DataDir string
	// Driver runs the slot units. Required. The Manager does not close it.
	Driver Driver
	// Logger receives the Manager's logs (component=slot is added).
	Logger *slog.Logger
	// Clock returns the time for state timestamps; default time.Now.
	Clock func() time.Time
	// NewSwitch builds an app's traffic switch from its spec; default:
	// proxy, exec hook or none per traffic.mode.
	NewSwitch func(app string, t *rollwavev1.TrafficSpec) (Switch, error)
	// OnProgress is told every assignment state change (the agent sends
	// them to the leader). It is called with the app's lock held, so it
	// must not block long and must not call back into the Manager; hand
	// the report to a buffered channel or queue. evidence is set when
	// traffic moved (SWITCHED, and REVERTED or REVERTED_ISOLATED after a
	// switch back): SwitchEvidence's keys. May be nil.
	OnProgress func(app string, gen uint64, st rollwavev1.AssignmentState, reason string, evidence map[string]string)
	// CheckArtifactURL, when set, must accept an artifact's URL and every
	// redirect hop of its download before it is fetched (the agent's
	// artifact_prefixes policy). It must not block. May be nil.
	CheckArtifactURL URLCheck
	// Limits bound each artifact's download and unpacked size; zero
	// fields take the defaults (2 GiB each).
	Limits Limits
	// OnStep is told how long each step of a swap or revert took (op is
	// OpSwap or OpRevert) and whether it failed: the agent's metrics. It
	// is called with the app's lock held and must not block. May be nil.
	OnStep func(app, op, step string, d time.Duration, err error)
	// Host is this host's name, ROLLWAVE_HOST of lifecycle hooks; default
	// os.Hostname().
	Host string
}

// Validate checks a config.
func (c ManagerConfig) Validate() error {
	if c.DataDir == "" {
		return errors.New("slot manager: DataDir is required")
	}
	if !filepath.IsAbs(c.DataDir) {
		return fmt.Errorf("slot manager: DataDir %q must be absolute", c.DataDir)
	}
	if c.Driver == nil {
		return errors.New("slot manager: Driver is required")
	}
	return nil
}

// Manager runs the blue/green procedures of every app on this host: swap,
// revert, finalize, and the start-up reconcile. Calls for one app are
// serialised; different apps proceed in parallel.
type Manager struct {
	cfg ManagerConfig
	log *slog.Logger

	mu   sync.Mutex
	apps map[string]*appRT

	// onDisk lists the apps whose state files were on disk when Apps
	// first looked. Read once: every state file written later is written
	// by this Manager, for an app in apps, and Apps runs several times a
	// second (heartbeats, the isolation watchdog).
	diskOnce sync.Once
	onDisk   []string

	// crashPoint, when set, is called at every step boundary (after the
	// state was persisted). An error simulates the agent dying there: the
	// operation returns at once without any clean-up. Tests only.
	crashPoint func(step string) error
}

// appRT is one app's runtime: its state and its traffic switch.
type appRT struct {
	name string
	mu   sync.Mutex
	st   *State
	// loadErr: the state file was unreadable; the app is refused until
	// an operator acts (see ErrCorruptState).
	loadErr error
	sw      Switch
	swCfg   *TrafficState
	// meter is sw when it measures traffic, readable without mu (a swap
	// holds mu for minutes; heartbeats must not wait).
	meter atomic.Pointer[Meter]
	// snap is a copy of st as last persisted, for readers (Facts,
	// AppState) that must not wait behind a swap holding mu for minutes.
	snap atomic.Pointer[State]
}

// NewManager returns a Manager. Call Reconcile before anything else when
// the agent starts.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.NewSwitch == nil {
		cfg.NewSwitch = newDefaultSwitch(cfg.Logger)
	}
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "apps"), 0o755); err != nil {
		return nil, fmt.Errorf("slot manager: %w", err)
	}
	return &Manager{
		cfg:  cfg,
		log:  cfg.Logger.With("component", "slot"),
		apps: map[string]*appRT{},
	}, nil
}

// appNameRE with the length checked apart: a counted repetition ({0,63})
// compiles to 64 copies of the class, ~26 KB held for the agent's life.
var appNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

const maxAppName = 64

// validApp checks that an app name is safe as a path component and a
// systemd unit name part.
func validApp(app string) error {
	if len(app) > maxAppName || !appNameRE.MatchString(app) {
		return fmt.Errorf("app name %q: want 1-64 of [A-Za-z0-9._-], starting with a letter or digit", app)
	}
	return nil
}

// app returns an app's runtime, loading its state file on first use.
func (m *Manager) app(name string) (*appRT, error) {
	if err := validApp(name); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if rt, ok := m.apps[name]; ok {
		return rt, nil
	}
	rt := &appRT{name: name}
	rt.st, rt.loadErr = loadState(m.cfg.DataDir, name, m.cfg.Clock())
	if rt.loadErr != nil {
		m.log.Error("slot state unreadable; app refused until an operator acts", "app", name, "error", rt.loadErr)
	} else {
		c := rt.st.clone()
		rt.snap.Store(&c)
	}
	m.apps[name] = rt
	return rt, nil
}

// lock returns the app's runtime locked, or its load error.
func (m *Manager) lock(name string) (*appRT, error) {
	rt, err := m.app(name)
	if err != nil {
		return nil, err
	}
	rt.mu.Lock()
	if rt.loadErr != nil {
		rt.mu.Unlock()
		return nil, rt.loadErr
	}
	return rt, nil
}

func (m *Manager) slotDir(app string, slot Name) string {
	return filepath.Join(m.cfg.DataDir, "apps", app, string(slot))
}

// save persists the app's state and refreshes its snapshot.
func (m *Manager) save(rt *appRT) error {
	err := saveState(m.cfg.DataDir, rt.st)
	c := rt.st.clone()
	rt.snap.Store(&c)
	return err
}

func (m *Manager) report(app string, gen uint64, st rollwavev1.AssignmentState, reason string) {
	m.reportMoved(app, gen, st, reason, nil)
}

// reportMoved is report with the evidence of a traffic move.
func (m *Manager) reportMoved(app string, gen uint64, st rollwavev1.AssignmentState, reason string, evidence map[string]string) {
	if m.cfg.OnProgress != nil {
		m.cfg.OnProgress(app, gen, st, reason, evidence)
	}
}

// Keys of a traffic move's evidence (OnProgress): the slots traffic left
// and went to, and the versions installed in them.
const (
	EvidenceFromSlot    = "from_slot"
	EvidenceToSlot      = "to_slot"
	EvidenceFromVersion = "from_version"
	EvidenceToVersion   = "to_version"
	// EvidenceWeight is the new slot's share of new traffic after the
	// move (0 in a dark phase); EvidenceDark is "true" for a dark phase,
	// EvidenceShadow its mirrored share ("10%").
	EvidenceWeight = "weight"
	EvidenceDark   = "dark"
	EvidenceShadow = "shadow"
)

// SwitchEvidence describes traffic moving from one slot of st to another.
func SwitchEvidence(st *State, from, to Name) map[string]string {
	ev := map[string]string{EvidenceFromSlot: string(from), EvidenceToSlot: string(to)}
	if st.Split != nil && st.Active == to {
		ev[EvidenceWeight] = strconv.Itoa(st.Split.Weight)
	}
	if st.Split != nil && st.Split.Dark && st.Active == to {
		ev[EvidenceDark] = "true"
		if sh := st.Split.Shadow; sh != nil {
			ev[EvidenceShadow] = strconv.FormatFloat(100*sh.Sample, 'f', -1, 64) + "%"
		}
	}
	if s := st.Slots[from]; s != nil {
		ev[EvidenceFromVersion] = s.Version
	}
	if s := st.Slots[to]; s != nil {
		ev[EvidenceToVersion] = s.Version
	}
	return ev
}

// setResult records and persists a generation's state, then reports it.
func (m *Manager) setResult(rt *appRT, gen uint64, s rollwavev1.AssignmentState, reason string) error {
	rt.st.setResult(gen, s, reason, m.cfg.Clock())
	err := m.save(rt)
	m.report(rt.name, gen, s, reason)
	return err
}

// crashErr marks an error from the crash hook: the caller must return at
// once, as if the process had died.
type crashErr struct{ err error }

func (e *crashErr) Error() string { return "crash point: " + e.err.Error() }
func (e *crashErr) Unwrap() error { return e.err }

func isCrash(err error) bool {
	var c *crashErr
	return errors.As(err, &c)
}

func (m *Manager) crash(point string) error {
	if m.crashPoint == nil {
		return nil
	}
	if err := m.crashPoint(point); err != nil {
		return &crashErr{err}
	}
	return nil
}

// runStep runs one step of the app's operation: it persists "step
// started", passes the crash point <kind>/<step>/begin, runs fn, persists
// "step done" (with whatever fn changed in the state; on the last step the
// operation is cleared in the same write) and passes <kind>/<step>/done.
func (m *Manager) runStep(rt *appRT, step string, last bool, fn func() error) error {
	st := rt.st
	kind := st.Op.Kind
	st.Op.Step, st.Op.StepDone = step, false
	if err := m.save(rt); err != nil {
		return err
	}
	if err := m.crash(kind + "/" + step + "/begin"); err != nil {
		return err
	}
	m.log.Debug("step", "app", rt.name, "generation", st.Op.Generation, "op", kind, "step", step)
	began := time.Now()
	err := fn()
	if m.cfg.OnStep != nil {
		m.cfg.OnStep(rt.name, kind, step, time.Since(began), err)
	}
	if err != nil {
		return err
	}
	if last {
		st.Op = nil
	} else {
		st.Op.StepDone = true
	}
	if err := m.save(rt); err != nil {
		return err
	}
	return m.crash(kind + "/" + step + "/done")
}

// point points the app's traffic at slot. When the traffic spec changed
// (a new listen address, another mode), the new switch is built and
// pointed first and only then the old one closed: if the new one cannot be
// built, the old one keeps serving.
func (m *Manager) point(ctx context.Context, rt *appRT, ts *TrafficState, slot Name, port int) error {
	rt.st.Split = nil
	return m.pointSplit(ctx, rt, ts, slot, port, nil)
}

// pointSplit is point with a weighted step: with w, w.Weight percent of
// new traffic goes to slot and the rest to w.Old. The caller records the
// split in the state.
func (m *Manager) pointSplit(ctx context.Context, rt *appRT, ts *TrafficState, slot Name, port int, w *Weighting) error {
	pointFn := func(sw Switch) error {
		if w == nil {
			return sw.Point(ctx, slot, port)
		}
		ws, ok := sw.(WeightedSwitch)
		if !ok {
			return fmt.Errorf("%w: traffic.mode %q cannot weight traffic between slots", ErrSwitch, ts.Mode)
		}
		return ws.PointWeighted(ctx, slot, port, *w)
	}
	if ts == nil {
		ts = &TrafficState{Mode: "none"}
	}
	if rt.sw != nil && rt.swCfg.equal(ts) {
		if ps, ok := rt.sw.(interface{ SetProtocol(string) error }); ok {
			if err := ps.SetProtocol(ts.Protocol); err != nil {
				return err
			}
		}
		if err := pointFn(rt.sw); err != nil {
			return err
		}
		rt.st.Traffic = ts
		return nil
	}
	sw, err := m.cfg.NewSwitch(rt.name, &rollwavev1.TrafficSpec{Mode: ts.Mode, Listen: ts.Listen, Command: ts.Command, Protocol: ts.Protocol})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSwitch, err)
	}
	if err := pointFn(sw); err != nil {
		sw.Close()
		return err
	}
	if rt.sw != nil {
		m.log.Info("traffic switch replaced", "app", rt.name, "mode", ts.Mode, "listen", ts.Listen)
		if err := rt.sw.Close(); err != nil {
			m.log.Warn("closing old traffic switch", "app", rt.name, "error", err)
		}
	}
	rt.sw, rt.swCfg = sw, ts
	if mt, ok := sw.(Meter); ok {
		rt.meter.Store(&mt)
	} else {
		rt.meter.Store(nil)
	}
	rt.st.Traffic = ts
	return nil
}

func (m *Manager) slotPort(st *State, slot Name) int {
	if ss := st.Slots[slot]; ss != nil {
		return ss.Port
	}
	return 0
}

// Apps lists the apps with state on this host, sorted.
func (m *Manager) Apps() []string {
	m.diskOnce.Do(func() {
		entries, _ := os.ReadDir(filepath.Join(m.cfg.DataDir, "apps"))
		for _, e := range entries {
			if !e.IsDir() || validApp(e.Name()) != nil {
				continue
			}
			if _, err := os.Stat(statePath(m.cfg.DataDir, e.Name())); err == nil {
				m.onDisk = append(m.onDisk, e.Name())
			}
		}
	})
	seen := map[string]bool{}
	for _, name := range m.onDisk {
		seen[name] = true
	}
	m.mu.Lock()
	for name, rt := range m.apps {
		if rt.loadErr == nil && rt.st != nil && rt.st.Generation > 0 {
			seen[name] = true
		}
	}
	m.mu.Unlock()
	out := make([]string, 0, len(seen))
	for name := range seen {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// AppState returns a copy of an app's state as last persisted. It does
// not wait for an operation in flight.
func (m *Manager) AppState(app string) (State, bool) {
	rt, err := m.app(app)
	if err != nil {
		return State{}, false
	}
	snap := rt.snap.Load()
	if snap == nil || (snap.Generation == 0 && snap.Active == "") {
		return State{}, false
	}
	return snap.clone(), true
}

// DrainRequestStats returns what the app's traffic proxy measured per slot
// since the last call, and its protocol; ok is false when the app's
// switch measures nothing (exec, none, or no switch yet). It does not
// wait for an operation in flight.
func (m *Manager) DrainRequestStats(app string) (protocol string, stats map[Name]*health.RequestStats, ok bool) {
	mt, ok := m.meterOf(app)
	if !ok {
		return "", nil, false
	}
	protocol, stats = mt.DrainStats()
	return protocol, stats, true
}

// meterOf is the app's switch when it measures traffic.
func (m *Manager) meterOf(app string) (Meter, bool) {
	rt, err := m.app(app)
	if err != nil {
		return nil, false
	}
	mt := rt.meter.Load()
	if mt == nil {
		return nil, false
	}
	return *mt, true
}

// ActivePID is the main PID of the app's active slot, 0 when none runs.
func (m *Manager) ActivePID(app string) int {
	st, ok := m.AppState(app)
	if !ok || st.Active == "" {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	us, err := m.cfg.Driver.Status(ctx, app, st.Active)
	if err != nil {
		return 0
	}
	return us.MainPID
}

// Facts reports every app's slots, for hello and heartbeats.
func (m *Manager) Facts() []*rollwavev1.SlotFacts {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*rollwavev1.SlotFacts
	for _, app := range m.Apps() {
		st, ok := m.AppState(app)
		if !ok {
			continue
		}
		f := &rollwavev1.SlotFacts{App: app, Active: protoSlot(st.Active)}
		if st.Split != nil {
			f.TrafficWeight = int32(st.Split.Weight)
			f.Dark, f.Shadow = st.Split.Dark, st.Split.Shadow != nil
		}
		for _, n := range []Name{Blue, Green} {
			var version, state string
			if ss := st.Slots[n]; ss != nil {
				version = ss.Version
			}
			if us, err := m.cfg.Driver.Status(ctx, app, n); err == nil {
				state = us.ActiveState
			} else {
				state = "unknown"
			}
			if n == Blue {
				f.BlueVersion, f.BlueState = version, state
			} else {
				f.GreenVersion, f.GreenState = version, state
			}
		}
		out = append(out, f)
	}
	return out
}

// Applied reports, per app, the newest generation and where it got, for
// the agent's hello after a restart.
func (m *Manager) Applied() []*rollwavev1.AppliedGeneration {
	var out []*rollwavev1.AppliedGeneration
	for _, app := range m.Apps() {
		st, ok := m.AppState(app)
		if !ok {
			continue
		}
		if r, ok := st.LastResult(); ok {
			if st.Op != nil && st.Op.Kind == OpRevert && st.Op.Isolated {
				// An isolated revert still under way: not a result yet
				// (see beginRevert); the agent finishes it (Reconcile)
				// and reports how it ended.
				continue
			}
			out = append(out, &rollwavev1.AppliedGeneration{
				App: app, Generation: r.Generation, State: r.AssignmentState(),
				Reason: r.Reason, TimeUnixNano: r.Time.UnixNano(),
			})
		}
	}
	return out
}

// Close closes the traffic switches (the proxies stop listening). Slot
// processes and the state stay as they are; the driver is the caller's.
func (m *Manager) Close() error {
	m.mu.Lock()
	apps := make([]*appRT, 0, len(m.apps))
	for _, rt := range m.apps {
		apps = append(apps, rt)
	}
	m.mu.Unlock()
	var errs []error
	for _, rt := range apps {
		rt.mu.Lock()
		if rt.sw != nil {
			errs = append(errs, rt.sw.Close())
			rt.sw, rt.swCfg = nil, nil
			rt.meter.Store(nil)
		}
		rt.mu.Unlock()
	}
	return errors.Join(errs...)
}

func protoSlot(n Name) rollwavev1.Slot {
	switch n {
	case Blue:
		return rollwavev1.Slot_SLOT_BLUE
	case Green:
		return rollwavev1.Slot_SLOT_GREEN
	}
	return rollwavev1.Slot_SLOT_UNSPECIFIED
}

func slotFromProto(s rollwavev1.Slot) Name {
	switch s {
	case rollwavev1.Slot_SLOT_BLUE:
		return Blue
	case rollwavev1.Slot_SLOT_GREEN:
		return Green
	}
	return ""
}
