package health

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rollwave/rollwave/internal/sattime"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Check is one health probe. Run returns nil when the target is healthy and
// otherwise an error that names the check and says what was wrong, e.g.
// "http check api: GET http://127.0.0.1:8082/healthz: status 503, want 2xx".
// Run must honour ctx and may be called from any goroutine, but a Tracker
// never runs the same check concurrently with itself.
type Check interface {
	Name() string
	Run(ctx context.Context) error
}

// Defaults applied when a spec leaves a value at zero.
const (
	// DefaultInterval is how often a check runs when its spec has no interval.
	DefaultInterval = 10 * time.Second
	// DefaultTimeout bounds one run of a check when its spec has no timeout.
	// FromSpec caps it at the interval.
	DefaultTimeout = 5 * time.Second
)

// ErrUnitCheck is returned by FromSpec for kind "unit": the unit state
// lives in systemd, which this package does not talk to. The caller builds
// that check with NewFuncCheck around its slot driver.
var ErrUnitCheck = errors.New("unit checks are built by the caller with health.NewFuncCheck")

// NewFuncCheck wraps fn as a Check. fn's error is returned prefixed with
// "check NAME: ". The agent uses it for the systemd unit-state check.
func NewFuncCheck(name string, fn func(ctx context.Context) error) Check {
	return &funcCheck{name: name, fn: fn}
}

type funcCheck struct {
	name string
	fn   func(ctx context.Context) error
}

func (c *funcCheck) Name() string { return c.name }

func (c *funcCheck) Run(ctx context.Context) error {
	if err := c.fn(ctx); err != nil {
		return fmt.Errorf("check %s: %w", c.name, err)
	}
	return nil
}

func (c *funcCheck) withName(name string) Check { cp := *c; cp.name = name; return &cp }

// renamer is implemented by the package's own checks so WithName can give
// them a name that also appears in their errors.
type renamer interface{ withName(name string) Check }

// WithName returns c under a new name. For the package's own checks the new
// name also prefixes their errors; other checks keep their own errors.
func WithName(c Check, name string) Check {
	if r, ok := c.(renamer); ok {
		return r.withName(name)
	}
	return &namedCheck{Check: c, name: name}
}

type namedCheck struct {
	Check
	name string
}

func (n *namedCheck) Name() string { return n.name }

// FromSpec builds the check a release spec describes and returns it with
// its interval. render expands template variables such as {{port}} in the
// URL, address and command words; nil means no expansion. A zero interval
// becomes DefaultInterval and a zero timeout DefaultTimeout, capped at the
// interval so runs never overlap. Kind "unit" returns ErrUnitCheck.
func FromSpec(hc *rollwavev1.HealthCheck, render func(string) string) (Check, time.Duration, error) {
	if hc == nil {
		return nil, 0, errors.New("health check: spec is nil")
	}
	if render == nil {
		render = func(s string) string { return s }
	}
	name := hc.GetName()
	if name == "" {
		name = hc.GetKind()
	}
	interval := sattime.Millis(hc.GetIntervalMs())
	timeout := sattime.Millis(hc.GetTimeoutMs())
	switch {
	case interval < 0:
		return nil, 0, fmt.Errorf("health check %s: interval %s is negative", name, interval)
	case timeout < 0:
		return nil, 0, fmt.Errorf("health check %s: timeout %s is negative", name, timeout)
	}
	if interval == 0 {
		interval = DefaultInterval
	}
	if timeout == 0 {
		timeout = min(DefaultTimeout, interval)
	}

	var (
		c   Check
		err error
	)
	switch hc.GetKind() {
	case "http":
		var headers map[string]string
		for k, v := range hc.GetHeaders() {
			if headers == nil {
				headers = map[string]string{}
			}
			headers[k] = render(v)
		}
		var statuses []int
		for _, s := range hc.GetExpectStatuses() {
			statuses = append(statuses, int(s))
		}
		c, err = NewHTTPCheck(HTTPConfig{
			Name:           name,
			URL:            render(hc.GetUrl()),
			Method:         hc.GetMethod(),
			Headers:        headers,
			Body:           render(hc.GetBody()),
			ExpectStatus:   int(hc.GetExpectStatus()),
			ExpectStatuses: statuses,
			BodyMatch:      hc.GetBodyMatch(),
			BodyContains:   hc.GetBodyContains(),
			Timeout:        timeout,
		})
	case "grpc":
		c, err = NewGRPCCheck(GRPCConfig{
			Name:       name,
			Address:    render(hc.GetAddress()),
			Service:    hc.GetGrpcService(),
			TLS:        hc.GetTls(),
			ServerName: hc.GetTlsServerName(),
			CAFile:     hc.GetCaFile(),
			Timeout:    timeout,
		})
	case "tcp":
		c, err = NewTCPCheck(render(hc.GetAddress()), timeout)
	case "exec":
		argv := make([]string, len(hc.GetCommand()))
		for i, a := range hc.GetCommand() {
			argv[i] = render(a)
		}
		c, err = NewExecCheck(argv, timeout)
	case "unit":
		return nil, 0, fmt.Errorf("health check %s: %w", name, ErrUnitCheck)
	default:
		return nil, 0, fmt.Errorf("health check %s: unknown kind %q (want http, grpc, tcp, exec or unit)", name, hc.GetKind())
	}
	if err != nil {
		return nil, 0, err
	}
	return WithName(c, name), interval, nil
}
