package slot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
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
// balancer) to switch traffic. {{slot}} and {{port}} (the slot that gets
// the traffic), {{weight}} (its share of new traffic, 0-100; 100 for a
// plain switch) and {{old_slot}}/{{old_port}} (the slot that keeps the
// rest during a weighted step; empty and 0 otherwise) expand in its
// arguments, and the hook gets them as ROLLWAVE_SLOT, ROLLWAVE_PORT,
// ROLLWAVE_WEIGHT, ROLLWAVE_OLD_SLOT and ROLLWAVE_OLD_PORT. It must exit 0
// within the timeout.
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
// arguments, not split again; only the placeholders above may appear.
func NewExecSwitch(argv []string) (*ExecSwitch, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, fmt.Errorf("exec switch: traffic.command is empty")
	}
	for _, a := range argv {
		if _, err := expandHook(a, hookVars{slot: Blue, port: 1, weight: 100}); err != nil {
			return nil, fmt.Errorf("exec switch: %w", err)
		}
	}
	return &ExecSwitch{argv: append([]string(nil), argv...), timeout: DefaultExecSwitchTimeout}, nil
}

// hookVars are what a traffic hook's placeholders expand to.
type hookVars struct {
	slot    Name
	port    int
	weight  int
	oldSlot Name
	oldPort int
}

func (v hookVars) pairs() []string {
	return []string{"slot", string(v.slot), "port", strconv.Itoa(v.port), "weight", strconv.Itoa(v.weight),
		"old_slot", string(v.oldSlot), "old_port", strconv.Itoa(v.oldPort)}
}

func expandHook(s string, v hookVars) (string, error) {
	var pairs []string
	kv := v.pairs()
	for i := 0; i < len(kv); i += 2 {
		pairs = append(pairs, "{{"+kv[i]+"}}", kv[i+1], "{{ "+kv[i]+" }}", kv[i+1])
	}
	out := strings.NewReplacer(pairs...).Replace(s)
	if strings.Contains(out, "{{") {
		return "", fmt.Errorf("%w: only {{slot}}, {{port}}, {{weight}}, {{old_slot}} and {{old_port}} may appear in a traffic hook: %q", ErrTemplate, s)
	}
	return out, nil
}

// Point implements Switch: it runs the hook with weight 100 and requires
// exit status 0.
func (s *ExecSwitch) Point(ctx context.Context, slot Name, port int) error {
	return s.run(ctx, hookVars{slot: slot, port: port, weight: 100})
}

// PointWeighted implements WeightedSwitch: the hook gets the weight and
// both slots; 0 and 100 are passed on as they are (the balancer is told
// the whole picture every time).
func (s *ExecSwitch) PointWeighted(ctx context.Context, slot Name, port int, w Weighting) error {
	if err := w.Validate(); err != nil {
		return err
	}
	return s.run(ctx, hookVars{slot: slot, port: port, weight: w.Weight, oldSlot: w.Old, oldPort: w.OldPort})
}

func (s *ExecSwitch) run(ctx context.Context, v hookVars) error {
	args := make([]string, len(s.argv))
	for i, a := range s.argv {
		var err error
		if args[i], err = expandHook(a, v); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.WaitDelay = time.Second
	cmd.Env = os.Environ()
	kv := v.pairs()
	for i := 0; i < len(kv); i += 2 {
		cmd.Env = append(cmd.Env, "ROLLWAVE_"+strings.ToUpper(kv[i])+"="+kv[i+1])
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if len(msg) > 512 {
			msg = msg[len(msg)-512:]
		}
		return fmt.Errorf("%w: hook %q: %v: %s", ErrSwitch, args, err, msg)
	}
	cur := v.slot
	if v.weight == 0 {
		cur = v.oldSlot
	}
	s.mu.Lock()
	s.slot, s.set = cur, true
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
