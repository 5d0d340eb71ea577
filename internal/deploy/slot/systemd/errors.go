package systemd

import (
	"errors"

	"github.com/godbus/dbus/v5"
)

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("systemd driver closed")

// errConnLost is returned when the bus connection dies while a job runs:
// the job's result will never arrive on this connection.
var errConnLost = errors.New("system bus connection lost")

// D-Bus error names systemd and the bus use for conditions we handle.
const (
	// errNoSuchUnit is systemd's "Unit X not loaded." / "not found.".
	errNoSuchUnit = "org.freedesktop.systemd1.NoSuchUnit"
	// errUnknownProperty is sd-bus's reply for a property this systemd
	// version does not have (e.g. NRestarts before v235).
	errUnknownProperty = "org.freedesktop.DBus.Error.UnknownProperty"
)

// dbusErrorName returns the D-Bus error name inside err, or "".
func dbusErrorName(err error) string {
	var v dbus.Error
	if errors.As(err, &v) {
		return v.Name
	}
	var p *dbus.Error
	if errors.As(err, &p) && p != nil {
		return p.Name
	}
	return ""
}

func isNoSuchUnit(err error) bool { return dbusErrorName(err) == errNoSuchUnit }
