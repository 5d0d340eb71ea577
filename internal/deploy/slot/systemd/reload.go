package systemd

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
)

// reloadState tracks whether systemd has seen the unit files on disk.
// Generations rather than a flag: a file written while a reload is in
// flight may or may not have been read by it, so it counts as unseen.
type reloadState struct {
	// written is bumped after every unit file write or delete.
	written atomic.Uint64
	// done counts daemon-reloads issued (tests read it to prove no
	// needless reloads).
	done atomic.Int64

	mu sync.Mutex // serialises reloads
	// seen is the value of written when the last successful reload
	// began; guarded by mu.
	seen uint64
}

// markWritten records that a unit file changed on disk.
func (d *Driver) markWritten() { d.reload.written.Add(1) }

// reloadCount reports how many daemon-reloads the driver issued.
func (d *Driver) reloadCount() int64 { return d.reload.done.Load() }

// reloadIfNeeded issues a daemon-reload if a unit file changed since the
// last one, or if stale is set (systemd said the unit is out of date) and
// no reload happened since the caller looked (countAtCheck).
func (d *Driver) reloadIfNeeded(ctx context.Context, c *sdbus.Conn, unit string, stale bool, countAtCheck int64) error {
	r := &d.reload
	r.mu.Lock()
	defer r.mu.Unlock()
	gen := r.written.Load()
	reason := ""
	switch {
	case gen != r.seen:
		reason = "unit files changed"
	case stale && r.done.Load() == countAtCheck:
		reason = "systemd reports the unit out of date"
	default:
		return nil
	}
	start := time.Now()
	if err := c.ReloadContext(ctx); err != nil {
		return fmt.Errorf("systemd: daemon-reload before starting %s: %w", unit, err)
	}
	r.seen = gen
	r.done.Add(1)
	d.log.Info("daemon-reload", "unit", unit, "reason", reason, "duration", time.Since(start))
	return nil
}
