package fleet

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// leaderKills runs o.LeaderKills rounds. Each round starts a release of
// its own app whose canary phase is a quarter of the fleet (so progress
// reports flow continuously: every host's simulated swap takes
// SwapLatency + up to SwapJitter), waits until the leader has recorded
// progress, SIGKILLs the leader, and measures the time from the kill to
// the first assignment progress recorded after it (the raft command time
// of the next progress batch, read from a surviving replica). The release
// is then aborted, the killed server restarted, and the cluster given
// time to settle.
func leaderKills(ctx context.Context, c *Cluster, f *Fleet, o *Options, forced func()) (*KillResult, error) {
	kr := &KillResult{Rounds: o.LeaderKills}
	canary := max(1, o.Fleet.N/4)
	for r := 0; r < o.LeaderKills && ctx.Err() == nil; r++ {
		l, err := c.WaitLeader(30 * time.Second)
		if err != nil {
			return nil, err
		}
		app := fmt.Sprintf("kill%02d", r)
		name := app + "-1"
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err = c.Nodes[l].Client.SubmitRelease(sctx, &rollwavev1.SubmitReleaseRequest{SourceName: name + ".hcl",
			Source: []byte(ReleaseSpec(name, app, "100%", canary)), Start: true, Actor: "fleetsim"})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("round %d: submit: %w", r, err)
		}
		// Wait until progress is being recorded (some host past STAGING),
		// then a random 0–500 ms more so the kill lands anywhere in a batch.
		follower := (l + 1) % len(c.Nodes)
		ok := pollUntil(ctx, 30*time.Second, func() bool {
			as := assignments(ctx, c, follower, name)
			for _, a := range as {
				if a.GetState() >= rollwavev1.AssignmentState_ASSIGNMENT_STATE_SWITCHED {
					return true
				}
			}
			return false
		})
		if !ok {
			kr.Failed++
			o.logf("round %d: no progress before the kill", r)
			continue
		}
		time.Sleep(time.Duration(rand.IntN(500)) * time.Millisecond)
		f.MarkWelcomes()
		c.Sample()
		forced()
		killAt := time.Now()
		c.KillNow(l)
		var newLeaderAt time.Time
		var resumed time.Duration
		ok = pollUntil(ctx, 30*time.Second, func() bool {
			if newLeaderAt.IsZero() {
				if nl := c.Leader(); nl >= 0 && nl != l {
					newLeaderAt = time.Now()
					// The new leader's gossip flag reaches real agents
					// within a gossip round; the hint stands in for it.
					f.SetLeaderHint(c.Nodes[nl].GRPC)
				}
			}
			for _, a := range assignments(ctx, c, follower, name) {
				if t := time.Unix(0, a.GetUpdatedUnixNano()); t.After(killAt) {
					resumed = max(resumed, t.Sub(killAt))
					if resumed > 0 {
						return true
					}
				}
			}
			return false
		})
		if !ok {
			kr.Failed++
			o.logf("round %d: no progress within 30s of the kill", r)
		} else {
			// The earliest progress after the kill, not the latest seen.
			first := resumed
			for _, a := range assignments(ctx, c, follower, name) {
				if t := time.Unix(0, a.GetUpdatedUnixNano()); t.After(killAt) && t.Sub(killAt) < first {
					first = t.Sub(killAt)
				}
			}
			kr.Seconds = append(kr.Seconds, first.Seconds())
			if !newLeaderAt.IsZero() {
				kr.Election = append(kr.Election, newLeaderAt.Sub(killAt).Seconds())
			}
			sess := 0.0
			if w := f.FirstWelcome(); w.After(killAt) {
				sess = w.Sub(killAt).Seconds()
			}
			kr.FirstSession = append(kr.FirstSession, sess)
			o.logf("round %d: killed %s; new leader seen after %.2fs, first agent session %.2fs, progress recorded %.2fs",
				r, c.Nodes[l].Name, newLeaderAt.Sub(killAt).Seconds(), sess, first.Seconds())
		}
		if nl, err := c.WaitLeader(30 * time.Second); err == nil {
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, _ = c.Nodes[nl].Client.AbortRelease(actx, &rollwavev1.ReleaseActionRequest{Id: name, Reason: "bench round done", Actor: "fleetsim"})
			cancel()
		}
		if err := c.Start(l); err != nil {
			return nil, err
		}
		// The restarted server is back once it knows the leader and has
		// caught up with its log.
		pollUntil(ctx, 60*time.Second, func() bool {
			nl := c.Leader()
			if nl < 0 {
				return false
			}
			st, err := c.Status(l)
			lst, lerr := c.Status(nl)
			return err == nil && lerr == nil && st.GetLeaderId() != "" && st.GetAppliedIndex() >= lst.GetAppliedIndex()
		})
		sleepCtx(ctx, 2*time.Second)
	}
	if len(kr.Seconds) > 0 {
		s := slices.Clone(kr.Seconds)
		slices.Sort(s)
		q := func(p float64) float64 { return s[max(0, min(len(s)-1, int(p*float64(len(s))+0.999999)-1))] }
		kr.P50, kr.P99, kr.Max = q(0.5), q(0.99), s[len(s)-1]
	}
	return kr, nil
}

func assignments(ctx context.Context, c *Cluster, i int, release string) []*rollwavev1.Assignment {
	if !c.Running(i) {
		return nil
	}
	gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r, err := c.Nodes[i].Client.GetRelease(gctx, &rollwavev1.GetReleaseRequest{Id: release})
	if err != nil {
		return nil
	}
	return r.GetAssignments()
}

func pollUntil(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}
