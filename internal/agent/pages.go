package agent

import (
	"context"
	"time"
)

// requestPageRelease asks releaseLoop to give back the binary's resident
// pages once the work in hand is over. It never blocks.
func (a *Agent) requestPageRelease() {
	if a.cfg.ReleaseExecutablePages == nil {
		return
	}
	select {
	case a.releaseKick <- struct{}{}:
	default: // one is pending already
	}
}

// releaseLoop calls Config.ReleaseExecutablePages on request, one
// heartbeat interval after the request (so the first heartbeat of a
// session, or the progress report of a finished swap, is out first) and no
// more often than ReleasePagesEvery. Requests that arrive meanwhile are
// folded into the next call.
//
// Why: start-up (package inits, config parsing, TLS, the gossip join, the
// first dial) and a swap (fetch, unpack, unit writing, health checks)
// touch code and tables that an idle agent never runs again, and the
// kernel keeps them mapped, counted in the agent's RSS, until memory runs
// short (docs/performance.md, "Agent footprint work (session 2)").
func (a *Agent) releaseLoop(ctx context.Context) {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.releaseKick:
		}
		wait := a.cfg.HeartbeatInterval
		if !last.IsZero() {
			wait = max(wait, time.Until(last.Add(a.cfg.ReleasePagesEvery)))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		select { // fold a request that came while waiting into this call
		case <-a.releaseKick:
		default:
		}
		last = time.Now()
		n, err := a.cfg.ReleaseExecutablePages()
		if err != nil {
			a.log.Debug("release executable pages", "error", err)
			continue
		}
		a.log.Debug("released executable pages", "resident_before_bytes", n)
	}
}
