package dashboard_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rollwave/rollwave/internal/agent/agenttest"
	"github.com/rollwave/rollwave/internal/coordinator"
	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/dashboard"
	"github.com/rollwave/rollwave/internal/testutil"
	v1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// onLeader runs a write on the current leader, retried while leadership
// settles (a busy machine re-elects: Unavailable means "retry").
func onLeader(t *testing.T, c *coordtest.Cluster, what string, call func(v1.OperatorServiceClient) error) {
	t.Helper()
	testutil.WaitFor(t, 90*time.Second, func() (bool, string) {
		err := call(c.Client(c.Leader(30 * time.Second)))
		switch status.Code(err) {
		case codes.OK:
			return true, ""
		case codes.Unavailable, codes.DeadlineExceeded:
			return false, fmt.Sprintf("%s: %v", what, err)
		}
		t.Fatalf("%s: %v", what, err)
		return false, ""
	})
}

// serveFrom serves the coordinator's own dashboard (reading through its
// gRPC API) on a loopback test server.
func serveFrom(t *testing.T, s *coordinator.Server, poll time.Duration) *httptest.Server {
	t.Helper()
	d, err := s.Dashboard(dashboard.Config{PollInterval: poll})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ui/", d)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { d.Close(); srv.Close() })
	return srv
}

func callCtx(t *testing.T, secret string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return coordtest.WithToken(ctx, secret)
}

// sleeperArtifact packages an app whose slot is one long sleep: the
// process driver runs it, the unit check sees it running.
func sleeperArtifact(t *testing.T, version string) (url, sum string) {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range []struct{ name, body string }{
		{"bin/run", "#!/bin/sh\nexec sleep 600\n"},
		{"config/version", version + "\n"},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o755, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sleeper-"+version+".tar.gz")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(buf.Bytes())
	return "file://" + path, hex.EncodeToString(s[:])
}

func releaseSpec(t *testing.T, version string) []byte {
	url, sum := sleeperArtifact(t, version)
	return []byte(fmt.Sprintf(`release "sleeper-%[1]s" {
  app     = "sleeper"
  version = %[1]q
  artifact {
    url    = %[2]q
    sha256 = %[3]q
  }
  unit {
    exec_start = "/bin/sh {{slot_dir}}/bin/run"
    restart    = "no"
  }
  slots {
    blue_port  = 18081
    green_port = 18082
    keep_old   = "hot"
  }
  traffic {
    mode = "none"
  }
  phases {
    canary   = 1
    growth   = "geometric"
    factor   = 2
    max_size = "50%%"
  }
  health {
    check "unit" {
      interval = "200ms"
      timeout  = "150ms"
    }
    min_healthy_time = "300ms"
    healthy_deadline = "20s"
  }
  bake {
    first = "2s"
    decay = 0.5
    min   = "1s"
  }
  gates {
    max_failed_hosts = 0
  }
  rollback {
    on_failure        = "all"
    isolation_timeout = "60s"
  }
  approval {
    after_phases = [0]
  }
}
`, version, url, sum))
}

// The dashboard on a follower of a real 3-server cluster with ACLs and 4
// agents, in a real browser: a read token sees the fleet change colour
// as a release rolls out, sees no buttons and has a forged approve
// refused; a deploy token approves the release from its page; the page
// keeps updating when the leader is killed.
func TestBrowserLiveCluster(t *testing.T) {
	ctx := newBrowser(t)
	c := coordtest.NewCluster(t, 3, coordtest.WithACLs())
	leader := c.Leader(30 * time.Second)
	var admin string
	onLeader(t, c, "bootstrap ACLs", func(cl v1.OperatorServiceClient) error {
		boot, err := cl.ACLBootstrap(callCtx(t, ""), &v1.ACLBootstrapRequest{Name: "root"})
		admin = boot.GetSecret()
		return err
	})
	token := func(name, role string) (secret string) {
		onLeader(t, c, "create token "+name, func(cl v1.OperatorServiceClient) error {
			resp, err := cl.ACLTokenCreate(callCtx(t, admin), &v1.ACLTokenCreateRequest{Name: name, Role: role})
			secret = resp.GetSecret()
			return err
		})
		return secret
	}
	alice, rita := token("alice", "deploy"), token("rita", "read")
	for i, cell := range []string{"edge", "core"} {
		onLeader(t, c, "set cell "+cell, func(cl v1.OperatorServiceClient) error {
			_, err := cl.SetCell(callCtx(t, admin), &v1.SetCellRequest{Cell: &v1.Cell{Name: cell, Risk: int32(i + 1), Criticality: "low"}})
			return err
		})
	}
	hosts := []string{"h1", "h2", "h3", "h4"}
	for i, h := range hosts {
		agenttest.Start(t, h, []string{"edge", "core"}[i/2], agenttest.Options{Join: leader.GossipAddr()})
	}
	testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
		l := c.Leader(30 * time.Second)
		for _, h := range hosts {
			if !l.AgentConnected(h) || l.FSM().State().Host(h) == nil {
				return false, h + " not connected and registered"
			}
		}
		return true, ""
	})

	// The browser talks to a follower.
	follower := c.Followers()[0]
	srv := serveFrom(t, follower, 250*time.Millisecond)

	login := func(secret, who string) {
		t.Helper()
		do(t, ctx, chromedp.Navigate(srv.URL+"/ui/login"),
			chromedp.WaitVisible(chromedp.ID("token")),
			chromedp.SendKeys(chromedp.ID("token"), secret),
			chromedp.Click(chromedp.ID("login-submit")))
		waitJS(t, ctx, browserStep, `document.getElementById('who') && document.getElementById('who').textContent === '`+who+`'`,
			`document.body.innerText.slice(0, 300)`)
	}

	// rita (read) watches the fleet: four idle tiles, cells by risk.
	login(rita, "rita (read)")
	waitJS(t, ctx, browserStep, `document.querySelectorAll('#fleet .tile').length === 4 && window.rwSwaps > 0`,
		`document.getElementById('view').innerText.slice(0, 300)`)
	if first := eval[string](t, ctx, `document.querySelector('#fleet tr.cell').dataset.cell`); first != "edge" {
		t.Errorf("first cell row %s, want edge (risk 1)", first)
	}
	eval[bool](t, ctx, `window.rwMarker = true`)

	// A release starts; the canary's tile takes the new version's colour
	// and baking state, in place.
	src := releaseSpec(t, "2.0.0")
	onLeader(t, c, "submit", func(cl v1.OperatorServiceClient) error {
		_, err := cl.SubmitRelease(callCtx(t, admin), &v1.SubmitReleaseRequest{SourceName: "sleeper.hcl", Source: src, Start: true})
		if status.Code(err) == codes.AlreadyExists {
			return nil // an earlier attempt went through
		}
		return err
	})
	const id = "sleeper-2.0.0"
	waitJS(t, ctx, browserStep, `document.querySelectorAll('#fleet .tile[data-version="2.0.0"]').length === 1`,
		`Array.from(document.querySelectorAll('#fleet .tile')).map(e => e.id + ':' + e.dataset.version + ':' + e.dataset.state + ':' + e.className).join(' ')`)
	canary := eval[string](t, ctx, `document.querySelector('#fleet .tile[data-version="2.0.0"]').className`)
	if !strings.Contains(canary, "v1") || eval[string](t, ctx, `document.querySelector('#fleet .tile:not([data-version="2.0.0"])').className`) == canary {
		t.Errorf("canary tile class %q: want the 2.0.0 colour, different from the others", canary)
	}
	if !eval[bool](t, ctx, `window.rwMarker === true`) {
		t.Fatal("the fleet page reloaded instead of updating in place")
	}
	screenshot(t, ctx, "fleet")

	// Awaiting approval after the canary: rita sees no buttons, and her
	// forged approve (with a valid CSRF field) is refused by the API.
	testutil.WaitFor(t, 90*time.Second, func() (bool, string) {
		r := c.Leader(30 * time.Second).FSM().State().Release(id)
		return r.GetState() == v1.ReleaseState_RELEASE_STATE_AWAITING_APPROVAL, r.GetState().String() + " " + r.GetReason()
	})
	do(t, ctx, chromedp.Navigate(srv.URL+"/ui/releases/"+id))
	waitJS(t, ctx, browserStep, `document.getElementById('release') && document.getElementById('release').dataset.state === 'awaiting_approval'`,
		`document.getElementById('view').innerText.slice(0, 300)`)
	if n := eval[int](t, ctx, `document.querySelectorAll('#actions, button[id^="btn-"]').length`); n != 0 {
		t.Fatalf("a read token sees %d action elements", n)
	}
	forged := eval[string](t, ctx, `fetch(location.pathname + '/approve', {method: 'POST',
		headers: {'Content-Type': 'application/x-www-form-urlencoded'},
		body: 'csrf=' + document.querySelector('input[name=csrf]').value + '&reason=forged'})
		.then(r => r.text().then(b => r.status + ' ' + b))`, chromedp.EvalAwaitPromise)
	if !strings.HasPrefix(forged, "403 ") || !strings.Contains(forged, "needs role deploy") {
		t.Fatalf("forged approve by a read token: %.300s", forged)
	}
	if st := c.Leader(30 * time.Second).FSM().State().Release(id).GetState(); st != v1.ReleaseState_RELEASE_STATE_AWAITING_APPROVAL {
		t.Fatalf("after the forged approve the release is %s", st)
	}
	do(t, ctx, chromedp.Navigate(srv.URL+"/ui/releases"))
	waitJS(t, ctx, browserStep, `document.querySelector('#releases tr.release')`, `document.getElementById('view').innerText.slice(0, 200)`)
	screenshot(t, ctx, "releases")

	// alice (deploy) approves with a reason from the release page.
	do(t, ctx, chromedp.Navigate(srv.URL+"/ui/releases/"+id), chromedp.WaitVisible(chromedp.CSS("form.who button")),
		chromedp.Click(chromedp.CSS("form.who button")))
	waitJS(t, ctx, browserStep, `document.getElementById('login-form')`, `location.href`)
	login(alice, "alice (deploy)")
	shot := false
	// Retried while leadership settles: a busy machine re-elects, and the
	// dashboard then answers 503 "no raft leader is known" (the request
	// went nowhere), as the CLI does.
	testutil.WaitFor(t, 3*browserStep, func() (bool, string) {
		do(t, ctx, chromedp.Navigate(srv.URL+"/ui/releases/"+id), chromedp.WaitVisible(chromedp.ID("btn-approve")))
		if !shot {
			screenshot(t, ctx, "release")
			shot = true
		}
		do(t, ctx, chromedp.SendKeys(chromedp.ID("reason-approve"), "canary is fine"), chromedp.Click(chromedp.ID("btn-approve")))
		waitJS(t, ctx, browserStep, `document.getElementById('flash') || document.getElementById('error')`, `document.body.innerText.slice(0, 300)`)
		if msg := eval[string](t, ctx, `document.getElementById('error') ? document.getElementById('error').textContent : ''`); msg != "" {
			if !strings.Contains(msg, "leader") {
				t.Fatalf("approve refused: %s", msg)
			}
			return false, msg
		}
		return true, ""
	})
	testutil.WaitFor(t, 90*time.Second, func() (bool, string) {
		l := c.Leader(30 * time.Second)
		approved, reasoned := false, false
		var seen []string
		for _, e := range l.FSM().State().Events(id, 0, 0) {
			seen = append(seen, e.GetKind()+"/"+e.GetActor())
			if e.GetActor() != "alice" {
				continue
			}
			approved = approved || e.GetKind() == "phase.approved"
			reasoned = reasoned || strings.Contains(e.GetMessage()+fmt.Sprint(e.GetEvidence()), "canary is fine")
		}
		phase := l.FSM().State().Release(id).GetCurrentPhase()
		return approved && reasoned && phase >= 1, fmt.Sprintf("approved by alice %v, her reason recorded %v, phase %d; events %v", approved, reasoned, phase, seen)
	})
	// The page shows the approve event with its actor.
	waitJS(t, ctx, browserStep, `document.querySelector('#events tr.event[data-actor="alice"]')`,
		`Array.from(document.querySelectorAll('#events tr.event')).map(e => e.dataset.kind + '/' + e.dataset.actor).join(' ')`)
	do(t, ctx, chromedp.Navigate(srv.URL+"/ui/hosts/h1"), chromedp.WaitVisible(chromedp.ID("slots")))
	// Its metrics are the leader's latest heartbeat from h1, read through
	// this follower.
	waitJS(t, ctx, browserStep, `/^\d+\.\d%$/.test((document.querySelector('#host-metrics .m-cpu') || {}).textContent)`,
		`document.getElementById('view').innerText.slice(0, 600)`)
	screenshot(t, ctx, "host")

	// The fleet page keeps updating when the leader dies: its status
	// line names the new leader, without a reload.
	do(t, ctx, chromedp.Navigate(srv.URL+"/ui/"))
	waitJS(t, ctx, browserStep, `window.rwStatus && window.rwStatus.indexOf('leader ') > 0`, `String(window.rwStatus)`)
	eval[bool](t, ctx, `window.rwMarker = true`)
	old := c.Leader(30 * time.Second)
	if old == follower {
		// Re-elections on a busy machine made the dashboard's server the
		// leader: hand leadership on, the test kills another server.
		if err := follower.Raft().LeadershipTransfer().Error(); err != nil {
			t.Fatalf("hand leadership away from the dashboard's server: %v", err)
		}
		testutil.WaitFor(t, 60*time.Second, func() (bool, string) {
			old = c.Leader(30 * time.Second)
			return old != follower, "the dashboard's server still leads"
		})
	}
	c.Kill(c.Index(old))
	waitJS(t, ctx, 2*browserStep, `window.rwStatus && /leader c\d/.test(window.rwStatus) && window.rwStatus.indexOf('leader `+old.NodeID()+`') < 0`,
		`String(window.rwStatus)`)
	if !eval[bool](t, ctx, `window.rwMarker === true`) {
		t.Fatal("the page reloaded across the leader change")
	}
	// And the rollout, now driven by the new leader, still shows up live.
	waitJS(t, ctx, 2*browserStep, `document.querySelectorAll('#fleet .tile[data-version="2.0.0"]').length > 1`,
		`Array.from(document.querySelectorAll('#fleet .tile')).map(e => e.id + ':' + e.dataset.version + ':' + e.dataset.state).join(' ') + ' ' + window.rwStatus`)
	do(t, ctx, chromedp.Navigate("about:blank"))
}
