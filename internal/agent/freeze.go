package agent

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/rollwave/rollwave/internal/freeze"
	"github.com/rollwave/rollwave/internal/fsutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// maxFreezeWindows bounds the calendar an agent keeps: a leader that sends
// more is refused (the previous calendar stays).
const maxFreezeWindows = 4096

// freezeCalendar is the newest freeze calendar the leader sent, kept in
// <data_dir>/freezes.json so a restarted or isolated agent still enforces
// it. The agent refuses to start a swap of an app inside an active window
// covering the app and the host's cell, unless the order carries an
// admin's freeze override; reverts and finalizes are never held.
type freezeCalendar struct {
	path string
	mu   sync.Mutex
	ws   []*rollwavev1.FreezeWindow
	// stored is what freezes.json holds: the leader sends the calendar on
	// every session open, and an unchanged one is not written again.
	stored []byte
}

func loadFreezeCalendar(dataDir string, log *slog.Logger) *freezeCalendar {
	c := &freezeCalendar{path: filepath.Join(dataDir, "freezes.json")}
	b, err := os.ReadFile(c.path)
	if errors.Is(err, os.ErrNotExist) {
		return c
	}
	var cal rollwavev1.FreezeCalendar
	if err == nil {
		err = protojson.Unmarshal(b, &cal)
	}
	if err != nil {
		// The leader sends the calendar again when a session opens.
		log.Warn("cannot read the stored freeze calendar; enforcing none until the leader sends it", "path", c.path, "error", err)
		return c
	}
	c.ws, c.stored = cal.GetWindows(), b
	return c
}

// set stores the calendar on disk (temp file, fsync, rename), then uses it.
func (c *freezeCalendar) set(cal *rollwavev1.FreezeCalendar) error {
	if n := len(cal.GetWindows()); n > maxFreezeWindows {
		return fmt.Errorf("freeze calendar with %d windows (at most %d); keeping the previous one", n, maxFreezeWindows)
	}
	b, err := protojson.Marshal(cal)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !bytes.Equal(b, c.stored) {
		if err := fsutil.WriteFileAtomic(c.path, b, 0o600); err != nil {
			return fmt.Errorf("store the freeze calendar: %w", err)
		}
		c.stored = b
	}
	c.ws = cal.GetWindows()
	return nil
}

// freezeSkew is the clock difference between agent and leader the agent
// allows at each end of a window: it refuses a swap only when the window
// was already active freezeSkew ago and still is freezeSkew from now, so
// an order the leader sent just before a window opened (or just after it
// closed, by its clock) is not refused by a host whose clock runs a
// little ahead (or behind).
const freezeSkew = 30 * time.Second

// holds returns the windows that hold app on a host in cell at t, and
// did so at t-freezeSkew and will at t+freezeSkew.
func (c *freezeCalendar) holds(app, cell string, t time.Time) []freeze.Hold {
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	var out []freeze.Hold
	for _, h := range freeze.ActiveAt(ws, app, []string{cell}, t) {
		if h.Err == nil && (freeze.Active(h.Window, t.Add(-freezeSkew)).Window == nil || freeze.Active(h.Window, t.Add(freezeSkew)).Window == nil) {
			continue
		}
		out = append(out, h)
	}
	return out
}

// FreezeRefusal starts the reason of an assignment refused inside a freeze
// window; the orchestrator knows such a host never touched a slot.
const FreezeRefusal = "refused by the host's freeze calendar"

// freezeCheck returns why the swap of o may not start now, or "" (no
// window holds it, or an admin overrode the freezes for its release).
func (a *Agent) freezeCheck(o *rollwavev1.AssignmentOrder, log *slog.Logger) string {
	hs := a.freezes.holds(o.GetAssignment().GetApp(), a.cfg.Cell, a.clock.Now())
	if len(hs) == 0 {
		return ""
	}
	if ov := o.GetFreezeOverride(); ov.GetReason() != "" {
		log.Warn("starting a swap inside a freeze window: overridden by an admin",
			"window", hs[0].Window.GetId(), "override_actor", ov.GetActor(), "override_reason", ov.GetReason())
		return ""
	}
	return FreezeRefusal + ": the host is inside " + hs[0].Reason() +
		"; a swap starts in a freeze only with an admin's override (rollwave release override-freeze)"
}
