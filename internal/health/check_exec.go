package health

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// maxExecOutput is how much of a check command's combined output is kept
// for the error message: the tail, where the reason usually is.
const maxExecOutput = 4 << 10

type execCheck struct {
	name    string
	argv    []string
	timeout time.Duration
}

// NewExecCheck returns a check that runs argv (no shell) and passes when it
// exits 0 within timeout (0 means DefaultTimeout). The command runs in its
// own process group; on timeout or cancellation the whole group is killed,
// so a shell script's children do not outlive the check. Up to the last
// 4 KiB of combined stdout and stderr go into the error. The check is named
// after argv[0]; use WithName to rename it.
func NewExecCheck(argv []string, timeout time.Duration) (Check, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, errors.New("exec check: command is empty")
	}
	if timeout < 0 {
		return nil, fmt.Errorf("exec check %s: timeout %s is negative", argv[0], timeout)
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	return &execCheck{name: argv[0], argv: append([]string(nil), argv...), timeout: timeout}, nil
}

func (c *execCheck) Name() string { return c.name }

func (c *execCheck) withName(name string) Check { cp := *c; cp.name = name; return &cp }

func (c *execCheck) Run(ctx context.Context) error {
	runCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	var out tailBuffer
	cmd := exec.CommandContext(runCtx, c.argv[0], c.argv[1:]...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	setProcessGroup(cmd)
	// A grandchild that escaped the group kill could hold the output pipe
	// open forever; WaitDelay bounds how long Wait waits for it.
	cmd.WaitDelay = time.Second

	err := cmd.Run()
	if err == nil {
		return nil
	}
	output := strings.TrimSpace(out.String())
	suffix := ""
	if output != "" {
		suffix = ": " + output
	}
	switch {
	case errors.Is(runCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		return fmt.Errorf("exec check %s: %s: timed out after %s, process group killed%s", c.name, c.command(), c.timeout, suffix)
	case ctx.Err() != nil:
		return fmt.Errorf("exec check %s: %s: %w", c.name, c.command(), ctx.Err())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("exec check %s: %s: %s%s", c.name, c.command(), ee.ProcessState, suffix)
	}
	return fmt.Errorf("exec check %s: %w", c.name, err)
}

func (c *execCheck) command() string { return strings.Join(c.argv, " ") }

// tailBuffer keeps the last maxExecOutput bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= maxExecOutput {
		t.buf = append(t.buf[:0], p[len(p)-maxExecOutput:]...)
		return n, nil
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - maxExecOutput; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return n, nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
