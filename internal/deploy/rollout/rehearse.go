package rollout

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/rollwave/rollwave/internal/sattime"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Rollback rehearsal (rollback.rehearse): once phase 0 passed its gates,
// and before it is verified, each of its healthy hosts is ordered to roll
// back to its old slot for real, check it healthy, time it and roll
// forward. The results live in the leader's memory until every host
// answered; then one entry records the phase decision (verified, or
// failed with the rehearsal's reason) with a phase.rehearsed event per
// host. A new leader reads the gates again and asks again; agents answer
// a repeated order with the result they recorded.

const (
	// rehearsalResend is how often a host without a result is asked again
	// (a session may have dropped the order).
	rehearsalResend = 5 * time.Second
	// rehearsalSlack is added to a rehearsal's own bound (max rollback
	// time, then a roll forward bounded by the host deadline) for the
	// orders and results to cross the network.
	rehearsalSlack = 30 * time.Second
	// maxRehearsalResults bounds the results kept in memory.
	maxRehearsalResults = 4096
	// maxRehearsalReason bounds an agent's reason kept as evidence.
	maxRehearsalReason = 2048
	// defaultMaxRollback is rollback.max_rollback_time's default for
	// specs stored before the field existed.
	defaultMaxRollback = 10 * time.Second
)

// Verdicts of a host's rehearsal (evidence "verdict").
const (
	VerdictPassed  = "passed"
	VerdictFailed  = "failed"
	VerdictTooSlow = "too_slow"
	VerdictSkipped = "skipped"
	VerdictNoReply = "no_result"
)

// rehearsalRun is a release's rehearsal in flight (leader memory).
type rehearsalRun struct {
	phase   int32
	gateEvs []*rollwavev1.Event // the readings that passed, recorded with the decision
	nGates  int
	started time.Time
	sent    map[string]time.Time
}

type rehearsalKey struct {
	host, app string
	gen       uint64
}

// ObserveRehearsal records a host's rehearsal result. It does not block.
func (o *Orchestrator) ObserveRehearsal(host string, r *rollwavev1.RehearsalResult) {
	if host == "" || r.GetApp() == "" || r.GetGeneration() == 0 {
		o.log.Warn("rehearsal result without host, app or generation ignored", "host", host, "app", r.GetApp())
		return
	}
	// The reason goes into raft as evidence: bounded, and cut on a rune
	// boundary (protobuf strings must stay valid UTF-8).
	if reason := r.GetReason(); len(reason) > maxRehearsalReason {
		r = proto.CloneOf(r)
		cut := strings.ToValidUTF8(reason[:maxRehearsalReason], "")
		r.Reason = cut + fmt.Sprintf(" … (%d bytes cut)", len(reason)-len(cut))
	}
	o.rehMu.Lock()
	defer o.rehMu.Unlock()
	if o.rehearsals == nil {
		o.rehearsals = map[rehearsalKey]*rollwavev1.RehearsalResult{}
	}
	k := rehearsalKey{host, r.GetApp(), r.GetGeneration()}
	if _, ok := o.rehearsals[k]; !ok && len(o.rehearsals) >= maxRehearsalResults {
		o.log.Warn("too many rehearsal results held; dropping one (the host is asked again)", "host", host, "app", r.GetApp())
		return
	}
	o.rehearsals[k] = r
}

func (o *Orchestrator) rehearsalResult(k rehearsalKey) *rollwavev1.RehearsalResult {
	o.rehMu.Lock()
	defer o.rehMu.Unlock()
	return o.rehearsals[k]
}

func (o *Orchestrator) forgetRehearsals(keys []rehearsalKey) {
	o.rehMu.Lock()
	defer o.rehMu.Unlock()
	for _, k := range keys {
		delete(o.rehearsals, k)
	}
}

// rehearses reports whether phase p of r rehearses its rollback.
func rehearses(r *rollwavev1.Release, p *rollwavev1.Phase) bool {
	return p.GetIndex() == 0 && r.GetSpec().GetRollback().GetRehearse()
}

func maxRollbackTime(spec *rollwavev1.ReleaseSpec) time.Duration {
	if ms := spec.GetRollback().GetMaxRollbackTimeMs(); ms > 0 {
		return sattime.Millis(ms)
	}
	return defaultMaxRollback
}

// startRehearsal begins the rehearsal of a phase whose gates passed
// (evs: their readings).
func (o *Orchestrator) startRehearsal(ctx context.Context, rn *run, r *rollwavev1.Release, p *rollwavev1.Phase, views []hostView, evs []*rollwavev1.Event, nGates int) error {
	rn.rehearsal = &rehearsalRun{phase: p.GetIndex(), gateEvs: evs, nGates: nGates, started: o.now(), sent: map[string]time.Time{}}
	o.log.Info("gates passed; rehearsing the rollback", "release_id", r.GetId(), "phase", p.GetIndex(),
		"max_rollback_time", maxRollbackTime(r.GetSpec()))
	return o.awaitRehearsal(ctx, rn, r, p, views)
}

// awaitRehearsal orders the rehearsal to every healthy host of the phase
// that has no result yet and, once all answered (or the bounded wait is
// over), records the decision.
func (o *Orchestrator) awaitRehearsal(ctx context.Context, rn *run, r *rollwavev1.Release, p *rollwavev1.Phase, views []hostView) error {
	rh := rn.rehearsal
	spec := r.GetSpec()
	app := spec.GetApp()
	maxRB := maxRollbackTime(spec)
	now := o.now()
	wait := sattime.Sum(maxRB, o.hostDeadline(spec), rehearsalSlack)
	late := now.Sub(rh.started) > wait
	type hostResult struct {
		host string
		gen  uint64
		res  *rollwavev1.RehearsalResult
	}
	var got []hostResult
	var pending []string
	for _, v := range views {
		if v.status != hostHealthy {
			continue // failed or unreachable within budget: nothing to rehearse on
		}
		k := rehearsalKey{v.host, app, v.a.GetGeneration()}
		res := o.rehearsalResult(k)
		if res == nil && !late {
			if at, ok := rh.sent[v.host]; !ok || now.Sub(at) >= rehearsalResend {
				o.agents.OrderRehearse(v.host, app, k.gen, maxRB)
				rh.sent[v.host] = now
			}
			pending = append(pending, v.host)
		}
		got = append(got, hostResult{v.host, k.gen, res})
	}
	if len(pending) > 0 {
		return nil
	}
	slices.SortFunc(got, func(a, b hostResult) int { return strings.Compare(a.host, b.host) })
	evs := append([]*rollwavev1.Event{}, rh.gateEvs...)
	var failed []string
	var slowest time.Duration
	var keys []rehearsalKey
	for _, h := range got {
		keys = append(keys, rehearsalKey{h.host, app, h.gen})
		verdict, rb, why := judgeRehearsal(h.res, maxRB, wait)
		if verdict != VerdictPassed && verdict != VerdictSkipped {
			failed = append(failed, fmt.Sprintf("%s: %s", h.host, why))
		}
		slowest = max(slowest, rb)
		evidence := map[string]string{
			"verdict": verdict, "rollback_ms": fmt.Sprint(rb.Milliseconds()), "max_rollback_time": maxRB.String(),
			"generation": fmt.Sprint(h.gen),
		}
		if why != "" {
			evidence["reason"] = why
		}
		if h.res != nil {
			evidence["old_version"], evidence["new_version"] = h.res.GetOldVersion(), h.res.GetNewVersion()
			evidence["rolled_forward"] = fmt.Sprint(h.res.GetRolledForward())
		}
		msg := fmt.Sprintf("host %s rehearsed its rollback: %s, %s (max_rollback_time %s)", h.host, verdict, rb.Round(time.Millisecond), maxRB)
		if why != "" {
			msg += ": " + why
		}
		e := ev(r, p.GetIndex(), "phase.rehearsed", msg, evidence)
		e.Host = h.host
		evs = append(evs, e)
	}
	var err error
	if len(failed) > 0 {
		err = o.setPhase(ctx, r, p, phFailed, "rollback rehearsal failed: "+strings.Join(failed, "; "), time.Time{}, evs...)
	} else {
		err = o.setPhase(ctx, r, p, phVerified, fmt.Sprintf("bake of %s passed %d gate(s); rollback rehearsed on %d host(s), slowest %s (max_rollback_time %s)",
			sattime.Millis(p.GetBakeMs()), rh.nGates, len(got), slowest.Round(time.Millisecond), maxRB), time.Time{}, evs...)
	}
	if err != nil {
		return err
	}
	rn.rehearsal = nil
	o.forgetRehearsals(keys)
	return nil
}

// judgeRehearsal turns a host's result into its verdict, the measured
// rollback time and, unless it passed, why.
func judgeRehearsal(res *rollwavev1.RehearsalResult, maxRB, wait time.Duration) (verdict string, rollback time.Duration, why string) {
	if res == nil {
		return VerdictNoReply, 0, fmt.Sprintf("no rehearsal result within %s", wait)
	}
	rollback = time.Duration(res.GetRollbackMs()) * time.Millisecond
	switch {
	case res.GetOk() && res.GetRollbackMs() == 0:
		return VerdictSkipped, 0, res.GetReason()
	case rollback > maxRB:
		why = fmt.Sprintf("rollback took %s, over max_rollback_time %s", rollback, maxRB)
		if !res.GetOk() && res.GetReason() != "" {
			why = res.GetReason()
		}
		return VerdictTooSlow, rollback, why
	case !res.GetOk():
		why = res.GetReason()
		if why == "" {
			why = "the agent reported a failed rehearsal without a reason"
		}
		return VerdictFailed, rollback, why
	}
	return VerdictPassed, rollback, ""
}
