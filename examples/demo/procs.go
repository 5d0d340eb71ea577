package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one long-running child: a coordinator or an agent. Each runs in
// its own process group so a Ctrl-C in the terminal reaches only the demo,
// which then stops the children in order; on Linux each also gets
// Pdeathsig, so even a kill -9 of the demo takes them down.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string

	done     chan struct{} // closed when the process has exited
	err      error         // Wait's result, valid after done
	stopping bool          // set under supervisor.mu before we signal it
}

// supervisor starts children and stops every one of them, whatever
// happens: normal end, error, or signal.
type supervisor struct {
	mu     sync.Mutex
	procs  []*proc
	logDir string
	// exited gets every child that exits without having been told to stop.
	exited chan *proc
}

func newSupervisor(logDir string) *supervisor {
	return &supervisor{logDir: logDir, exited: make(chan *proc, 64)}
}

// start runs bin with args, output to logDir/name.log.
func (s *supervisor) start(name, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(s.logDir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = childAttr()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	s.procs = append(s.procs, p)
	go func() {
		p.err = cmd.Wait()
		close(p.done)
		s.mu.Lock()
		stopping := p.stopping
		s.mu.Unlock()
		if !stopping {
			s.exited <- p
		}
	}()
	return p, nil
}

// stop signals the process groups of ps with SIGTERM, waits up to grace
// for them all to exit, sends the ones left a second SIGTERM (rollwave's
// servers and agents stop at once on a second signal), waits up to grace
// again, then SIGKILLs the groups still there. It returns the names of
// the processes that had to be killed.
func (s *supervisor) stop(ps []*proc, grace time.Duration) []string {
	s.mu.Lock()
	for _, p := range ps {
		p.stopping = true
	}
	s.mu.Unlock()
	for _, p := range ps {
		signalGroup(p.cmd.Process.Pid, syscall.SIGTERM)
	}
	var late []string
	escalate := func(sig syscall.Signal) {
		deadline := time.NewTimer(grace)
		defer deadline.Stop()
		for _, p := range ps {
			select {
			case <-p.done:
				continue
			case <-deadline.C:
				deadline.Reset(0) // grace is over for every later one too
			}
			select {
			case <-p.done:
			default:
				if sig == syscall.SIGKILL {
					late = append(late, p.name)
				}
				signalGroup(p.cmd.Process.Pid, sig)
			}
		}
	}
	escalate(syscall.SIGTERM)
	escalate(syscall.SIGKILL)
	for _, p := range ps {
		<-p.done
		// The group's leader is gone; anything it forked into its group
		// goes too.
		signalGroup(p.cmd.Process.Pid, syscall.SIGKILL)
	}
	return late
}

// stopAll stops every child: the agents first, all together (they stop
// their app slots on the way out), then the coordinators one by one.
func (s *supervisor) stopAll(grace time.Duration) (stopped int, killed []string) {
	s.mu.Lock()
	all := append([]*proc(nil), s.procs...)
	s.mu.Unlock()
	var agents, servers []*proc
	for _, p := range all {
		if strings.HasPrefix(p.name, "agent-") {
			agents = append(agents, p)
		} else {
			servers = append(servers, p)
		}
	}
	killed = append(killed, s.stop(agents, grace)...)
	// One server at a time, newest first: each leaves gracefully while
	// the others still form a quorum to take it out of the raft
	// configuration. Stopped all at once, the last leader can hang in its
	// leave and shutdown until it is killed.
	for i := len(servers) - 1; i >= 0; i-- {
		killed = append(killed, s.stop(servers[i:i+1], grace)...)
	}
	return len(all), killed
}

func signalGroup(pid int, sig syscall.Signal) {
	// The child is its group's leader (Setpgid), so -pid is the group.
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = syscall.Kill(pid, sig)
	}
}

// runCmd runs a short-lived command (the CLI) in its own process group,
// killing the group when ctx ends.
func runCmd(ctx context.Context, cmd *exec.Cmd) error {
	cmd.SysProcAttr = childAttr()
	cmd.Cancel = func() error {
		signalGroup(cmd.Process.Pid, syscall.SIGKILL)
		return nil
	}
	cmd.WaitDelay = 2 * time.Second
	return cmd.Run()
}

// tail returns the last n lines of a file.
func tail(path string, n int) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return []string{fmt.Sprintf("(cannot read %s: %v)", path, err)}
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
