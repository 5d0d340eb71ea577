//go:build e2e

package fleet

import (
	"os"
	"os/exec"
	"testing"
)

// requireRoot skips t unless the machine can run real-host tests: root,
// and systemd-nspawn, debootstrap, nsenter and ip installed.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("e2e: real-host tests need root (they create network namespaces, a bridge and systemd-nspawn containers); run `sudo make e2e`")
	}
	for _, tool := range []string{"systemd-nspawn", "debootstrap", "nsenter", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("e2e: %s not found; install it with `apt-get install -y systemd-container debootstrap iproute2 util-linux`", tool)
		}
	}
}
