//go:build e2e

package fleet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SSHUnit is the OpenSSH server's unit in the hosts (Debian names it ssh).
const SSHUnit = "ssh.service"

// SSHKey returns the fleet's SSH identity on the machine (an ed25519 key
// made on first use in the state dir, gone with the fleet) and its public
// half.
func (f *Fleet) SSHKey() (private, public string, err error) {
	f.sshOnce.Do(func() {
		dir := filepath.Join(f.state, "ssh")
		if f.sshErr = os.MkdirAll(dir, 0o700); f.sshErr != nil {
			return
		}
		f.sshKey = filepath.Join(dir, "id_ed25519")
		ctx := context.Background()
		if out, err := run(ctx, 30*time.Second, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rollwave-e2e", "-f", f.sshKey); err != nil {
			f.sshErr = fmt.Errorf("ssh-keygen: %w: %s", err, out)
		}
	})
	if f.sshErr != nil {
		return "", "", f.sshErr
	}
	pub, err := os.ReadFile(f.sshKey + ".pub")
	return f.sshKey, string(pub), err
}

// EnableSSH lets the fleet's SSH key log in to h as root (the key in
// /root/.ssh/authorized_keys; sshd's default allows root by key only) and
// waits until sshd runs and accepts connections on h's address.
func (f *Fleet) EnableSSH(h *Host) error {
	_, pub, err := f.SSHKey()
	if err != nil {
		return err
	}
	if _, errOut, err := h.Exec("install", "-d", "-m", "0700", "/root/.ssh"); err != nil {
		return fmt.Errorf("%w: %s", err, errOut)
	}
	if err := h.WriteFile("/root/.ssh/authorized_keys", []byte(pub), 0o600); err != nil {
		return err
	}
	if _, errOut, err := h.Exec("systemctl", "start", SSHUnit); err != nil {
		return fmt.Errorf("%w: %s\n%s", err, errOut, h.Journal(SSHUnit, 20))
	}
	if err := h.WaitActive(SSHUnit, 30*time.Second); err != nil {
		return err
	}
	// One login from the machine, with a deadline: proves the key, the
	// route and sshd end to end before anything is timed over SSH.
	deadline := time.Now().Add(30 * time.Second)
	for interval := 50 * time.Millisecond; ; {
		out, err := f.SSH(h, "true")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: ssh root@%s: %w: %s", h.Name, h.IP, err, strings.TrimSpace(out))
		}
		time.Sleep(interval)
		if interval < time.Second {
			interval *= 2
		}
	}
}

// SSHOptions are the ssh client options for the fleet's hosts: the
// fleet's key, no known_hosts (every host is new each run), bounded
// connect time, never a prompt.
func (f *Fleet) SSHOptions() []string {
	return []string{
		"-i", f.sshKey,
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10",
	}
}

// SSH runs a command on h over SSH as root from the machine and returns
// its combined output.
func (f *Fleet) SSH(h *Host, command string) (string, error) {
	if f.sshKey == "" {
		return "", fmt.Errorf("SSH: call EnableSSH first")
	}
	args := append(f.SSHOptions(), "root@"+h.IP, command)
	return run(context.Background(), 30*time.Second, "ssh", args...)
}
