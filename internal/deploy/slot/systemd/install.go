package systemd

import (
	"context"
	"fmt"

	"github.com/rollwave/rollwave/internal/deploy/slot"
)

// Install renders u and writes it to UnitDir if the file differs, and
// reports whether it wrote. It does not talk to systemd: the next Start
// reloads when needed.
func (d *Driver) Install(ctx context.Context, u slot.Unit) (bool, error) {
	content, err := Render(u, d.cfg.Hardening)
	if err != nil {
		return false, fmt.Errorf("systemd: install: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("systemd: install %s: %w", slot.UnitName(u.App, u.Slot), err)
	}
	name := slot.UnitName(u.App, u.Slot)
	path := d.unitPath(name)
	changed, err := writeIfChanged(path, content)
	if changed {
		// Even if the directory fsync failed, the content did change.
		d.markWritten()
		d.log.Info("unit file written", "unit", name, "path", path, "version", u.Version)
	}
	if err != nil {
		return changed, fmt.Errorf("systemd: install %s: %w", name, err)
	}
	return changed, nil
}

// Remove stops the slot's unit and deletes its file. Removing a missing
// unit is not an error.
func (d *Driver) Remove(ctx context.Context, app string, s slot.Name) error {
	name, err := unitName(app, s)
	if err != nil {
		return fmt.Errorf("systemd: remove: %w", err)
	}
	if err := d.Stop(ctx, app, s); err != nil {
		return err
	}
	c, err := d.connection(ctx)
	if err != nil {
		return err
	}
	// A failed unit stays loaded (and reported) until reset; clearing it
	// lets systemd unload the unit once its file is gone.
	if err := c.ResetFailedUnitContext(ctx, name); err != nil && !isNoSuchUnit(err) {
		return fmt.Errorf("systemd: remove %s: reset-failed: %w", name, err)
	}
	existed, err := removeFile(d.unitPath(name))
	if existed {
		d.markWritten()
		d.log.Info("unit file removed", "unit", name)
	}
	if err != nil {
		return fmt.Errorf("systemd: remove %s: %w", name, err)
	}
	return nil
}
