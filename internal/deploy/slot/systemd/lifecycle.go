package systemd

import (
	"context"
	"fmt"
	"time"

	"github.com/rollwave/rollwave/internal/deploy/slot"
)

// Start starts the slot's unit and returns once the start job is "done"
// and the unit is active. It daemon-reloads first only if a unit file
// changed since the last reload, or systemd reports the unit stale (a file
// written before an agent restart; note systemd also reports every unit
// stale after "systemctl enable/disable" of any unit, until the next
// reload). Start does not restart a unit that is
// already running: Stop it first to apply a changed unit file.
//
// A job result other than "done", or a unit not active afterwards, is an
// error wrapping slot.ErrUnitFailed that carries systemd's states.
func (d *Driver) Start(ctx context.Context, app string, s slot.Name) error {
	name, err := unitName(app, s)
	if err != nil {
		return fmt.Errorf("systemd: start: %w", err)
	}
	c, err := d.connection(ctx)
	if err != nil {
		return err
	}
	reloads := d.reload.done.Load()
	p, err := readUnitProps(ctx, c, name)
	if err != nil {
		return fmt.Errorf("systemd: start %s: %w", name, err)
	}
	// not-found with a file on disk: systemd cached the unit's absence
	// before the file was written by a process that then died.
	stale := p.NeedDaemonReload || (p.LoadState == "not-found" && fileExists(d.unitPath(name)))
	if err := d.reloadIfNeeded(ctx, c, name, stale, reloads); err != nil {
		return err
	}
	// A unit that failed earlier keeps its failed state and may be
	// rate-limited (start-limit-hit); resetting makes this a fresh start.
	if err := c.ResetFailedUnitContext(ctx, name); err != nil && !isNoSuchUnit(err) {
		return fmt.Errorf("systemd: start %s: reset-failed: %w", name, err)
	}

	begin := time.Now()
	result, err := runJob(ctx, c, name, c.StartUnitContext)
	if err != nil {
		return fmt.Errorf("systemd: start %s: %w", name, err)
	}
	if result != "done" {
		return fmt.Errorf("systemd: start %s: job result %q (%s): %w", name, result, describe(ctx, c, name), slot.ErrUnitFailed)
	}
	p, err = readUnitProps(ctx, c, name)
	if err != nil {
		return fmt.Errorf("systemd: start %s: %w", name, err)
	}
	if p.ActiveState != "active" {
		return fmt.Errorf("systemd: start %s: job done but unit is %s: %w", name, p, slot.ErrUnitFailed)
	}
	d.log.Info("unit started", "unit", name, "duration", time.Since(begin))
	return nil
}

// Stop stops the slot's unit and returns once the stop job is "done". A
// unit that is not loaded (never installed, or removed) is not an error.
func (d *Driver) Stop(ctx context.Context, app string, s slot.Name) error {
	name, err := unitName(app, s)
	if err != nil {
		return fmt.Errorf("systemd: stop: %w", err)
	}
	c, err := d.connection(ctx)
	if err != nil {
		return err
	}
	begin := time.Now()
	result, err := runJob(ctx, c, name, c.StopUnitContext)
	if isNoSuchUnit(err) {
		d.log.Debug("stop: unit not loaded", "unit", name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("systemd: stop %s: %w", name, err)
	}
	if result != "done" {
		return fmt.Errorf("systemd: stop %s: job result %q (%s): %w", name, result, describe(ctx, c, name), slot.ErrUnitFailed)
	}
	d.log.Info("unit stopped", "unit", name, "duration", time.Since(begin))
	return nil
}

// Status reports the slot's unit as systemd sees it. Exists is false when
// systemd finds no unit file (LoadState "not-found").
func (d *Driver) Status(ctx context.Context, app string, s slot.Name) (slot.UnitStatus, error) {
	name, err := unitName(app, s)
	if err != nil {
		return slot.UnitStatus{}, fmt.Errorf("systemd: status: %w", err)
	}
	c, err := d.connection(ctx)
	if err != nil {
		return slot.UnitStatus{}, err
	}
	p, err := readUnitProps(ctx, c, name)
	if err != nil {
		return slot.UnitStatus{}, fmt.Errorf("systemd: status %s: %w", name, err)
	}
	st := slot.UnitStatus{
		Exists:      p.LoadState != "not-found",
		ActiveState: p.ActiveState,
		SubState:    p.SubState,
	}
	if !st.Exists {
		return st, nil
	}
	pid, err := serviceUint32(ctx, c, name, "MainPID", false)
	if err != nil {
		return slot.UnitStatus{}, fmt.Errorf("systemd: status %s: %w", name, err)
	}
	restarts, err := serviceUint32(ctx, c, name, "NRestarts", true)
	if err != nil {
		return slot.UnitStatus{}, fmt.Errorf("systemd: status %s: %w", name, err)
	}
	st.MainPID = int(pid)
	st.Restarts = restarts
	return st, nil
}
