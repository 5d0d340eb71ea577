//go:build linux

package slot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// execHook runs one hook and returns the end of its output. It runs in
// its own process group, as c.user when the agent is root (as the agent's
// own user otherwise), and is killed with its whole group at its timeout
// or when ctx ends; processes it left behind are killed when it exits.
func execHook(ctx context.Context, c hookCmd) (string, error) {
	hctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cmd := exec.CommandContext(hctx, c.argv[0], c.argv[1:]...)
	cmd.Dir = c.dir
	cmd.Env = c.env
	out := &tailBuffer{max: hookOutputMax}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if c.user != "" && os.Geteuid() == 0 {
		cred, err := credential(c.user)
		if err != nil {
			return "", err
		}
		cmd.SysProcAttr.Credential = cred
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A grandchild holding the output pipe must not hold the hook open.
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if cmd.Process != nil {
		// Whatever the hook started in its group does not outlive it.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil && errors.Is(hctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		err = fmt.Errorf("killed at its timeout %s", c.timeout)
	}
	return out.String(), err
}
