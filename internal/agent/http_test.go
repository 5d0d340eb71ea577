package agent_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/httpapi/httpapitest"
	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// After a deploy, both binaries' /metrics parse with the Prometheus text
// parser and hold the families operators alert on, with values that
// match what happened.
func TestMetricsOnBothBinaries(t *testing.T) {
	f := newFleet(t)
	f.v1()
	addr := f.agent.HTTPAddr()
	if addr == "" {
		t.Fatal("the agent's HTTP listener is not running")
	}
	// Agent.
	var fams = httpapitest.Scrape(t, addr)
	if miss := httpapitest.Missing(fams,
		"rollwave_agent_connected", "rollwave_agent_leader_ack_age_seconds", "rollwave_agent_slot_info",
		"rollwave_agent_step_duration_seconds", "rollwave_agent_health_checks_total",
		"rollwave_agent_health_check_duration_seconds", "go_goroutines", "process_resident_memory_bytes",
	); len(miss) > 0 {
		t.Fatalf("agent /metrics lacks %v", miss)
	}
	if v, _ := httpapitest.Value(fams["rollwave_agent_connected"], nil); v != 1 {
		t.Errorf("rollwave_agent_connected = %v, want 1", v)
	}
	if v, ok := httpapitest.Value(fams["rollwave_agent_slot_info"], map[string]string{"app": "demo", "version": "1.0.0", "active": "true"}); !ok || v != 1 {
		t.Errorf("no active slot_info for demo 1.0.0: %v", fams["rollwave_agent_slot_info"])
	}
	if _, ok := httpapitest.Value(fams["rollwave_agent_step_duration_seconds"], map[string]string{"op": "swap", "result": "ok"}); !ok {
		t.Errorf("no swap step timed: %v", fams["rollwave_agent_step_duration_seconds"])
	}
	if v, _ := httpapitest.Value(fams["rollwave_agent_health_checks_total"], map[string]string{"app": "demo", "result": "pass"}); v < 1 {
		t.Errorf("no passing health check counted: %v", fams["rollwave_agent_health_checks_total"])
	}
	// The proxy's per-slot figures: v1's requests through the traffic
	// port, added up at the next heartbeat.
	testutil.WaitFor(t, 15*time.Second, func() (bool, string) {
		fams = httpapitest.Scrape(t, addr)
		if miss := httpapitest.Missing(fams, "rollwave_agent_proxy_requests_total", "rollwave_agent_proxy_errors_total",
			"rollwave_agent_proxy_request_duration_seconds"); len(miss) > 0 {
			return false, fmt.Sprintf("agent /metrics lacks %v", miss)
		}
		v, _ := httpapitest.Value(fams["rollwave_agent_proxy_requests_total"], map[string]string{"app": "demo", "version": "1.0.0"})
		return v >= 1, fmt.Sprintf("proxy requests of demo 1.0.0 = %v", v)
	})
	if code, body := httpapitest.Get(t, "http://"+addr+"/v1/ready"); code != 200 {
		t.Errorf("agent /v1/ready with a session: %d %s", code, body)
	}
	if code, body := httpapitest.Get(t, "http://"+addr+"/debug/pprof/heap"); code != 403 || !strings.Contains(body, "-enable-pprof") {
		t.Errorf("agent pprof without -enable-pprof: %d %s", code, body)
	}

	// Coordinator (the leader: it holds the session and the heartbeats).
	l := f.leader()
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		fams = httpapitest.Scrape(t, l.HTTPAddr())
		v, _ := httpapitest.Value(fams["rollwave_agent_heartbeats_total"], nil)
		return v >= 1, fmt.Sprintf("heartbeats %v", v)
	})
	if miss := httpapitest.Missing(fams,
		"rollwave_raft_state", "rollwave_raft_has_leader", "rollwave_raft_term", "rollwave_raft_commit_index",
		"rollwave_raft_applied_index", "rollwave_raft_last_log_index", "rollwave_raft_peers",
		"rollwave_raft_leader_changes_total", "rollwave_raft_apply_duration_seconds",
		"rollwave_agent_sessions", "rollwave_agent_heartbeats_total",
		"grpc_server_handled_total", "grpc_server_handling_seconds", "grpc_server_started_total",
		"rollwave_releases", "rollwave_hosts", "rollwave_host_assignments",
	); len(miss) > 0 {
		t.Fatalf("coordinator /metrics lacks %v", miss)
	}
	checks := []struct {
		family string
		labels map[string]string
		want   float64
	}{
		{"rollwave_raft_state", map[string]string{"state": "leader"}, 1},
		{"rollwave_raft_has_leader", nil, 1},
		{"rollwave_agent_sessions", nil, 1},
		{"rollwave_hosts", nil, 1},
		{"rollwave_releases", map[string]string{"state": "succeeded"}, 1},
		{"rollwave_host_assignments", map[string]string{"app": "demo", "state": lower(rollwavev1.AssignmentState_ASSIGNMENT_STATE_FINALIZED)}, 1},
	}
	for _, c := range checks {
		if v, ok := httpapitest.Value(fams[c.family], c.labels); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.family, c.labels, v, ok, c.want)
		}
	}
	if v, _ := httpapitest.Value(fams["grpc_server_handled_total"], map[string]string{"grpc_method": "SubmitRelease", "grpc_code": "OK"}); v < 1 {
		t.Errorf("SubmitRelease not counted by the gRPC metrics: %v", fams["grpc_server_handled_total"])
	}
	if v, _ := httpapitest.Value(fams["rollwave_raft_commit_index"], nil); v < 1 {
		t.Errorf("commit index %v", v)
	}
}

func lower(s fmt.Stringer) string {
	_, after, _ := strings.Cut(s.String(), "STATE_")
	return strings.ToLower(after)
}
