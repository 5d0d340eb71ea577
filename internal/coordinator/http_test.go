package coordinator_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/coordinator/coordtest"
	"github.com/rollwave/rollwave/internal/httpapi/httpapitest"
	"github.com/rollwave/rollwave/internal/raftfsm"
	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// /v1/ready follows raft: ready with a known leader, not ready once the
// survivor of a three-server cluster has lost both peers (no quorum, no
// leader), ready again when one comes back. /v1/health stays 200.
func TestReadyFlipsWhenTheLeaderIsLost(t *testing.T) {
	c := coordtest.NewCluster(t, 3)
	c.Leader(30 * time.Second)
	ready := func(i int) (int, string) {
		return httpapitest.Get(t, "http://"+c.Servers[i].HTTPAddr()+"/v1/ready")
	}
	for i := range c.Servers {
		testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
			code, body := ready(i)
			return code == http.StatusOK, body
		})
	}
	c.Kill(1)
	c.Kill(2)
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		code, body := ready(0)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "raft leader"), body
	})
	if code, body := httpapitest.Get(t, "http://"+c.Servers[0].HTTPAddr()+"/v1/health"); code != http.StatusOK {
		t.Fatalf("/v1/health without a leader: %d %s", code, body)
	}
	// Its /metrics says the same.
	fams := httpapitest.Scrape(t, c.Servers[0].HTTPAddr())
	if v, _ := httpapitest.Value(fams["rollwave_raft_has_leader"], nil); v != 0 {
		t.Fatalf("rollwave_raft_has_leader = %v without quorum", v)
	}
	if v, _ := httpapitest.Value(fams["rollwave_raft_leader_changes_total"], nil); v < 1 {
		t.Fatalf("rollwave_raft_leader_changes_total = %v after an election and a loss", v)
	}
	c.Start(1)
	testutil.WaitFor(t, 15*time.Second, func() (bool, string) {
		code, body := ready(0)
		return code == http.StatusOK, body
	})
}

// pprof with ACLs: no token 401, a read token 403, an admin token 200;
// without ACLs and without -enable-pprof: 403.
func TestPprofNeedsAnAdminToken(t *testing.T) {
	c := coordtest.NewCluster(t, 1, coordtest.WithACLs())
	l := c.Leader(30 * time.Second)
	boot, err := c.Client(l).ACLBootstrap(ctx(t), &rollwavev1.ACLBootstrapRequest{})
	if err != nil {
		t.Fatal(err)
	}
	admin := coordtest.WithToken(ctx(t), boot.GetSecret())
	reader, err := c.Client(l).ACLTokenCreate(admin, &rollwavev1.ACLTokenCreateRequest{Name: "grafana", Role: raftfsm.RoleRead})
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.HTTPAddr() + "/debug/pprof/goroutine?debug=1"
	get := func(token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return resp.StatusCode, b.String()
	}
	for _, tc := range []struct {
		name, token string
		code        int
		want        string
	}{
		{"no token", "", 401, "role admin"},
		{"unknown token", "not-a-secret", 401, "not found"},
		{"read token", reader.GetSecret(), 403, "has role read; pprof needs role admin"},
		{"admin token", boot.GetSecret(), 200, "goroutine profile"},
	} {
		if code, body := get(tc.token); code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %.200s; want %d with %q", tc.name, code, body, tc.code, tc.want)
		}
	}

	plain := coordtest.NewCluster(t, 1)
	pl := plain.Leader(30 * time.Second)
	code, body := httpapitest.Get(t, "http://"+pl.HTTPAddr()+"/debug/pprof/heap")
	if code != 403 || !strings.Contains(body, "-enable-pprof") {
		t.Fatalf("pprof without ACLs or -enable-pprof: %d %s", code, body)
	}
}

// The listener stops with the server: its port is closed after Shutdown
// (goleak checks its goroutines at the end of the package).
func TestHTTPListenerStopsOnShutdown(t *testing.T) {
	c := coordtest.NewCluster(t, 1)
	l := c.Leader(30 * time.Second)
	addr := l.HTTPAddr()
	if code, _ := httpapitest.Get(t, "http://"+addr+"/v1/health"); code != 200 {
		t.Fatalf("health: %d", code)
	}
	c.Kill(0)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := hc.Get("http://" + addr + "/v1/health"); err == nil {
		resp.Body.Close()
		t.Fatalf("%s still serves after shutdown", addr)
	}
}
