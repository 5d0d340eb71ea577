package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/rollwave/rollwave/internal/coordinator"
	"github.com/rollwave/rollwave/internal/dashboard"
	"github.com/rollwave/rollwave/internal/tlsutil"
)

// The smallest HTTP listener the web dashboard needs (-dashboard-addr).
// When the coordinator's general HTTP listener (addresses { http },
// /metrics, /v1/health) exists, the dashboard mounts there at /ui/ and
// this file goes: see Server.Dashboard.

// dashboardShutdown bounds the HTTP server's graceful stop.
const dashboardShutdown = 5 * time.Second

// startDashboard serves srv's dashboard at /ui/ on addr ("" = off), over
// HTTPS with the server's certificate when tlsCfg is set (browsers
// present no client certificate: the dashboard's login is the ACL
// token). The returned func stops it.
func startDashboard(srv *coordinator.Server, addr string, tlsCfg *tlsutil.Config, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	cfg := dashboard.DefaultConfig()
	cfg.SecureCookies = tlsCfg != nil
	d, err := srv.Dashboard(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on dashboard address %s (-dashboard-addr): %w", addr, err)
	}
	if tlsCfg != nil {
		cert, err := tls.LoadX509KeyPair(tlsCfg.CertFile, tlsCfg.KeyFile)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("dashboard TLS: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	mux := http.NewServeMux()
	mux.Handle(cfg.Prefix, d)
	mux.Handle("/{$}", http.RedirectHandler(cfg.Prefix, http.StatusSeeOther))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("dashboard listener stopped", "error", err)
		}
	}()
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	log.Info("dashboard listening", "url", fmt.Sprintf("%s://%s%s", scheme, ln.Addr(), cfg.Prefix))
	return func() {
		d.Close() // ends the live streams, which Shutdown does not wait for
		ctx, cancel := context.WithTimeout(context.Background(), dashboardShutdown)
		defer cancel()
		_ = hs.Shutdown(ctx)
		<-done
	}, nil
}
