// Package systemd is the slot driver that runs each slot as a systemd
// service (rollwave-<app>-<slot>.service), written to a unit directory and
// driven over the system bus with go-systemd's dbus package.
//
// Every job (start, stop) is waited on until systemd reports its result,
// under the caller's context. daemon-reload is expensive on busy hosts, so
// the driver reloads only when a unit file it wrote or removed has not
// been seen by systemd yet, or when systemd itself says a unit is stale.
package systemd

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	sdbus "github.com/coreos/go-systemd/v22/dbus"

	"github.com/rollwave/rollwave/internal/deploy/slot"
)

var _ slot.Driver = (*Driver)(nil)

// Driver runs slot units under systemd. It is safe for concurrent use.
// Create it with New and release it with Close.
type Driver struct {
	cfg Config
	log *slog.Logger

	// base outlives every call: godbus closes a connection when the
	// context it was dialled with ends, so a caller's deadline must not
	// be used for dialling. Close cancels base.
	base       context.Context
	cancelBase context.CancelFunc

	connMu sync.Mutex
	conn   *sdbus.Conn // nil until first use; guarded by connMu
	closed bool        // guarded by connMu

	reload reloadState
}

// New validates cfg and returns a driver. It does not touch the bus: the
// first call that needs systemd connects (use Connect to fail early).
func New(cfg Config) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	base, cancel := context.WithCancel(context.Background())
	return &Driver{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "systemd"),
		base:       base,
		cancelBase: cancel,
	}, nil
}

// Name returns "systemd".
func (d *Driver) Name() string { return "systemd" }

// Connect connects to the system bus now, if not connected yet. Other
// methods connect on demand; Connect lets the agent fail at start-up on a
// host without systemd.
func (d *Driver) Connect(ctx context.Context) error {
	_, err := d.connection(ctx)
	return err
}

// Close closes the bus connection. Jobs already queued in systemd keep
// running. Close is idempotent; later calls fail with ErrClosed.
func (d *Driver) Close() error {
	d.connMu.Lock()
	defer d.connMu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
	d.cancelBase()
	return nil
}

// unitPath is the file a unit is written to.
func (d *Driver) unitPath(name string) string { return filepath.Join(d.cfg.UnitDir, name) }

// connection returns a live bus connection, dialling a new one if there is
// none or the previous one was closed (bus restart, systemd re-exec): one
// attempt per call, bounded by ctx.
func (d *Driver) connection(ctx context.Context) (*sdbus.Conn, error) {
	d.connMu.Lock()
	defer d.connMu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	if d.conn != nil {
		if d.conn.Connected() {
			return d.conn, nil
		}
		d.log.Warn("system bus connection closed, reconnecting")
		d.conn.Close()
		d.conn = nil
	}
	c, err := d.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("systemd: connect to system bus: %w", err)
	}
	d.conn = c
	d.log.Debug("connected to system bus")
	return c, nil
}

// dial connects under d.base (see Driver.base) but gives up when ctx ends;
// a dial that completes after that is closed.
func (d *Driver) dial(ctx context.Context) (*sdbus.Conn, error) {
	type result struct {
		c   *sdbus.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := sdbus.NewSystemConnectionContext(d.base)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}
