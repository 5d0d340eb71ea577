package gossipbench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// TableRows writes one tab-separated row (FIGURE, VALUE, TARGET) per
// figure of r, for benchsuite's table.
func TableRows(w io.Writer, r *Result) {
	p := fmt.Sprintf("gossip N=%d (%s):", r.N, r.Profile)
	spread := func(what string, s Spread) {
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
		fmt.Fprintf(w, "%s ramp NOT COMPLETED\t%d of %d agents joined\t\t\n", p, r.Joined, r.N)
		return
	}
	fmt.Fprintf(w, "%s ramp (all agents join, all see all)\t%.1f s\t\t\n", p, r.RampSeconds)
	if r.Unsettled != "" {
		fmt.Fprintf(w, "%s NOT SETTLED after the ramp\t%s\t\t\n", p, r.Unsettled)
	}
	spread("join", r.Join)
	spread("graceful leave", r.Leave)
	spread("crash", r.Crash)
	win := func(what string, x *Window) {
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
	fmt.Fprintf(w, "%s Pool.Leave call (two broadcasts)\t%.2f s\t\t\n", p, r.LeaveCallMs/1000)
	fmt.Fprintf(w, "%s TCP bytes per push/pull (idle); Go heap per member\t%.0f KiB; %.0f KiB\t\t\n", p, r.Idle.PushPullBytes/1024, r.HeapPerMemberKiB)
	fmt.Fprintf(w, "%s load average before / after\t%s / %s\t\t\n", p, r.LoadAvgBefore, r.LoadAvgAfter)
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
