//go:build e2e

package realhost

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rollwave/rollwave/test/integration/fleet"
)

// requestTimeout bounds one load request; a request without an answer by
// then counts as failed (a user would have given up too).
const requestTimeout = 2 * time.Second

// sample is one load request's outcome.
type sample struct {
	host       int // index into the load's targets
	sent, done time.Time
	status     int    // the HTTP status; 0: no answer (connect error, reset, timeout)
	version    string // X-Version of the answer (the demo app sets it on 500s too)
}

func (s sample) failed() bool { return s.status != http.StatusOK }

// load sends steady traffic from the machine to one port on each of a set
// of hosts (rollwave's traffic proxy, or the Ansible-managed app): rate
// requests per second per host, each on its own timer so a slow answer
// does not delay the next, and records every request's outcome.
type load struct {
	names  []string
	client *http.Client
	stop   chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	samples []sample
}

// startLoad starts the traffic. keepAlive reuses connections between
// requests; without it every request is a new connection, which a TCP
// proxy (traffic.protocol = "tcp") routes by the split at that moment —
// a kept-alive connection stays on the slot it was opened to.
func startLoad(hosts []*fleet.Host, port int, rate float64, keepAlive bool) *load {
	l := &load{
		client: &http.Client{
			Timeout: requestTimeout,
			Transport: &http.Transport{
				MaxIdleConnsPerHost: 64,
				IdleConnTimeout:     30 * time.Second,
				DisableCompression:  true,
				DisableKeepAlives:   !keepAlive,
			},
		},
		stop: make(chan struct{}),
	}
	every := time.Duration(float64(time.Second) / rate)
	for i, h := range hosts {
		l.names = append(l.names, h.Name)
		url := fmt.Sprintf("http://%s:%d/", h.IP, port)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			// Spread the hosts' ticks over one interval.
			select {
			case <-time.After(every * time.Duration(i) / time.Duration(len(hosts))):
			case <-l.stop:
				return
			}
			tick := time.NewTicker(every)
			defer tick.Stop()
			for {
				select {
				case <-l.stop:
					return
				case <-tick.C:
				}
				l.wg.Add(1)
				go func() {
					defer l.wg.Done()
					l.one(i, url)
				}()
			}
		}()
	}
	return l
}

func (l *load) one(host int, url string) {
	s := sample{host: host, sent: time.Now()}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if resp, err := l.client.Do(req); err == nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		resp.Body.Close()
		s.status = resp.StatusCode
		s.version = resp.Header.Get("X-Version")
		if s.version == "" && s.status == http.StatusOK {
			s.version = strings.TrimSpace(string(body))
		}
	}
	s.done = time.Now()
	l.mu.Lock()
	l.samples = append(l.samples, s)
	l.mu.Unlock()
}

// snapshot returns the samples recorded so far.
func (l *load) snapshot() []sample {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]sample(nil), l.samples...)
}

// halt stops sending, waits for the requests in flight (each bounded by
// requestTimeout) and returns every sample.
func (l *load) halt() []sample {
	close(l.stop)
	l.wg.Wait()
	l.client.CloseIdleConnections()
	return l.snapshot()
}

// tally is what the load saw between two instants (by send time).
type tally struct {
	Requests, Failed5xx, FailedNoAnswer, OnVersion int
	// First5xx is the first failed request's send time (zero if none).
	First5xx time.Time
}

func (t tally) failed() int { return t.Failed5xx + t.FailedNoAnswer }

func (t tally) failedPct() float64 {
	if t.Requests == 0 {
		return 0
	}
	return 100 * float64(t.failed()) / float64(t.Requests)
}

// count tallies the samples sent in [from, to]; OnVersion counts the
// answers by version.
func count(samples []sample, from, to time.Time, version string) tally {
	var t tally
	for _, s := range samples {
		if s.sent.Before(from) || s.sent.After(to) {
			continue
		}
		t.Requests++
		switch {
		case s.status == 0:
			t.FailedNoAnswer++
		case s.failed():
			t.Failed5xx++
			if t.First5xx.IsZero() || s.sent.Before(t.First5xx) {
				t.First5xx = s.sent
			}
		}
		if s.version == version {
			t.OnVersion++
		}
	}
	return t
}

// lastAnswer is when the last answer by version arrived (from any host)
// and how many hosts ever answered with it; zero time if none did.
func lastAnswer(samples []sample, version string) (time.Time, int) {
	var last time.Time
	hosts := map[int]bool{}
	for _, s := range samples {
		if s.version != version {
			continue
		}
		hosts[s.host] = true
		if s.done.After(last) {
			last = s.done
		}
	}
	return last, len(hosts)
}

// finalVersions checks that every host's last answer (sent after since)
// is version with 200, and says which are not.
func (l *load) finalVersions(samples []sample, since time.Time, version string) error {
	last := make([]*sample, len(l.names))
	for i := range samples {
		s := &samples[i]
		if s.sent.Before(since) {
			continue
		}
		if p := last[s.host]; p == nil || s.sent.After(p.sent) {
			last[s.host] = s
		}
	}
	var bad []string
	for i, s := range last {
		switch {
		case s == nil:
			bad = append(bad, l.names[i]+": no answer since "+since.Format(time.TimeOnly))
		case s.status != http.StatusOK || s.version != version:
			bad = append(bad, fmt.Sprintf("%s: last answer %d %q", l.names[i], s.status, s.version))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("not every host answers %s: %s", version, strings.Join(bad, "; "))
	}
	return nil
}

// achievedRate is the requests per second per host actually sent over
// the samples' span.
func achievedRate(samples []sample, hosts int) float64 {
	if len(samples) < 2 || hosts == 0 {
		return 0
	}
	first, last := samples[0].sent, samples[0].sent
	for _, s := range samples {
		if s.sent.Before(first) {
			first = s.sent
		}
		if s.sent.After(last) {
			last = s.sent
		}
	}
	span := last.Sub(first).Seconds()
	if span <= 0 {
		return 0
	}
	return float64(len(samples)) / span / float64(hosts)
}
