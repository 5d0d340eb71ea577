package dashboard

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// events streams one page's view as server-sent events: a "view" event
// with the page's fragment whenever it changed — or, when only elements
// marked data-patch changed (the fleet's tiles), a "patch" event with just
// those (patchFor) — read every PollInterval
// from this server's operator API (its own replica: a follower keeps
// streaming through a leader change). The browser's EventSource
// reconnects by itself when the stream ends — after StreamLifetime, on
// Close, or when this server goes away; the page then tries this server
// again every few seconds.
//
// Limits: at most MaxStreams at once (503 otherwise); each event must be
// taken by the browser within IdleTimeout (the write deadline); each
// stream ends after StreamLifetime, when the token is checked afresh.
func (d *Dashboard) events(w http.ResponseWriter, r *http.Request) {
	target := r.URL.Query().Get("path")
	u, err := url.Parse(target)
	if target == "" || len(target) > 2048 || err != nil || !strings.HasPrefix(u.Path, d.cfg.Prefix) || u.Host != "" || u.Scheme != "" {
		d.fail(w, r, http.StatusBadRequest, fmt.Sprintf("query parameter path %q must be a dashboard page under %s", target, d.cfg.Prefix))
		return
	}
	s, err := d.sessionOf(w, r)
	if err != nil {
		d.fail(w, r, httpCode(err), errMessage(err))
		return
	}
	select {
	case d.streams <- struct{}{}:
		defer func() { <-d.streams }()
	default:
		w.Header().Set("Retry-After", "5")
		d.fail(w, r, http.StatusServiceUnavailable, errStreamsFull.Error()+fmt.Sprintf(" (%d); retry later", d.cfg.MaxStreams))
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	send := func(event, data string) error {
		if err := rc.SetWriteDeadline(time.Now().Add(d.cfg.IdleTimeout)); err != nil && err != http.ErrNotSupported {
			return err
		}
		var b strings.Builder
		if event != "" {
			b.WriteString("event: " + event + "\n")
		}
		for _, line := range strings.Split(data, "\n") {
			b.WriteString("data: " + line + "\n")
		}
		b.WriteString("\n")
		if _, err := fmt.Fprint(w, b.String()); err != nil {
			return err
		}
		return rc.Flush()
	}
	// The browser retries 2 s after a stream ends.
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return
	}

	ctx := r.Context()
	lifetime := time.NewTimer(d.cfg.StreamLifetime)
	defer lifetime.Stop()
	tick := time.NewTicker(d.cfg.PollInterval)
	defer tick.Stop()
	last, lastStatus := "", ""
	for {
		name, title, data, err := d.viewFor(ctx, s, u.Path, u.Query())
		hdr := d.header(ctx, s.secret)
		switch {
		case err != nil && httpCode(err) == http.StatusUnauthorized:
			_ = send("auth", errMessage(err))
			return
		case err != nil:
			// Kept on screen with the last good view; the stream goes on.
			st := "stale: " + errMessage(err)
			if st != lastStatus {
				if send("status", st) != nil {
					return
				}
				lastStatus = st
			}
		default:
			frag, rerr := renderView(pageData{Prefix: d.cfg.Prefix, Title: title, View: name, Data: data, Header: hdr,
				ACLOff: !d.cfg.ACLEnabled, Who: s.name, Role: s.role, CanAct: s.canAct(), CSRF: s.csrf})
			if rerr != nil {
				d.log.Error("render live view", "view", name, "error", rerr)
				return
			}
			st := "live · node " + hdr.Node + " · leader " + hdr.Leader
			if hdr.Err != "" {
				st = "live · " + hdr.Err
			}
			if st != lastStatus {
				if send("status", st) != nil {
					return
				}
				lastStatus = st
			}
			if frag != last {
				event, data := "view", frag
				if p, ok := patchFor(last, frag); ok {
					event, data = "patch", p
				}
				if send(event, data) != nil {
					return
				}
				last = frag
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-d.done:
			return
		case <-lifetime.C:
			_ = send("bye", "stream lifetime reached; reconnecting")
			return
		case <-tick.C:
		}
	}
}
