package agent

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/rollwave/rollwave/internal/httpapi"
)

// startHTTP starts the HTTP listener (internal/httpapi) when configured:
// TLS with the agent's certificate when TLS is on.
func (a *Agent) startHTTP() error {
	if !httpapi.Enabled(a.cfg.HTTPAddr) {
		return nil
	}
	hc := httpapi.Config{
		Addr:     a.cfg.HTTPAddr,
		Gatherer: a.prom.reg,
		Ready:    a.ready,
		Pprof:    a.pprofAllowed,
		Logger:   a.log.With("listener", "http"),
		Certs:    a.tls, // nil without TLS
	}
	h, err := httpapi.Start(hc)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.http = h
	a.mu.Unlock()
	a.log.Info("HTTP listener started", "http_addr", h.Addr())
	if a.cfg.EnablePprof && !httpapi.PprofBuilt {
		a.log.Warn("enable_pprof is set but this agent was built without pprof (build tag nopprof, as packaged); /debug/pprof/ answers 404")
	}
	return nil
}

// HTTPAddr is the bound HTTP address, or "" when the listener is off or
// not started yet (Run starts it).
func (a *Agent) HTTPAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.http == nil {
		return ""
	}
	return a.http.Addr()
}

func (a *Agent) closeHTTP() {
	a.mu.Lock()
	h := a.http
	a.mu.Unlock()
	if h == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		a.log.Warn("HTTP listener did not stop cleanly", "error", err)
	}
}

// pprofAllowed: agents hold no ACL tokens, so pprof is on only with
// -enable-pprof (and, with TLS, a client certificate of the cluster).
func (a *Agent) pprofAllowed(*http.Request) error {
	if a.cfg.EnablePprof {
		return nil
	}
	return fmt.Errorf("%w: pprof is off: start the agent with -enable-pprof (enable_pprof = true)", httpapi.ErrForbidden)
}
