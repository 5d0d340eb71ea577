package slot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Switch points an app's public traffic at one slot.
type Switch interface {
	// Point sends new traffic to slot, listening on 127.0.0.1:port. It
	// returns once the switch is in effect.
	Point(ctx context.Context, slot Name, port int) error
	// Current reports the slot traffic goes to; false before the first
	// successful Point.
	Current() (Name, bool)
	// Close releases the switch (the proxy stops listening).
	Close() error
}

// ErrSwitch is returned (wrapped) when traffic could not be switched.
var ErrSwitch = errors.New("traffic switch failed")

// ---------------------------------------------------------------- none

// NoneSwitch is the switch for traffic.mode = "none": something outside
// rollwave routes traffic (for instance by the slot ports); it only
// remembers where it was told traffic goes.
type NoneSwitch struct {
	mu   sync.Mutex
	slot Name
	set  bool
}

// NewNoneSwitch returns a switch that switches nothing.
func NewNoneSwitch() *NoneSwitch { return &NoneSwitch{} }

// Point implements Switch.
func (s *NoneSwitch) Point(_ context.Context, slot Name, _ int) error {
	s.mu.Lock()
	s.slot, s.set = slot, true
	s.mu.Unlock()
	return nil
}

// Current implements Switch.
func (s *NoneSwitch) Current() (Name, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.slot, s.set
}

// Close implements Switch.
func (s *NoneSwitch) Close() error { return nil }

// ---------------------------------------------------------------- exec

// ExecSwitch runs a hook (say, a script that updates an external load
// balancer) to switch traffic. {{slot}} and {{port}} in its arguments
// expand; it must exit 0 within the timeout.
type ExecSwitch struct {
	argv    []string
	timeout time.Duration

	mu   sync.Mutex
	slot Name
	set  bool
}

// DefaultExecSwitchTimeout bounds one hook run.
const DefaultExecSwitchTimeout = 30 * time.Second

// NewExecSwitch returns a hook switch. argv is the command and its
// arguments, not split again; only {{slot}} and {{port}} may appear.
func NewExecSwitch(argv []string) (*ExecSwitch, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, fmt.Errorf("exec switch: traffic.command is empty")
	}
	for _, a := range argv {
		if _, err := expandHook(a, Blue, 1); err != nil {
			return nil, fmt.Errorf("exec switch: %w", err)
		}
	}
	return &ExecSwitch{argv: append([]string(nil), argv...), timeout: DefaultExecSwitchTimeout}, nil
}

func expandHook(s string, slot Name, port int) (string, error) {
	r := strings.NewReplacer("{{slot}}", string(slot), "{{ slot }}", string(slot),
		"{{port}}", strconv.Itoa(port), "{{ port }}", strconv.Itoa(port))
	out := r.Replace(s)
	if strings.Contains(out, "{{") {
		return "", fmt.Errorf("%w: only {{slot}} and {{port}} may appear in a traffic hook: %q", ErrTemplate, s)
	}
	return out, nil
}

// Point implements Switch: it runs the hook and requires exit status 0.
func (s *ExecSwitch) Point(ctx context.Context, slot Name, port int) error {
	args := make([]string, len(s.argv))
	for i, a := range s.argv {
		var err error
		if args[i], err = expandHook(a, slot, port); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if len(msg) > 512 {
			msg = msg[len(msg)-512:]
		}
		return fmt.Errorf("%w: hook %q: %v: %s", ErrSwitch, args, err, msg)
	}
	s.mu.Lock()
	s.slot, s.set = slot, true
	s.mu.Unlock()
	return nil
}

// Current implements Switch.
func (s *ExecSwitch) Current() (Name, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.slot, s.set
}

// Close implements Switch.
func (s *ExecSwitch) Close() error { return nil }

// newDefaultSwitch builds the switch a traffic spec asks for.
func newDefaultSwitch(logger *slog.Logger) func(app string, t *rollwavev1.TrafficSpec) (Switch, error) {
	return func(app string, t *rollwavev1.TrafficSpec) (Switch, error) {
		switch t.GetMode() {
		case "", "none":
			return NewNoneSwitch(), nil
		case "exec":
			return NewExecSwitch(t.GetCommand())
		case "proxy":
			if t.GetListen() == "" {
				return nil, fmt.Errorf("traffic.listen is required for mode proxy")
			}
			return NewProxy(t.GetListen(), logger.With("app", app), WithProtocol(t.GetProtocol()))
		}
		return nil, fmt.Errorf("traffic.mode %q: want proxy, exec or none", t.GetMode())
	}
}
