// Package charts draws the benchmark suite's figures as SVG files with
// gonum/plot: leader memory and phase overhead against the fleet size,
// the distribution of leader-kill recovery times, and rollwave against
// Ansible on real hosts (rollout, rollback, one bad host). docs/performance.md shows them.
package charts

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/rollwave/rollwave/test/bench/fleet"
	"github.com/rollwave/rollwave/test/bench/realhost"
)

// Size of every chart.
const (
	width  = 16 * vg.Centimeter
	height = 9 * vg.Centimeter
)

// Input is what the charts are drawn from: the suite's results.
type Input struct {
	Fleet    []*fleet.Result
	Kill     *fleet.Result
	RealHost *realhost.Result
}

// Write draws every chart the input has data for into dir and returns the
// files it wrote. A chart without data (no scaling series, no kill rounds,
// no real-host run) is left out, not drawn empty.
func Write(dir string, in Input) ([]string, error) {
	var files []string
	var errs []error
	add := func(name string, p *plot.Plot, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			return
		}
		if p == nil {
			return
		}
		file := filepath.Join(dir, name)
		if err := p.Save(width, height, file); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			return
		}
		files = append(files, file)
	}
	p, err := leaderMemory(in.Fleet)
	add("leader-memory.svg", p, err)
	p, err = phaseOverhead(in.Fleet)
	add("phase-overhead.svg", p, err)
	p, err = failover(in.Kill)
	add("failover.svg", p, err)
	p, err = againstAnsible(in.RealHost)
	add("ansible.svg", p, err)
	return files, errors.Join(errs...)
}

// bySize returns the fleet results with a rollout, ordered by N.
func bySize(rs []*fleet.Result) []*fleet.Result {
	out := slices.Clone(rs)
	slices.SortFunc(out, func(a, b *fleet.Result) int { return a.N - b.N })
	return out
}

// leaderMemory: the leader's peak RSS against N, with the 64 MiB per
// 1,000 agents target as a line.
func leaderMemory(rs []*fleet.Result) (*plot.Plot, error) {
	rs = bySize(rs)
	if len(rs) < 2 {
		return nil, nil
	}
	rss := make(plotter.XYs, 0, len(rs))
	target := make(plotter.XYs, 0, len(rs))
	for _, r := range rs {
		for _, c := range r.Coordinators {
			if c.Leader {
				rss = append(rss, plotter.XY{X: float64(r.N), Y: c.PeakRSSMiB})
			}
		}
		target = append(target, plotter.XY{X: float64(r.N), Y: 64 * float64(r.N) / 1000})
	}
	p := plot.New()
	p.Title.Text = "Leader peak RSS against fleet size"
	p.X.Label.Text = "simulated agents"
	p.Y.Label.Text = "MiB"
	if err := plotutil.AddLinePoints(p, "leader peak RSS", rss, "target: 64 MiB per 1,000 agents", target); err != nil {
		return nil, err
	}
	p.Legend.Top = true
	p.Legend.Left = true
	return p, nil
}

// phaseOverhead: p50 and p99 of the per-phase overhead against N, with
// the 1 s p99 target.
func phaseOverhead(rs []*fleet.Result) (*plot.Plot, error) {
	rs = bySize(rs)
	var p50, p99, target plotter.XYs
	for _, r := range rs {
		if r.Rollout == nil {
			continue
		}
		x := float64(r.N)
		p50 = append(p50, plotter.XY{X: x, Y: r.Rollout.PhaseOverhead.P50})
		p99 = append(p99, plotter.XY{X: x, Y: r.Rollout.PhaseOverhead.P99})
		target = append(target, plotter.XY{X: x, Y: 1000})
	}
	if len(p50) < 2 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = "Phase overhead (whole phase minus simulated swap and bake)"
	p.X.Label.Text = "simulated agents"
	p.Y.Label.Text = "ms"
	if err := plotutil.AddLinePoints(p, "p50", p50, "p99", p99, "target p99 ≤ 1 s", target); err != nil {
		return nil, err
	}
	p.Legend.Top = true
	p.Legend.Left = true
	return p, nil
}

// failover: histogram of leader SIGKILL → progress recorded again.
func failover(k *fleet.Result) (*plot.Plot, error) {
	if k == nil || k.Kill == nil || len(k.Kill.Seconds) == 0 {
		return nil, nil
	}
	vals := plotter.Values(k.Kill.Seconds)
	h, err := plotter.NewHist(vals, max(4, min(20, len(vals)/2)))
	if err != nil {
		return nil, err
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Leader SIGKILL → progress recorded (N = %d, %d rounds)", k.N, len(k.Kill.Seconds))
	p.X.Label.Text = "seconds"
	p.Y.Label.Text = "rounds"
	p.Add(h)
	return p, nil
}

// againstAnsible: rollwave next to Ansible on the same real hosts, one
// group of bars per operation: the rollout (median of the timed rounds;
// Ansible serial with the same phases, linear and free), the rollback of
// every host, and the rollout with one bad host until every host serves
// the old version again. An operation that was not measured is left out.
func againstAnsible(rh *realhost.Result) (*plot.Plot, error) {
	if rh == nil || len(rh.Rounds) == 0 {
		return nil, nil
	}
	var rw, lin, free plotter.Values
	var names []string
	add := func(name string, r, l, f float64) {
		names = append(names, name)
		rw, lin, free = append(rw, r), append(lin, l), append(free, f)
	}
	add("rollout", rh.RollwaveMedian, rh.AnsibleMedian, rh.AnsibleFreeMedian)
	if rb := rh.Rollback; rb != nil {
		add("rollback", rb.RollwaveSeconds, rb.AnsibleSeconds, 0)
	}
	if bh := rh.BadHost; bh != nil {
		add("one bad host: all old", bh.RollwaveOldSeconds, bh.AnsibleOldSeconds, 0)
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%d real hosts, phases %v", rh.Hosts, rh.Phases)
	p.Y.Label.Text = "seconds"
	w := vg.Points(14)
	bars := []struct {
		name string
		v    plotter.Values
	}{{"rollwave", rw}, {"Ansible serial", lin}, {"Ansible serial, strategy free", free}}
	for i, s := range bars {
		if i == 2 && rh.AnsibleFreeMedian == 0 {
			continue
		}
		b, err := plotter.NewBarChart(s.v, w)
		if err != nil {
			return nil, err
		}
		b.Color = plotutil.Color(i)
		b.Offset = vg.Length(i-1) * w
		p.Add(b)
		p.Legend.Add(s.name, b)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.NominalX(names...)
	return p, nil
}
