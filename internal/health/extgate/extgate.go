// Package extgate reads external metric gates: a PromQL instant query
// against a Prometheus server (gate "prometheus") or a verdict from any
// HTTP service that takes the phase context as JSON (gate "http", the
// shape of Flagger's and Argo Rollouts' web metrics).
//
// A reading is pass, fail or inconclusive. Anything that is not a clear
// answer — the server unreachable, an error status, an empty result, NaN,
// a malformed or oversized response — is inconclusive, never a pass: the
// orchestrator pauses the release on it.
//
// Credentials come from files in one directory the coordinator's operator
// chose (Options.CredentialsDir); a spec names files only by base name, so
// a release author cannot make the leader send an arbitrary file of its
// filesystem to a URL of their choosing. Secrets never appear in a
// Result, an error or a log line.
package extgate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	promconfig "github.com/prometheus/common/config"

	"github.com/rollwave/rollwave/internal/backoff"
	"github.com/rollwave/rollwave/internal/health"
	"github.com/rollwave/rollwave/internal/sattime"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Gate kinds.
const (
	KindPrometheus = "prometheus"
	KindHTTP       = "http"
)

// Defaults for fields a spec leaves at zero.
const (
	DefaultInterval = 30 * time.Second
	DefaultTimeout  = 10 * time.Second
	DefaultAttempts = 3
	// DefaultMaxResponseBytes caps a response body: a PromQL result for
	// a gate is a handful of series, a verdict a few bytes.
	DefaultMaxResponseBytes = 1 << 20
)

// Options are the coordinator's settings for every gate.
type Options struct {
	// CredentialsDir holds the files that bearer_token_file,
	// password_file and ca_file name. Empty refuses every gate that
	// names a credential file.
	CredentialsDir string
	// MaxResponseBytes caps a response body; 0 means
	// DefaultMaxResponseBytes. A larger body makes the reading
	// inconclusive.
	MaxResponseBytes int64
	// RetryMin and RetryMax bound the jittered backoff between attempts
	// of one reading; defaults 200ms and 2s.
	RetryMin, RetryMax time.Duration
	// AllowURL, when set, returns why a gate may not be read at a URL
	// (the coordinator's gate_url_prefixes); nil allows every URL.
	AllowURL func(raw string) error
}

// Context is what a reading is about; it fills the query placeholders and
// is the JSON body an http gate receives.
type Context struct {
	Release string   `json:"release"`
	App     string   `json:"app"`
	Version string   `json:"version"`
	Phase   int32    `json:"phase"`
	Hosts   []string `json:"hosts"`
	Cells   []string `json:"cells"`
	// Gate is the gate's name, so that one endpoint can serve several.
	Gate string `json:"gate"`
}

// Result is one reading.
type Result struct {
	// Gate is "prometheus.NAME" or "http.NAME".
	Gate    string
	Verdict health.Verdict
	// Value is the query's value (the worst series), or NaN.
	Value float64
	// Limit is the threshold the value was held against, or NaN.
	Limit float64
	// Detail is one line for the event message.
	Detail string
	// Evidence holds the query as sent, the value, the thresholds, the
	// series count and the attempts; never a credential.
	Evidence map[string]string
}

// Gate reads one metric gate. It is safe for concurrent use.
type Gate struct {
	spec     *rollwavev1.MetricGate
	name     string
	interval time.Duration
	timeout  time.Duration
	attempts int
	opts     Options
	client   *http.Client
}

// New builds the gate a spec describes. It fails, naming the field, on
// anything the spec validation should have refused (a spec from the
// replicated log is checked again here) and on credential files that
// cannot be used.
func New(mg *rollwavev1.MetricGate, opts Options) (*Gate, error) {
	if mg == nil {
		return nil, errors.New("metric gate: spec is nil")
	}
	name := mg.GetName()
	if name == "" {
		name = mg.GetKind()
	}
	g := &Gate{spec: mg, name: mg.GetKind() + "." + name, opts: opts,
		interval: sattime.Millis(mg.GetIntervalMs()), timeout: sattime.Millis(mg.GetTimeoutMs()), attempts: int(mg.GetAttempts())}
	if g.interval <= 0 {
		g.interval = DefaultInterval
	}
	if g.timeout <= 0 {
		g.timeout = DefaultTimeout
	}
	if g.attempts <= 0 {
		g.attempts = DefaultAttempts
	}
	if g.opts.MaxResponseBytes <= 0 {
		g.opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if g.opts.RetryMin <= 0 {
		g.opts.RetryMin = 200 * time.Millisecond
	}
	if g.opts.RetryMax < g.opts.RetryMin {
		g.opts.RetryMax = max(2*time.Second, g.opts.RetryMin)
	}
	var target string
	switch mg.GetKind() {
	case KindPrometheus:
		target = mg.GetAddress()
		if mg.GetQuery() == "" {
			return nil, fmt.Errorf("gate %s: query is required", g.name)
		}
		if !(mg.Max != nil) && !(mg.Min != nil) {
			return nil, fmt.Errorf("gate %s: max or min is required", g.name)
		}
	case KindHTTP:
		target = mg.GetUrl()
	default:
		return nil, fmt.Errorf("gate %s: unknown kind %q (want prometheus or http)", g.name, mg.GetKind())
	}
	if err := CheckURL(target); err != nil {
		return nil, fmt.Errorf("gate %s: %w", g.name, err)
	}
	if opts.AllowURL != nil {
		if err := opts.AllowURL(target); err != nil {
			return nil, fmt.Errorf("gate %s: %w", g.name, err)
		}
	}
	cfg := promconfig.HTTPClientConfig{FollowRedirects: false, EnableHTTP2: false}
	file := func(field, base string) (string, error) {
		if base == "" {
			return "", nil
		}
		p, err := CredentialPath(opts.CredentialsDir, base)
		if err != nil {
			return "", fmt.Errorf("gate %s: %s: %w", g.name, field, err)
		}
		return p, nil
	}
	var err error
	if cfg.BearerTokenFile, err = file("bearer_token_file", mg.GetBearerTokenFile()); err != nil {
		return nil, err
	}
	if mg.GetUsername() != "" || mg.GetPasswordFile() != "" {
		pw, err := file("password_file", mg.GetPasswordFile())
		if err != nil {
			return nil, err
		}
		if mg.GetUsername() == "" || pw == "" {
			return nil, fmt.Errorf("gate %s: basic auth needs both username and password_file", g.name)
		}
		cfg.BasicAuth = &promconfig.BasicAuth{Username: mg.GetUsername(), PasswordFile: pw}
	}
	if cfg.TLSConfig.CAFile, err = file("ca_file", mg.GetCaFile()); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gate %s: %w", g.name, err)
	}
	rt, err := promconfig.NewRoundTripperFromConfig(cfg, "rollwave-gate", promconfig.WithUserAgent("rollwave-gate"),
		promconfig.WithKeepAlivesDisabled())
	if err != nil {
		return nil, fmt.Errorf("gate %s: %w", g.name, err)
	}
	g.client = &http.Client{
		Transport: &capTransport{next: rt, limit: g.opts.MaxResponseBytes},
		// Redirects are not followed: a gate talks to the server its spec
		// names and to no other (promconfig's FollowRedirects=false only
		// applies to the clients it builds itself).
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return g, nil
}

// Name is "KIND.NAME".
func (g *Gate) Name() string { return g.name }

// Interval is how often the leader reads the gate during a bake.
func (g *Gate) Interval() time.Duration { return g.interval }

// MaxDuration bounds one Read: every attempt's timeout and the backoff
// between them.
func (g *Gate) MaxDuration() time.Duration {
	return time.Duration(g.attempts)*g.timeout + time.Duration(g.attempts-1)*g.opts.RetryMax
}

// maxErrorText bounds an error copied into a reading.
const maxErrorText = 300

// errInconclusive marks an answer that is well-formed but no evidence
// (no data, NaN): retrying it would not help.
var errInconclusive = errors.New("inconclusive")

// Read takes one reading: up to the spec's attempts, each bounded by its
// timeout, with jittered, capped backoff between them. It never returns a
// pass on an error.
func (g *Gate) Read(ctx context.Context, c Context) Result {
	c.Gate = g.name
	res := Result{Gate: g.name, Verdict: health.Inconclusive, Value: math.NaN(), Limit: math.NaN(), Evidence: map[string]string{"kind": g.spec.GetKind()}}
	b := backoff.New(g.opts.RetryMin, g.opts.RetryMax)
	var err error
	for attempt := 1; ; attempt++ {
		res.Evidence["attempts"] = strconv.Itoa(attempt)
		actx, cancel := context.WithTimeout(ctx, g.timeout)
		switch g.spec.GetKind() {
		case KindPrometheus:
			err = g.readPrometheus(actx, c, &res)
		default:
			err = g.readHTTP(actx, c, &res)
		}
		cancel()
		if err == nil || errors.Is(err, errInconclusive) || attempt >= g.attempts || ctx.Err() != nil {
			break
		}
		t := time.NewTimer(b.Next())
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	if err != nil {
		res.Verdict = health.Inconclusive
		msg := err.Error()
		if errors.Is(err, errInconclusive) {
			msg = strings.TrimSuffix(msg, ": "+errInconclusive.Error())
		}
		// Capped: an error may quote the answer (a JSON decoder's
		// snippet), and whatever a gate URL answers ends up in events.
		if len(msg) > maxErrorText {
			msg = msg[:maxErrorText] + "…"
		}
		res.Evidence["error"] = msg
		res.Detail = fmt.Sprintf("%s inconclusive: %s", g.name, msg)
	}
	return res
}

// capTransport fails a response whose body is larger than limit.
type capTransport struct {
	next  http.RoundTripper
	limit int64
}

func (t *capTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.limit {
		resp.Body.Close()
		return nil, fmt.Errorf("response of %d bytes exceeds the %d-byte cap", resp.ContentLength, t.limit)
	}
	resp.Body = &capBody{rc: resp.Body, left: t.limit}
	return resp, nil
}

type capBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *capBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly the cap from a longer one.
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, errors.New("response body exceeds the size cap")
		}
		return b.rc.Read(p)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *capBody) Close() error { return b.rc.Close() }

// CredentialPath resolves a credential file name under dir. The spec
// validation allows only plain file names; this is the leader's own guard
// for specs that came through the log: no directories, no "..".
func CredentialPath(dir, name string) (string, error) {
	if name != filepath.Base(name) || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return "", fmt.Errorf("file %q must be a file name inside the coordinator's gate credentials directory, not a path", name)
	}
	if dir == "" {
		return "", fmt.Errorf("file %q: the coordinator has no gate credentials directory configured (gate_credentials_dir)", name)
	}
	return filepath.Join(dir, name), nil
}

// CheckURL returns why raw is not a usable gate URL: http or https with a
// host, no user:password@ (credentials come from files), no fragment.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("url %q: %w", raw, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("url %q: want http:// or https://", raw)
	case u.Host == "":
		return fmt.Errorf("url %q: needs a host", raw)
	case u.User != nil:
		return errors.New("url must not carry user:password@; use username and password_file")
	case u.Fragment != "":
		return fmt.Errorf("url %q: must not have a #fragment", raw)
	}
	return nil
}
