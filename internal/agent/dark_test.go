package agent_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/internal/testutil/demoapp"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// darkRelease submits a release of the demo app with an HTTP proxy and
// phases { dark … } (phasesBody), starts it and assigns it to h1.
func (f *fleet) darkRelease(name, version string, config map[string]string, phasesBody string) uint64 {
	f.t.Helper()
	config["healthy"] = "yes"
	a, err := demoapp.PackageConfig(demoBin, f.dir, version, config)
	if err != nil {
		f.t.Fatal(err)
	}
	src := demoapp.Spec(name, version, a, f.blue, f.green, port0(f.traffic), "1m")
	src = strings.Replace(src, "    mode   = \"proxy\"\n", "    mode   = \"proxy\"\n    protocol = \"http\"\n", 1)
	src = strings.Replace(src, "  health {\n", "  phases {\n"+phasesBody+"  }\n  gates {\n    min_requests = 20\n  }\n  health {\n", 1)
	l := f.leader()
	if _, err := f.c.Client(l).SubmitRelease(ctx(f.t), &rollwavev1.SubmitReleaseRequest{
		SourceName: name + ".hcl", Source: []byte(src), Start: true, Actor: "test",
	}); err != nil {
		f.t.Fatalf("submit %s: %v\n%s", name, err, src)
	}
	as, err := l.AssignHosts(name, 0, []string{"h1"})
	if err != nil {
		f.t.Fatalf("assign %s: %v", name, err)
	}
	return as[0].GetGeneration()
}

// httpV1 deploys and finalizes 1.0.0 behind the HTTP proxy (kept-alive
// user connections opened to a TCP proxy would stay byte pipes).
func (f *fleet) httpV1() {
	f.t.Helper()
	gen := f.darkRelease("demo-1", "1.0.0", map[string]string{}, "")
	f.waitState(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY, 15*time.Second)
	waitServes(f.t, f.traffic, "1.0.0", 5*time.Second)
	f.finish("demo-1", gen)
}

// userLoad sends GET / to addr every 5ms over kept-alive connections and
// counts the answers by body (the demo app answers its version) and the
// failures (an error or a status other than 200).
type userLoad struct {
	mu       sync.Mutex
	versions map[string]int
	failed   int
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

func startUserLoad(t *testing.T, addr string) *userLoad {
	ctx, cancel := context.WithCancel(context.Background())
	u := &userLoad{versions: map[string]int{}, cancel: cancel}
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		defer tr.CloseIdleConnections()
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
			resp, err := c.Do(req)
			if ctx.Err() != nil {
				return
			}
			u.mu.Lock()
			if err != nil {
				u.failed++
			} else {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					u.failed++
				}
				u.versions[strings.TrimSpace(string(b))]++
			}
			u.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(u.stop)
	return u
}

func (u *userLoad) stop() { u.cancel(); u.wg.Wait() }

func (u *userLoad) counts() (map[string]int, int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := map[string]int{}
	for k, v := range u.versions {
		out[k] = v
	}
	return out, u.failed
}

// A version answering 500 to every user request (its health check is
// fine) fails its dark phase on the shadow comparison: the host reverts
// with the evidence, and no user request ever reached it or failed.
func TestDarkPhaseShadowFailsBeforeUserTraffic(t *testing.T) {
	f := newFleet(t)
	f.httpV1()
	load := startUserLoad(t, f.traffic)
	gen := f.darkRelease("demo-2", "2.0.0", map[string]string{"error_rate": "1"}, "    dark = \"3s\"\n    shadow = true\n    shadow_sample = \"50%\"\n")
	a := f.waitState(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_REVERTED, 30*time.Second)
	if !strings.Contains(a.GetReason(), "dark phase failed before any user traffic reached the new slot") || !strings.Contains(a.GetReason(), "shadow: new ") {
		t.Fatalf("reason %q", a.GetReason())
	}
	waitServes(t, f.traffic, "1.0.0", 5*time.Second)
	load.stop()
	versions, failed := load.counts()
	t.Logf("user requests by version %v, %d failed; reason: %s", versions, failed, a.GetReason())
	if versions["2.0.0"] != 0 || failed != 0 || versions["1.0.0"] < 40 {
		t.Fatalf("user requests by version %v, %d failed: want only 1.0.0 and no failures", versions, failed)
	}
}

// A good version waits out its dark phase with no user request reaching
// it (the agent reports the host dark), then takes all the traffic and
// reports healthy.
func TestDarkPhasePassesThenSwitches(t *testing.T) {
	f := newFleet(t)
	f.httpV1()
	load := startUserLoad(t, f.traffic)
	gen := f.darkRelease("demo-2", "2.0.0", map[string]string{}, "    dark = \"3s\"\n    shadow = true\n")
	// Dark: the new slot runs and is checked, users stay on 1.0.0, and the
	// host's facts say so.
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		st, ok := f.agent.Manager().AppState("demo")
		return ok && st.Generation == gen && st.Split != nil && st.Split.Dark, "not dark yet"
	})
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		h := f.leader().FSM().State().Host("h1")
		for _, fa := range h.GetApps() {
			if fa.GetApp() == "demo" && fa.GetDark() && fa.GetShadow() && fa.GetTrafficWeight() == 0 {
				return true, ""
			}
		}
		return false, "host facts do not report the dark phase"
	})
	if versions, _ := load.counts(); versions["2.0.0"] != 0 {
		t.Fatalf("a user reached 2.0.0 during its dark phase: %v", versions)
	}
	a := f.waitState(gen, rollwavev1.AssignmentState_ASSIGNMENT_STATE_HEALTHY, 40*time.Second)
	// The evidence of the dark phase comes with the healthy report.
	if !strings.Contains(a.GetReason(), "dark phase passed after") || !strings.Contains(a.GetReason(), "shadow: new 0/") {
		t.Fatalf("healthy reason %q: want the dark phase's evidence", a.GetReason())
	}
	waitServes(t, f.traffic, "2.0.0", 5*time.Second)
	if st, _ := f.agent.Manager().AppState("demo"); st.Split != nil {
		t.Fatalf("healthy with a split still in effect: %+v", st.Split)
	}
	load.stop()
	versions, failed := load.counts()
	t.Logf("user requests by version %v, %d failed", versions, failed)
	if failed != 0 || versions["2.0.0"] == 0 {
		t.Fatalf("user requests by version %v, %d failed", versions, failed)
	}
}
