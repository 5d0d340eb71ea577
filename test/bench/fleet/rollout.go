package fleet

import (
	"context"
	"fmt"
	"slices"
	"time"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// ReleaseSpec is a zero-bake release (bake 1 ms: a bake must be positive)
// with geometric phases (canary, factor 2, max_size cap; phases from the
// fourth on may span cells). The artifact
// is never fetched: the simulated unit driver only sleeps.
func ReleaseSpec(name, app, maxSize string, canary int) string {
	return fmt.Sprintf(`release %q {
  app     = %q
  version = "2.0.0"
  artifact {
    url    = "file:///dev/null"
    sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
  }
  unit {
    exec_start = "/bin/true"
  }
  slots {
    blue_port  = 18081
    green_port = 18082
    keep_old   = "hot"
  }
  traffic {
    mode = "none"
  }
  phases {
    canary   = %d
    growth   = "geometric"
    factor   = 2
    max_size = %q
    parallel_cells_after = 3
  }
  health {
    check "unit" {}
    min_healthy_time = "1ms"
    healthy_deadline = "2m"
  }
  bake {
    first = "1ms"
    decay = 1
    min   = "1ms"
  }
  gates {
    max_failed_hosts = 0
  }
  rollback {
    on_failure        = "pause"
    isolation_timeout = "5m"
  }
}
`, name, app, canary, maxSize)
}

// Dist is a latency distribution in milliseconds.
type Dist struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// NewDist summarises durations.
func NewDist(ds []time.Duration) Dist {
	if len(ds) == 0 {
		return Dist{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) float64 {
		i := int(p*float64(len(s))+0.999999) - 1
		i = max(0, min(i, len(s)-1))
		return ms(s[i])
	}
	return Dist{N: len(s), P50: q(0.50), P99: q(0.99), Max: ms(s[len(s)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// PhaseResult is one phase of the measured rollout.
type PhaseResult struct {
	Index int `json:"index"`
	Hosts int `json:"hosts"`
	// OrderLatency: from the leader's phase decision (phase → deploying,
	// its raft command time) to each agent receiving its order; the STAGING
	// ack goes out at that instant.
	OrderLatency Dist `json:"order_latency"`
	// LastAckMs: decision → the last agent's order receipt (the phase's
	// dispatch overhead).
	LastAckMs float64 `json:"last_ack_ms"`
	// WallMs: decision → the next phase's decision (or the release's end).
	WallMs float64 `json:"wall_ms"`
	// SimulatedMs is the slowest host's simulated swap (delivery → HEALTHY)
	// and BakeMs the phase's bake; OverheadMs = Wall − Simulated − Bake is
	// what the control plane added to the phase.
	SimulatedMs float64 `json:"simulated_ms"`
	BakeMs      float64 `json:"bake_ms"`
	OverheadMs  float64 `json:"overhead_ms"`
	// DetectMs: last HEALTHY sent → phase baking (leader saw all healthy).
	DetectMs float64 `json:"detect_ms"`
}

// RolloutResult is one release across the fleet.
type RolloutResult struct {
	Release      string        `json:"release"`
	State        string        `json:"state"`
	Phases       []PhaseResult `json:"phases"`
	TotalSeconds float64       `json:"total_seconds"`
	// Over every host of every phase.
	OrderLatency Dist `json:"order_latency"`
	// Over phases: per-phase last-ack and overhead.
	PhaseLastAck  Dist `json:"phase_last_ack"`
	PhaseOverhead Dist `json:"phase_overhead"`
}

// SubmitAndWait submits the release on node via, starts it, and polls
// (every 250 ms, ListReleases on a follower) until it ends or timeout.
func SubmitAndWait(ctx context.Context, c *Cluster, f *Fleet, name, app, maxSize string, timeout time.Duration) (*RolloutResult, error) {
	// Polled, not asked once: at 10,000 agents a busy leader may take
	// longer than one Status call's 1 s bound to answer.
	l, err := c.WaitLeader(30 * time.Second)
	if err != nil {
		return nil, err
	}
	src := ReleaseSpec(name, app, maxSize, 1)
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = c.Nodes[l].Client.SubmitRelease(sctx, &rollwavev1.SubmitReleaseRequest{SourceName: name + ".hcl", Source: []byte(src), Start: true, Actor: "fleetsim"})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("submit %s: %w", name, err)
	}
	submitted := time.Now()
	deadline := submitted.Add(timeout)
	var rel *rollwavev1.Release
	// A release whose state and phases stop changing for a minute is
	// stuck (or no rollout engine runs): give up rather than wait.
	lastChange, lastSig := time.Now(), ""
	for {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("release %s did not end within %s (state %s)", name, timeout, rel.GetState())
		}
		if sig := progressSig(rel); sig != lastSig {
			lastChange, lastSig = time.Now(), sig
		} else if time.Since(lastChange) > time.Minute {
			return nil, fmt.Errorf("release %s stuck for a minute in state %s (%s); is the rollout engine running?", name, rel.GetState(), sig)
		}
		time.Sleep(250 * time.Millisecond)
		rel = nil
		for i := range c.Nodes {
			j := (l + 1 + i) % len(c.Nodes) // a follower first
			if !c.Running(j) {
				continue
			}
			gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			r, err := c.Nodes[j].Client.ListReleases(gctx, &rollwavev1.ListReleasesRequest{App: app})
			cancel()
			if err != nil {
				continue
			}
			for _, x := range r.GetReleases() {
				if x.GetId() == name {
					rel = x
				}
			}
			break
		}
		switch rel.GetState() {
		case rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED, rollwavev1.ReleaseState_RELEASE_STATE_FAILED,
			rollwavev1.ReleaseState_RELEASE_STATE_ABORTED, rollwavev1.ReleaseState_RELEASE_STATE_ROLLED_BACK,
			rollwavev1.ReleaseState_RELEASE_STATE_PAUSED:
			return Analyse(rel, f.Deliveries(), submitted), nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// Analyse turns the release's stored phase times and the agents' receipt
// times into the per-phase figures. Every process runs on this machine,
// so the leader's clock and the simulator's are the same clock.
func Analyse(rel *rollwavev1.Release, ds []Delivery, submitted time.Time) *RolloutResult {
	res := &RolloutResult{Release: rel.GetId(), State: rel.GetState().String()}
	byPhase := map[int32][]Delivery{}
	for _, d := range ds {
		if d.App == rel.GetSpec().GetApp() {
			byPhase[d.Phase] = append(byPhase[d.Phase], d)
		}
	}
	end := time.Unix(0, rel.GetUpdatedUnixNano())
	var all, lastAcks, overheads []time.Duration
	for i, p := range rel.GetPhases() {
		if p.GetStartedUnixNano() == 0 {
			continue
		}
		start := time.Unix(0, p.GetStartedUnixNano())
		next := end
		if i+1 < len(rel.GetPhases()) && rel.GetPhases()[i+1].GetStartedUnixNano() != 0 {
			next = time.Unix(0, rel.GetPhases()[i+1].GetStartedUnixNano())
		}
		pr := PhaseResult{Index: i, Hosts: len(p.GetHosts()), WallMs: ms(next.Sub(start)), BakeMs: float64(p.GetBakeMs())}
		var lat []time.Duration
		var last, sim time.Duration
		var lastHealthy time.Time
		for _, d := range byPhase[int32(i)] {
			l := d.At.Sub(start)
			lat = append(lat, l)
			last = max(last, l)
			if !d.HealthyAt.IsZero() {
				sim = max(sim, d.HealthyAt.Sub(d.At))
				if d.HealthyAt.After(lastHealthy) {
					lastHealthy = d.HealthyAt
				}
			}
		}
		pr.OrderLatency = NewDist(lat)
		pr.LastAckMs = ms(last)
		pr.SimulatedMs = ms(sim)
		pr.OverheadMs = pr.WallMs - pr.SimulatedMs - pr.BakeMs
		if !lastHealthy.IsZero() && p.GetBakeDeadlineUnixNano() != 0 {
			// baking starts bake_ms before its deadline.
			bakeStart := time.Unix(0, p.GetBakeDeadlineUnixNano()).Add(-time.Duration(p.GetBakeMs()) * time.Millisecond)
			pr.DetectMs = ms(bakeStart.Sub(lastHealthy))
		}
		all = append(all, lat...)
		lastAcks = append(lastAcks, last)
		overheads = append(overheads, time.Duration(pr.OverheadMs*float64(time.Millisecond)))
		res.Phases = append(res.Phases, pr)
	}
	res.TotalSeconds = end.Sub(submitted).Seconds()
	res.OrderLatency = NewDist(all)
	res.PhaseLastAck = NewDist(lastAcks)
	res.PhaseOverhead = NewDist(overheads)
	return res
}

func progressSig(r *rollwavev1.Release) string {
	sig := r.GetState().String()
	for _, p := range r.GetPhases() {
		sig += fmt.Sprintf(" %d:%s", p.GetIndex(), p.GetState())
	}
	return sig
}
