package rollout

import (
	"context"
	"sync"
	"time"
)

// StepForTest runs one reconcile of a release, as its goroutine would:
// unit tests drive the orchestrator with a fake clock through it, without
// enabling it. It reports whether the release no longer needs watching.
func (o *Orchestrator) StepForTest(ctx context.Context, releaseID string) (bool, error) {
	o.mu.Lock()
	rn, ok := o.runs[releaseID]
	if !ok {
		rn = newRun(releaseID)
		o.runs[releaseID] = rn
	}
	o.mu.Unlock()
	return o.step(ctx, rn)
}

// ForgetForTest drops the leader memory of every release, as a new leader
// starts: tests use it to check that state in raft is enough to continue.
func (o *Orchestrator) ForgetForTest() {
	o.mu.Lock()
	o.runs = map[string]*run{}
	o.enabledAt = o.now()
	o.mu.Unlock()
	o.seenMu.Lock()
	o.lastSeen = map[string]time.Time{}
	o.seenMu.Unlock()
}

var (
	testConvergersMu sync.Mutex
	testConvergers   = map[*Orchestrator]*converger{}
)

// ConvergeOnceForTest runs one round of automatic convergence, keeping
// the leader memory of earlier rounds of the same orchestrator.
func (o *Orchestrator) ConvergeOnceForTest(ctx context.Context) error {
	testConvergersMu.Lock()
	cv, ok := testConvergers[o]
	if !ok {
		cv = &converger{connectedSince: map[string]time.Time{}, retryAt: map[string]retry{}}
		testConvergers[o] = cv
	}
	testConvergersMu.Unlock()
	return o.convergeOnce(ctx, cv)
}

var (
	testChainWaitingMu sync.Mutex
	testChainWaiting   = map[*Orchestrator]map[string]string{}
)

// ChainsOnceForTest runs one round of the chain loop, keeping its memory
// (the waiting reasons recorded) per orchestrator.
func (o *Orchestrator) ChainsOnceForTest(ctx context.Context) error {
	testChainWaitingMu.Lock()
	w, ok := testChainWaiting[o]
	if !ok {
		w = map[string]string{}
		testChainWaiting[o] = w
	}
	testChainWaitingMu.Unlock()
	return o.chainsOnce(ctx, o.state.Chains(), w)
}
