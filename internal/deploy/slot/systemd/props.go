package systemd

import (
	"context"
	"fmt"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
)

// unitProps are the org.freedesktop.systemd1.Unit properties the driver
// reads.
type unitProps struct {
	LoadState        string
	ActiveState      string
	SubState         string
	NeedDaemonReload bool
}

func (p unitProps) String() string {
	return fmt.Sprintf("load=%s active=%s sub=%s", p.LoadState, p.ActiveState, p.SubState)
}

// readUnitProps reads the unit's properties in one call. Reading loads the
// unit if systemd had not (a missing file gives LoadState "not-found").
func readUnitProps(ctx context.Context, c *sdbus.Conn, name string) (unitProps, error) {
	m, err := c.GetUnitPropertiesContext(ctx, name)
	if err != nil {
		return unitProps{}, fmt.Errorf("read unit properties: %w", err)
	}
	var p unitProps
	// Strings and bools missing from an old systemd stay zero values.
	p.LoadState, _ = m["LoadState"].(string)
	p.ActiveState, _ = m["ActiveState"].(string)
	p.SubState, _ = m["SubState"].(string)
	p.NeedDaemonReload, _ = m["NeedDaemonReload"].(bool)
	if p.LoadState == "" || p.ActiveState == "" {
		return p, fmt.Errorf("read unit properties: LoadState/ActiveState missing from systemd's reply")
	}
	return p, nil
}

// serviceUint32 reads a uint32 property of the Service interface. If
// optional, a property this systemd does not know reads as 0.
func serviceUint32(ctx context.Context, c *sdbus.Conn, name, prop string, optional bool) (uint32, error) {
	v, err := c.GetServicePropertyContext(ctx, name, prop)
	if err != nil {
		if optional && dbusErrorName(err) == errUnknownProperty {
			return 0, nil
		}
		return 0, fmt.Errorf("read service property %s: %w", prop, err)
	}
	n, ok := v.Value.Value().(uint32)
	if !ok {
		return 0, fmt.Errorf("service property %s: got %s, want uint32", prop, v.Value.Signature())
	}
	return n, nil
}

// describe summarises a unit's state for an error message, including the
// service's Result ("exit-code", "signal", "start-limit-hit", ...). It
// never fails: a read error is described instead.
func describe(ctx context.Context, c *sdbus.Conn, name string) string {
	p, err := readUnitProps(ctx, c, name)
	if err != nil {
		return "state unknown: " + err.Error()
	}
	res, err := c.GetServicePropertyContext(ctx, name, "Result")
	if err != nil {
		return p.String() + " result=unknown (" + err.Error() + ")"
	}
	r, _ := res.Value.Value().(string)
	return p.String() + " result=" + r
}
