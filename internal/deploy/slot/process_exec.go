//go:build linux

package slot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// command builds an exec.Cmd for one of the unit's commands.
func (d *ProcessDriver) command(p *proc, u Unit, argv []string, logw io.Writer) (*exec.Cmd, error) {
	if len(argv) == 0 {
		return nil, errors.New("empty command")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = u.WorkingDirectory
	if cmd.Dir == "" {
		cmd.Dir = u.Dir
	}
	cmd.Env = processEnv(u)
	cmd.Stdout, cmd.Stderr = logw, logw
	// A grandchild holding the output pipe must not block Wait forever.
	cmd.WaitDelay = 2 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if u.User != "" {
		if os.Geteuid() != 0 {
			if p.unprivWarned.CompareAndSwap(false, true) {
				d.log.Warn("agent is not root: running slot as the agent's user, not the unit's",
					"app", u.App, "slot", u.Slot, "user", u.User)
			}
		} else {
			cred, err := credential(u.User)
			if err != nil {
				return nil, err
			}
			cmd.SysProcAttr.Credential = cred
		}
	}
	return cmd, nil
}

func credential(name string) (*syscall.Credential, error) {
	usr, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(usr.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(usr.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %q: non-numeric uid/gid %s/%s", name, usr.Uid, usr.Gid)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if gids, err := usr.GroupIds(); err == nil {
		for _, g := range gids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				cred.Groups = append(cred.Groups, uint32(n))
			}
		}
	}
	return cred, nil
}

// processEnv is a small, explicit environment (like systemd's): PATH from
// the agent plus the unit's variables. The agent's own environment does
// not leak into apps.
func processEnv(u Unit) []string {
	pathEnv := os.Getenv("PATH")
	if pathEnv == "" {
		pathEnv = "/usr/local/bin:/usr/bin:/bin"
	}
	env := []string{"PATH=" + pathEnv}
	keys := make([]string, 0, len(u.Environment))
	for k := range u.Environment {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+u.Environment[k])
	}
	return env
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// logTail returns the end of a slot's log, for error messages.
func logTail(dir string) string {
	f, err := os.Open(filepath.Join(dir, "slot.log"))
	if err != nil {
		return ""
	}
	defer f.Close()
	const n = 512
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	return "; log tail: " + s
}
