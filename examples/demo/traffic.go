package main

import (
	"context"
	"io"
	"maps"
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

// change is one observed change in what a host serves, or (status set,
// reports only) the first failed answer a host gave since setReport.
type change struct {
	at      time.Time
	host    string
	version string // "" when nothing answers
	status  int    // a 5xx (or other non-200) answer; 0 for a change of version
}

// answers counts what one host's traffic port answered.
type answers struct {
	sent     int // requests made
	ok       int // answered 200 (with a version)
	failed   int // answered anything else (the bad version's 500s)
	noAnswer int // connection refused, reset or timed out
}

func (a answers) plus(b answers) answers {
	return answers{sent: a.sent + b.sent, ok: a.ok + b.ok, failed: a.failed + b.failed, noAnswer: a.noAnswer + b.noAnswer}
}

func (a answers) minus(b answers) answers {
	return answers{sent: a.sent - b.sent, ok: a.ok - b.ok, failed: a.failed - b.failed, noAnswer: a.noAnswer - b.noAnswer}
}

// traffic is the demo's traffic generator: for every host, a steady
// stream of GET / through its traffic port (the agent's HTTP proxy, which
// counts requests and 5xx answers per slot for the error-rate gate), one
// every `every`. Connections are kept alive, as a client's would be: the
// HTTP proxy sends each request to the slot active when it arrives. It
// records what each host serves and counts the answers.
type traffic struct {
	hosts  []host
	client *http.Client
	every  time.Duration

	mu       sync.Mutex
	serving  map[string]string
	changes  []change
	counts   map[string]answers
	failSeen map[string]bool // hosts whose first failure since setReport was reported
	report   func(c change)  // called on every change while set
}

// requestEvery paces the generator: 40 requests a second per host, 240
// for the fleet, enough for minRequests in every phase (spec.go) and
// little work for a shared machine.
const requestEvery = 25 * time.Millisecond

func newTraffic(hosts []host) *traffic {
	return &traffic{
		hosts: hosts,
		client: &http.Client{Timeout: time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: 30 * time.Second}},
		every:    requestEvery,
		serving:  map[string]string{},
		counts:   map[string]answers{},
		failSeen: map[string]bool{},
	}
}

// get asks addr for / and returns the version it serves (200), or the
// status of another answer, or an error when nothing answers.
func (t *traffic) get(ctx context.Context, addr string) (version string, status int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256))
	if err != nil {
		return "", 0, err
	}
	// Drain what is left so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return strings.TrimSpace(string(b)), resp.StatusCode, nil
}

// run sends requests to every host until ctx ends.
func (t *traffic) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, h := range t.hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.drive(ctx, h)
		}()
	}
	wg.Wait()
	t.client.CloseIdleConnections()
}

// drive is one host's stream: a request per tick (a slow answer delays
// the next one; ticks are not queued).
func (t *traffic) drive(ctx context.Context, h host) {
	tick := time.NewTicker(t.every)
	defer tick.Stop()
	for {
		version, status, err := t.get(ctx, h.traffic)
		if ctx.Err() != nil {
			return // the demo is stopping: not an answer
		}
		t.record(h.name, version, status, err)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (t *traffic) record(name, version string, status int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.counts[name]
	a.sent++
	switch {
	case err != nil:
		a.noAnswer++
		t.observeLocked(name, "")
	case status == http.StatusOK:
		a.ok++
		t.observeLocked(name, version)
	default:
		// A failed answer says nothing about the version served: count
		// it, and report the host's first since setReport.
		a.failed++
		if !t.failSeen[name] && t.report != nil {
			t.failSeen[name] = true
			t.report(change{at: time.Now(), host: name, version: t.serving[name], status: status})
		}
	}
	t.counts[name] = a
}

func (t *traffic) observeLocked(name, version string) {
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

// setReport sets (nil: clears) the function told of every change, and
// starts over the "first failure" of each host.
func (t *traffic) setReport(f func(change)) {
	t.mu.Lock()
	t.report = f
	clear(t.failSeen)
	t.mu.Unlock()
}

// snapshot returns what each host serves now (as last observed).
func (t *traffic) snapshot() map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.serving)
}

// counted returns each host's answers so far.
func (t *traffic) counted() map[string]answers {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.counts)
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
