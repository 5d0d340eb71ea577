// Package slot runs an app's two slots (blue and green) on one host: unit
// drivers, artifact staging, the traffic switch, and the crash-safe swap
// and revert procedures.
package slot

import (
	"context"
	"errors"
	"fmt"
)

// Name is a slot name: "blue" or "green".
type Name string

const (
	Blue  Name = "blue"
	Green Name = "green"
)

// Other returns the other slot.
func (n Name) Other() Name {
	if n == Blue {
		return Green
	}
	return Blue
}

// Valid reports whether n is blue or green.
func (n Name) Valid() bool { return n == Blue || n == Green }

// UnitName is the systemd unit name of an app's slot:
// rollwave-<app>-<slot>.service.
func UnitName(app string, slot Name) string {
	return fmt.Sprintf("rollwave-%s-%s.service", app, slot)
}

// Unit describes what runs in one slot, already rendered: no {{…}}
// placeholders remain.
type Unit struct {
	App  string
	Slot Name
	// Version is informational (unit description, facts).
	Version string
	// Dir is the slot directory (/var/lib/rollwave/apps/<app>/<slot>).
	Dir string
	// Port is the slot's private port.
	Port int
	// ExecStart is the command line, split into arguments.
	ExecStart []string
	// ExecStartPre are commands run before ExecStart, each split.
	ExecStartPre [][]string
	// User runs the process; empty = the agent's user.
	User string
	// Environment for the process.
	Environment map[string]string
	// WorkingDirectory; empty = Dir.
	WorkingDirectory string
	// Restart policy: "always", "on-failure" or "no".
	Restart string
	// Hardening are the release's own sandboxing lines ("Key=value"); the
	// systemd driver lets them replace its defaults for the same keys.
	Hardening []string
}

// UnitStatus is what a driver reports about a slot's unit.
type UnitStatus struct {
	// Exists is false when no unit is installed for the slot.
	Exists bool
	// ActiveState and SubState follow systemd's words: "active"/"running",
	// "inactive"/"dead", "failed"/"failed", "activating"/"start", ...
	ActiveState string
	SubState    string
	// MainPID is the main process, 0 when not running.
	MainPID int
	// Restarts counts restarts since the unit was last started by us.
	Restarts uint32
}

// Running reports whether the slot's process is up.
func (s UnitStatus) Running() bool { return s.ActiveState == "active" && s.MainPID > 0 }

// Driver runs slot units. Implementations: the systemd driver (D-Bus) and
// the process driver (the agent supervises the processes itself). Every
// call honours ctx's deadline and returns only when the action finished
// (for systemd: the job result is "done").
type Driver interface {
	// Name is "systemd" or "process".
	Name() string
	// Install writes or updates the slot's unit. changed reports whether
	// anything differs from what was installed (systemd reloads only then).
	Install(ctx context.Context, u Unit) (changed bool, err error)
	// Start starts the slot's unit and waits until it is active.
	Start(ctx context.Context, app string, slot Name) error
	// Stop stops the slot's unit and waits until it is inactive. Stopping a
	// stopped or missing unit is not an error.
	Stop(ctx context.Context, app string, slot Name) error
	// Status reports the unit's state.
	Status(ctx context.Context, app string, slot Name) (UnitStatus, error)
	// Remove stops and deletes the slot's unit.
	Remove(ctx context.Context, app string, slot Name) error
	// Close releases the driver's resources (D-Bus connection). The process
	// driver stops its processes.
	Close() error
}

// ErrUnitFailed is returned (wrapped) when a unit did not reach the
// wanted state.
var ErrUnitFailed = errors.New("unit failed")
