//go:build e2e

package fleet

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Suite is the Debian release the hosts run.
const Suite = "bookworm"

// rootfsPackages are debootstrap's --include list. curl and
// ca-certificates let tests query a host's traffic port from inside it;
// openssh-server and python3 are what Ansible needs on a managed host
// (the peer comparison in test/bench/ansible), as on real servers.
var rootfsPackages = []string{
	"systemd", "systemd-sysv", "dbus", "iproute2", "iputils-ping", "ca-certificates", "curl",
	"openssh-server", "python3",
}

// maskedUnits would prompt, race the test or wake at random inside a
// test host; each is masked (a symlink to /dev/null).
var maskedUnits = []string{
	"systemd-firstboot.service", "systemd-machine-id-commit.service",
	"console-getty.service", "getty@tty1.service",
	"apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer",
	"e2scrub_all.timer", "e2scrub_reap.service", "fstrim.timer",
}

// DefaultCacheDir holds the debootstrap'd rootfs between runs. Override
// with ROLLWAVE_E2E_CACHE.
const DefaultCacheDir = "/var/cache/rollwave-e2e"

func cacheDir() string {
	if d := os.Getenv("ROLLWAVE_E2E_CACHE"); d != "" {
		return d
	}
	return DefaultCacheDir
}

// rootfsRecipe identifies what a cached rootfs was built from; a cache
// built from another recipe is rebuilt.
func rootfsRecipe(mirror string) string {
	return fmt.Sprintf("suite=%s variant=minbase include=%s mirror=%s masked=%s\n",
		Suite, strings.Join(rootfsPackages, ","), mirror, strings.Join(maskedUnits, ","))
}

// EnsureRootfs returns the cached Debian rootfs, building it with
// debootstrap first when it is missing or was built from another recipe.
// built reports whether it was built by this call. The tree is only ever
// a read-only lower layer: hosts write to their own overlay.
func EnsureRootfs(ctx context.Context, logf func(string, ...any)) (dir string, built bool, err error) {
	base := cacheDir()
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", false, err
	}
	dir = filepath.Join(base, "rootfs-"+Suite)
	marker := dir + ".complete"

	// One builder at a time: concurrent test binaries wait here.
	lock, err := os.OpenFile(filepath.Join(base, "rootfs.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", false, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", false, fmt.Errorf("lock rootfs cache: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	mirror, err := debianMirror()
	if err != nil {
		return "", false, err
	}
	recipe := rootfsRecipe(mirror)
	if got, err := os.ReadFile(marker); err == nil && string(got) == recipe {
		if _, err := os.Stat(filepath.Join(dir, "lib/systemd/systemd")); err == nil {
			return dir, false, nil
		}
	}
	logf("building %s rootfs in %s from %s (once; cached)", Suite, dir, mirror)
	os.Remove(marker)
	tmp := dir + ".tmp"
	for _, d := range []string{tmp, dir} {
		if err := os.RemoveAll(d); err != nil {
			return "", false, err
		}
	}
	args := []string{"--variant=minbase", "--include=" + strings.Join(rootfsPackages, ","), Suite, tmp, mirror}
	if out, err := run(ctx, 15*time.Minute, "debootstrap", args...); err != nil {
		return "", false, fmt.Errorf("debootstrap: %w\n%s", err, tail(out, 40))
	}
	if err := fixRootfs(tmp); err != nil {
		return "", false, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", false, err
	}
	if err := os.WriteFile(marker, []byte(recipe), 0o644); err != nil {
		return "", false, err
	}
	return dir, true, nil
}

// fixRootfs applies the recipe's fixups: an empty machine-id (each host
// binds its own over it), no hostname, masked units, no package caches.
func fixRootfs(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, "etc/machine-id"), nil, 0o444); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, "etc/hostname")); err != nil && !os.IsNotExist(err) {
		return err
	}
	for _, u := range maskedUnits {
		p := filepath.Join(dir, "etc/systemd/system", u)
		os.Remove(p)
		if err := os.Symlink("/dev/null", p); err != nil {
			return fmt.Errorf("mask %s: %w", u, err)
		}
	}
	for _, glob := range []string{"var/cache/apt/archives/*.deb", "var/lib/apt/lists/*"} {
		matches, _ := filepath.Glob(filepath.Join(dir, glob))
		for _, m := range matches {
			if fi, err := os.Lstat(m); err == nil && fi.Mode().IsRegular() {
				os.Remove(m)
			}
		}
	}
	return nil
}

// debianMirror is the first URIs: line in the machine's deb822 sources
// (the main archive, listed before the security one).
func debianMirror() (string, error) {
	const src = "/etc/apt/sources.list.d/debian.sources"
	f, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("find the Debian mirror: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "URIs:"); ok {
			if fields := strings.Fields(rest); len(fields) > 0 {
				return fields[0], nil
			}
		}
	}
	return "", fmt.Errorf("no URIs: line in %s", src)
}

// run runs a command on the machine (not in a host), bounded by timeout,
// and returns its combined output.
func run(ctx context.Context, timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return string(out), nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Tail returns the last n lines of s (for tests' failure messages).
func Tail(s string, n int) string { return tail(s, n) }
