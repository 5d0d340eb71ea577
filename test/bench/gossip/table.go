package gossipbench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// TableRows writes one tab-separated row (FIGURE, VALUE, TARGET) per
// figure of r, for benchsuite's table. A figure the run did not measure
// reads "not measured" with the reason, never a zero.
func TableRows(w io.Writer, r *Result) {
	p := fmt.Sprintf("gossip N=%d (%s):", r.N, r.Profile)
	spread := func(what string, s Spread) {
		switch {
		case s.Expected == 0:
			fmt.Fprintf(w, "%s %s → every member\tnot measured (the run stopped before it)\t\t\n", p, what)
			return
		case s.Reached == 0:
			fmt.Fprintf(w, "%s %s → every member\tnot measured: none of %d members saw it before the deadline\t\t\n", p, what, s.Expected)
			return
		}
		extra := ""
		if s.Reached < s.Expected {
			extra = fmt.Sprintf(", %d of %d reached", s.Reached, s.Expected)
		}
		if s.AsDead > 0 {
			extra += fmt.Sprintf(", %d saw it as dead", s.AsDead)
		}
		fmt.Fprintf(w, "%s %s → every member p50/p99/max\t%.2f / %.2f / %.2f s%s\t\t\n", p, what, s.P50/1000, s.P99/1000, s.Max/1000, extra)
	}
	if r.Joined < r.N {
		fmt.Fprintf(w, "%s ramp NOT COMPLETED, nothing measured\t%d of %d agents joined\t\t\n", p, r.Joined, r.N)
		return
	}
	if r.Unsettled != "" {
		fmt.Fprintf(w, "%s NOT SETTLED %.0f s after the ramp began, nothing measured\t%s\t\t\n", p, r.RampSeconds, r.Unsettled)
		return
	}
	fmt.Fprintf(w, "%s ramp (all agents join, all see all)\t%.1f s (joins %.1f s)\t\t\n", p, r.RampSeconds, r.RampJoinSeconds)
	if r.RampPace > 0 {
		fmt.Fprintf(w, "%s ramp pacing (CPU <= %.0f %% of the machine, every health score 0)\t%d batches, %d held (%d at the deadline); wait p50/p99/max %.1f / %.1f / %.1f s, %.0f s in all\t\t\n",
			p, r.RampPace*100, r.RampBatches, r.RampHeld, r.RampPaceTimeouts, r.RampWait.P50/1000, r.RampWait.P99/1000, r.RampWait.Max/1000, r.RampWaitSeconds)
	} else {
		fmt.Fprintf(w, "%s ramp pacing\tnone (%d batches back to back)\t\t\n", p, r.RampBatches)
	}
	fmt.Fprintf(w, "%s ramp: CPU; probes timed out; highest health score\t%.0f %% of the machine; %d; %d\t\t\n", p, r.RampCPUPct, r.RampProbeTimeouts, r.RampMaxHealth)
	if r.NotQuiet != "" {
		fmt.Fprintf(w, "%s ramp's broadcast backlog NOT DRAINED (figures below taken with it)\t%s\t\t\n", p, r.NotQuiet)
	} else {
		fmt.Fprintf(w, "%s ramp's broadcast backlog drained (settled → probe-level traffic)\t%.1f s\t\t\n", p, r.QuietSeconds)
	}
	spread("join", r.Join)
	spread("graceful leave", r.Leave)
	spread("crash", r.Crash)
	win := func(what string, x *Window) {
		if x.Seconds == 0 {
			fmt.Fprintf(w, "%s false suspicions, CPU and bytes, %s\tnot measured (the run stopped before it)\t\t\n", p, what)
			return
		}
		fmt.Fprintf(w, "%s false suspicions, %s (%.0f s window, ×3600/window)\t%d (%.0f /h), %d refuted deaths, %d false deaths\t0 false deaths %s\t\n",
			p, what, x.Seconds, x.RefutedSuspicions, x.SuspicionsPerHour, x.RefutedDeaths, x.FalseDeaths, verdict(x.FalseDeaths == 0 && x.RefutedDeaths == 0))
		fmt.Fprintf(w, "%s per member, %s: CPU / sent / UDP received\t%.3f %% / %.0f B/s / %.0f B/s\t\t\n", p, what, x.CPUPctPerMember, x.SentBytesPerSec, x.UDPRecvBytesPerSec)
		fmt.Fprintf(w, "%s coordinators' CPU, %s\t%s %%\t\t\n", p, what, floats(x.CoordCPUPct, "%.1f"))
	}
	win("idle", &r.Idle)
	if r.Load != nil {
		win("all cores busy", r.Load)
	}
	fmt.Fprintf(w, "%s coordinators' CPU serving the ramp / peak RSS\t%s s / %s MiB\t\t\n", p, floats(r.CoordRampCPUSeconds, "%.1f"), floats(r.CoordRSSMiB, "%.0f"))
	if r.Leave.Expected > 0 {
		fmt.Fprintf(w, "%s Pool.Leave call (two broadcasts)\t%.2f s\t\t\n", p, r.LeaveCallMs/1000)
	}
	if r.HeapPerMemberKiB > 0 {
		fmt.Fprintf(w, "%s TCP bytes per push/pull (idle); Go heap per member\t%.0f KiB; %.0f KiB\t\t\n", p, r.Idle.PushPullBytes/1024, r.HeapPerMemberKiB)
	}
	fmt.Fprintf(w, "%s load average before / after\t%s / %s\t\t\n", p, r.LoadAvgBefore, r.LoadAvgAfter)
}

// Missing names the figures r lacks (nil when complete): a run that
// stopped early or a change that did not reach every member.
func (r *Result) Missing() []string {
	var out []string
	switch {
	case r.Joined < r.N:
		return []string{fmt.Sprintf("ramp: %d of %d agents joined", r.Joined, r.N)}
	case r.Unsettled != "":
		return []string{"not settled: " + r.Unsettled}
	}
	for _, s := range []struct {
		what string
		s    Spread
	}{{"join", r.Join}, {"leave", r.Leave}, {"crash", r.Crash}} {
		switch {
		case s.s.Expected == 0:
			out = append(out, s.what+": not measured")
		case s.s.Reached < s.s.Expected:
			out = append(out, fmt.Sprintf("%s: %d of %d members saw it", s.what, s.s.Reached, s.s.Expected))
		}
	}
	if r.Idle.Seconds == 0 {
		out = append(out, "idle window: not measured")
	}
	return out
}

func floats(v []float64, f string) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf(f, x)
	}
	return strings.Join(s, " ; ")
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// ParseSizes reads pool sizes written "1000 2000" or "1000,2000".
func ParseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' }) {
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad gossip pool size %q: want a positive integer", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no gossip pool size in %q", s)
	}
	return out, nil
}
