// Package httpapi is the HTTP listener both binaries run next to their
// gRPC and gossip ports: Prometheus metrics (/metrics), liveness
// (/v1/health), readiness (/v1/ready) and, only when allowed, Go's pprof
// profiles (/debug/pprof/). It serves reads only: every method but GET
// and HEAD is refused.
package httpapi

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"

	"github.com/rollwave/rollwave/internal/tlsutil"
)

// Off is the address value that turns the listener off (as does "").
const Off = "off"

// Enabled reports whether addr asks for a listener ("" and "off" do not).
func Enabled(addr string) bool { return addr != "" && addr != Off }

// Limits of the listener. A scrape or a probe is one short request; these
// bound what a slow or hostile client can hold.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	// writeTimeout leaves room for a pprof CPU profile of maxProfile.
	writeTimeout   = maxProfile + 15*time.Second
	idleTimeout    = 60 * time.Second
	maxHeaderBytes = 16 << 10
	// maxProfile caps pprof's ?seconds= (profile and trace).
	maxProfile = 30 * time.Second
	// DefaultMaxConns caps the listener's open connections.
	DefaultMaxConns = 64
)

// Config configures one listener.
type Config struct {
	// Addr is host:port; port 0 picks a free port (tests).
	Addr string
	// Certs, when set, serves HTTPS with the part's certificate
	// (tlsutil.Reloader.HTTPServerTLSConfig: client certificates verified
	// when given, reloaded with the rest on SIGHUP). /metrics and pprof
	// then need a verified client certificate of this cluster;
	// /v1/health and /v1/ready do not.
	Certs *tlsutil.Reloader
	// Gatherer serves /metrics; nil serves an empty page.
	Gatherer prometheus.Gatherer
	// Ready says why the process is not ready, or nil when it is. It must
	// not block for long (it runs on every /v1/ready request). Nil means
	// always ready.
	Ready func() error
	// Pprof decides whether a request may read the pprof profiles: nil
	// to allow, or an error (ErrUnauthorized, ErrForbidden, wrapped with
	// the reason) to refuse. Nil refuses every pprof request.
	Pprof func(r *http.Request) error
	// UI, when set, is served under UIPrefix (e.g. the coordinator's web
	// dashboard at "/ui/"), and "/" redirects there. It is the one part of
	// the listener that takes POSTs and needs no client certificate: it
	// authenticates its users itself (ACL token login, CSRF tokens).
	UI       http.Handler
	UIPrefix string
	// MaxConns caps open connections; 0 takes DefaultMaxConns.
	MaxConns int
	// Logger receives errors; nil discards them.
	Logger *slog.Logger
}

// Errors a Pprof policy wraps to choose the status code.
var (
	// ErrUnauthorized: the request carries no (valid) credentials: 401.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: pprof is off, or the credentials lack the role: 403.
	ErrForbidden = errors.New("forbidden")
)

// Server is a running listener. Create it with Start, stop it with Close.
type Server struct {
	cfg  Config
	log  *slog.Logger
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
	once sync.Once
}

// Start binds cfg.Addr and serves in the background.
func Start(cfg Config) (*Server, error) {
	if !Enabled(cfg.Addr) {
		return nil, errors.New("httpapi: no address (the listener is off)")
	}
	if cfg.UI != nil && (!strings.HasPrefix(cfg.UIPrefix, "/") || !strings.HasSuffix(cfg.UIPrefix, "/") || len(cfg.UIPrefix) < 3) {
		return nil, fmt.Errorf("httpapi: UIPrefix %q must be a path such as /ui/", cfg.UIPrefix)
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var tc *tls.Config
	if cfg.Certs != nil {
		var err error
		if tc, err = cfg.Certs.HTTPServerTLSConfig(); err != nil {
			return nil, fmt.Errorf("http tls: %w", err)
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on HTTP address %s: %w", cfg.Addr, err)
	}
	// A connection over the cap waits in the kernel's backlog until one
	// closes (netutil's semaphore), so a flood of idle clients cannot
	// take the process's file descriptors.
	ln = netutil.LimitListener(ln, cfg.MaxConns)
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	s := &Server{cfg: cfg, log: log, ln: ln, done: make(chan struct{})}
	s.srv = &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP listener stopped", "error", err)
		}
	}()
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the listener: requests in flight get until ctx ends to
// finish, then every connection is closed. It returns once the serving
// goroutine has ended.
func (s *Server) Close(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		if err = s.srv.Shutdown(ctx); err != nil {
			err = errors.Join(err, s.srv.Close())
		}
		<-s.done
	})
	return err
}

func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	gatherer := s.cfg.Gatherer
	if gatherer == nil {
		gatherer = prometheus.NewRegistry() // an empty page
	}
	metrics := promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
	mux.Handle("/metrics", s.needClientCert(metrics))
	mux.HandleFunc("/v1/health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("/v1/ready", s.ready)
	mux.Handle("/debug/pprof/", s.needClientCert(s.pprofGuard(http.HandlerFunc(pprofIndex))))
	endpoints := "/metrics, /v1/health, /v1/ready and /debug/pprof/"
	if s.cfg.UI != nil {
		endpoints = "/metrics, /v1/health, /v1/ready, /debug/pprof/ and " + s.cfg.UIPrefix
		mux.Handle("/{$}", http.RedirectHandler(s.cfg.UIPrefix, http.StatusSeeOther))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint %q; this listener serves %s", r.URL.Path, endpoints))
	})
	reads := onlyReads(mux)
	if s.cfg.UI == nil {
		return reads
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, s.cfg.UIPrefix) {
			s.cfg.UI.ServeHTTP(w, r)
			return
		}
		reads.ServeHTTP(w, r)
	})
}

// onlyReads refuses every method but GET and HEAD before any handler runs.
func onlyReads(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed: this listener only serves reads (GET, HEAD)", r.Method))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// needClientCert passes a request on TLS only with a verified client
// certificate (the TLS config verified it against the cluster CA).
func (s *Server) needClientCert(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Certs != nil && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
			writeError(w, http.StatusUnauthorized, r.URL.Path+" needs a client certificate from this cluster's CA when TLS is on "+
				"(for Prometheus: 'rollwave tls cert create -cli' and tls_config { ca_file, cert_file, key_file } in the scrape job)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not_ready", "reason": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
}

func (s *Server) pprofGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := errors.New("pprof is off")
		if s.cfg.Pprof != nil {
			err = s.cfg.Pprof(r)
		}
		if err != nil {
			code := http.StatusForbidden
			if errors.Is(err, ErrUnauthorized) {
				code = http.StatusUnauthorized
				w.Header().Set("WWW-Authenticate", `Bearer realm="rollwave"`)
			}
			writeError(w, code, err.Error())
			return
		}
		if v := r.URL.Query().Get("seconds"); v != "" {
			if d, perr := time.ParseDuration(v + "s"); perr != nil || d <= 0 || d > maxProfile {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("seconds: must be a whole number from 1 to %d, got %q", int(maxProfile.Seconds()), v))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{"error": msg})
}

// BearerToken returns the token of an "Authorization: Bearer …" header
// (or of "X-Rollwave-Token"), or "".
func BearerToken(r *http.Request) string {
	if v := r.Header.Get("Authorization"); len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return strings.TrimSpace(r.Header.Get("X-Rollwave-Token"))
}
