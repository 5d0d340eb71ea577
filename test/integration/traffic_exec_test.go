//go:build e2e

package integration

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"github.com/rollwave/rollwave/test/integration/fleet"
)

// nginxPort is where the host's nginx serves the demo app.
const nginxPort = 18090

// lbHook is the traffic hook: it rewrites nginx's upstream block with the
// weights the agent passes ({{slot}} {{port}} {{weight}} {{old_port}}) and
// reloads nginx; each call is logged to /var/lib/rollwave-e2e-weights.
const lbHook = `#!/bin/sh
set -e
slot=$1 port=$2 weight=$3 old_port=$4
f=/etc/nginx/rollwave-demo-upstream.conf
if [ "$weight" -ge 100 ] || [ "$old_port" = 0 ]; then
  echo "server 127.0.0.1:$port;" > $f.new
elif [ "$weight" -le 0 ]; then
  echo "server 127.0.0.1:$old_port;" > $f.new
else
  printf 'server 127.0.0.1:%s weight=%s;\nserver 127.0.0.1:%s weight=%s;\n' "$port" "$weight" "$old_port" $((100 - weight)) > $f.new
fi
mv $f.new $f
nginx -t -q
nginx -s reload
echo "$ROLLWAVE_SLOT $ROLLWAVE_WEIGHT" >> /var/lib/rollwave-e2e-weights
`

// installNginx installs Debian's nginx in h from the packages of the
// machine's own apt sources (the hosts run the same suite), with a site
// on nginxPort whose upstream the hook rewrites.
func installNginx(t *testing.T, h *fleet.Host) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("apt-get", "download", "nginx", "nginx-common")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		// Not a skip: CI must not pass without this scenario (.ci/run runs
		// apt-get update, so the packages can be fetched).
		t.Fatalf("e2e: cannot fetch Debian's nginx packages with apt-get download (run apt-get update first): %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	var inside []string
	for _, d := range debs {
		dst := "/var/tmp/" + filepath.Base(d)
		if err := h.CopyIn(d, dst); err != nil {
			t.Fatal(err)
		}
		inside = append(inside, dst)
	}
	if _, errOut, err := h.ExecTimeout(3*time.Minute, append([]string{"dpkg", "-i"}, inside...)...); err != nil {
		t.Fatalf("dpkg -i nginx: %v\n%s", err, errOut)
	}
	site := "upstream rollwave_demo {\n  include /etc/nginx/rollwave-demo-upstream.conf;\n}\nserver {\n  listen 127.0.0.1:18090;\n  location / {\n    proxy_pass http://rollwave_demo;\n  }\n}\n"
	for path, body := range map[string]string{
		"/etc/nginx/conf.d/rollwave-demo.conf":   site,
		"/etc/nginx/rollwave-demo-upstream.conf": "server 127.0.0.1:18081;\n",
	} {
		if err := h.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.WriteFile("/usr/local/bin/rollwave-e2e-lb", []byte(lbHook), 0o755); err != nil {
		t.Fatal(err)
	}
	h.MustExecOK("systemctl", "restart", "nginx")
}

// weights reads the hook's log: one "slot weight" per call.
func weights(t *testing.T, h *fleet.Host) []string {
	t.Helper()
	b, err := h.ReadFile("/var/lib/rollwave-e2e-weights")
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// TestTrafficStepsThroughNginx (issue 17 item 1): traffic.mode = "exec"
// with steps drives Debian's nginx inside a real host through the hook:
// weights 10 → 50 → 100 for a good version; for one that turns unhealthy
// while it rolls on, 10 → 50 (→ 100) and then everything back to the old
// slot with one call.
func TestTrafficStepsThroughNginx(t *testing.T) {
	timed(t)
	requireEngine(t)
	f, cs, hosts := bootFleet(t, 1)
	h := hosts[0]
	installNginx(t, h)

	spec := func(version, healthy string) string {
		art := f.PublishDemoWith(version, healthy)
		s := fleet.DemoSpec("demo-"+version, version, art, "1s")
		old := "    mode   = \"proxy\"\n    listen = \"127.0.0.1:18080\"\n"
		if !strings.Contains(s, old) {
			t.Fatalf("demo spec's traffic block changed:\n%s", s)
		}
		return strings.Replace(s, old, `    mode    = "exec"
    command = ["/usr/local/bin/rollwave-e2e-lb", "{{slot}}", "{{port}}", "{{weight}}", "{{old_port}}"]
    steps     = [10, 50, 100]
    step_time = "4s"
`, 1)
	}
	served := func() string {
		out, _ := h.Curl(nginxPort, "/")
		return strings.TrimSpace(out)
	}
	start := func(version, healthy string, want rollwavev1.ReleaseState) {
		t.Helper()
		rel, err := cs.StartRelease(spec(version, healthy))
		if err != nil {
			t.Fatal(err)
		}
		cs.WaitRelease(rel.GetId(), want, 4*time.Minute)
	}

	// 1.0.0: a first deploy has no old slot, so no steps: one call, 100.
	start("1.0.0", "yes", rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED)
	if w := weights(t, h); strings.Join(w, ",") != "blue 100" {
		t.Fatalf("hook calls for the first deploy: %v", w)
	}
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) { v := served(); return v == "1.0.0", "nginx serves " + v })

	// 2.0.0: 10 → 50 → 100 through nginx, both versions answering mid-way.
	t0 := time.Now()
	rel, err := cs.StartRelease(spec("2.0.0", "yes"))
	if err != nil {
		t.Fatal(err)
	}
	both := map[string]bool{}
	testutil.WaitFor(t, 4*time.Minute, func() (bool, string) {
		w := weights(t, h)
		if len(w) >= 3 && w[len(w)-1] == "green 50" {
			both[served()] = true
		}
		resp, err := cs.Release(rel.GetId())
		if err != nil {
			return false, err.Error()
		}
		return resp.GetRelease().GetState() == rollwavev1.ReleaseState_RELEASE_STATE_SUCCEEDED,
			"release " + resp.GetRelease().GetState().String() + ", hook calls " + strings.Join(w, ",")
	})
	if w := weights(t, h); strings.Join(w[1:], ",") != "green 10,green 50,green 100" {
		t.Fatalf("hook calls for 2.0.0: %v, want green 10, 50, 100", w)
	}
	t.Logf("TIMING nginx exec steps 10 -> 50 -> 100 until the release succeeded: %s (versions seen at 50%%: %v)", time.Since(t0).Round(time.Millisecond), both)
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) { v := served(); return v == "2.0.0", "nginx serves " + v })

	// 3.0.0 turns unhealthy 8s after it starts: around its last step
	// (on a loaded machine before or just after 100). The revert points
	// nginx back at the old slot with one call.
	start("3.0.0", "8s", rollwavev1.ReleaseState_RELEASE_STATE_ROLLED_BACK)
	w := weights(t, h)[4:]
	if len(w) < 2 || w[0] != "blue 10" || w[len(w)-1] != "green 100" {
		t.Fatalf("hook calls for 3.0.0: %v, want blue 10 (… blue 50) then green 100", w)
	}
	t.Logf("3.0.0 hook calls: %v", w)
	testutil.WaitFor(t, 30*time.Second, func() (bool, string) { v := served(); return v == "2.0.0", "nginx serves " + v })
}
