package systemd

import (
	"context"
	"fmt"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
)

// connCheckInterval is how often a job wait checks that the bus is still
// connected; the result of a job cannot arrive on a dead connection.
const connCheckInterval = 500 * time.Millisecond

// jobFunc is the shape of go-systemd's StartUnitContext/StopUnitContext.
type jobFunc func(ctx context.Context, name, mode string, ch chan<- string) (int, error)

// runJob enqueues a job with mode "replace" and waits for its result
// ("done", "canceled", "timeout", "failed", "dependency", "skipped"). The
// returned error is the D-Bus error of the call, or why waiting stopped.
func runJob(ctx context.Context, c *sdbus.Conn, name string, fn jobFunc) (string, error) {
	// Buffered: go-systemd sends the result while holding its job lock, so
	// an unread unbuffered channel (we gave up on ctx) would wedge every
	// later job on this connection.
	ch := make(chan string, 1)
	if _, err := fn(ctx, name, "replace", ch); err != nil {
		return "", err
	}
	tick := time.NewTicker(connCheckInterval)
	defer tick.Stop()
	for {
		select {
		case r := <-ch:
			return r, nil
		case <-ctx.Done():
			// The job stays queued in systemd; the caller's next Status
			// shows where it got to.
			return "", fmt.Errorf("waiting for job result: %w", ctx.Err())
		case <-tick.C:
			if !c.Connected() {
				return "", fmt.Errorf("waiting for job result: %w", errConnLost)
			}
		}
	}
}
