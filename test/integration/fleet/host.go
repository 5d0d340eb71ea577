//go:build e2e

package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// hostPATH is the PATH commands run with inside a host.
const hostPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Host is one booted container.
type Host struct {
	// Name is hN; it is also the host name and machine name.
	Name string
	// Index is N.
	Index int
	// IP is the host's address on the bridge.
	IP string

	f     *Fleet
	netns string
	veth  string
	dir   string

	nspawn *exec.Cmd
	exited chan struct{} // closed once nspawn was reaped
	leader int           // the container's PID 1, as seen from the machine
}

// create makes the host's state files, network namespace and veth.
func (h *Host) create() error {
	for _, d := range []string{h.dir, h.upper(), h.work(), h.shareDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	files := map[string]string{
		"machine-id": randomHex(16) + "\n",
		"hostname":   h.Name + "\n",
		"hosts": fmt.Sprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n%s\tcoordinator\n",
			h.IP, h.Name, BridgeIP),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(h.dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return createNetns(h.netns, h.veth, h.IP)
}

// createNetns makes the network namespace netns linked to the bridge by
// veth (its peer is eth0 inside, at ip/24).
func createNetns(netns, veth, ip string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmds := [][]string{
		{"netns", "add", netns},
		{"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns},
		{"link", "set", veth, "master", Bridge, "up"},
		{"-n", netns, "link", "set", "lo", "up"},
		{"-n", netns, "addr", "add", ip + "/24", "dev", "eth0"},
		{"-n", netns, "link", "set", "eth0", "up"},
	}
	for _, c := range cmds {
		if out, err := run(ctx, 10*time.Second, "ip", c...); err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
	}
	return nil
}

func (h *Host) upper() string    { return filepath.Join(h.dir, "upper") }
func (h *Host) work() string     { return filepath.Join(h.dir, "work") }
func (h *Host) console() string  { return filepath.Join(h.dir, "console.log") }
func (h *Host) shareDir() string { return filepath.Join(h.f.share, h.Name) }

func (h *Host) cgroups() []string {
	var ds []string
	for _, root := range cgroupRoots {
		ds = append(ds, filepath.Join(root, cgroupGroup, h.Name))
	}
	return ds
}

// nspawnArgs is the recipe's command line, except for the root: the
// recipe's --volatile=overlay writes to a tmpfs that is gone when the host
// stops, and StopHost/StartHost must keep a host's files. So the shared
// rootfs is the lower layer of an overlay whose upper layer is the host's
// own directory on disk (--overlay=LOWER:UPPER:/).
func (h *Host) nspawnArgs() []string {
	return []string{
		"--quiet",
		"-D", h.f.rootfs,
		"--overlay=" + h.f.rootfs + ":" + h.upper() + ":/",
		"--register=no", "--keep-unit", "--link-journal=no",
		"-M", h.Name, "--hostname=" + h.Name,
		"--network-namespace-path=/run/netns/" + h.netns,
		"--bind-ro=" + filepath.Join(h.dir, "machine-id") + ":/etc/machine-id",
		"--bind-ro=" + filepath.Join(h.dir, "hostname") + ":/etc/hostname",
		"--bind-ro=" + filepath.Join(h.dir, "hosts") + ":/etc/hosts",
		"--bind-ro=" + h.f.share + ":" + SharePath,
		"--console=read-only",
		"-b",
	}
}

// boot starts nspawn from the host's own cgroups, finds the container's
// PID 1 and waits for systemd to finish booting.
func (h *Host) boot() error {
	for _, d := range h.cgroups() {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	console, err := os.OpenFile(h.console(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer console.Close()
	// The shell moves itself into the host's cgroups, then becomes nspawn.
	script := "echo $$ > " + h.cgroups()[0] + "/cgroup.procs && echo $$ > " + h.cgroups()[1] + "/cgroup.procs && exec systemd-nspawn \"$@\""
	cmd := exec.Command("sh", append([]string{"-c", script, "sh"}, h.nspawnArgs()...)...)
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = console, console
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	h.nspawn, h.exited, h.leader = cmd, exited, 0

	deadline := time.Now().Add(h.f.opts.BootTimeout)
	leader, err := h.findLeader(deadline)
	if err != nil {
		return err
	}
	h.leader = leader
	var last string
	for interval := 5 * time.Millisecond; ; {
		out, _, _ := h.exec(5*time.Second, nil, "systemctl", "is-system-running")
		last = strings.TrimSpace(out)
		if last == "running" || last == "degraded" {
			if last == "degraded" {
				failed, _, _ := h.exec(5*time.Second, nil, "systemctl", "--failed", "--no-legend")
				h.f.t.Logf("%s: booted degraded; failed units:\n%s", h.Name, failed)
			}
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("systemd-nspawn exited during boot (%v)", cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("systemctl is-system-running = %q after %s", last, h.f.opts.BootTimeout)
		}
		time.Sleep(interval)
		if interval < 100*time.Millisecond {
			interval *= 2
		}
	}
}

// findLeader finds the container's systemd: the child of nspawn whose
// NSpid ends in 1 (nspawn is a child subreaper).
func (h *Host) findLeader(deadline time.Time) (int, error) {
	nspawnPID := h.nspawn.Process.Pid
	for interval := 2 * time.Millisecond; ; {
		if pid := childInitPID(nspawnPID); pid > 0 {
			return pid, nil
		}
		select {
		case <-h.exited:
			return 0, fmt.Errorf("systemd-nspawn exited before the container started (%v)", h.nspawn.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			return 0, errors.New("container PID 1 not found")
		}
		time.Sleep(interval)
		if interval < 50*time.Millisecond {
			interval *= 2
		}
	}
}

func childInitPID(parent int) int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", parent))
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", parent, task.Name()))
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(s)
			status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(status), "\n") {
				if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
					f := strings.Fields(rest)
					if len(f) > 1 && f[len(f)-1] == "1" {
						return pid
					}
				}
			}
		}
	}
	return 0
}

// Running reports whether the host's container is up.
func (h *Host) Running() bool {
	if h.nspawn == nil {
		return false
	}
	select {
	case <-h.exited:
		return false
	default:
		return true
	}
}

// Leader is the container's PID 1 as seen from the machine.
func (h *Host) Leader() int { return h.leader }

// Root is the host's root directory as seen from the machine
// (/proc/LEADER/root), for reading files.
func (h *Host) Root() string { return fmt.Sprintf("/proc/%d/root", h.leader) }

// Exec runs argv inside the host (all of its namespaces, a clean
// environment), bounded by the fleet's exec timeout. The process is not
// supervised by the host's systemd; use systemd-run for that.
func (h *Host) Exec(argv ...string) (stdout, stderr string, err error) {
	return h.exec(h.f.opts.ExecTimeout, nil, argv...)
}

// ExecInput is Exec with stdin.
func (h *Host) ExecInput(stdin io.Reader, argv ...string) (stdout, stderr string, err error) {
	return h.exec(h.f.opts.ExecTimeout, stdin, argv...)
}

// ExecTimeout is Exec with its own timeout.
func (h *Host) ExecTimeout(timeout time.Duration, argv ...string) (stdout, stderr string, err error) {
	return h.exec(timeout, nil, argv...)
}

func (h *Host) exec(timeout time.Duration, stdin io.Reader, argv ...string) (string, string, error) {
	if h.leader == 0 || !h.Running() {
		return "", "", fmt.Errorf("%s is not running", h.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := append([]string{"-t", strconv.Itoa(h.leader), "-a", "--", "env", "-i", "PATH=" + hostPATH, "LANG=C.UTF-8"}, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Stdin = stdin
	cmd.WaitDelay = 2 * time.Second
	var out, errb limitedBuffer
	out.max, errb.max = 1<<20, 1<<20
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("%s: %s: timed out after %s", h.Name, strings.Join(argv, " "), timeout)
	} else if err != nil {
		err = fmt.Errorf("%s: %s: %w", h.Name, strings.Join(argv, " "), err)
	}
	return out.String(), errb.String(), err
}

// MustExec is Exec that fails the test on error.
func (h *Host) MustExec(argv ...string) string {
	h.f.t.Helper()
	out, errOut, err := h.Exec(argv...)
	if err != nil {
		h.f.t.Fatalf("%v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
	return out
}

// CopyIn copies the machine's file src to dst inside the host, through
// the share (SharePath/<host>/), keeping src's mode.
func (h *Host) CopyIn(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	staged := filepath.Join(h.shareDir(), filepath.Base(src))
	if err := copyFile(src, staged, fi.Mode().Perm()); err != nil {
		return err
	}
	inside := SharePath + "/" + h.Name + "/" + filepath.Base(src)
	if _, errOut, err := h.Exec("install", "-D", "-m", fmt.Sprintf("%o", fi.Mode().Perm()), inside, dst); err != nil {
		return fmt.Errorf("%w: %s", err, errOut)
	}
	return nil
}

// WriteFile writes body to path inside the host with the given mode,
// creating parent directories.
func (h *Host) WriteFile(path string, body []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(h.f.state, "write-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(body); err != nil {
		tmp.Close()
		return err
	}
	tmp.Close()
	if err := os.Chmod(tmp.Name(), mode); err != nil {
		return err
	}
	return h.CopyIn(tmp.Name(), path)
}

// ReadFile reads path inside the host.
func (h *Host) ReadFile(path string) ([]byte, error) {
	if !h.Running() {
		return nil, fmt.Errorf("%s is not running", h.Name)
	}
	return os.ReadFile(filepath.Join(h.Root(), path))
}

// Cut takes the host's link down: packets to and from it are dropped
// (TCP connects time out), systemd inside keeps running.
func (h *Host) Cut() error { return h.link("down") }

// Heal brings the host's link back up.
func (h *Host) Heal() error { return h.link("up") }

func (h *Host) link(state string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := run(ctx, 10*time.Second, "ip", "link", "set", h.veth, state); err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// Stop halts the host in order (SIGRTMIN+3 to its systemd, as `halt`
// does) and waits for nspawn to exit. Its files, network namespace and
// address stay for Start.
func (h *Host) Stop() error { return h.halt(60 * time.Second) }

// Start boots a stopped host again, with the files it had.
func (h *Host) Start() error {
	if h.Running() {
		return fmt.Errorf("%s is already running", h.Name)
	}
	if err := h.boot(); err != nil {
		return fmt.Errorf("%s: boot: %w\nconsole:\n%s", h.Name, err, h.consoleTail(30))
	}
	return nil
}

// halt stops the container in order, killing what is left after timeout,
// and removes its cgroups.
func (h *Host) halt(timeout time.Duration) error {
	if h.nspawn == nil {
		return nil
	}
	var errs []error
	if h.Running() {
		// glibc's SIGRTMIN is 34: systemd's "halt" signal is 37.
		if h.leader > 0 {
			syscall.Kill(h.leader, syscall.Signal(34+3))
		} else {
			h.nspawn.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-h.exited:
		case <-time.After(timeout):
			errs = append(errs, fmt.Errorf("%s did not halt within %s; killing it", h.Name, timeout))
			for _, d := range h.cgroups() {
				killCgroup(d)
			}
			h.nspawn.Process.Kill()
			<-h.exited
		}
	}
	for _, d := range h.cgroups() {
		if err := waitCgroupEmpty(d, 10*time.Second); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := removeCgroup(d); err != nil {
			errs = append(errs, err)
		}
	}
	h.leader = 0
	return errors.Join(errs...)
}

// consoleTail returns the end of the host's console log.
func (h *Host) consoleTail(lines int) string {
	b, _ := os.ReadFile(h.console())
	return tail(string(b), lines)
}

// Console returns the host's console log (all boots).
func (h *Host) Console() string {
	b, _ := os.ReadFile(h.console())
	return string(b)
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// MustExecOK runs argv and returns stdout whatever the exit status (for
// commands like systemctl is-enabled that report through it); it fails
// the test only when the command could not run at all.
func (h *Host) MustExecOK(argv ...string) string {
	h.f.t.Helper()
	out, errOut, err := h.Exec(argv...)
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		h.f.t.Fatalf("%v\nstderr: %s", err, errOut)
	}
	return out
}
