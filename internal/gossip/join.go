package gossip

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Join contacts the given seed addresses ("ip:port", "host:port" or
// "host", the last using this pool's port) and merges state with every one
// it reaches. It retries with capped exponential backoff and full jitter
// until at least one seed answers or ctx ends; a ctx without a deadline gets
// Config.JoinTimeout. It returns how many seeds were reached. On failure the
// error wraps ErrJoin and ctx's error, and names the addresses and the last
// failure.
//
// One attempt can take up to memberlist's TCP timeout per address (10 s on
// the LAN profile). Join stops waiting when ctx ends; the attempt in flight
// finishes in the background within that bound and is then discarded.
func (p *Pool) Join(ctx context.Context, addrs []string) (int, error) {
	if len(addrs) == 0 {
		return 0, fmt.Errorf("%w: no addresses given", ErrJoin)
	}
	p.lifeMu.Lock()
	err := p.usableLocked()
	p.lifeMu.Unlock()
	if err != nil {
		return 0, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.JoinTimeout)
		defer cancel()
	}

	start := time.Now()
	var lastErr error
	attempts := 0
	for ctx.Err() == nil {
		attempts++
		n, err := p.joinOnce(ctx, addrs)
		if err == nil && n > 0 {
			p.logger.Info("joined gossip pool", "seeds", strings.Join(addrs, ","), "reached", n, "attempts", attempts)
			return n, nil
		}
		if err != nil && !errors.Is(err, ctx.Err()) {
			lastErr = err
		}
		wait := p.backoff(attempts)
		p.logger.Debug("join attempt failed", "seeds", strings.Join(addrs, ","), "attempt", attempts, "retry_in", wait, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	if lastErr == nil {
		lastErr = errors.New("no attempt completed")
	}
	return 0, fmt.Errorf("%w: none of [%s] reachable after %d attempts in %v (%w); last error: %w",
		ErrJoin, strings.Join(addrs, ", "), attempts, time.Since(start).Round(time.Millisecond), ctx.Err(), lastErr)
}

// joinOnce runs one memberlist Join, which is not context-aware, and stops
// waiting for it when ctx ends.
func (p *Pool) joinOnce(ctx context.Context, addrs []string) (int, error) {
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1) // buffered: the goroutine never blocks
	go func() {
		n, err := p.ml.Join(addrs)
		done <- result{n, flattenErr(err)}
	}()
	select {
	case r := <-done:
		return r.n, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// backoff returns the wait before attempt+1: uniform in [0, bound) where
// bound doubles from JoinBackoffMin per attempt up to JoinBackoffMax ("full
// jitter", so many agents restarting together do not retry in lockstep).
func (p *Pool) backoff(attempt int) time.Duration {
	bound := p.cfg.JoinBackoffMax
	if shift := attempt - 1; shift < 32 {
		if b := p.cfg.JoinBackoffMin << shift; b > 0 && b < bound {
			bound = b
		}
	}
	return rand.N(bound)
}

// flattenErr turns memberlist's multi-line multierror into one line.
func flattenErr(err error) error {
	var multi interface{ WrappedErrors() []error }
	if !errors.As(err, &multi) {
		return err
	}
	parts := make([]string, 0, len(multi.WrappedErrors()))
	for _, e := range multi.WrappedErrors() {
		parts = append(parts, e.Error())
	}
	return errors.New(strings.Join(parts, "; "))
}
