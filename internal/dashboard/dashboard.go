// Package dashboard is the web dashboard every coordinator serves: the
// fleet, the releases and each host at a glance, kept live by server-sent
// events, with the release actions (pause, resume, approve, abort,
// rollback, promote) for tokens allowed to take them.
//
// The dashboard holds no state of its own and checks no permission
// itself. Every read and every action is a call to the coordinator's
// operator gRPC API (API), made with the token the browser logged in with:
// the same ACL interceptor, role table, audit (the token's name as actor),
// rate limit, forwarding to the leader and error mapping apply as for the
// CLI. Re-implementing the role checks here would give a second policy to
// keep in step with internal/coordinator/acl.go; calling the API cannot
// drift from it. The role the dashboard learns at login only decides which
// buttons to draw.
package dashboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// API is the part of the operator gRPC API the dashboard uses;
// rollwavev1.OperatorServiceClient satisfies it. Calls carry the
// browser's token as "authorization: Bearer <secret>" metadata.
type API interface {
	Status(ctx context.Context, in *rollwavev1.StatusRequest, opts ...grpc.CallOption) (*rollwavev1.StatusResponse, error)
	ListHosts(ctx context.Context, in *rollwavev1.ListHostsRequest, opts ...grpc.CallOption) (*rollwavev1.ListHostsResponse, error)
	ListCells(ctx context.Context, in *rollwavev1.ListCellsRequest, opts ...grpc.CallOption) (*rollwavev1.ListCellsResponse, error)
	ListReleases(ctx context.Context, in *rollwavev1.ListReleasesRequest, opts ...grpc.CallOption) (*rollwavev1.ListReleasesResponse, error)
	GetRelease(ctx context.Context, in *rollwavev1.GetReleaseRequest, opts ...grpc.CallOption) (*rollwavev1.GetReleaseResponse, error)
	ListEvents(ctx context.Context, in *rollwavev1.ListEventsRequest, opts ...grpc.CallOption) (*rollwavev1.ListEventsResponse, error)
	ACLTokenList(ctx context.Context, in *rollwavev1.ACLTokenListRequest, opts ...grpc.CallOption) (*rollwavev1.ACLTokenListResponse, error)
	PauseRelease(ctx context.Context, in *rollwavev1.ReleaseActionRequest, opts ...grpc.CallOption) (*rollwavev1.ReleaseActionResponse, error)
	ResumeRelease(ctx context.Context, in *rollwavev1.ReleaseActionRequest, opts ...grpc.CallOption) (*rollwavev1.ReleaseActionResponse, error)
	ApproveRelease(ctx context.Context, in *rollwavev1.ReleaseActionRequest, opts ...grpc.CallOption) (*rollwavev1.ReleaseActionResponse, error)
	AbortRelease(ctx context.Context, in *rollwavev1.ReleaseActionRequest, opts ...grpc.CallOption) (*rollwavev1.ReleaseActionResponse, error)
	RollbackRelease(ctx context.Context, in *rollwavev1.ReleaseActionRequest, opts ...grpc.CallOption) (*rollwavev1.ReleaseActionResponse, error)
	PromoteRelease(ctx context.Context, in *rollwavev1.ReleaseActionRequest, opts ...grpc.CallOption) (*rollwavev1.ReleaseActionResponse, error)
}

// Config configures a dashboard. Zero durations and limits take the
// DefaultConfig values.
type Config struct {
	// API is the operator API the dashboard reads and acts through
	// (required). In a coordinator it is a client of the coordinator's
	// own gRPC listener.
	API API
	// ACLEnabled says whether the coordinators check ACL tokens. Off, the
	// dashboard needs no login and shows a banner saying anyone who can
	// reach it can act.
	ACLEnabled bool
	// SecureCookies marks cookies Secure: set it when the listener
	// serves TLS.
	SecureCookies bool
	// Prefix is the URL path the handler is mounted under, with both
	// slashes ("/ui/").
	Prefix string
	// MaxStreams bounds the live-update streams open at once on this
	// server; more are refused with 503 (the browser retries).
	MaxStreams int
	// StreamLifetime ends each live-update stream after this long; the
	// browser reconnects at once and its token is checked again.
	StreamLifetime time.Duration
	// IdleTimeout ends a stream whose browser has not read an update for
	// this long (the write deadline of every event).
	IdleTimeout time.Duration
	// PollInterval is how often a stream re-reads its view; an event is
	// sent only when the view changed. Each read is 2 to 4 operator API
	// calls from this server's own address, which count against the
	// coordinator's per-address operator rate limit (50/s by default).
	PollInterval time.Duration
	// CallTimeout bounds each operator API call.
	CallTimeout time.Duration
	// AggregateAbove: a fleet with more hosts than this shows each cell
	// as counts, with a link to the cell's hosts.
	AggregateAbove int
	// Logger receives request errors; nil discards.
	Logger *slog.Logger
}

// DefaultConfig returns the production limits.
func DefaultConfig() Config {
	return Config{
		Prefix:         "/ui/",
		MaxStreams:     64,
		StreamLifetime: 10 * time.Minute,
		IdleTimeout:    30 * time.Second,
		PollInterval:   2 * time.Second,
		CallTimeout:    5 * time.Second,
		AggregateAbove: 300,
	}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.API == nil:
		return errors.New("dashboard: API is required")
	case !strings.HasPrefix(c.Prefix, "/") || !strings.HasSuffix(c.Prefix, "/"):
		return fmt.Errorf("dashboard: Prefix %q must start and end with '/'", c.Prefix)
	case c.MaxStreams < 1:
		return fmt.Errorf("dashboard: MaxStreams %d must be at least 1", c.MaxStreams)
	case c.StreamLifetime <= 0, c.IdleTimeout <= 0, c.PollInterval <= 0, c.CallTimeout <= 0:
		return fmt.Errorf("dashboard: StreamLifetime (%s), IdleTimeout (%s), PollInterval (%s) and CallTimeout (%s) must be positive",
			c.StreamLifetime, c.IdleTimeout, c.PollInterval, c.CallTimeout)
	case c.AggregateAbove < 1:
		return fmt.Errorf("dashboard: AggregateAbove %d must be at least 1", c.AggregateAbove)
	}
	return nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Prefix == "" {
		c.Prefix = d.Prefix
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = d.MaxStreams
	}
	if c.StreamLifetime == 0 {
		c.StreamLifetime = d.StreamLifetime
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.PollInterval == 0 {
		c.PollInterval = d.PollInterval
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = d.CallTimeout
	}
	if c.AggregateAbove == 0 {
		c.AggregateAbove = d.AggregateAbove
	}
	return c
}

// Dashboard is an http.Handler; mount it at Config.Prefix.
type Dashboard struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	streams chan struct{} // one token per open live-update stream
	// done ends every open stream (Close).
	done chan struct{}
}

// New builds a dashboard.
func New(cfg Config) (*Dashboard, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Dashboard{cfg: cfg, log: log.With("component", "dashboard"),
		streams: make(chan struct{}, cfg.MaxStreams), done: make(chan struct{})}
	d.routes()
	return d, nil
}

// Close ends every open live-update stream (call it before shutting the
// HTTP server down: http.Server.Shutdown does not wait for them).
func (d *Dashboard) Close() {
	select {
	case <-d.done:
	default:
		close(d.done)
	}
}

// ServeHTTP sets the security headers every answer carries and routes.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Everything is served from here: scripts and styles from files, no
	// inline script or style, no frames, forms post only here.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	d.mux.ServeHTTP(w, r)
}
