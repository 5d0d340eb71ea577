package fleet

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// RegionsResult is one regional cluster alone, then several side by side
// on the same machine, each with its own agents and its own release.
type RegionsResult struct {
	// Alone is the first region's cluster run by itself: the reference.
	Alone *Result `json:"alone"`
	// Side are the clusters run at the same time, one per region.
	Side []*Result `json:"side_by_side"`
	// SideAligned says every side-by-side cluster reached its release
	// together (false: one was late past the barrier's deadline or failed).
	SideAligned bool `json:"side_by_side_aligned"`
	// SimCPUSeconds is this process's CPU (all simulated agents of every
	// region) over the side-by-side runs; each Result's own
	// simulator_cpu_seconds is the same process-wide figure.
	SimCPUSeconds float64 `json:"side_by_side_simulator_cpu_seconds"`
	WallSeconds   float64 `json:"wall_seconds"`
}

// RunRegions runs o (its Fleet.Region set to regions[0]) alone, then one
// independent 3-node cluster per region at the same time, each with
// o.Fleet.N agents of that region and a release of its own that starts
// with the others' (a barrier before the rollout, bounded by
// alignTimeout). Clusters share nothing but the machine: own data dirs,
// ports, gossip pools and agents.
func RunRegions(ctx context.Context, o Options, regions []string, alignTimeout time.Duration) (*RegionsResult, error) {
	if len(regions) < 2 {
		return nil, fmt.Errorf("regions: %d given; need at least 2 to run side by side", len(regions))
	}
	t0 := time.Now()
	res := &RegionsResult{}
	alone := o
	alone.Fleet.Region = regions[0]
	alone.Log = prefixed(o.Log, regions[0]+" alone: ")
	r, err := Run(ctx, alone)
	if err != nil {
		return nil, fmt.Errorf("region %s alone: %w", regions[0], err)
	}
	res.Alone = r

	b := newBarrier(len(regions))
	res.Side = make([]*Result, len(regions))
	errs := make([]error, len(regions))
	aligned := make([]bool, len(regions))
	sim0 := SelfCPUSeconds()
	var wg sync.WaitGroup
	for i, region := range regions {
		ro := o
		ro.Fleet.Region = region
		ro.Log = prefixed(o.Log, region+": ")
		m := &member{b: b}
		ro.BeforeRollout = func(ctx context.Context) {
			actx, cancel := context.WithTimeout(ctx, alignTimeout)
			defer cancel()
			aligned[i] = m.arrive(actx)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A run that fails before the barrier counts as arrived, so
			// the others do not wait for it until the deadline.
			defer m.done()
			res.Side[i], errs[i] = Run(ctx, ro)
		}()
	}
	wg.Wait()
	res.SimCPUSeconds = SelfCPUSeconds() - sim0
	res.WallSeconds = time.Since(t0).Seconds()
	res.SideAligned = true
	for i, err := range errs {
		if err != nil {
			return res, fmt.Errorf("region %s side by side: %w", regions[i], err)
		}
		res.SideAligned = res.SideAligned && aligned[i]
	}
	return res, nil
}

// barrier lets n runs start their releases together: each run counts
// once, when it arrives or when it ends without arriving (a failed run
// must not hold the others until the deadline).
type barrier struct {
	mu   sync.Mutex
	left int
	all  chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{left: n, all: make(chan struct{})} }

func (b *barrier) count() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.left == 0 {
		return
	}
	if b.left--; b.left == 0 {
		close(b.all)
	}
}

// member is one run's place at the barrier.
type member struct {
	b    *barrier
	once sync.Once
}

func (m *member) done() { m.once.Do(m.b.count) }

// arrive counts the run and waits for the others; it reports whether all
// had counted before ctx ended.
func (m *member) arrive(ctx context.Context) bool {
	m.done()
	select {
	case <-m.b.all:
		return true
	case <-ctx.Done():
		return false
	}
}

// prefixed writes each line to w with prefix in front (nil w: nothing).
func prefixed(w io.Writer, prefix string) io.Writer {
	if w == nil {
		return nil
	}
	return &prefixWriter{w: w, prefix: []byte(prefix)}
}

type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out bytes.Buffer
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		out.Write(p.prefix)
		out.Write(line)
	}
	if _, err := p.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}
