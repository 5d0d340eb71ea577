//go:build e2e

package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Agent install paths: what the package ships and what the harness writes.
const (
	AgentUnit       = "rollwave-agent.service"
	AgentConfigPath = "/etc/rollwave/agent.hcl"
	AgentDataDir    = "/var/lib/rollwave-agent"
	// AgentGossipPort is the agent's default gossip port.
	AgentGossipPort = 7423
)

// ErrNoPackage is returned (wrapped) by AgentDeb when no agent .deb exists
// and `make packages` built none.
var ErrNoPackage = errors.New("no rollwave-agent .deb")

// AgentDeb finds the agent package: $ROLLWAVE_AGENT_DEB, else the newest
// dist/rollwave-agent_*_amd64.deb, else it runs `make packages` and looks
// again. It is looked up once per fleet.
func (f *Fleet) AgentDeb() (string, error) {
	f.debOnce.Do(func() { f.deb, f.debErr = findDeb(f.repo) })
	return f.deb, f.debErr
}

func findDeb(repo string) (string, error) {
	if p := os.Getenv("ROLLWAVE_AGENT_DEB"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("ROLLWAVE_AGENT_DEB: %w", err)
		}
		return filepath.Abs(p)
	}
	newest := func() string {
		ms, _ := filepath.Glob(filepath.Join(repo, "dist", "rollwave-agent_*_amd64.deb"))
		sort.Slice(ms, func(i, j int) bool { return modTime(ms[i]).After(modTime(ms[j])) })
		if len(ms) == 0 {
			return ""
		}
		return ms[0]
	}
	if p := newest(); p != "" {
		return p, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "packages")
	cmd.Dir = repo
	out, err := cmd.CombinedOutput()
	if p := newest(); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("%w in %s/dist, and `make packages` built none (err %v):\n%s",
		ErrNoPackage, repo, err, tail(string(out), 10))
}

func modTime(p string) time.Time {
	fi, err := os.Stat(p)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// AgentOptions are the settings written into a host's agent.hcl.
type AgentOptions struct {
	// Labels are the host's labels.
	Labels map[string]string
	// HeartbeatInterval, when set, overrides the agent's default.
	HeartbeatInterval time.Duration
	// LogLevel, when set, overrides info.
	LogLevel string
	// Region, when set, is the host's region (else the agent's default).
	Region string
}

// InstallAgent installs the agent package on h with dpkg -i, writes
// /etc/rollwave/agent.hcl (node_name = the host, the cell, the
// coordinators' gossip addresses, unit_driver = "systemd"), restarts
// rollwave-agent and waits until systemd reports it active. The
// coordinators must be started first.
func (f *Fleet) InstallAgent(h *Host, cell string, opts AgentOptions) error {
	if f.coords == nil {
		return errors.New("InstallAgent: start the coordinators first")
	}
	deb, err := f.AgentDeb()
	if err != nil {
		return err
	}
	if err := h.InstallDeb(deb); err != nil {
		return err
	}
	// The package ships a placeholder agent.hcl (a conffile, 0640) and
	// enables the unit without starting it; an operator edits the config,
	// then starts the agent. Restart, not start, so this also applies a
	// new config to a running agent.
	cfg := AgentConfig(h.Name, cell, f.coords.GossipAddrs(), opts)
	if p := f.coords.pki; p != nil {
		if err := p.installAgentTLS(h); err != nil {
			return err
		}
		cfg += p.agentConfigBlock(opts.Region != "")
	}
	if err := h.WriteFile(AgentConfigPath, []byte(cfg), 0o640); err != nil {
		return fmt.Errorf("%s: write %s: %w", h.Name, AgentConfigPath, err)
	}
	if _, errOut, err := h.Exec("systemctl", "restart", AgentUnit); err != nil {
		return fmt.Errorf("%w: %s\n%s", err, errOut, h.Journal(AgentUnit, 30))
	}
	return h.WaitActive(AgentUnit, 60*time.Second)
}

// InstallDeb copies a package into h and installs it with dpkg -i, as an
// operator would (non-interactive, keeping changed config files).
func (h *Host) InstallDeb(deb string) error {
	staged := filepath.Join(h.shareDir(), filepath.Base(deb))
	if err := copyFile(deb, staged, 0o644); err != nil {
		return err
	}
	inside := SharePath + "/" + h.Name + "/" + filepath.Base(deb)
	out, errOut, err := h.ExecTimeout(5*time.Minute, "env", "DEBIAN_FRONTEND=noninteractive",
		"dpkg", "--force-confdef", "--force-confold", "-i", inside)
	if err != nil {
		return fmt.Errorf("%s: dpkg -i %s: %w\n%s%s", h.Name, filepath.Base(deb), err, out, errOut)
	}
	return nil
}

// AgentConfig renders an agent.hcl.
func AgentConfig(node, cell string, join []string, opts AgentOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node_name   = %q\n", node)
	fmt.Fprintf(&b, "cell        = %q\n", cell)
	quoted := make([]string, len(join))
	for i, j := range join {
		quoted[i] = strconv.Quote(j)
	}
	fmt.Fprintf(&b, "join        = [%s]\n", strings.Join(quoted, ", "))
	fmt.Fprintf(&b, "unit_driver = %q\n", "systemd")
	if opts.Region != "" {
		fmt.Fprintf(&b, "region      = %q\n", opts.Region)
	}
	if opts.HeartbeatInterval > 0 {
		fmt.Fprintf(&b, "heartbeat_interval = %q\n", opts.HeartbeatInterval.String())
	}
	if opts.LogLevel != "" {
		fmt.Fprintf(&b, "log_level   = %q\n", opts.LogLevel)
	}
	if len(opts.Labels) > 0 {
		keys := make([]string, 0, len(opts.Labels))
		for k := range opts.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("labels = {\n")
		for _, k := range keys {
			fmt.Fprintf(&b, "  %q = %q\n", k, opts.Labels[k])
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// UnitProps reads unit properties with `systemctl show -p …`.
func (h *Host) UnitProps(unit string, props ...string) (map[string]string, error) {
	out, errOut, err := h.ExecTimeout(15*time.Second, "systemctl", "show", "-p", strings.Join(props, ","), unit)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, errOut)
	}
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m, nil
}

// IsActive returns `systemctl is-active UNIT` (active, inactive, failed,
// activating…).
func (h *Host) IsActive(unit string) string {
	out, _, _ := h.ExecTimeout(15*time.Second, "systemctl", "is-active", unit)
	return strings.TrimSpace(out)
}

// WaitActive waits until unit is active, failing fast if it failed.
func (h *Host) WaitActive(unit string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for interval := 10 * time.Millisecond; ; {
		last = h.IsActive(unit)
		if last == "active" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s is %q after %s\n%s", h.Name, unit, last, timeout, h.Journal(unit, 40))
		}
		time.Sleep(interval)
		if interval < 200*time.Millisecond {
			interval *= 2
		}
	}
}

// Journal returns the last lines of a unit's journal on h.
func (h *Host) Journal(unit string, lines int) string {
	out, errOut, _ := h.ExecTimeout(15*time.Second, "journalctl", "--no-pager", "-o", "short-precise", "-n", strconv.Itoa(lines), "-u", unit)
	return fmt.Sprintf("--- %s journal of %s:\n%s%s", h.Name, unit, out, errOut)
}
