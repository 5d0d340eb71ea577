package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// host is one agent as the demo sees it.
type host struct {
	name    string
	cell    string
	offset  int    // the agent's -port-offset
	traffic string // 127.0.0.1:port where its proxy serves the app
}

// change is one observed change in what a host serves.
type change struct {
	at      time.Time
	host    string
	version string // "" when nothing answers
}

// traffic polls every host's traffic port the way a client would (a new
// connection each time: the switch keeps an open connection on the slot
// it was opened to) and records what each serves.
type traffic struct {
	hosts  []host
	client *http.Client
	every  time.Duration

	mu      sync.Mutex
	serving map[string]string
	changes []change
	report  func(c change) // called on every change while set
}

func newTraffic(hosts []host) *traffic {
	return &traffic{
		hosts: hosts,
		client: &http.Client{Timeout: 500 * time.Millisecond,
			Transport: &http.Transport{DisableKeepAlives: true}},
		every:   150 * time.Millisecond,
		serving: map[string]string{},
	}
}

// get returns what addr serves at /, or "" if nothing answers well.
func (t *traffic) get(ctx context.Context, addr string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return ""
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256))
	if err != nil || resp.StatusCode != http.StatusOK {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// run polls until ctx ends.
func (t *traffic) run(ctx context.Context) {
	tick := time.NewTicker(t.every)
	defer tick.Stop()
	for {
		var wg sync.WaitGroup
		for _, h := range t.hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t.observe(h.name, t.get(ctx, h.traffic))
			}()
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (t *traffic) observe(name, version string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if prev, seen := t.serving[name]; seen && prev == version {
		return
	}
	t.serving[name] = version
	c := change{at: time.Now(), host: name, version: version}
	t.changes = append(t.changes, c)
	if t.report != nil {
		t.report(c)
	}
}

func (t *traffic) setReport(f func(change)) {
	t.mu.Lock()
	t.report = f
	t.mu.Unlock()
}

// snapshot returns what each host serves now (as last observed).
func (t *traffic) snapshot() map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := make(map[string]string, len(t.serving))
	for k, v := range t.serving {
		m[k] = v
	}
	return m
}

// since returns the changes observed at or after from.
func (t *traffic) since(from time.Time) []change {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []change
	for _, c := range t.changes {
		if !c.at.Before(from) {
			out = append(out, c)
		}
	}
	return out
}

// all reports whether every host serves version.
func (t *traffic) all(version string) (bool, []string) {
	snap := t.snapshot()
	ok := true
	var off []string
	for _, h := range t.hosts {
		if v := snap[h.name]; v != version {
			ok = false
			if v == "" {
				v = "nothing"
			}
			off = append(off, h.name+"="+v)
		}
	}
	return ok, off
}
