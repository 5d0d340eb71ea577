//go:build linux

package slot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rollwave/rollwave/internal/backoff"
)

// ProcessConfig configures the process driver. Zero fields take the
// defaults of DefaultProcessConfig.
type ProcessConfig struct {
	// Logger receives the driver's logs (component=slot is added).
	Logger *slog.Logger
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	StopTimeout time.Duration
	// SettleTime is how long a freshly started process must stay up for
	// Start to call it running. A process that exits within it (bad flag,
	// port in use) fails Start instead of being restarted in a loop.
	SettleTime time.Duration
	// RestartBackoff is the delay before the first automatic restart; it
	// doubles per restart up to RestartBackoffMax.
	RestartBackoff    time.Duration
	RestartBackoffMax time.Duration
	// StartLimitBurst restarts within StartLimitInterval put the unit in
	// "failed" instead of restarting it again (systemd's start limit).
	StartLimitBurst    int
	StartLimitInterval time.Duration
}

// DefaultProcessConfig returns the defaults.
func DefaultProcessConfig() ProcessConfig {
	return ProcessConfig{
		Logger:             slog.Default(),
		StopTimeout:        10 * time.Second,
		SettleTime:         200 * time.Millisecond,
		RestartBackoff:     100 * time.Millisecond,
		RestartBackoffMax:  10 * time.Second,
		StartLimitBurst:    5,
		StartLimitInterval: 10 * time.Second,
	}
}

// Validate checks the config after defaults were applied.
func (c ProcessConfig) Validate() error {
	switch {
	case c.StopTimeout < 0:
		return fmt.Errorf("process driver: StopTimeout %s is negative", c.StopTimeout)
	case c.SettleTime < 0:
		return fmt.Errorf("process driver: SettleTime %s is negative", c.SettleTime)
	case c.RestartBackoffMax < c.RestartBackoff:
		return fmt.Errorf("process driver: RestartBackoffMax %s below RestartBackoff %s", c.RestartBackoffMax, c.RestartBackoff)
	case c.StartLimitBurst < 1:
		return fmt.Errorf("process driver: StartLimitBurst %d must be at least 1", c.StartLimitBurst)
	}
	return nil
}

// ProcessDriver is a Driver for hosts without systemd (and for tests): the
// agent runs and supervises the slot processes itself.
//
// Every slot process runs in its own process group (Stop signals the whole
// group, so helpers it forked go too) with Pdeathsig=SIGKILL: if the agent
// dies, the kernel kills the slot processes with it. That is deliberate.
// Without a service manager nobody else would watch those processes, and
// an agent that restarted next to orphans it cannot supervise (and whose
// ports they still hold) could not bring the host to a known state. A
// restarted agent instead finds a clean host and Manager.Reconcile starts
// exactly the slot the state file says is active. (Pdeathsig fires when
// the OS thread that forked the child exits; the Go runtime keeps its
// threads for the process lifetime, and nothing here locks goroutines to
// threads, so in practice it fires when the agent process dies.)
//
// User is honoured only when the agent runs as root (it then sets the
// process credentials to that user and its groups); an unprivileged agent
// cannot switch users and runs the slot as itself.
type ProcessDriver struct {
	cfg ProcessConfig
	log *slog.Logger

	mu     sync.Mutex
	units  map[string]*proc
	closed bool
}

// proc is one slot's unit and its current process. Guarded by the
// driver's mu.
type proc struct {
	unit         Unit
	hash         string
	active, sub  string
	run          *run
	epoch        uint64 // bumped by Start and Stop; stale restarts check it
	restarts     uint32
	restartTimes []time.Time
	restartTimer *time.Timer
	unprivWarned atomic.Bool // warned once that User is ignored
}

// run is one process of a unit.
type run struct {
	cmd      *exec.Cmd
	pid      int
	exited   chan struct{} // closed after Wait returned and err is set
	err      error
	settled  bool // guarded by driver mu: past the settle window
	stopping bool // guarded by driver mu: Stop signalled it
}

var _ Driver = (*ProcessDriver)(nil)

// NewProcessDriver returns a process driver.
func NewProcessDriver(cfg ProcessConfig) (*ProcessDriver, error) {
	def := DefaultProcessConfig()
	if cfg.Logger == nil {
		cfg.Logger = def.Logger
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = def.StopTimeout
	}
	if cfg.SettleTime == 0 {
		cfg.SettleTime = def.SettleTime
	}
	if cfg.RestartBackoff == 0 {
		cfg.RestartBackoff = def.RestartBackoff
	}
	if cfg.RestartBackoffMax == 0 {
		cfg.RestartBackoffMax = max(def.RestartBackoffMax, cfg.RestartBackoff)
	}
	if cfg.StartLimitBurst == 0 {
		cfg.StartLimitBurst = def.StartLimitBurst
	}
	if cfg.StartLimitInterval == 0 {
		cfg.StartLimitInterval = def.StartLimitInterval
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &ProcessDriver{
		cfg:   cfg,
		log:   cfg.Logger.With("component", "slot", "driver", "process"),
		units: map[string]*proc{},
	}, nil
}

// Name implements Driver.
func (d *ProcessDriver) Name() string { return "process" }

func unitKey(app string, slot Name) string { return app + "/" + string(slot) }

// Install implements Driver. A running process keeps the unit it was
// started with until it is next started, like systemd after a reload.
func (d *ProcessDriver) Install(_ context.Context, u Unit) (bool, error) {
	if u.App == "" || !u.Slot.Valid() {
		return false, fmt.Errorf("install: unit needs an app and a valid slot (got %q, %q)", u.App, u.Slot)
	}
	if len(u.ExecStart) == 0 {
		return false, fmt.Errorf("install %s: empty ExecStart", UnitName(u.App, u.Slot))
	}
	if !filepath.IsAbs(u.Dir) {
		return false, fmt.Errorf("install %s: Dir %q is not absolute", UnitName(u.App, u.Slot), u.Dir)
	}
	h := unitHash(u)
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.units[unitKey(u.App, u.Slot)]
	if p == nil {
		d.units[unitKey(u.App, u.Slot)] = &proc{unit: u, hash: h, active: "inactive", sub: "dead"}
		return true, nil
	}
	if p.hash == h {
		return false, nil
	}
	p.unit, p.hash = u, h
	return true, nil
}

// Start implements Driver: ExecStartPre commands in order, then ExecStart,
// then the settle window. Starting a running unit is a no-op.
func (d *ProcessDriver) Start(ctx context.Context, app string, slot Name) error {
	unitName := UnitName(app, slot)
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return fmt.Errorf("start %s: driver closed: %w", unitName, ErrUnitFailed)
	}
	p := d.units[unitKey(app, slot)]
	if p == nil {
		d.mu.Unlock()
		return fmt.Errorf("start %s: not installed: %w", unitName, ErrUnitFailed)
	}
	if r := p.run; r != nil {
		d.mu.Unlock()
		if !r.stopping {
			return nil
		}
		// A Stop is under way: let the old process go (and free its
		// port) before starting a new one.
		select {
		case <-r.exited:
		case <-ctx.Done():
			return fmt.Errorf("start %s: waiting for the previous process to stop: %w", unitName, ctx.Err())
		}
		return d.Start(ctx, app, slot)
	}
	p.epoch++
	if p.restartTimer != nil {
		p.restartTimer.Stop()
	}
	p.restarts, p.restartTimes = 0, nil
	p.active, p.sub = "activating", "start"
	epoch, u := p.epoch, p.unit
	d.mu.Unlock()

	fail := func(err error) error {
		d.mu.Lock()
		if p.epoch == epoch {
			p.active, p.sub = "failed", "failed"
		}
		d.mu.Unlock()
		return fmt.Errorf("start %s: %v: %w", unitName, err, ErrUnitFailed)
	}
	for _, argv := range u.ExecStartPre {
		if err := d.runPre(ctx, p, u, argv); err != nil {
			return fail(fmt.Errorf("ExecStartPre %q: %w%s", argv, err, logTail(u.Dir)))
		}
	}

	d.mu.Lock()
	if p.epoch != epoch || d.closed {
		d.mu.Unlock()
		return fmt.Errorf("start %s: stopped while starting: %w", unitName, ErrUnitFailed)
	}
	r, err := d.launch(p)
	d.mu.Unlock()
	if err != nil {
		return fail(err)
	}

	settle := time.NewTimer(d.cfg.SettleTime)
	defer settle.Stop()
	select {
	case <-r.exited:
		return fail(fmt.Errorf("exited within %s of starting (%v)%s", d.cfg.SettleTime, exitText(r.err), logTail(u.Dir)))
	case <-ctx.Done():
		_ = d.Stop(context.WithoutCancel(ctx), app, slot)
		return fmt.Errorf("start %s: %w", unitName, ctx.Err())
	case <-settle.C:
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if p.run != r {
		return fmt.Errorf("start %s: process went away while starting: %w", unitName, ErrUnitFailed)
	}
	r.settled = true
	d.log.Info("slot process running", "app", app, "slot", slot, "pid", r.pid, "version", u.Version)
	return nil
}

// runPre runs one ExecStartPre command to completion.
func (d *ProcessDriver) runPre(ctx context.Context, p *proc, u Unit, argv []string) error {
	logw, err := openRotating(filepath.Join(u.Dir, "slot.log"), maxLogBytes)
	if err != nil {
		return err
	}
	defer logw.Close()
	cmd, err := startRetryingBusy(func() (*exec.Cmd, error) { return d.command(p, u, argv, logw) })
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return ctx.Err()
	}
}

// launch starts the unit's main process. Called with d.mu held.
func (d *ProcessDriver) launch(p *proc) (*run, error) {
	u := p.unit
	logw, err := openRotating(filepath.Join(u.Dir, "slot.log"), maxLogBytes)
	if err != nil {
		return nil, err
	}
	cmd, err := startRetryingBusy(func() (*exec.Cmd, error) { return d.command(p, u, u.ExecStart, logw) })
	if err != nil {
		logw.Close()
		return nil, err
	}
	r := &run{cmd: cmd, pid: cmd.Process.Pid, exited: make(chan struct{})}
	p.run = r
	p.active, p.sub = "active", "running"
	go d.supervise(p, r, logw)
	return r, nil
}

// supervise waits for a process to exit and applies the restart policy.
func (d *ProcessDriver) supervise(p *proc, r *run, logw *rotatingFile) {
	err := r.cmd.Wait()
	// Reap whatever the process left in its group.
	_ = syscall.Kill(-r.pid, syscall.SIGKILL)
	logw.Close()

	d.mu.Lock()
	defer d.mu.Unlock()
	r.err = err
	close(r.exited)
	if p.run != r {
		return
	}
	p.run = nil
	u := p.unit
	switch {
	case r.stopping || d.closed:
		p.active, p.sub = "inactive", "dead"
		return
	case !r.settled:
		p.active, p.sub = "failed", "failed" // Start reports it
		return
	}
	restart := u.Restart == "always" || (u.Restart == "on-failure" && err != nil)
	if !restart {
		if err != nil {
			p.active, p.sub = "failed", "failed"
		} else {
			p.active, p.sub = "inactive", "dead"
		}
		d.log.Warn("slot process exited", "app", u.App, "slot", u.Slot, "pid", r.pid, "result", exitText(err), "restart", u.Restart)
		return
	}
	now := time.Now()
	recent := p.restartTimes[:0]
	for _, t := range p.restartTimes {
		if now.Sub(t) < d.cfg.StartLimitInterval {
			recent = append(recent, t)
		}
	}
	p.restartTimes = recent
	if len(recent) >= d.cfg.StartLimitBurst {
		p.active, p.sub = "failed", "failed"
		d.log.Error("slot process keeps exiting, start limit hit", "app", u.App, "slot", u.Slot,
			"restarts", len(recent), "interval", d.cfg.StartLimitInterval, "result", exitText(err))
		return
	}
	backoff := d.cfg.RestartBackoff << min(len(recent), 16)
	backoff = min(backoff, d.cfg.RestartBackoffMax)
	p.restartTimes = append(p.restartTimes, now)
	p.restarts++
	p.active, p.sub = "activating", "auto-restart"
	epoch := p.epoch
	d.log.Warn("slot process exited, restarting", "app", u.App, "slot", u.Slot, "pid", r.pid,
		"result", exitText(err), "backoff", backoff, "restarts", p.restarts)
	p.restartTimer = time.AfterFunc(backoff, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if p.epoch != epoch || d.closed || p.run != nil {
			return
		}
		nr, err := d.launch(p)
		if err != nil {
			p.active, p.sub = "failed", "failed"
			d.log.Error("slot process restart failed", "app", u.App, "slot", u.Slot, "error", err)
			return
		}
		nr.settled = true
	})
}

// Stop implements Driver: SIGTERM to the process group, SIGKILL after
// StopTimeout (or when ctx ends first).
func (d *ProcessDriver) Stop(ctx context.Context, app string, slot Name) error {
	d.mu.Lock()
	p := d.units[unitKey(app, slot)]
	if p == nil {
		d.mu.Unlock()
		return nil
	}
	p.epoch++
	if p.restartTimer != nil {
		p.restartTimer.Stop()
	}
	r := p.run
	if r == nil {
		p.active, p.sub = "inactive", "dead"
		d.mu.Unlock()
		return nil
	}
	r.stopping = true
	p.active, p.sub = "deactivating", "stop-sigterm"
	d.mu.Unlock()

	_ = syscall.Kill(-r.pid, syscall.SIGTERM)
	grace := time.NewTimer(d.cfg.StopTimeout)
	defer grace.Stop()
	select {
	case <-r.exited:
	case <-grace.C:
		d.log.Warn("slot process ignored SIGTERM, killing", "app", app, "slot", slot, "pid", r.pid, "stop_timeout", d.cfg.StopTimeout)
	case <-ctx.Done():
	}
	_ = syscall.Kill(-r.pid, syscall.SIGKILL)
	// SIGKILL cannot be ignored; the bound only covers a wedged kernel.
	hard := time.NewTimer(10 * time.Second)
	defer hard.Stop()
	select {
	case <-r.exited:
		return nil
	case <-hard.C:
		return fmt.Errorf("stop %s: pid %d did not exit after SIGKILL: %w", UnitName(app, slot), r.pid, ErrUnitFailed)
	}
}

// Status implements Driver.
func (d *ProcessDriver) Status(_ context.Context, app string, slot Name) (UnitStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.units[unitKey(app, slot)]
	if p == nil {
		return UnitStatus{ActiveState: "inactive", SubState: "dead"}, nil
	}
	st := UnitStatus{Exists: true, ActiveState: p.active, SubState: p.sub, Restarts: p.restarts}
	if p.run != nil {
		st.MainPID = p.run.pid
	}
	return st, nil
}

// Remove implements Driver.
func (d *ProcessDriver) Remove(ctx context.Context, app string, slot Name) error {
	if err := d.Stop(ctx, app, slot); err != nil {
		return err
	}
	d.mu.Lock()
	delete(d.units, unitKey(app, slot))
	d.mu.Unlock()
	return nil
}

// Close implements Driver: it stops every slot process (SIGTERM, then
// SIGKILL after StopTimeout) and refuses further starts.
func (d *ProcessDriver) Close() error {
	d.mu.Lock()
	d.closed = true
	var units []Unit
	for _, p := range d.units {
		units = append(units, p.unit)
	}
	d.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(units))
	for i, u := range units {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.Stop(context.Background(), u.App, u.Slot)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// kill SIGKILLs every process group at once, as the kernel does through
// Pdeathsig when the agent dies. Tests use it to simulate kill -9.
func (d *ProcessDriver) kill() {
	d.mu.Lock()
	d.closed = true
	var runs []*run
	for _, p := range d.units {
		if p.restartTimer != nil {
			p.restartTimer.Stop()
		}
		if p.run != nil {
			runs = append(runs, p.run)
			_ = syscall.Kill(-p.run.pid, syscall.SIGKILL)
		}
	}
	d.mu.Unlock()
	for _, r := range runs {
		<-r.exited
	}
}

// startRetryingBusy builds and starts a command, retrying on ETXTBSY: a
// binary just unpacked by staging can still be open for writing in a
// child that another goroutine forked at that moment (golang/go#22315);
// the descriptor goes away as soon as that child execs, which on a loaded
// machine can take a while: it retries for up to busyRetryFor.
func startRetryingBusy(build func() (*exec.Cmd, error)) (*exec.Cmd, error) {
	bo := backoff.New(5*time.Millisecond, 500*time.Millisecond)
	deadline := time.Now().Add(busyRetryFor)
	for {
		cmd, err := build()
		if err != nil {
			return nil, err
		}
		err = cmd.Start()
		if err == nil {
			return cmd, nil
		}
		if !errors.Is(err, syscall.ETXTBSY) || time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(bo.Next())
	}
}

// busyRetryFor bounds startRetryingBusy's retries.
const busyRetryFor = 5 * time.Second

// ReadLogs reads the slot's log file, LogFileName in its directory.
func (d *ProcessDriver) ReadLogs(ctx context.Context, src LogSource, n int, follow bool, emit func(LogLine) error) error {
	if src.Dir == "" || !filepath.IsAbs(src.Dir) {
		return fmt.Errorf("slot directory %q is not absolute", src.Dir)
	}
	return readLogFile(ctx, filepath.Join(src.Dir, LogFileName), n, follow, emit)
}
