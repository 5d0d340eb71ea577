package coordinator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/rollwave/rollwave/internal/dashboard"
	"github.com/rollwave/rollwave/internal/httpapi"
	"github.com/rollwave/rollwave/internal/raftfsm"
)

// httpCloseTimeout bounds how long requests in flight may finish when the
// server stops.
const httpCloseTimeout = 5 * time.Second

// startHTTP starts the HTTP listener (internal/httpapi) when configured:
// TLS with the server's certificate when TLS is on.
func (s *Server) startHTTP() error {
	if !httpapi.Enabled(s.cfg.HTTPAddr) {
		return nil
	}
	dcfg := dashboard.DefaultConfig()
	dcfg.SecureCookies = s.tls != nil
	d, err := s.Dashboard(dcfg)
	if err != nil {
		return err
	}
	hc := httpapi.Config{
		Addr:     s.cfg.HTTPAddr,
		Gatherer: s.metrics.reg,
		Ready:    s.ready,
		Pprof:    s.pprofAllowed,
		Logger:   s.log.With("listener", "http"),
		Certs:    s.tls, // nil without TLS
		UI:       d,
		UIPrefix: dcfg.Prefix,
		// The dashboard's live streams each hold a connection: room for
		// all of them and for scrapes and probes besides.
		MaxConns: httpapi.DefaultMaxConns + dcfg.MaxStreams,
	}
	h, err := httpapi.Start(hc)
	if err != nil {
		d.Close()
		return err
	}
	s.http, s.dash = h, d
	return nil
}

// HTTPAddr is the bound HTTP address, or "" when the listener is off.
func (s *Server) HTTPAddr() string {
	if s.http == nil {
		return ""
	}
	return s.http.Addr()
}

func (s *Server) closeHTTP() {
	if s.http == nil {
		return
	}
	// The dashboard's live streams first: Shutdown does not wait for
	// hijacked or streaming responses to end by themselves.
	s.dash.Close()
	ctx, cancel := context.WithTimeout(context.Background(), httpCloseTimeout)
	defer cancel()
	if err := s.http.Close(ctx); err != nil {
		s.log.Warn("HTTP listener did not stop cleanly", "error", err)
	}
}

// ready is /v1/ready: this server is in a raft cluster with a known
// leader and has applied the log it had on disk at start (acl.go,
// catchingUp) — a load balancer may send it reads.
func (s *Server) ready() error {
	select {
	case <-s.shutdownCh:
		return errors.New("the server is shutting down")
	default:
	}
	if why := s.catchingUp(); why != "" {
		return errors.New(why)
	}
	return nil
}

// pprofAllowed is the pprof policy: with ACLs on, an admin token
// (Authorization: Bearer, checked as the gRPC API checks it); with ACLs
// off, only when the server was started with -enable-pprof.
func (s *Server) pprofAllowed(r *http.Request) error {
	if !s.cfg.ACLEnabled {
		if s.cfg.EnablePprof {
			return nil
		}
		return fmt.Errorf("%w: pprof is off: start the server with -enable-pprof (enable_pprof = true), or enable ACLs and send an admin token", httpapi.ErrForbidden)
	}
	secret := httpapi.BearerToken(r)
	if secret == "" {
		return fmt.Errorf("%w: pprof needs an ACL token with role admin: send Authorization: Bearer <secret>", httpapi.ErrUnauthorized)
	}
	tok := s.fsm.State().ResolveACLToken(hashSecret(secret))
	if tok == nil {
		return fmt.Errorf("%w: ACL token not found: it is wrong or was deleted", httpapi.ErrUnauthorized)
	}
	if roleRank(tok.GetRole()) < roleRank(raftfsm.RoleAdmin) {
		return fmt.Errorf("%w: token %q has role %s; pprof needs role admin", httpapi.ErrForbidden, tok.GetName(), tok.GetRole())
	}
	return nil
}
