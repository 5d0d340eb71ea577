package rollout_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/raftfsm"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// verdictServer is an http gate endpoint whose verdict a test sets; it
// counts the readings and keeps the last context posted.
type verdictServer struct {
	*httptest.Server
	verdict atomic.Value // string
	calls   atomic.Int32
	last    atomic.Value // map[string]any
}

func newVerdictServer(t *testing.T, verdict string) *verdictServer {
	vs := &verdictServer{}
	vs.verdict.Store(verdict)
	vs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vs.calls.Add(1)
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		vs.last.Store(body)
		fmt.Fprintf(w, `{"verdict":%q,"reason":"checkout SLO says %s"}`, vs.verdict.Load(), vs.verdict.Load())
	}))
	t.Cleanup(vs.Close)
	return vs
}

func withHTTPGate(url string) func(*v1.ReleaseSpec) {
	return func(s *v1.ReleaseSpec) {
		s.Gates.MetricGates = []*v1.MetricGate{{Kind: "http", Name: "slo", Url: url, IntervalMs: 10_000, TimeoutMs: 5_000, Attempts: 1}}
	}
}

// TestMetricGateReadAtIntervalFailsMidBake: the leader reads an http gate
// when the bake starts and then every interval (not every tick); passing
// readings write nothing; a fail verdict fails the phase at once, before
// the bake deadline, with the gate's answer as evidence.
func TestMetricGateReadAtIntervalFailsMidBake(t *testing.T) {
	vs := newVerdictServer(t, "pass")
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1", "h2"}, {"h3", "h4"}}, withHTTPGate(vs.URL))
	c.settle("r")
	c.healthyAll("r", 0)
	c.wantPhase("r", 0, baking)
	c.settle("r")
	if n := vs.calls.Load(); n != 1 {
		t.Fatalf("%d readings at the start of the bake, want 1", n)
	}
	posted := vs.last.Load().(map[string]any)
	if posted["release"] != "r" || posted["version"] != "2" || posted["gate"] != "http.slo" || fmt.Sprint(posted["hosts"]) != "[h1 h2]" {
		t.Fatalf("posted context %v", posted)
	}
	applied := c.state().AppliedIndex()
	c.advance(5 * time.Second)
	c.settle("r")
	if n := vs.calls.Load(); n != 1 || c.state().AppliedIndex() != applied {
		t.Fatalf("%d readings and %d new entries 5s into a 10s interval, want 1 and none", n, c.state().AppliedIndex()-applied)
	}
	c.advance(5 * time.Second)
	c.settle("r")
	if n := vs.calls.Load(); n != 2 || c.state().AppliedIndex() != applied {
		t.Fatalf("%d readings and %d new entries after one interval, want 2 and none (passing readings are not written)", n, c.state().AppliedIndex()-applied)
	}
	vs.verdict.Store("fail")
	c.advance(10 * time.Second)
	c.settle("r")
	c.wantPhase("r", 0, phFailed)
	if p := c.phase("r", 0); p.GetFinishedUnixNano() >= p.GetBakeDeadlineUnixNano() || !strings.Contains(p.GetReason(), "http.slo fail: checkout SLO says fail") {
		t.Fatalf("phase 0: %s (finished before the deadline: %v)", p.GetReason(), p.GetFinishedUnixNano() < p.GetBakeDeadlineUnixNano())
	}
	gf := c.events("r", "gate.failed")
	if len(gf) != 1 || gf[0].GetEvidence()["gate"] != "http.slo" || gf[0].GetEvidence()["url"] != vs.URL || gf[0].GetEvidence()["verdict"] != "fail" {
		t.Fatalf("gate.failed:\n%s", c.dumpEvents("r"))
	}
	c.wantRelease("r", rollingBack)
}

// TestMetricGateInconclusivePausesAndResumeReadsAgain: an inconclusive
// reading mid-bake pauses the release (never passes); after a resume the
// gate is read again at once, and a passing reading at the deadline
// verifies the phase with the reading as evidence.
func TestMetricGateInconclusivePausesAndResumeReadsAgain(t *testing.T) {
	vs := newVerdictServer(t, "inconclusive")
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1", "h2"}, {"h3", "h4"}}, withHTTPGate(vs.URL))
	c.settle("r")
	c.healthyAll("r", 0)
	c.settle("r")
	c.wantRelease("r", paused)
	if r := c.release("r"); !strings.Contains(r.GetReason(), "http.slo inconclusive") {
		t.Fatalf("release reason %q", r.GetReason())
	}
	if gi := c.events("r", "gate.inconclusive"); len(gi) != 1 || gi[0].GetEvidence()["gate"] != "http.slo" {
		t.Fatalf("gate.inconclusive:\n%s", c.dumpEvents("r"))
	}
	vs.verdict.Store("pass")
	calls := vs.calls.Load()
	c.must(raftfsm.SetReleaseState, &v1.SetReleaseStateCommand{TimeUnixNano: c.now.UnixNano(), ReleaseId: "r",
		State: running, Actor: "test", CurrentPhase: -1, Reason: "resume"})
	c.settle("r")
	if vs.calls.Load() != calls+1 {
		t.Fatalf("%d readings after the resume, want 1", vs.calls.Load()-calls)
	}
	c.bakeThrough("r", 0)
	c.wantPhase("r", 0, verified)
	var passed bool
	for _, e := range c.events("r", "gate.passed") {
		passed = passed || (e.GetEvidence()["gate"] == "http.slo" && e.GetEvidence()["verdict"] == "pass")
	}
	if !passed {
		t.Fatalf("no gate.passed for http.slo at the deadline:\n%s", c.dumpEvents("r"))
	}
}

// TestMetricGateUnusableIsInconclusive: a gate the leader cannot build (a
// credential file but no gate_credentials_dir) pauses the release with
// the reason, and sends nothing.
func TestMetricGateUnusableIsInconclusive(t *testing.T) {
	vs := newVerdictServer(t, "pass")
	c := newCluster(t, sixHosts)
	c.submit("r", [][]string{{"h1", "h2"}}, func(s *v1.ReleaseSpec) {
		withHTTPGate(vs.URL)(s)
		s.Gates.MetricGates[0].BearerTokenFile = "slo-token"
	})
	c.settle("r")
	c.healthyAll("r", 0)
	c.settle("r")
	c.wantRelease("r", paused)
	if r := c.release("r"); !strings.Contains(r.GetReason(), "gate_credentials_dir") || vs.calls.Load() != 0 {
		t.Fatalf("release %q after %d readings", r.GetReason(), vs.calls.Load())
	}
}
