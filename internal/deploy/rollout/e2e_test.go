package rollout_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rollwave/rollwave/internal/agent/agenttest"
	"github.com/rollwave/rollwave/internal/coordinator"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/internal/testutil/demoapp"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// The end-to-end tests run 3 real coordinators and 9 real agents (process
// driver) in 3 cells, in this process, and roll the demo app out through
// the orchestrator.
//
// Every in-process agent shares 127.0.0.1 and every host of a release
// gets the same spec, so the slot ports would collide. Each agent
// therefore gets its own loopback address (127.0.X.N) in a file in its
// data dir, and the artifact's bin/run starts the demo app on it; health
// is the unit check (process running, per agent) plus an exec check, and
// traffic mode is "none". The tests read each host's active slot from its
// agent and ask the demo app on that host's address which version it is.

var demoBin string

// Every goroutine a test started is gone when the tests end.
func TestMain(m *testing.M) { demoapp.RunTests(m, &demoBin, func() error { return goleak.Find() }) }

// netOctet gives each e2e test its own 127.0.X.0/24 (nothing of one test
// can answer another's).
var netOctet atomic.Int32

func init() { netOctet.Store(40) }

var cellNames = []string{"edge", "core", "vip"} // risk 1, 2, 3

type fleet struct {
	t      *testing.T
	c      *coordtest.Cluster
	agents map[string]*agenttest.Agent
	ips    map[string]string
	cellOf map[string]string
	hosts  []string
	dir    string
	blue   int
	green  int
	octet  int32
	// regionOfCell places each new host in its cell's region (nil: the
	// agent's default region).
	regionOfCell map[string]string
}

func ctxT(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func newFleet(t *testing.T) *fleet { return newFleetOf(t, 3, 3) }

// newFleetOf starts coordinators servers (configured by opts) and
// hostsPerCell agents in each cell.
func newFleetOf(t *testing.T, coordinators, hostsPerCell int, opts ...coordtest.Option) *fleet {
	t.Helper()
	return newFleetIn(t, coordinators, hostsPerCell, nil, opts...)
}

// newFleetIn is newFleetOf with each cell's hosts in a region
// (regionOfCell; nil: the agents' default region).
func newFleetIn(t *testing.T, coordinators, hostsPerCell int, regionOfCell map[string]string, opts ...coordtest.Option) *fleet {
	t.Helper()
	octet := netOctet.Add(1)
	ports := testutil.FreePorts(t, 2)
	f := &fleet{t: t, agents: map[string]*agenttest.Agent{}, ips: map[string]string{}, cellOf: map[string]string{},
		dir: t.TempDir(), blue: ports[0], green: ports[1], regionOfCell: regionOfCell}
	f.c = coordtest.NewCluster(t, coordinators, opts...)
	l := f.leader()
	for i, name := range cellNames {
		if _, err := f.c.Client(l).SetCell(ctxT(t), &v1.SetCellRequest{Actor: "test",
			Cell: &v1.Cell{Name: name, Risk: int32(i + 1), Criticality: "low", Users: int64(100 * (i + 1))}}); err != nil {
			t.Fatalf("set cell %s: %v", name, err)
		}
	}
	f.octet = octet
	for i := 0; i < len(cellNames)*hostsPerCell; i++ {
		f.addHost(cellNames[i/hostsPerCell])
	}
	f.waitRegistered()
	return f
}

// addHost starts one more agent, hN, in cell, on the fleet's next address;
// waitRegistered waits for it.
func (f *fleet) addHost(cell string) string {
	f.t.Helper()
	i := len(f.hosts)
	name := fmt.Sprintf("h%d", i+1)
	dd := filepath.Join(f.t.TempDir(), name)
	if err := os.MkdirAll(dd, 0o755); err != nil {
		f.t.Fatal(err)
	}
	ip := fmt.Sprintf("127.0.%d.%d", f.octet, i+1)
	if err := os.WriteFile(filepath.Join(dd, "ip"), []byte(ip+"\n"), 0o644); err != nil {
		f.t.Fatal(err)
	}
	f.ips[name], f.cellOf[name] = ip, cell
	f.hosts = append(f.hosts, name)
	f.agents[name] = agenttest.Start(f.t, name, cell, agenttest.Options{Join: f.leader().GossipAddr(), DataDir: dd, Region: f.regionOfCell[cell]})
	return name
}

// waitRegistered waits until every host of the fleet is connected to the
// leader and known to raft.
func (f *fleet) waitRegistered() {
	f.t.Helper()
	// Generous: on a loaded machine leadership can move while agents
	// connect, and each move costs them a reconnect backoff.
	testutil.WaitFor(f.t, 60*time.Second, func() (bool, string) {
		l := f.leader()
		for _, h := range f.hosts {
			if !l.AgentConnected(h) || l.FSM().State().Host(h) == nil {
				return false, h + " not connected and registered"
			}
		}
		return true, ""
	})
}

// 30 s: a loaded 2-core machine can take several elections to settle.
func (f *fleet) leader() *coordinator.Server { return f.c.Leader(30 * time.Second) }

func (f *fleet) client() v1.OperatorServiceClient { return f.c.Client(f.leader()) }

// artifact packages the demo app with bin/run, which starts it on the
// host's own address. burn adds a CPU-burning child (bounded to 30s).
func (f *fleet) artifact(version string, burn bool) (string, string) {
	f.t.Helper()
	bin, err := os.ReadFile(demoBin)
	if err != nil {
		f.t.Fatal(err)
	}
	burner := ""
	if burn {
		// --foreground keeps timeout in the slot's process group, so
		// stopping the slot kills the burner too; 20s bounds it anyway.
		burner = "timeout --foreground 20 sh -c 'while :; do :; done' &\n"
	}
	run := "#!/bin/sh\n" +
		"dir=\"$1\"; port=\"$2\"\n" +
		"ip=$(cat \"$dir/../../../ip\")\n" +
		"[ -n \"$ip\" ] || { echo 'no ip file' >&2; exit 1; }\n" +
		// A host whose data dir holds fail-VERSION cannot start VERSION
		// (tests fail one host of a release this way).
		"! [ -e \"$dir/../../../fail-$(cat \"$dir/config/version\")\" ] || { echo 'failing on purpose' >&2; exit 1; }\n" +
		burner +
		// The binary built once by TestMain, not the slot's fresh copy: a
		// file just written by one in-process agent may still be open for
		// writing in a child another agent forks (ETXTBSY on exec).
		fmt.Sprintf("exec %q -dir \"$dir\" -listen \"$ip:$port\"\n", demoBin)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range []struct {
		name string
		mode int64
		body []byte
	}{
		{"bin/demo-app", 0o755, bin},
		{"bin/run", 0o755, []byte(run)},
		{"config/version", 0o644, []byte(version + "\n")},
		{"config/healthy", 0o644, []byte("yes\n")},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.body)), Typeflag: tar.TypeReg}); err != nil {
			f.t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			f.t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		f.t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		f.t.Fatal(err)
	}
	path := filepath.Join(f.dir, fmt.Sprintf("demo-%s-%v.tar.gz", version, burn))
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		f.t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return "file://" + path, hex.EncodeToString(sum[:])
}

// specOpts are the parts of a release spec that tests vary.
type specOpts struct {
	bake      string // bake.first
	burn      bool
	gates     string // extra lines inside gates {}
	onFailure string
	target    string // a target block; empty = every host
	// maxUnreachable is gates.max_unreachable (default 0), isolation
	// rollback.isolation_timeout (default 20s), top extra lines at the
	// release block's top level (converge = "auto").
	maxUnreachable int
	isolation      string
	top            string
	// edit, when set, rewrites the finished spec source.
	edit func(string) string
}

func (f *fleet) spec(name, version string, o specOpts) string {
	url, sum := f.artifact(version, o.burn)
	if o.bake == "" {
		o.bake = "1s"
	}
	if o.onFailure == "" {
		o.onFailure = "all"
	}
	if o.isolation == "" {
		o.isolation = "20s"
	}
	src := fmt.Sprintf(`release %q {
  app     = "demo"
  version = %q
  artifact {
    url    = %q
    sha256 = %q
  }
  unit {
    exec_start = "/bin/sh {{slot_dir}}/bin/run {{slot_dir}} {{port}}"
    restart    = "no"
  }
  slots {
    blue_port  = %d
    green_port = %d
    keep_old   = "hot"
  }
  traffic {
    mode = "none"
  }
%s
  phases {
    canary = 1
    growth = "geometric"
    factor = 2
    max_size = "50%%"
  }
  health {
    check "unit" {
      interval = "200ms"
      timeout  = "150ms"
    }
    check "exec" {
      command  = ["/bin/true"]
      interval = "1s"
      timeout  = "900ms"
    }
    min_healthy_time = "400ms"
    healthy_deadline = "8s"
  }
  bake {
    first = %q
    decay = 0.5
    min   = "1s"
  }
  gates {
    max_failed_hosts = 0
    max_unreachable  = %d
    max_cpu_percent  = 20
%s
  }
  rollback {
    on_failure        = %q
    isolation_timeout = %q
  }
%s
}
`, name, version, url, sum, f.blue, f.green, o.target, o.bake, o.maxUnreachable, o.gates, o.onFailure, o.isolation, o.top)
	if o.edit != nil {
		src = o.edit(src)
	}
	return src
}

func (f *fleet) start(name, version string, o specOpts) {
	f.t.Helper()
	src := []byte(f.spec(name, version, o))
	// Retried while leadership settles (busy test machines re-elect).
	testutil.WaitFor(f.t, 20*time.Second, func() (bool, string) {
		_, err := f.client().SubmitRelease(ctxT(f.t), &v1.SubmitReleaseRequest{
			SourceName: name + ".hcl", Source: src, Start: true, Actor: "test",
		})
		switch status.Code(err) {
		case codes.OK:
			return true, ""
		case codes.Unavailable, codes.DeadlineExceeded:
			return false, fmt.Sprintf("start %s: %v", name, err)
		case codes.AlreadyExists:
			return true, "" // an earlier attempt went through
		}
		f.t.Fatalf("start %s: %v", name, err)
		return false, ""
	})
}

func (f *fleet) release(id string) *v1.Release { return f.leader().FSM().State().Release(id) }

// eventsOf lists a release's audit events through the API behind
// 'rollwave release events ID'.
func (f *fleet) eventsOf(id string) []*v1.Event {
	f.t.Helper()
	resp, err := f.client().ListEvents(ctxT(f.t), &v1.ListEventsRequest{ReleaseId: id})
	if err != nil {
		return f.leader().FSM().State().Events(id, 0, 0) // leadership moving: read the replica
	}
	return resp.GetEvents()
}

func (f *fleet) dump(id string) string {
	var b strings.Builder
	for _, e := range f.eventsOf(id) {
		fmt.Fprintf(&b, "  %s %-18s phase=%d host=%s %s %v\n", time.Unix(0, e.GetTimeUnixNano()).Format("15:04:05.000"),
			e.GetKind(), e.GetPhase(), e.GetHost(), e.GetMessage(), e.GetEvidence())
	}
	return b.String()
}

// waitRelease waits for the release to reach want; it fails at once if it
// ends in another terminal state.
func (f *fleet) waitRelease(id string, want v1.ReleaseState, within time.Duration) *v1.Release {
	f.t.Helper()
	var r *v1.Release
	deadline := time.Now().Add(within)
	testutil.WaitFor(f.t, within+time.Second, func() (bool, string) {
		r = f.release(id)
		if r.GetState() == want {
			return true, ""
		}
		switch r.GetState() {
		case v1.ReleaseState_RELEASE_STATE_SUCCEEDED, v1.ReleaseState_RELEASE_STATE_ROLLED_BACK,
			v1.ReleaseState_RELEASE_STATE_FAILED, v1.ReleaseState_RELEASE_STATE_ABORTED:
			f.t.Fatalf("release %s ended %s (%s), want %s\n%s", id, r.GetState(), r.GetReason(), want, f.dump(id))
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("release %s is %s (%s), want %s\n%s", id, r.GetState(), r.GetReason(), want, f.dump(id))
		}
		return false, fmt.Sprintf("release %s is %s", id, r.GetState())
	})
	return r
}

// serving asks the host's active slot which version it serves.
func (f *fleet) serving(host string) (string, error) {
	st, ok := f.agents[host].Manager().AppState("demo")
	if !ok || st.Active == "" {
		return "", fmt.Errorf("%s has no active slot", host)
	}
	s := st.Slots[st.Active]
	if s == nil {
		return "", fmt.Errorf("%s: active slot %s not described", host, st.Active)
	}
	c := http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(fmt.Sprintf("http://%s:%d/", f.ips[host], s.Port))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b)), err
}

func (f *fleet) waitServing(hosts []string, version string, within time.Duration) {
	f.t.Helper()
	testutil.WaitFor(f.t, within, func() (bool, string) {
		for _, h := range hosts {
			if v, err := f.serving(h); err != nil || v != version {
				return false, fmt.Sprintf("%s serves %q (%v), want %s", h, v, err, version)
			}
		}
		return true, ""
	})
}

// assignedOncePerGeneration checks the audit trail of a release: each host
// got exactly one assignment (one generation), and generations of a host
// never repeat.
func (f *fleet) assignedOnce(id string) {
	f.t.Helper()
	count := map[string]int{}
	gens := map[string]bool{}
	for _, a := range f.leader().FSM().State().ReleaseAssignments(id) {
		count[a.GetHost()]++
		k := fmt.Sprintf("%s/%d", a.GetHost(), a.GetGeneration())
		if gens[k] {
			f.t.Errorf("%s generation %d assigned twice", a.GetHost(), a.GetGeneration())
		}
		gens[k] = true
	}
	// The audit log agrees: one hosts.assigned entry per host.
	audited := map[string]int{}
	for _, e := range f.eventsOf(id) {
		if e.GetKind() == "hosts.assigned" {
			for _, h := range strings.Split(e.GetEvidence()["hosts"], ",") {
				audited[h]++
			}
		}
	}
	for _, p := range f.release(id).GetPhases() {
		for _, h := range p.GetHosts() {
			if count[h] != 1 || audited[h] != 1 {
				f.t.Errorf("host %s assigned %d times by %s (%d in the audit log), want once", h, count[h], id, audited[h])
			}
		}
	}
}

// movesFromEvents reads, from the release's audit events alone (what
// 'rollwave release events ID' shows), each host's traffic moves: the
// host.switched and host.reverted events, with generation, slots and
// versions (issue 13 item 8).
func (f *fleet) movesFromEvents(id string) (switched, reverted map[string][]map[string]string) {
	switched, reverted = map[string][]map[string]string{}, map[string][]map[string]string{}
	for _, e := range f.eventsOf(id) {
		switch e.GetKind() {
		case "host.switched":
			switched[e.GetHost()] = append(switched[e.GetHost()], e.GetEvidence())
		case "host.reverted":
			reverted[e.GetHost()] = append(reverted[e.GetHost()], e.GetEvidence())
		}
	}
	return switched, reverted
}

// switchedOnce checks, from the audit events alone, that every host of
// the release's phases switched exactly once, from the other slot running
// from to the slot running to, at one generation.
func (f *fleet) switchedOnce(id, from, to string) map[string][]map[string]string {
	f.t.Helper()
	switched, _ := f.movesFromEvents(id)
	n := 0
	for _, p := range f.release(id).GetPhases() {
		for _, h := range p.GetHosts() {
			n++
			evs := switched[h]
			if len(evs) != 1 {
				f.t.Errorf("%s: %d host.switched events in %s, want exactly 1:\n%s", h, len(evs), id, f.dump(id))
				continue
			}
			ev := evs[0]
			if ev["from_version"] != from || ev["to_version"] != to || ev["from_slot"] == ev["to_slot"] || ev["generation"] == "" {
				f.t.Errorf("%s: host.switched evidence %v, want %s → %s between two slots", h, ev, from, to)
			}
		}
	}
	if len(switched) > n {
		f.t.Errorf("host.switched for hosts outside the plan of %s: %v", id, switched)
	}
	return switched
}

func (f *fleet) cellRank(cell string) int { return slices.Index(cellNames, cell) }

// TestE2EReleasesV2ThenV3FailsCanary: v1 then v2 roll across 3 cells × 3
// hosts in the planned order; v3 (burning CPU) fails its canary's
// max_cpu_percent gate and every switched host serves v2 again.
func TestE2EReleasesV2ThenV3FailsCanary(t *testing.T) {
	f := newFleet(t)
	f.start("demo-1", "1.0.0", specOpts{})
	f.waitRelease("demo-1", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 40*time.Second)
	f.waitServing(f.hosts, "1.0.0", 5*time.Second)

	t.Run("v2 rolls in the planned order", func(t *testing.T) {
		f.start("demo-2", "2.0.0", specOpts{})
		r := f.waitRelease("demo-2", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 40*time.Second)
		f.waitServing(f.hosts, "2.0.0", 5*time.Second)
		f.assignedOnce("demo-2")
		f.switchedOnce("demo-2", "1.0.0", "2.0.0")
		if _, reverted := f.movesFromEvents("demo-2"); len(reverted) > 0 {
			t.Errorf("host.reverted in a release that succeeded: %v", reverted)
		}
		// The plan: least risky cell first, the canary alone.
		phases := r.GetPhases()
		if len(phases) < 3 || len(phases[0].GetHosts()) != 1 || f.cellOf[phases[0].GetHosts()[0]] != "edge" {
			t.Fatalf("plan %v", phases)
		}
		lastRank := 0
		var lastStart int64
		for _, p := range phases {
			for _, c := range p.GetCells() {
				if rk := f.cellRank(c); rk < lastRank {
					t.Errorf("phase %d rolls cell %s after a riskier cell", p.GetIndex(), c)
				} else {
					lastRank = rk
				}
			}
			if p.GetStartedUnixNano() <= lastStart || p.GetState() != v1.PhaseState_PHASE_STATE_VERIFIED {
				t.Errorf("phase %d started %d (previous %d), state %s", p.GetIndex(), p.GetStartedUnixNano(), lastStart, p.GetState())
			}
			lastStart = p.GetStartedUnixNano()
		}
		// Assignments follow the phases: a phase's hosts are assigned after the previous phase was verified.
		for _, a := range f.leader().FSM().State().ReleaseAssignments("demo-2") {
			if a.GetPhase() > 0 {
				prev := phases[a.GetPhase()-1]
				if a.GetCreatedUnixNano() < prev.GetFinishedUnixNano() {
					t.Errorf("%s (phase %d) assigned before phase %d was verified", a.GetHost(), a.GetPhase(), prev.GetIndex())
				}
			}
		}
		var order []string
		for _, p := range phases {
			order = append(order, fmt.Sprintf("%d:%v", p.GetIndex(), p.GetHosts()))
		}
		t.Logf("v2 phases: %s", strings.Join(order, " "))
	})

	t.Run("v3 fails its canary and every switched host serves v2", func(t *testing.T) {
		f.start("demo-3", "3.0.0", specOpts{burn: true, bake: "2s"})
		r := f.waitRelease("demo-3", v1.ReleaseState_RELEASE_STATE_ROLLED_BACK, 40*time.Second)
		switched := map[string]bool{}
		for _, a := range f.leader().FSM().State().ReleaseAssignments("demo-3") {
			switched[a.GetHost()] = true
		}
		var hosts []string
		for h := range switched {
			hosts = append(hosts, h)
		}
		f.waitServing(hosts, "2.0.0", 10*time.Second)
		done := time.Now()
		f.waitServing(f.hosts, "2.0.0", time.Second)
		var gateFailed *v1.Event
		for _, e := range f.eventsOf("demo-3") {
			if e.GetKind() == "gate.failed" {
				gateFailed = e
				break
			}
		}
		if gateFailed == nil || gateFailed.GetEvidence()["gate"] != "max_cpu_percent" || gateFailed.GetEvidence()["limit"] != "20" {
			t.Fatalf("no max_cpu_percent gate.failed event with readings:\n%s", f.dump("demo-3"))
		}
		if v, _ := strconv.ParseFloat(gateFailed.GetEvidence()["value"], 64); v <= 20 {
			t.Fatalf("gate.failed reading %v", gateFailed.GetEvidence())
		}
		if !strings.Contains(r.GetReason(), "reverted") {
			t.Errorf("release reason %q", r.GetReason())
		}
		// The time the last host was back on v2 is bounded by when we saw
		// it; the rollback's own record (last revert reported) is in raft.
		var lastReverted int64
		for _, a := range f.leader().FSM().State().ReleaseAssignments("demo-3") {
			lastReverted = max(lastReverted, a.GetUpdatedUnixNano())
		}
		failedAt := time.Unix(0, gateFailed.GetTimeUnixNano())
		t.Logf("v3: gate %s failed (%s); last host reported reverted %.3fs later; v2 confirmed on every switched host (%v) %.3fs after the gate failure",
			gateFailed.GetEvidence()["gate"], gateFailed.GetEvidence()["detail"], time.Unix(0, lastReverted).Sub(failedAt).Seconds(), hosts, done.Sub(failedAt).Seconds())
		// From the events alone: each switched host switched once and
		// reverted once, back the way it came, at the same generation.
		moved, reverted := f.movesFromEvents("demo-3")
		if len(moved) == 0 || len(reverted) != len(moved) {
			t.Errorf("%d hosts switched, %d reverted, want the same non-zero count:\n%s", len(moved), len(reverted), f.dump("demo-3"))
		}
		for h, sw := range moved {
			rv := reverted[h]
			if len(sw) != 1 || len(rv) != 1 {
				t.Errorf("%s: %d switches and %d reverts, want one each", h, len(sw), len(rv))
				continue
			}
			s, r := sw[0], rv[0]
			if s["from_version"] != "2.0.0" || s["to_version"] != "3.0.0" || r["from_version"] != "3.0.0" || r["to_version"] != "2.0.0" ||
				r["from_slot"] != s["to_slot"] || r["to_slot"] != s["from_slot"] || r["generation"] != s["generation"] || r["reason"] == "" {
				t.Errorf("%s: switched %v, reverted %v: want 2.0.0 → 3.0.0 and back between the same slots, with a reason", h, s, r)
			}
		}
		for _, kind := range []string{"revert.ordered", "phase.failed", "release.rolling_back", "release.rolled_back"} {
			if !slices.ContainsFunc(f.eventsOf("demo-3"), func(e *v1.Event) bool { return e.GetKind() == kind }) {
				t.Errorf("no %s event:\n%s", kind, f.dump("demo-3"))
			}
		}
	})
}

// TestE2ELeaderKilledDuringBake: the leader dies while a phase bakes; the
// new leader continues from raft with the stored deadline, the release
// succeeds, and each host was assigned once.
func TestE2ELeaderKilledDuringBake(t *testing.T) {
	f := newFleet(t)
	f.start("demo-1", "1.0.0", specOpts{bake: "3s"})
	var deadline int64
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		r := f.release("demo-1")
		if r.GetCurrentPhase() == 1 && r.GetPhases()[1].GetState() == v1.PhaseState_PHASE_STATE_BAKING {
			deadline = r.GetPhases()[1].GetBakeDeadlineUnixNano()
			return true, ""
		}
		return false, fmt.Sprintf("phase %d %v", r.GetCurrentPhase(), r.GetPhases()[r.GetCurrentPhase()].GetState())
	})
	old := f.c.Index(f.leader())
	f.c.Kill(old)
	killed := time.Now()
	nl := f.c.Index(f.c.Leader(15 * time.Second))
	t.Logf("leader %s killed during phase 1's bake; %s leads after %.2fs", f.c.Configs[old].NodeID, f.c.Configs[nl].NodeID, time.Since(killed).Seconds())
	r := f.waitRelease("demo-1", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 40*time.Second)
	if got := r.GetPhases()[1].GetBakeDeadlineUnixNano(); got != deadline {
		t.Fatalf("phase 1 bake deadline changed across the failover: %d -> %d", deadline, got)
	}
	if fin := r.GetPhases()[1].GetFinishedUnixNano(); fin < deadline {
		t.Fatalf("phase 1 verified at %d, before its bake deadline %d", fin, deadline)
	}
	f.assignedOnce("demo-1")
	f.waitServing(f.hosts, "1.0.0", 5*time.Second)
}

// TestE2EFreezeHoldsTheNextPhase: a freeze window added while phase 0 bakes
// holds phase 1 (one phase.held event); removing it lets the release go on.
func TestE2EFreezeHoldsTheNextPhase(t *testing.T) {
	f := newFleet(t)
	f.start("demo-1", "1.0.0", specOpts{bake: "2s"})
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		p := f.release("demo-1").GetPhases()[0]
		return p.GetState() == v1.PhaseState_PHASE_STATE_BAKING, "phase 0 " + p.GetState().String()
	})
	fr, err := f.client().AddFreeze(ctxT(t), &v1.AddFreezeRequest{FromUnixNano: time.Now().Add(-time.Minute).UnixNano(),
		ToUnixNano: time.Now().Add(time.Hour).UnixNano(), Reason: "launch day", Actor: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		for _, e := range f.eventsOf("demo-1") {
			if e.GetKind() == "phase.held" && e.GetPhase() == 1 {
				return true, ""
			}
		}
		return false, "no phase.held event for phase 1"
	})
	r := f.release("demo-1")
	if r.GetPhases()[0].GetState() != v1.PhaseState_PHASE_STATE_VERIFIED || r.GetPhases()[1].GetState() != v1.PhaseState_PHASE_STATE_PENDING {
		t.Fatalf("phases %v", r.GetPhases())
	}
	// Phase 1's hosts were not touched.
	for _, h := range r.GetPhases()[1].GetHosts() {
		if a := f.leader().FSM().State().Assignment(h, "demo"); a != nil {
			t.Fatalf("%s assigned during the freeze: %v", h, a)
		}
	}
	lifted := time.Now()
	if _, err := f.client().RemoveFreeze(ctxT(t), &v1.RemoveFreezeRequest{Id: fr.GetWindow().GetId(), Actor: "ops"}); err != nil {
		t.Fatal(err)
	}
	r = f.waitRelease("demo-1", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 40*time.Second)
	if st := r.GetPhases()[1].GetStartedUnixNano(); st < lifted.UnixNano() {
		t.Fatalf("phase 1 started %v, before the freeze was lifted %v", time.Unix(0, st), lifted)
	}
	held := 0
	for _, e := range f.eventsOf("demo-1") {
		if e.GetKind() == "phase.held" {
			held++
		}
	}
	if held != 1 {
		t.Fatalf("%d phase.held events, want 1:\n%s", held, f.dump("demo-1"))
	}
	f.waitServing(f.hosts, "1.0.0", 5*time.Second)
}

// TestE2EInconclusiveBaselinePauses: too few samples for the baseline
// comparison pauses the release for a human; it never passes silently.
func TestE2EInconclusiveBaselinePauses(t *testing.T) {
	f := newFleet(t)
	f.start("demo-1", "1.0.0", specOpts{gates: "    baseline = \"compare\"\n    baseline_min_samples = 1000"})
	r := f.waitRelease("demo-1", v1.ReleaseState_RELEASE_STATE_PAUSED, 30*time.Second)
	if !strings.Contains(r.GetReason(), "inconclusive") || r.GetPhases()[0].GetState() != v1.PhaseState_PHASE_STATE_BAKING {
		t.Fatalf("release %s: %s; phase 0 %s", r.GetState(), r.GetReason(), r.GetPhases()[0].GetState())
	}
	var inc *v1.Event
	for _, e := range f.eventsOf("demo-1") {
		if e.GetKind() == "gate.inconclusive" {
			inc = e
		}
		if e.GetKind() == "gate.passed" && strings.HasPrefix(e.GetEvidence()["gate"], "baseline.") {
			t.Fatalf("a baseline gate passed on too little data:\n%s", f.dump("demo-1"))
		}
	}
	if inc == nil || inc.GetEvidence()["min_samples"] != "1000" || inc.GetEvidence()["verdict"] != "inconclusive" {
		t.Fatalf("gate.inconclusive evidence:\n%s", f.dump("demo-1"))
	}
	if f.release("demo-1").GetPhases()[1].GetState() != v1.PhaseState_PHASE_STATE_PENDING {
		t.Fatal("phase 1 started while the release is paused")
	}
}

// TestE2EReleaseContinuesAfterBarrierFailures: the leader dies during a
// bake and the new leader's first raft barriers fail. It retries them,
// starts no leader work until one passes, and then drives the release to
// success.
func TestE2EReleaseContinuesAfterBarrierFailures(t *testing.T) {
	f := newFleet(t)
	f.start("demo-1", "1.0.0", specOpts{bake: "3s"})
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		r := f.release("demo-1")
		return r.GetCurrentPhase() == 1 && r.GetPhases()[1].GetState() == v1.PhaseState_PHASE_STATE_BAKING,
			fmt.Sprintf("phase %d %v", r.GetCurrentPhase(), r.GetPhases()[r.GetCurrentPhase()].GetState())
	})
	const inject = 2 // below the attempts that hand leadership on
	type seam struct {
		failed       atomic.Int32
		enabledEarly atomic.Bool // the orchestrator ran while a barrier failed
	}
	seams := map[*coordinator.Server]*seam{}
	old := f.leader()
	for _, s := range f.c.Followers() {
		sm := &seam{}
		seams[s] = sm
		s.SetLeaderSeams(coordinator.LeaderSeams{Barrier: func(timeout time.Duration) error {
			if s.Rollout().Enabled() {
				sm.enabledEarly.Store(true)
			}
			if sm.failed.Load() < inject {
				sm.failed.Add(1)
				return errors.New("injected barrier failure")
			}
			return s.Raft().Barrier(timeout).Error()
		}})
	}
	f.c.Kill(f.c.Index(old))
	t.Logf("leader %s killed during phase 1's bake; %s leads", old.NodeID(), f.c.Leader(15*time.Second).NodeID())
	r := f.waitRelease("demo-1", v1.ReleaseState_RELEASE_STATE_SUCCEEDED, 40*time.Second)
	if r.GetPhases()[1].GetState() != v1.PhaseState_PHASE_STATE_VERIFIED {
		t.Fatalf("phase 1 is %v", r.GetPhases()[1].GetState())
	}
	sm := seams[f.leader()]
	if sm == nil {
		t.Fatalf("the release finished under %s, which had no barrier seam", f.leader().NodeID())
	}
	if n := sm.failed.Load(); n != inject {
		t.Fatalf("%s failed %d barriers, want %d", f.leader().NodeID(), n, inject)
	}
	for s, sm := range seams {
		if sm.enabledEarly.Load() {
			t.Fatalf("%s ran the orchestrator before its barrier passed", s.NodeID())
		}
	}
	f.assignedOnce("demo-1")
	f.waitServing(f.hosts, "1.0.0", 5*time.Second)
}
