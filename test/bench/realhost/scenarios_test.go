//go:build e2e

package realhost

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	"github.com/rollwave/rollwave/internal/testutil/demoapp"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"github.com/rollwave/rollwave/test/integration/fleet"
)

const (
	relWatching = rollwavev1.ReleaseState_RELEASE_STATE_WATCHING
	// probeRate is the per-host request rate that times "every host
	// serves the old version" in the rollback and bad-host scenarios
	// (a 100 ms resolution).
	probeRate = 10
	// badHostMarker is the file that makes the bad-host version fail its
	// health check (demo-app's config/unhealthy_if_file) on the host that
	// has it.
	badHostMarker = "/run/rollwave-bench-bad-host"
	// The blast-radius app: its own slots and traffic proxy (HTTP, so the
	// proxy counts requests for the gates), next to the demo app's.
	blastApp                              = "blast"
	blastBlue, blastGreen, blastTrafficPt = 18181, 18182, 18180
	blastErrorRate                        = 0.1
)

// bench is the state the scenarios share: the fleet, what each tool
// serves, the last comparison plan.
type bench struct {
	t     *testing.T
	f     *fleet.Fleet
	cs    *fleet.Coordinators
	an    *ansible
	hosts []*fleet.Host
	arts  map[string]demoapp.Artifact

	served string // the demo version rollwave serves everywhere
	// ansServed is what the Ansible-managed copy serves everywhere,
	// ansPrev the version before it (a rollback's target).
	ansServed, ansPrev string
	// order and phases are the last comparison release's plan.
	order  []*fleet.Host
	phases []int
}

// plan is a release's phase sizes and its hosts in plan order.
func (b *bench) plan(rel *rollwavev1.Release) ([]int, []*fleet.Host) {
	var phases []int
	var order []*fleet.Host
	for _, p := range rel.GetPhases() {
		phases = append(phases, len(p.GetHosts()))
		for _, name := range p.GetHosts() {
			order = append(order, b.f.Host(name))
		}
	}
	return phases, order
}

// firstEvent is the earliest of the release's events of the given kinds,
// or nil.
func (b *bench) firstEvent(id string, kinds ...string) *rollwavev1.Event {
	b.t.Helper()
	evs, err := b.cs.Events(id)
	if err != nil {
		b.t.Fatal(err)
	}
	var first *rollwavev1.Event
	for _, e := range evs {
		if slices.Contains(kinds, e.GetKind()) && (first == nil || e.GetTimeUnixNano() < first.GetTimeUnixNano()) {
			first = e
		}
	}
	return first
}

func since(t0 time.Time, e *rollwavev1.Event) float64 {
	if e == nil {
		return -1
	}
	return time.Unix(0, e.GetTimeUnixNano()).Sub(t0).Seconds()
}

// settle waits until every host of l has answered version with 200 in a
// request sent after from, and returns the samples so far.
func (b *bench) settle(l *load, from time.Time, version string) []sample {
	b.t.Helper()
	var samples []sample
	testutil.WaitFor(b.t, 60*time.Second, func() (bool, string) {
		samples = l.snapshot()
		if err := l.finalVersions(samples, from, version); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	return samples
}

// rollback times every host back to the previous version: rollwave's
// `release rollback` while the release watches after its rollout (old
// slots hot: local slot swaps), against Ansible's playbook with the old
// version in one batch.
func (b *bench) rollback() *Rollback {
	t, n := b.t, len(b.hosts)
	res := &Rollback{Hosts: n}
	version := "8.0.0"
	art := b.f.PublishDemo(version, true)
	spec := comparisonSpec(version, art)
	spec.postRollout = "    watch = \"10m\"\n    keep_old = \"hot\"\n"
	id := startRelease(t, b.cs, spec.String())
	waitRelease(t, b.cs, id, relWatching, 5*time.Minute)

	l := startLoad(b.hosts, fleet.DemoTrafficPort, probeRate, false)
	b.settle(l, time.Now(), version)
	t0 := time.Now()
	if out, errOut, err := b.cs.CLI("release", "rollback", id); err != nil {
		l.halt()
		t.Fatalf("rollwave release rollback %s: %v\n%s%s", id, err, out, errOut)
	}
	waitRelease(t, b.cs, id, relRolledBack, 3*time.Minute)
	b.settle(l, time.Now(), b.served)
	samples := l.halt()
	last, _ := lastAnswer(samples, version)
	res.RollwaveSeconds = max(last.Sub(t0), 0).Seconds()
	if from, to := b.firstEvent(id, "release.rolling_back"), b.firstEvent(id, "release.rolled_back"); from != nil && to != nil {
		res.RollwaveRecordedSeconds = time.Duration(to.GetTimeUnixNano() - from.GetTimeUnixNano()).Seconds()
	}

	b.an.inventory(t, b.hosts)
	d := b.an.run(t, "rollout.yml", b.an.vars(b.ansPrev, b.arts[b.ansPrev], []int{n}))
	for _, h := range b.hosts {
		waitServes(t, h, ansiblePort, b.ansPrev)
	}
	b.ansServed = b.ansPrev
	res.AnsibleSeconds = d.Seconds()
	if res.RollwaveSeconds > 0 {
		res.Ratio = res.AnsibleSeconds / res.RollwaveSeconds
	}
	t.Logf("BENCH rollback of %d hosts: rollwave %.2f s (rollback → last answer by %s; recorded %.2f s), ansible (old version, one batch) %.2f s: %.1f×",
		n, res.RollwaveSeconds, version, res.RollwaveRecordedSeconds, res.AnsibleSeconds, res.Ratio)
	return res
}

// badHost rolls out a version whose health check fails on exactly one
// host, in the middle of the plan (the first host of the fourth phase of
// the last comparison plan), with both tools: rollwave's gate
// (max_failed_hosts 0, on_failure all) against Ansible's
// max_fail_percentage 0 then the playbook with the old version.
func (b *bench) badHost() *BadHost {
	t, n := b.t, len(b.hosts)
	const deadline = 10 * time.Second
	idx := 0
	for i := 0; i < min(3, len(b.phases)-1); i++ {
		idx += b.phases[i]
	}
	bad := b.order[idx]
	if _, errOut, err := bad.Exec("touch", badHostMarker); err != nil {
		t.Fatalf("%s: touch %s: %v: %s", bad.Name, badHostMarker, err, errOut)
	}
	defer func() {
		if _, errOut, err := bad.Exec("rm", "-f", badHostMarker); err != nil {
			t.Errorf("%s: rm %s: %v: %s", bad.Name, badHostMarker, err, errOut)
		}
	}()
	version := "7.0.0"
	art := b.f.PublishDemoConfig(version, map[string]string{"unhealthy_if_file": badHostMarker})
	spec := comparisonSpec(version, art)
	spec.healthyDeadline = deadline
	spec.rollback = "    on_failure = \"all\"\n    isolation_timeout = \"30s\"\n"
	res := &BadHost{Hosts: n, Host: bad.Name, HealthDeadlineSeconds: deadline.Seconds()}

	l := startLoad(b.hosts, fleet.DemoTrafficPort, probeRate, false)
	b.settle(l, time.Now(), b.served)
	t0 := time.Now()
	id := startRelease(t, b.cs, spec.String())
	resp := waitRelease(t, b.cs, id, relRolledBack, 5*time.Minute)
	b.settle(l, time.Now(), b.served)
	samples := l.halt()
	phases, order := b.plan(resp.GetRelease())
	res.Phases = phases
	pos := slices.Index(order, bad)
	for i, k := 0, 0; i < len(phases); k, i = k+phases[i], i+1 {
		if pos >= k && pos < k+phases[i] {
			res.Phase = i
		}
	}
	last, reached := lastAnswer(samples, version)
	res.RollwaveOldSeconds = max(last.Sub(t0), 0).Seconds()
	res.RollwaveHostsReached = reached
	fail := b.firstEvent(id, "host.failed")
	res.RollwaveDetectSeconds = since(t0, fail)
	if fail == nil || fail.GetHost() != bad.Name {
		t.Errorf("bad host: first host.failed %v, want one for %s", fail, bad.Name)
	}

	// Ansible: same order, same batches, the same health deadline.
	b.an.inventory(t, order)
	vars := b.an.vars(version, art, phases)
	vars["health_retries"] = int(deadline / time.Second)
	t1 := time.Now()
	if _, err := b.an.try(t, "rollout.yml", "", vars); err == nil {
		t.Errorf("ansible rolled %s out with %s unhealthy and exited 0", version, bad.Name)
	}
	res.AnsibleDetectSeconds = time.Since(t1).Seconds()
	for _, h := range b.hosts {
		if v, err := httpVersion(h, ansiblePort); err == nil && v == version {
			res.AnsibleHostsReached++
		}
	}
	b.an.inventory(t, b.hosts)
	b.an.run(t, "rollout.yml", b.an.vars(b.ansServed, b.arts[b.ansServed], []int{n}))
	res.AnsibleOldSeconds = time.Since(t1).Seconds()
	for _, h := range b.hosts {
		waitServes(t, h, ansiblePort, b.ansServed)
	}
	t.Logf("BENCH bad host %s (phase %d of %v, health deadline %s): rollwave detects in %.2f s, every host old after %.2f s (%d hosts reached); ansible detects in %.2f s, every host old after %.2f s (%d hosts reached)",
		bad.Name, res.Phase, phases, deadline, res.RollwaveDetectSeconds, res.RollwaveOldSeconds, res.RollwaveHostsReached,
		res.AnsibleDetectSeconds, res.AnsibleOldSeconds, res.AnsibleHostsReached)
	return res
}

// httpVersion asks h's port for the version it serves, from the machine.
func httpVersion(h *fleet.Host, port int) (string, error) {
	c := &http.Client{Timeout: requestTimeout}
	resp, err := c.Get(fmt.Sprintf("http://%s:%d/", h.IP, port))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	return resp.Header.Get("X-Version"), nil
}

// blastSpec is a release of the blast app to one cell: canary 1, then
// doubling; HTTP proxy; the error-rate gate (1 %, judged from 10 requests)
// judged over a 30 s bake; a failed host rolls everything back.
func blastSpec(version string, a demoapp.Artifact, cell string) relSpec {
	return relSpec{app: blastApp, version: version, art: a,
		blue: blastBlue, green: blastGreen, listen: blastTrafficPt, protocol: "http",
		target:     fmt.Sprintf("    cells = [%q]\n", cell),
		phases:     "    canary = 1\n    growth = \"geometric\"\n    factor = 2\n    max_size = \"25%\"\n",
		check:      200 * time.Millisecond,
		minHealthy: time.Second,
		bake:       "    first = \"30s\"\n    decay = 1\n    min = \"30s\"\n",
		gates:      "    max_error_rate = \"1%\"\n    min_requests = 10\n",
		rollback:   "    on_failure = \"all\"\n    isolation_timeout = \"30s\"\n",
	}
}

// blastRadius measures the share of all user requests that failed while
// a version answering 500 to 10 % of requests (health check fine) was
// rolled out to one cell under steady load, from the release's start
// until every host serves the old version again: rollwave with weighted
// steps, rollwave with an atomic switch (the error-rate gate over the
// canary's bake), and Ansible (max_fail_percentage 0, which sees no
// request errors) followed by its rollback run.
func (b *bench) blastRadius(hosts []*fleet.Host, cell string, rate float64) *Blast {
	t := b.t
	res := &Blast{Hosts: len(hosts), Cell: cell, RateHost: rate, ErrorRate: blastErrorRate}
	old := b.served
	base := b.arts[old]
	bad := func(version string) demoapp.Artifact {
		return b.f.PublishDemoConfig(version, map[string]string{"error_rate": fmt.Sprint(blastErrorRate)})
	}
	// The old version on the cell, untimed, no load (so no error-rate
	// gate: it would find too little traffic to judge, and pause).
	spec := blastSpec(old, base, cell)
	spec.bake = "    first = \"1ms\"\n    decay = 1\n    min = \"1ms\"\n"
	spec.gates = ""
	id := startRelease(t, b.cs, spec.String())
	waitRelease(t, b.cs, id, relSucceeded, 5*time.Minute)

	var plan []int
	var order []*fleet.Host
	for _, run := range []struct {
		name, version, traffic string
	}{
		{"rollwave, weighted steps [1 10 50 100] (10 s) + error-rate gate", "5.0.0", "    steps = [1, 10, 50, 100]\n    step_time = \"10s\"\n"},
		{"rollwave, atomic switch + error-rate gate", "5.1.0", ""},
	} {
		spec := blastSpec(run.version, bad(run.version), cell)
		spec.traffic = run.traffic
		l := startLoad(hosts, blastTrafficPt, rate, true)
		b.settle(l, time.Now(), old)
		t0 := time.Now()
		id := startRelease(t, b.cs, spec.String())
		resp := waitRelease(t, b.cs, id, relRolledBack, 5*time.Minute)
		b.settle(l, time.Now(), old)
		samples := l.halt()
		plan, order = b.plan(resp.GetRelease())
		det := b.firstEvent(id, "host.reverted", "host.failed", "gate.failed", "phase.failed")
		r := blastRun(run.name, samples, t0, run.version, len(hosts))
		r.DetectSeconds = since(t0, det)
		if det != nil {
			r.Detection = det.GetKind() + ": " + det.GetMessage()
		}
		res.Runs = append(res.Runs, r)
		logBlast(t, r)
	}

	// Ansible: its copy of the app on the same hosts, the same batches in
	// the same order; nothing in the play looks at request errors, so the
	// bad version reaches every host, and the operator's way back is the
	// playbook with the old version (timed right after, in one batch: no
	// time for a human to notice is counted).
	version := "5.2.0"
	art := bad(version)
	b.an.inventory(t, order)
	l := startLoad(hosts, ansiblePort, rate, true)
	b.settle(l, time.Now(), b.ansServed)
	t0 := time.Now()
	// The play's own check ("the version it serves", one request per
	// host) can draw one of the 10 % errors: then max_fail_percentage 0
	// stops the play there. That is Ansible catching it by chance, and is
	// recorded as such.
	rolled, playErr := b.an.try(t, "rollout.yml", "", b.an.vars(version, art, plan))
	b.an.run(t, "rollout.yml", b.an.vars(b.ansServed, b.arts[b.ansServed], []int{len(hosts)}))
	b.settle(l, time.Now(), b.ansServed)
	samples := l.halt()
	b.an.inventory(t, b.hosts)
	r := blastRun("Ansible serial + max_fail_percentage 0, then the playbook with the old version", samples, t0, version, len(hosts))
	r.DetectSeconds = -1
	r.Detection = fmt.Sprintf("none: the play passed (%.1f s); the rollback run starts right after it", rolled.Seconds())
	if playErr != nil {
		r.DetectSeconds = rolled.Seconds()
		r.Detection = fmt.Sprintf("by chance: the play's one version check per host drew a 500 and max_fail_percentage 0 stopped it after %.1f s; the rollback run starts right after it", rolled.Seconds())
		msg, _, _ := strings.Cut(playErr.Error(), "\n")
		t.Logf("ansible blast run stopped: %s", msg)
	}
	res.Runs = append(res.Runs, r)
	logBlast(t, r)
	return res
}

// blastRun tallies one run's samples over release start → the last
// answer by the bad version.
func blastRun(name string, samples []sample, t0 time.Time, version string, hosts int) BlastRun {
	last, reached := lastAnswer(samples, version)
	end := last
	if end.Before(t0) {
		end = t0
	}
	c := count(samples, t0, end, version)
	return BlastRun{Name: name, WindowSeconds: end.Sub(t0).Seconds(), Requests: c.Requests, Failed5xx: c.Failed5xx,
		FailedNoAnswer: c.FailedNoAnswer, FailedPct: c.failedPct(), OnBad: c.OnVersion, HostsReached: reached,
		RateHost: achievedRate(samples, hosts)}
}

func logBlast(t *testing.T, r BlastRun) {
	t.Logf("BENCH blast radius, %s: %d of %d requests failed (%.3f%%: %d 500s, %d without answer) over %.2f s; %d answered by the bad version on %d host(s); detection %.2f s (%s); load %.1f req/s per host",
		r.Name, r.Failed5xx+r.FailedNoAnswer, r.Requests, r.FailedPct, r.Failed5xx, r.FailedNoAnswer, r.WindowSeconds,
		r.OnBad, r.HostsReached, r.DetectSeconds, strings.TrimSpace(r.Detection), r.RateHost)
}
