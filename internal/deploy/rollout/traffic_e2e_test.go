package rollout_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Weighted traffic steps, in-process: real agents and their HTTP proxies,
// the demo app, and a load generator that records which version answered
// each request (X-Version) and when it was sent; a watcher records the
// canary's weight from its slot state. The agent drives the steps itself
// and judges each on its proxy's counts, new slot against old slot.

// sample is one answered request.
type sample struct {
	at      time.Time // sent
	version string
	status  int
}

// recorder sends GET / to addr every `every` and records the answers.
type recorder struct {
	mu      sync.Mutex
	samples []sample
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	tr      *http.Transport
}

func record(t *testing.T, addr string, every time.Duration) *recorder {
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{cancel: cancel, tr: &http.Transport{MaxIdleConnsPerHost: 64}}
	cl := &http.Client{Transport: r.tr, Timeout: 5 * time.Second}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		sendEvery(ctx, cl, addr, every, func(at time.Time, resp *http.Response) {
			r.mu.Lock()
			r.samples = append(r.samples, sample{at: at, version: resp.Header.Get("X-Version"), status: resp.StatusCode})
			r.mu.Unlock()
		})
	}()
	t.Cleanup(r.stop)
	return r
}

func (r *recorder) stop() {
	r.cancel()
	r.wg.Wait()
	r.tr.CloseIdleConnections()
}

func (r *recorder) all() []sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sample(nil), r.samples...)
}

// weightChange is when the canary's weight for the new version changed.
type weightChange struct {
	at     time.Time
	weight int
}

// watchWeight polls host's slot state for app every 5ms and records the
// new version's share of traffic (0 before the switch) until stop.
func watchWeight(f *reqFleet, host, version string) (stop func() []weightChange) {
	ctx, cancel := context.WithCancel(context.Background())
	var out []weightChange
	done := make(chan struct{})
	go func() {
		defer close(done)
		last := -1
		for ctx.Err() == nil {
			w := 0
			if st, ok := f.agents[host].Manager().AppState("demo"); ok && st.Active != "" && st.Slots[st.Active] != nil &&
				st.Slots[st.Active].Version == version {
				w = st.Weight()
			}
			if w != last {
				out = append(out, weightChange{at: time.Now(), weight: w})
				last = w
			}
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() []weightChange { cancel(); <-done; return out }
}

// canaryOf is the host of a started release's phase 0.
func (f *reqFleet) canaryOf(id string) string {
	f.t.Helper()
	var host string
	testutil.WaitFor(f.t, 30*time.Second, func() (bool, string) {
		ph := f.fleet.release(id).GetPhases()
		if len(ph) == 0 || len(ph[0].GetHosts()) == 0 {
			return false, "no plan yet"
		}
		host = ph[0].GetHosts()[0]
		return true, ""
	})
	return host
}

// waitWeight100 waits until host serves version with all its traffic
// (the steps are done).
func (f *reqFleet) waitWeight100(host, version string, within time.Duration) {
	f.t.Helper()
	testutil.WaitFor(f.t, within, func() (bool, string) {
		st, ok := f.agents[host].Manager().AppState("demo")
		if !ok || st.Slots[st.Active] == nil {
			return false, "no state"
		}
		return st.Slots[st.Active].Version == version && st.Split == nil,
			fmt.Sprintf("active %s (%s) weight %d phase %s", st.Active, st.Slots[st.Active].Version, st.Weight(), st.Phase)
	})
}

func (f *reqFleet) abort(id string) {
	f.t.Helper()
	if _, err := f.client().AbortRelease(ctxT(f.t), &v1.ReleaseActionRequest{Id: id, Actor: "test", Reason: "test done"}); err != nil {
		f.t.Fatal(err)
	}
	f.waitRelease(id, v1.ReleaseState_RELEASE_STATE_ABORTED, 30*time.Second)
}

// TestE2ETrafficSteps: steps [1, 10, 50, 100] under steady load give the
// new version its share of each step within ±2 points; a version that
// fails only under load fails at the 10 % step, the host reverts with the
// evidence, and at most 10 % of the host's requests ever saw it; cookie-
// sticky clients never go back to the old version once moved.
func TestE2ETrafficSteps(t *testing.T) {
	f := newReqFleet(t)
	// v1 everywhere: a first deploy has no old slot to weigh against.
	f.release("tw-1", "1.0.0", "3s", map[string]string{}, "    min_requests = 1")
	f.waitRelease("tw-1", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 90*time.Second)

	const every = 5 * time.Millisecond // ~200 requests/s to the canary
	gates := "    min_requests = 15"

	t.Run("measured share follows each step", func(t *testing.T) {
		f.trafficExtra = "    steps = [1, 10, 50, 100]\n    step_time = \"4s\"\n"
		f.release("tw-2", "2.0.0", "60s", map[string]string{}, gates)
		canary := f.canaryOf("tw-2")
		rec := record(t, f.proxyAddr(canary), every)
		stopWatch := watchWeight(f, canary, "2.0.0")
		f.waitWeight100(canary, "2.0.0", 120*time.Second)
		changes := stopWatch()
		rec.stop()
		samples := rec.all()
		var seen []int
		for i, c := range changes {
			if c.weight == 0 || c.weight == 100 {
				continue
			}
			seen = append(seen, c.weight)
			end := time.Now()
			if i+1 < len(changes) {
				end = changes[i+1].at
			}
			// 50ms margins: the watcher polls every 5ms.
			from, to := c.at.Add(50*time.Millisecond), end.Add(-50*time.Millisecond)
			n, onNew := 0, 0
			for _, s := range samples {
				if s.at.Before(from) || !s.at.Before(to) {
					continue
				}
				n++
				if s.version == "2.0.0" {
					onNew++
				}
			}
			share := 100 * float64(onNew) / float64(max(n, 1))
			t.Logf("FIGURES step %d%%: %d of %d requests on the new version = %.2f%% over %s", c.weight, onNew, n, share, to.Sub(from).Round(time.Millisecond))
			if n < 100 || share < float64(c.weight)-2 || share > float64(c.weight)+2 {
				t.Errorf("step %d%%: measured share %.2f%% of %d requests, want within ±2 points", c.weight, share, n)
			}
		}
		if fmt.Sprint(seen) != "[1 10 50]" {
			t.Fatalf("weights seen %v, want [1 10 50] then 100 (changes %v)", seen, changes)
		}
		f.abort("tw-2")
	})

	t.Run("a version failing only under load fails at 10%", func(t *testing.T) {
		f.trafficExtra = "    steps = [1, 10, 50, 100]\n    step_time = \"4s\"\n"
		// ~2 requests/s at 1 %, ~20 at 10 %: only the 10 % step overloads it.
		f.release("tw-3", "3.0.0", "60s", map[string]string{"fail_above_rps": "8"}, gates)
		canary := f.canaryOf("tw-3")
		rec := record(t, f.proxyAddr(canary), every)
		stopWatch := watchWeight(f, canary, "3.0.0")
		r := f.waitRelease("tw-3", v1.ReleaseState_RELEASE_STATE_ROLLED_BACK, 120*time.Second)
		changes := stopWatch()
		rec.stop()
		a := f.leader().FSM().State().Assignment(canary, "demo")
		if a.GetReleaseId() != "tw-3" || a.GetState() != v1.AssignmentState_ASSIGNMENT_STATE_REVERTED ||
			!strings.Contains(a.GetReason(), "traffic step 10% failed") || !strings.Contains(a.GetReason(), "p=") {
			t.Fatalf("canary %s assignment %s %q (release %s: %s)\n%s", canary, a.GetState(), a.GetReason(), r.GetState(), r.GetReason(), f.dump("tw-3"))
		}
		maxW := 0
		for _, c := range changes {
			maxW = max(maxW, c.weight)
		}
		if maxW != 10 {
			t.Fatalf("the weight reached %d%%, want the 10%% step to fail (changes %v)", maxW, changes)
		}
		samples := rec.all()
		first, last := -1, -1
		for i, s := range samples {
			if s.version == "3.0.0" || (s.status == 500 && s.version == "3.0.0") {
				if first < 0 {
					first = i
				}
				last = i
			}
		}
		if first < 0 {
			t.Fatal("no request ever reached 3.0.0")
		}
		seenNew := 0
		for _, s := range samples[first : last+1] {
			if s.version == "3.0.0" {
				seenNew++
			}
		}
		total := last + 1 - first
		t.Logf("FIGURES failing version: %d of %d host requests (%.2f%%) saw 3.0.0 between its first and last answer; reason: %s",
			seenNew, total, 100*float64(seenNew)/float64(total), a.GetReason())
		if 10*seenNew > total {
			t.Fatalf("%d of %d requests saw the failing version: more than 10%%", seenNew, total)
		}
		// Everything back on the old version at once.
		st, _ := f.agents[canary].Manager().AppState("demo")
		if st.Split != nil || st.Slots[st.Active].Version == "3.0.0" {
			t.Fatalf("after the revert: active %s weight %d", st.Active, st.Weight())
		}
	})

	t.Run("sticky clients never go back", func(t *testing.T) {
		f.trafficExtra = "    steps = [10, 50, 100]\n    step_time = \"3s\"\n    sticky = \"cookie\"\n"
		f.release("tw-4", "4.0.0", "60s", map[string]string{}, gates)
		canary := f.canaryOf("tw-4")
		addr := f.proxyAddr(canary)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		const clients = 40
		seqs := make([][]string, clients)
		var wg sync.WaitGroup
		tr := &http.Transport{MaxIdleConnsPerHost: clients}
		defer tr.CloseIdleConnections()
		for i := range clients {
			jar, _ := cookiejar.New(nil)
			cl := &http.Client{Transport: tr, Jar: jar, Timeout: 5 * time.Second}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
					resp, err := cl.Do(req)
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						seqs[i] = append(seqs[i], resp.Header.Get("X-Version"))
					}
					select {
					case <-ctx.Done():
					case <-time.After(20 * time.Millisecond):
					}
				}
			}()
		}
		f.waitWeight100(canary, "4.0.0", 120*time.Second)
		cancel()
		wg.Wait()
		moved := 0
		for i, seq := range seqs {
			onNew := false
			for j, v := range seq {
				if v == "4.0.0" {
					onNew = true
				} else if onNew {
					t.Fatalf("client %d went back to %s at request %d after seeing 4.0.0", i, v, j)
				}
			}
			if onNew {
				moved++
			}
		}
		t.Logf("FIGURES sticky: %d of %d cookie clients moved to the new version once and never back", moved, clients)
		f.abort("tw-4")
	})
}
