package cli

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// assertLines fails unless every want line appears in out with its fields
// in order; columns are compared by whitespace-separated fields, so the
// test does not depend on the exact padding.
func assertLines(t *testing.T, out string, want ...string) {
	t.Helper()
	var rows [][]string
	for _, l := range strings.Split(out, "\n") {
		rows = append(rows, strings.Fields(l))
	}
	for _, w := range want {
		if !slices.ContainsFunc(rows, func(r []string) bool { return slices.Equal(r, strings.Fields(w)) }) {
			t.Errorf("output has no line %q:\n%s", w, out)
		}
	}
}

func TestReadTables(t *testing.T) {
	addr := startServer(t, fixture())
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"members sorted by name", []string{"members"}, []string{
			"NAME ADDRESS ROLE STATUS CELL REGION LEADER VERSION",
			"coord-1 10.0.0.1:7946 server alive - eu yes 1.0.0",
			"web-1 10.0.1.1:7946 agent alive eu-1a eu no 1.0.0",
		}},
		{"status", []string{"status"}, []string{
			"Node coord-1", "Raft state leader", "Leader coord-1 (10.0.0.1:7421)", "Applied index 41",
		}},
		{"raft peers", []string{"operator", "raft", "list-peers"}, []string{
			"ID ADDRESS SUFFRAGE LEADER",
			"coord-1 10.0.0.1:7421 voter yes",
			"coord-2 10.0.0.2:7421 voter no",
		}},
		{"hosts", []string{"hosts"}, []string{
			"HOST CELL REGION LIVENESS CONNECTED LAST CONTACT APPS NOTE",
			"web-1 eu-1a eu alive yes 3s ago api:blue@2.4.0(green 2.3.0) -",
			"web-2 eu-1b eu dead no never api:green@2.4.0(blue 2.3.0) -",
		}},
		{"hosts with metrics", []string{"hosts", "-metrics"}, []string{
			"HOST CELL REGION LIVENESS CONNECTED LAST CONTACT APPS NOTE CPU MEM",
			"web-1 eu-1a eu alive yes 3s ago api:blue@2.4.0(green 2.3.0) - 37.3% 61.0%",
			"web-2 eu-1b eu dead no never api:green@2.4.0(blue 2.3.0) - - -",
		}},
		{"one host", []string{"hosts", "web-1"}, []string{
			"Host web-1", "Last heartbeat 2s ago", "CPU 37.3%", "Memory 61.0%",
			"APP SLOT VERSION HEALTHY CPU RSS RESTARTS",
			"api blue 2.4.0 yes 12.0% 96.0MiB 1",
			"APP SLOT VERSION PROTOCOL REQUESTS ERRORS P99",
			"api blue 2.4.0 http 480 3 23.5ms",
		}},
		{"one host without a heartbeat", []string{"hosts", "web-2"}, []string{
			"Host web-2", "Last heartbeat none received by the leader",
		}},
		{"cells", []string{"cells", "list"}, []string{
			"NAME RISK CRITICALITY USERS HOSTS UPDATED",
			"eu-1a 1 low 1200 1 -",
		}},
		{"release list", []string{"release", "list"}, []string{
			"api-2.4.0 api 2.4.0 running 1/3 2026-11-29T11:00:00Z alice@laptop",
		}},
		{"release get", []string{"release", "get", "api-2.4.0"}, []string{
			"State running",
			"web-2 1 baking 2.4.0 green 3 - -",
			"web-3 1 staging 2.4.0 green 3 - -",
		}},
		{"events with evidence", []string{"release", "events", "api-2.4.0"}, []string{
			"SEQ TIME KIND ACTOR HOST PHASE MESSAGE EVIDENCE",
			"3 2026-11-29T11:50:00Z gate.reading leader web-2 1 bake check cpu_p95=55 mem_p95=63",
		}},
		{"status with bake countdown and gates", []string{"release", "status", "api-2.4.0"}, []string{
			"PHASE STATE HOSTS BAKE CELLS GATES",
			"0 verified 1/1 done eu-1a gate.passed cpu_p95=41 failed_hosts=0",
			"1 baking 1/2 12m30s left eu-1b gate.reading cpu_p95=55 mem_p95=63",
			"2 pending 0/3 7m30s eu-1b -",
		}},
		{"report", []string{"report"}, []string{
			"From 2026-10-30T12:00:00Z to 2026-11-29T12:00:00Z (30d)",
			"APP DEPLOYS PER DAY LEAD P50 LEAD P90 CHANGES FAILED CFR FAILURES TTR P50 TTR MAX MTTA MTBF MTTF",
			"api 3 0.10 2h0m 5h0m 5 2 40.0% 2 30m 30m 35m 3d4h 26h0m",
			"db 0 0.00 n/a n/a 0 0 n/a 0 n/a n/a n/a n/a n/a",
		}},
		{"freeze list", []string{"freeze", "list"}, []string{
			"Global freeze: ON (incident)",
			"ID FROM TO SCOPE ACTIVE REASON CREATED BY",
			"fz-1 2026-11-29T12:00:00Z 2026-12-01T12:00:00Z all until 2026-12-01T12:00:00Z holidays bob@ops",
			`fz-2 every "0 18 * * FRI" in Europe/Berlin for 62h0m0s - apps=api cells=eu-1a until 2026-11-30T08:00:00+01:00 weekend ops`,
			`Next occurrences of fz-2 ("0 18 * * FRI" in Europe/Berlin for 62h0m0s):`,
			"2026-12-04T18:00:00+01:00 to 2026-12-07T08:00:00+01:00 (2026-12-04T17:00:00Z to 2026-12-07T07:00:00Z)",
			"2026-12-11T18:00:00+01:00 to 2026-12-14T08:00:00+01:00 (2026-12-11T17:00:00Z to 2026-12-14T07:00:00Z)",
			"2026-12-18T18:00:00+01:00 to 2026-12-21T08:00:00+01:00 (2026-12-18T17:00:00Z to 2026-12-21T07:00:00Z)",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runAt(t, addr, tc.args...).expect(t, ExitOK)
			assertLines(t, r.stdout, tc.want...)
		})
	}
}

func TestReleasePlanTable(t *testing.T) {
	f := fixture()
	addr := startServer(t, f)
	spec := writeTemp(t, t.TempDir(), "api.hcl", "release {}")
	r := runAt(t, addr, "release", "plan", spec).expect(t, ExitOK)
	assertLines(t, r.stdout,
		"Release api-2.4.0: api 2.4.0 to 6 hosts in 2 phases",
		"PHASE HOSTS HOST NAMES CELLS BAKE APPROVAL",
		"0 1 web-1 eu-1a 30m required",
		"1 5 web-2,web-3,web-4,+2 more eu-1a,eu-1b 15m -",
	)
	if req := lastRequest[*rollwavev1.PlanReleaseRequest](t, f, "PlanRelease"); req.GetSourceName() != spec {
		t.Errorf("source_name = %q, want %q", req.GetSourceName(), spec)
	}
}

// Every read command's -json prints one JSON object of a pinned shape
// (docs/operations.md, "JSON output"): lists wrapped under a plural key,
// every field present (zero values too), integers as JSON numbers.
func TestJSONOutput(t *testing.T) {
	addr := startServer(t, fixture())
	shapes := []struct {
		name string
		args []string
		keys []string // the object's top-level keys, exactly
	}{
		{"members", []string{"members", "-json"}, []string{"members"}},
		{"peers", []string{"operator", "raft", "list-peers", "-json"}, []string{"peers"}},
		{"hosts", []string{"hosts", "-json"}, []string{"hosts"}},
		{"no results", []string{"hosts", "-cell", "nowhere", "-json"}, []string{"hosts"}},
		{"one host", []string{"hosts", "web-1", "-json"}, nil},
		{"cells", []string{"cells", "list", "-json"}, []string{"cells"}},
		{"releases", []string{"release", "list", "-json"}, []string{"releases"}},
		{"events", []string{"release", "events", "api-2.4.0", "-json"}, []string{"events"}},
		{"status", []string{"status", "-json"}, nil},
		{"get", []string{"release", "get", "api-2.4.0", "-json"}, nil},
		{"rstatus", []string{"release", "status", "api-2.4.0", "-json"}, nil},
		{"freezes", []string{"freeze", "list", "-json"}, nil},
		{"notify", []string{"notify", "status", "-json"}, []string{"targets"}},
		{"report", []string{"report", "-json"}, []string{"apps"}},
	}
	objects := map[string]map[string]any{}
	for _, tc := range shapes {
		t.Run(tc.name, func(t *testing.T) {
			r := runAt(t, addr, tc.args...).expect(t, ExitOK)
			dec := json.NewDecoder(strings.NewReader(r.stdout))
			dec.UseNumber()
			var v map[string]any
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("not one JSON object: %v\n%s", err, r.stdout)
			}
			if dec.More() {
				t.Fatalf("more than one JSON value:\n%s", r.stdout)
			}
			if tc.keys != nil {
				got := slices.Sorted(maps.Keys(v))
				if !slices.Equal(got, tc.keys) {
					t.Fatalf("top-level keys %v, want %v", got, tc.keys)
				}
				if _, ok := v[tc.keys[0]].([]any); !ok {
					t.Fatalf("%q is not a list: %v", tc.keys[0], v[tc.keys[0]])
				}
			}
			objects[tc.name] = v
			// The same call prints the same bytes.
			if again := runAt(t, addr, tc.args...).expect(t, ExitOK); again.stdout != r.stdout {
				t.Errorf("JSON output is not stable:\n%s\nvs\n%s", r.stdout, again.stdout)
			}
		})
	}

	// Zero values are present: phase 0's index, a false flag, an empty reason.
	get := objects["get"]
	rel, _ := get["release"].(map[string]any)
	phases, _ := rel["phases"].([]any)
	if len(phases) == 0 {
		t.Fatalf("release get -json has no phases: %v", get)
	}
	p0 := phases[0].(map[string]any)
	for _, k := range []string{"index", "approved", "reason", "started_unix_nano"} {
		if _, ok := p0[k]; !ok {
			t.Errorf("phase 0 lacks %q (zero values must be present): %v", k, p0)
		}
	}
	if p0["index"] != json.Number("0") {
		t.Errorf("phase 0 index = %#v, want the number 0", p0["index"])
	}
	// 64-bit integers are numbers, not strings.
	if n, ok := rel["created_unix_nano"].(json.Number); !ok || n.String() == "" {
		t.Errorf("created_unix_nano = %#v, want a JSON number", rel["created_unix_nano"])
	}
	events := objects["events"]["events"].([]any)
	if seq, ok := events[0].(map[string]any)["seq"].(json.Number); !ok || seq.String() == "" {
		t.Errorf("event seq = %#v, want a JSON number", events[0].(map[string]any)["seq"])
	}
	// Proto field names and enum names.
	st := objects["status"]
	if st["node_id"] != "coord-1" || st["raft_state"] != "leader" {
		t.Errorf("status -json = %v, want node_id coord-1 and raft_state leader", st)
	}
	hosts := objects["hosts"]["hosts"].([]any)
	h0 := hosts[0].(map[string]any)["host"].(map[string]any)
	apps := h0["apps"].([]any)
	if h0["id"] != "web-1" || apps[0].(map[string]any)["blue_version"] != "2.4.0" {
		t.Errorf("hosts -json first host = %v", h0)
	}
	// freeze list: schedules[i] belongs to windows[i], with its next
	// occurrences; the recurring window's fields are present.
	fz := objects["freezes"]
	ws, _ := fz["windows"].([]any)
	scheds, _ := fz["schedules"].([]any)
	if len(ws) != 2 || len(scheds) != 2 {
		t.Fatalf("freeze list -json: %d windows, %d schedules, want 2 and 2: %v", len(ws), len(scheds), fz)
	}
	w2, s2 := ws[1].(map[string]any), scheds[1].(map[string]any)
	if w2["cron"] != "0 18 * * FRI" || w2["duration_ms"] != json.Number("223200000") || w2["timezone"] != "Europe/Berlin" ||
		s2["window_id"] != "fz-2" || s2["active"] != true || len(s2["next"].([]any)) != 3 {
		t.Errorf("freeze list -json recurring window %v, schedule %v", w2, s2)
	}
	// One host: its HostView object, the latest heartbeat under "metrics".
	one := objects["one host"]
	m, _ := one["metrics"].(map[string]any)
	reqs, _ := m["requests"].([]any)
	if len(reqs) != 1 || reqs[0].(map[string]any)["requests"] != json.Number("480") || reqs[0].(map[string]any)["p99_ms"] != json.Number("23.5") {
		t.Errorf("hosts web-1 -json metrics = %v, want one request row with requests 480 and p99_ms 23.5", m)
	}
}

// Write commands send what the flags say, with the actor.
func TestWriteRequests(t *testing.T) {
	t.Setenv(EnvActor, "carol@ops")
	f := fixture()
	addr := startServer(t, f)
	spec := writeTemp(t, t.TempDir(), "api.hcl", "release {}")

	cases := []struct {
		name   string
		args   []string
		method string
		want   proto.Message
		stdout string
	}{
		{"submit", []string{"release", "submit", spec}, "SubmitRelease",
			&rollwavev1.SubmitReleaseRequest{SourceName: spec, Source: []byte("release {}"), Actor: "carol@ops"},
			"Release api-2.4.0 submitted: pending"},
		{"start", []string{"release", "start", spec}, "SubmitRelease",
			&rollwavev1.SubmitReleaseRequest{SourceName: spec, Source: []byte("release {}"), Start: true, Actor: "carol@ops"},
			"Release api-2.4.0 submitted: running"},
		{"pause", []string{"release", "pause", "r1", "-reason", "latency"}, "PauseRelease",
			&rollwavev1.ReleaseActionRequest{Id: "r1", Reason: "latency", Actor: "carol@ops"}, "Release r1: paused (latency)"},
		{"resume", []string{"release", "resume", "r1"}, "ResumeRelease",
			&rollwavev1.ReleaseActionRequest{Id: "r1", Actor: "carol@ops"}, "Release r1: running"},
		{"approve", []string{"release", "approve", "r1"}, "ApproveRelease",
			&rollwavev1.ReleaseActionRequest{Id: "r1", Actor: "carol@ops"}, "Release r1: running"},
		{"abort", []string{"release", "abort", "r1", "-reason", "superseded"}, "AbortRelease",
			&rollwavev1.ReleaseActionRequest{Id: "r1", Reason: "superseded", Actor: "carol@ops"}, "Release r1: aborted"},
		{"rollback", []string{"release", "rollback", "r1", "-reason=errors up"}, "RollbackRelease",
			&rollwavev1.ReleaseActionRequest{Id: "r1", Reason: "errors up", Actor: "carol@ops"}, "Release r1: rolling_back"},
		{"ack", []string{"release", "ack", "r1", "-reason", "paged"}, "AckRelease",
			&rollwavev1.ReleaseActionRequest{Id: "r1", Reason: "paged", Actor: "carol@ops"},
			"Release r1: rolled_back; failure acknowledged by carol@ops at 2026-11-29T12:00:00Z"},
		{"report of one app", []string{"report", "-app", "api", "-since", "12h"}, "Report",
			&rollwavev1.ReportRequest{App: "api", SinceUnixNano: nanos(testNow.Add(-12 * time.Hour))}, "APP"},
		{"report in days", []string{"report", "-since", "7d"}, "Report",
			&rollwavev1.ReportRequest{SinceUnixNano: nanos(testNow.Add(-7 * 24 * time.Hour))}, ""},
		{"promote", []string{"release", "promote", "r1", "-skip-bake", "-reason", "fix"}, "PromoteRelease",
			&rollwavev1.ReleaseActionRequest{Id: "r1", Reason: "fix", SkipBake: true, Actor: "carol@ops"}, "Release r1: running"},
		// A reason that looks like a flag stays the reason.
		{"reason like a flag", []string{"release", "pause", "r1", "-reason", "-json"}, "PauseRelease",
			&rollwavev1.ReleaseActionRequest{Id: "r1", Reason: "-json", Actor: "carol@ops"}, "Release r1: paused"},
		{"list filters", []string{"release", "list", "-app", "api", "-state", "running,paused", "-state", "rolled-back"}, "ListReleases",
			&rollwavev1.ListReleasesRequest{App: "api", States: []rollwavev1.ReleaseState{
				rollwavev1.ReleaseState_RELEASE_STATE_RUNNING, rollwavev1.ReleaseState_RELEASE_STATE_PAUSED, rollwavev1.ReleaseState_RELEASE_STATE_ROLLED_BACK,
			}}, ""},
		{"hosts by cell", []string{"hosts", "-cell", "eu-1a"}, "ListHosts", &rollwavev1.ListHostsRequest{Cell: "eu-1a"}, ""},
		{"hosts with metrics", []string{"hosts", "-metrics"}, "ListHosts", &rollwavev1.ListHostsRequest{Metrics: true}, ""},
		{"one host", []string{"hosts", "web-2"}, "ListHosts", &rollwavev1.ListHostsRequest{Host: "web-2", Metrics: true}, ""},
		// New cell: every value from the flags.
		{"cells set new", []string{"cells", "set", "us-1", "-risk", "4", "-criticality", "critical", "-users", "9"}, "SetCell",
			&rollwavev1.SetCellRequest{Cell: &rollwavev1.Cell{Name: "us-1", Risk: 4, Criticality: "critical", Users: 9}, Actor: "carol@ops"},
			"Cell us-1: risk 4, criticality critical, users 9"},
		// Existing cell: flags left out keep their values.
		{"cells set existing", []string{"cells", "set", "eu-1b", "-risk", "7"}, "SetCell",
			&rollwavev1.SetCellRequest{Cell: &rollwavev1.Cell{Name: "eu-1b", Risk: 7, Criticality: "high", Users: 50000}, Actor: "carol@ops"}, ""},
		{"cells delete", []string{"cells", "delete", "eu-1a"}, "DeleteCell",
			&rollwavev1.DeleteCellRequest{Name: "eu-1a", Actor: "carol@ops"}, "Deleted cell eu-1a"},
		{"remove peer by id", []string{"operator", "raft", "remove-peer", "-id", "coord-3"}, "RemovePeer",
			&rollwavev1.RemovePeerRequest{Id: "coord-3"}, "Removed peer coord-3"},
		{"freeze add", []string{"freeze", "add", "-from", "2026-12-24T00:00:00Z", "-to", "2026-12-27T01:00:00+01:00", "-reason", "holidays"}, "AddFreeze",
			&rollwavev1.AddFreezeRequest{FromUnixNano: 1798070400000000000, ToUnixNano: 1798329600000000000, Reason: "holidays", Actor: "carol@ops"},
			"Added freeze fz-1: 2026-12-24T00:00:00Z to 2026-12-27T00:00:00Z"},
		{"freeze add recurring", []string{"freeze", "add", "-cron", "0 18 * * FRI", "-duration", "62h", "-timezone", "Europe/Berlin",
			"-app", "api", "-cell", "eu-1a", "-cell", "eu-1b", "-reason", "weekend"}, "AddFreeze",
			&rollwavev1.AddFreezeRequest{Cron: "0 18 * * FRI", DurationMs: 223200000, Timezone: "Europe/Berlin",
				Apps: []string{"api"}, Cells: []string{"eu-1a", "eu-1b"}, Reason: "weekend", Actor: "carol@ops"},
			`Added freeze fz-1: "0 18 * * FRI" in Europe/Berlin for 62h0m0s`},
		{"override freeze", []string{"release", "override-freeze", "api-2.4.0", "-reason", "hotfix INC-7"}, "OverrideFreeze",
			&rollwavev1.ReleaseActionRequest{Id: "api-2.4.0", Reason: "hotfix INC-7", Actor: "carol@ops"},
			"Release api-2.4.0: running; freeze windows overridden by carol@ops at 2026-11-29T12:00:00Z: hotfix INC-7"},
		{"freeze remove", []string{"freeze", "remove", "fz-1"}, "RemoveFreeze",
			&rollwavev1.RemoveFreezeRequest{Id: "fz-1", Actor: "carol@ops"}, "Removed freeze fz-1"},
		{"freeze global on", []string{"freeze", "global", "on", "-reason", "incident"}, "SetGlobalFreeze",
			&rollwavev1.SetGlobalFreezeRequest{On: true, Reason: "incident", Actor: "carol@ops"}, "Global freeze on"},
		{"freeze global off", []string{"freeze", "global", "off"}, "SetGlobalFreeze",
			&rollwavev1.SetGlobalFreezeRequest{Actor: "carol@ops"}, "Global freeze off"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runAt(t, addr, tc.args...).expect(t, ExitOK)
			got := lastRequest[proto.Message](t, f, tc.method)
			if !proto.Equal(got, tc.want) {
				t.Errorf("request = %v\nwant      %v", got, tc.want)
			}
			if !strings.Contains(r.stdout, tc.stdout) {
				t.Errorf("stdout %q does not contain %q", r.stdout, tc.stdout)
			}
		})
	}
}

func TestActorDefault(t *testing.T) {
	t.Setenv(EnvActor, "")
	t.Setenv("USER", "dave")
	if a := actor(); !strings.HasPrefix(a, "dave@") || len(a) <= len("dave@") {
		t.Errorf("actor() = %q, want dave@<hostname>", a)
	}
}

// hosts takes at most one host id, without the list's filters; an unknown
// host exits NotFound.
func TestHostsArguments(t *testing.T) {
	addr := startServer(t, fixture())
	runAt(t, addr, "hosts", "web-1", "web-2").expect(t, ExitUsage)
	runAt(t, addr, "hosts", "web-1", "-cell", "eu-1a").expect(t, ExitUsage)
	r := runAt(t, addr, "hosts", "nope").expect(t, ExitNotFound)
	if !strings.Contains(r.stderr, `no host "nope"`) {
		t.Errorf("stderr %q does not name the missing host", r.stderr)
	}
}

// A bad -since is a usage error naming the flag, and no request is sent.
func TestReportSinceErrors(t *testing.T) {
	f := fixture()
	addr := startServer(t, f)
	for _, tc := range []struct{ since, want string }{
		{"3", "too short"}, // one character
		{"30m", "the unit must be d (days) or h (hours)"},
		{"1.5d", "not a whole number"},
		{"0d", "must be more than 0"},
		{"-3d", "must be more than 0"},
		{"99999d", "longer than 3660 days"},
		{"", "too short"},
	} {
		t.Run(tc.since, func(t *testing.T) {
			r := runAt(t, addr, "report", "-since="+tc.since).expect(t, ExitUsage)
			if !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "-since") {
				t.Errorf("stderr %q lacks %q", r.stderr, tc.want)
			}
		})
	}
	if n := len(f.requests("Report")); n != 0 {
		t.Fatalf("%d Report requests sent for bad -since values", n)
	}
}

// A bad recurring freeze window is a usage error naming what is wrong,
// and no request is sent.
func TestFreezeAddErrors(t *testing.T) {
	f := fixture()
	addr := startServer(t, f)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad field", []string{"-cron", "0 18 * * FRY", "-duration", "1h"}, `field 5 (day of week) "FRY"`},
		{"no duration", []string{"-cron", "@weekly"}, "-cron needs -duration"},
		{"bad duration", []string{"-cron", "@weekly", "-duration", "2 days"}, `invalid -duration "2 days"`},
		{"unknown zone", []string{"-cron", "@weekly", "-duration", "1h", "-timezone", "Mars/Olympus"}, `unknown timezone "Mars/Olympus"`},
		{"longer than the gap", []string{"-cron", "@daily", "-duration", "25h"}, "would never end"},
		{"cron with from", []string{"-cron", "@daily", "-duration", "1h", "-from", "2026-12-24T00:00:00Z"}, "takes no -from/-to"},
		{"timezone without cron", []string{"-from", "2026-12-24T00:00:00Z", "-to", "2026-12-25T00:00:00Z", "-timezone", "UTC"}, "go with -cron"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"freeze", "add", "-reason", "r"}, tc.args...)
			r := runAt(t, addr, args...).expect(t, ExitUsage)
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr %q lacks %q", r.stderr, tc.want)
			}
		})
	}
	runAt(t, addr, "release", "override-freeze", "api-2.4.0").expect(t, ExitUsage)
	if n := len(f.requests("AddFreeze")) + len(f.requests("OverrideFreeze")); n != 0 {
		t.Fatalf("%d requests sent for bad flags", n)
	}
}
