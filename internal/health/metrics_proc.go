package health

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/shirou/gopsutil/v4/process"
)

// maxTrackedRoots bounds how many process trees a Sampler remembers CPU
// counters for; the least recently sampled is forgotten first.
const maxTrackedRoots = 64

// ErrNoProcess is wrapped by SampleProcess when the root PID is not running.
var ErrNoProcess = errors.New("process not running")

// ProcSample is one reading of a process tree: a root PID and all its
// descendants.
type ProcSample struct {
	Time time.Time
	PID  int
	// Procs is how many processes the tree holds, root included.
	Procs int
	// CPUPercent is the tree's CPU use in percent of one CPU, as top shows
	// it (250 = two and a half cores busy), between this sample and the
	// previous one of the same root. The first sample of a root is its
	// average since the root started.
	CPUPercent float64
	// RSSBytes is the sum of the members' resident set sizes. Pages shared
	// between members (a forking server's code) are counted once per
	// member, so this overstates a pre-fork tree; it is meant for trends
	// and gates, not accounting.
	RSSBytes uint64
}

// procPrev is what the previous sample of one tree saw.
type procPrev struct {
	at      time.Time
	cpu     map[int32]pidCPU
	lastUse uint64
}

type pidCPU struct {
	created int64   // ms since epoch, tells a reused PID from the old one
	seconds float64 // user+system CPU seconds
}

// SampleProcess reads CPU and RSS for the process tree rooted at pid. A
// member that exits mid-sample is skipped. If the root is not running the
// error wraps ErrNoProcess and the Sampler forgets that root.
func (s *Sampler) SampleProcess(ctx context.Context, pid int) (ProcSample, error) {
	ps := ProcSample{Time: time.Now(), PID: pid}
	root, err := process.NewProcessWithContext(ctx, int32(pid))
	if err != nil {
		s.Forget(pid)
		if errors.Is(err, process.ErrorProcessNotRunning) {
			return ps, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
		}
		return ps, fmt.Errorf("process %d: %w", pid, err)
	}
	rootCreated, err := root.CreateTimeWithContext(ctx)
	if err != nil {
		return ps, fmt.Errorf("process %d: create time: %w", pid, err)
	}
	members, err := descendants(ctx, int32(pid))
	if err != nil {
		return ps, fmt.Errorf("process %d: listing children: %w", pid, err)
	}

	cur := make(map[int32]pidCPU, len(members)+1)
	for _, m := range append([]int32{int32(pid)}, members...) {
		p := root
		if m != int32(pid) {
			if p, err = process.NewProcessWithContext(ctx, m); err != nil {
				continue // exited since the scan
			}
		}
		times, err := p.TimesWithContext(ctx)
		if err != nil {
			continue
		}
		mi, err := p.MemoryInfoWithContext(ctx)
		if err != nil {
			continue
		}
		// Without a create time (0) the PID-reuse check degrades to
		// matching PIDs only; the sample is still worth having.
		created, _ := p.CreateTimeWithContext(ctx)
		cur[m] = pidCPU{created: created, seconds: times.User + times.System}
		ps.RSSBytes += mi.RSS
		ps.Procs++
	}
	if _, ok := cur[int32(pid)]; !ok {
		s.Forget(pid)
		return ps, fmt.Errorf("process %d: %w", pid, ErrNoProcess)
	}
	ps.CPUPercent = s.procCPUPercent(pid, rootCreated, ps.Time, cur)
	return ps, nil
}

// Forget drops the CPU counters kept for the tree rooted at pid. Call it
// when a slot stops so a reused PID starts fresh.
func (s *Sampler) Forget(pid int) {
	s.mu.Lock()
	delete(s.procs, pid)
	s.mu.Unlock()
}

// procCPUPercent compares cur with the previous reading of the same root.
// A member seen before contributes its CPU delta; a member that started
// after the previous sample contributes all of its CPU time (it was all
// spent inside the interval); one that existed before but was not in the
// tree (re-parented into it) contributes nothing this time.
func (s *Sampler) procCPUPercent(pid int, rootCreated int64, now time.Time, cur map[int32]pidCPU) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick++
	prev := s.procs[pid]
	if prev != nil && prev.cpu[int32(pid)].created != rootCreated {
		prev = nil // the PID was reused by a different process
	}
	s.procs[pid] = &procPrev{at: now, cpu: cur, lastUse: s.tick}
	s.evictLocked()

	var used float64
	var wall time.Duration
	if prev == nil {
		for _, c := range cur {
			used += c.seconds
		}
		wall = now.Sub(time.UnixMilli(rootCreated))
	} else {
		prevAtMs := prev.at.UnixMilli()
		for p, c := range cur {
			if old, ok := prev.cpu[p]; ok && old.created == c.created {
				used += max(c.seconds-old.seconds, 0)
			} else if c.created >= prevAtMs {
				used += c.seconds
			}
		}
		wall = now.Sub(prev.at)
	}
	if wall <= 0 {
		return 0
	}
	// CPU times come in clock ticks (10 ms): over a very short wall time
	// one tick reads as several cores. No process tree can use more than
	// every core.
	return min(max(100*used/wall.Seconds(), 0), 100*float64(runtime.NumCPU()))
}

func (s *Sampler) evictLocked() {
	for len(s.procs) > maxTrackedRoots {
		oldest, oldestUse := 0, ^uint64(0)
		for p, pp := range s.procs {
			if pp.lastUse < oldestUse {
				oldest, oldestUse = p, pp.lastUse
			}
		}
		delete(s.procs, oldest)
	}
}

// descendants returns every process below root, found with one pass over
// all processes (gopsutil's Children rescans /proc for every level). The
// kernel's /proc/PID/task/TID/children would be cheaper but needs
// CONFIG_PROC_CHILDREN, which not every kernel has.
func descendants(ctx context.Context, root int32) ([]int32, error) {
	pids, err := process.PidsWithContext(ctx)
	if err != nil {
		return nil, err
	}
	children := make(map[int32][]int32)
	for _, p := range pids {
		ppid, err := parentPID(ctx, p)
		if err != nil {
			continue // exited during the scan
		}
		children[ppid] = append(children[ppid], p)
	}
	var out []int32
	queue := []int32{root}
	seen := map[int32]bool{root: true}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	return out, nil
}
