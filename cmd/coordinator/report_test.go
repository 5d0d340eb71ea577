package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/agent/agenttest"
	"github.com/rollwave/rollwave/internal/cli"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// Issue 18 item 5, through the real CLI against a 3-server cluster and one
// in-process agent: a release whose artifact fails its checksum fails the
// canary's host budget and rolls back; "release ack" records the
// acknowledgement once (through a follower), and "report" and /metrics
// count one finished change, failed, restored and acknowledged.
func TestReleaseAckAndReportThroughCLI(t *testing.T) {
	c := coordtest.NewCluster(t, 3)
	leader := c.Leader(30 * time.Second)
	addr := c.Followers()[0].GRPCAddr()
	agenttest.Start(t, "h1", "edge", agenttest.Options{Join: leader.GossipAddr()})
	testutil.WaitFor(t, 20*time.Second, func() (bool, string) {
		l := c.Leader(30 * time.Second)
		return l.AgentConnected("h1") && l.FSM().State().Host("h1") != nil, "h1 not connected and registered"
	})

	dir := t.TempDir()
	artifact := filepath.Join(dir, "web.tar.gz")
	if err := os.WriteFile(artifact, []byte("not the artifact the checksum names"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The ports are never bound: staging fails at the checksum, before any
	// slot starts.
	ports := testutil.FreePorts(t, 3)
	src := strings.NewReplacer("file:///srv/web.tar.gz", "file://"+artifact,
		"9081", fmt.Sprint(ports[0]), "9082", fmt.Sprint(ports[1]), "9080", fmt.Sprint(ports[2])).Replace(goodSpec)
	spec := filepath.Join(dir, "web.hcl")
	if err := os.WriteFile(spec, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}

	// Unknown release: NotFound. A release that has not failed: refused.
	if code, _, stderr := run(t, "release", "ack", "web-1.0.0", "-address", addr); code != cli.ExitNotFound {
		t.Fatalf("ack of an unknown release: exit %d, want %d: %s", code, cli.ExitNotFound, stderr)
	}
	if code, _, stderr := run(t, "release", "submit", spec, "-address", addr); code != 0 {
		t.Fatalf("submit: exit %d: %s", code, stderr)
	}
	if code, _, stderr := run(t, "release", "ack", "web-1.0.0", "-address", addr); code != cli.ExitConflict || !strings.Contains(stderr, "has not failed") {
		t.Fatalf("ack of a pending release: exit %d, want %d: %s", code, cli.ExitConflict, stderr)
	}
	if code, _, stderr := run(t, "release", "resume", "web-1.0.0", "-address", addr); code != 0 {
		t.Fatalf("resume: exit %d: %s", code, stderr)
	}
	client := c.Client(c.Followers()[0])
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := client.GetRelease(ctx, &rollwavev1.GetReleaseRequest{Id: "web-1.0.0"})
		if err != nil {
			return false, err.Error()
		}
		r := resp.GetRelease()
		return r.GetState() == rollwavev1.ReleaseState_RELEASE_STATE_ROLLED_BACK, fmt.Sprintf("release %s (%s)", r.GetState(), r.GetReason())
	})

	code, out, stderr := run(t, "release", "ack", "web-1.0.0", "-reason", "paged", "-address", addr)
	if code != 0 || !strings.Contains(out, "Release web-1.0.0: rolled_back; failure acknowledged by ") {
		t.Fatalf("ack: exit %d, %q, %s", code, out, stderr)
	}
	if code, _, stderr := run(t, "release", "ack", "web-1.0.0", "-address", addr); code != cli.ExitConflict || !strings.Contains(stderr, "already acknowledged") {
		t.Fatalf("second ack: exit %d, want %d: %s", code, cli.ExitConflict, stderr)
	}

	code, out, stderr = run(t, "report", "-app", "web", "-since", "1d", "-json", "-address", addr)
	if code != 0 {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
	var rep struct {
		Apps []map[string]any `json:"apps"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&rep); err != nil || len(rep.Apps) != 1 || rep.Apps[0]["app"] != "web" {
		t.Fatalf("report -json: %v\n%s", err, out)
	}
	want := map[string]float64{
		"deployments": 0, "changes": 1, "failed_changes": 1, "change_failure_ratio": 1, "failures": 1,
		"restored": 1, "acked": 1, "lead_time_median_ms": -1, "mtbf_ms": -1, "mttf_ms": -1,
	}
	for k, v := range want {
		if got, ok := rep.Apps[0][k].(float64); !ok || got != v {
			t.Errorf("report %s = %v, want %v\n%s", k, got, v, out)
		}
	}
	for _, k := range []string{"time_to_restore_median_ms", "time_to_restore_max_ms", "mtta_ms"} {
		if d, ok := rep.Apps[0][k].(float64); !ok || d < 0 {
			t.Errorf("report %s = %v, want a duration\n%s", k, rep.Apps[0][k], out)
		}
	}
	code, out, _ = run(t, "report", "-address", addr)
	if code != 0 || !strings.Contains(out, "APP") || !strings.Contains(out, "100.0%") || !strings.Contains(out, "all") {
		t.Fatalf("report table: exit %d:\n%s", code, out)
	}
	// Bad input changes nothing and says what was wrong.
	if code, _, stderr := run(t, "report", "-since", "30m", "-address", addr); code != cli.ExitUsage || !strings.Contains(stderr, "d (days) or h (hours)") {
		t.Fatalf("report -since 30m: exit %d: %s", code, stderr)
	}
	if code, _, stderr := run(t, "report", "-app", "nope", "-address", addr); code != cli.ExitNotFound || !strings.Contains(stderr, `no app named "nope"`) {
		t.Fatalf("report -app nope: exit %d: %s", code, stderr)
	}

	// /metrics on the follower: computed from its replica.
	body := scrape(t, "http://"+c.Followers()[0].HTTPAddr()+"/metrics")
	for _, line := range []string{
		`rollwave_delivery_change_failure_ratio{app="web"} 1`,
		`rollwave_delivery_deployments_per_day{app="web"} 0`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	if !strings.Contains(body, `rollwave_delivery_time_to_restore_seconds{app="web"} `) {
		t.Errorf("/metrics lacks the time to restore of web")
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}
