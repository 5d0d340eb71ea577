package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

func TestHTTPCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			io.WriteString(w, `{"status":"ok","version":"2.4.0"}`)
		case "/created":
			w.WriteHeader(http.StatusCreated)
		case "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "draining")
		case "/hang":
			<-r.Context().Done() // until the client gives up
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name    string
		cfg     HTTPConfig
		wantErr []string // substrings; nil means healthy
	}{
		// Any 2xx passes when no status is required.
		{"ok", HTTPConfig{Name: "api", URL: srv.URL + "/ok"}, nil},
		{"201 is 2xx", HTTPConfig{Name: "api", URL: srv.URL + "/created"}, nil},
		// The error names the check, the request and the status.
		{"503", HTTPConfig{Name: "api", URL: srv.URL + "/down"},
			[]string{"http check api: GET " + srv.URL + "/down: status 503, want 2xx"}},
		{"404", HTTPConfig{Name: "api", URL: srv.URL + "/nope"}, []string{"status 404, want 2xx"}},
		// An exact status must match exactly, even another 2xx.
		{"expect 201 ok", HTTPConfig{Name: "api", URL: srv.URL + "/created", ExpectStatus: 201}, nil},
		{"expect 201 got 200", HTTPConfig{Name: "api", URL: srv.URL + "/ok", ExpectStatus: 201}, []string{"status 200, want 201"}},
		{"expect 503", HTTPConfig{Name: "api", URL: srv.URL + "/down", ExpectStatus: 503}, nil},
		// Body match is a regexp searched in the body.
		{"body match", HTTPConfig{Name: "api", URL: srv.URL + "/ok", BodyMatch: `"status":\s*"ok"`}, nil},
		{"body mismatch", HTTPConfig{Name: "api", URL: srv.URL + "/ok", BodyMatch: `version":"3\.`},
			[]string{"body does not match", `2.4.0`}},
		// A hanging server times out with the configured timeout in the error.
		{"timeout", HTTPConfig{Name: "api", URL: srv.URL + "/hang", Timeout: 100 * time.Millisecond},
			[]string{"http check api", "timed out after 100ms"}},
		// No name: the URL names the check.
		{"default name", HTTPConfig{URL: srv.URL + "/down"}, []string{"http check " + srv.URL + "/down:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewHTTPCheck(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Run(testContext(t))
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("want healthy, got %v", err)
				}
				return
			}
			wantErrContains(t, err, tc.wantErr...)
		})
	}
}

func TestHTTPCheckConnectionRefused(t *testing.T) {
	addr := closedPort(t)
	c, err := NewHTTPCheck(HTTPConfig{Name: "api", URL: "http://" + addr + "/healthz"})
	if err != nil {
		t.Fatal(err)
	}
	wantErrContains(t, c.Run(testContext(t)), "http check api: GET http://"+addr+"/healthz:", "refused")
}

func TestNewHTTPCheckInvalid(t *testing.T) {
	tests := []struct {
		name string
		cfg  HTTPConfig
		want string
	}{
		{"no scheme", HTTPConfig{Name: "a", URL: "127.0.0.1:80/x"}, "url"},
		{"ftp", HTTPConfig{Name: "a", URL: "ftp://h/x"}, "want http:// or https://"},
		{"bad regexp", HTTPConfig{Name: "a", URL: "http://h/", BodyMatch: "("}, "body_match"},
		{"bad status", HTTPConfig{Name: "a", URL: "http://h/", ExpectStatus: 42}, "expect_status 42"},
		{"negative timeout", HTTPConfig{Name: "a", URL: "http://h/", Timeout: -1}, "timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewHTTPCheck(tc.cfg)
			wantErrContains(t, err, "http check a", tc.want)
		})
	}
}

func TestTCPCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	c, err := NewTCPCheck(ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(testContext(t)); err != nil {
		t.Fatalf("open port: %v", err)
	}

	addr := closedPort(t)
	c, err = NewTCPCheck(addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	wantErrContains(t, c.Run(testContext(t)), "tcp check "+addr, "refused")
	wantErrContains(t, WithName(c, "db").Run(testContext(t)), "tcp check db:", addr)

	_, err = NewTCPCheck("no-port", 0)
	wantErrContains(t, err, `address "no-port"`)
}

func TestExecCheck(t *testing.T) {
	tests := []struct {
		name    string
		argv    []string
		wantErr []string
	}{
		{"true", []string{"true"}, nil},
		{"false", []string{"false"}, []string{"exec check false: false: exit status 1"}},
		// Output (stdout and stderr) goes into the error.
		{"output", []string{"sh", "-c", "echo starting; echo 'db unreachable' >&2; exit 3"},
			[]string{"exit status 3", "starting", "db unreachable"}},
		{"missing binary", []string{"/nonexistent/rollwave-check"}, []string{"exec check /nonexistent/rollwave-check"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewExecCheck(tc.argv, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Run(testContext(t))
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("want healthy, got %v", err)
				}
				return
			}
			wantErrContains(t, err, tc.wantErr...)
		})
	}

	_, err := NewExecCheck(nil, 0)
	wantErrContains(t, err, "command is empty")
}

// TestExecCheckTimeoutKillsGroup runs a shell that starts a background
// sleep; on timeout the whole process group, grandchild included, must die.
func TestExecCheckTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	script := fmt.Sprintf("sleep 60 & echo $! > %s; echo waiting; wait", pidFile)
	c, err := NewExecCheck([]string{"sh", "-c", script}, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	c = WithName(c, "slow")
	err = c.Run(testContext(t))
	wantErrContains(t, err, "exec check slow:", "timed out after 300ms", "process group killed", "waiting")

	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		return processGone(pid), fmt.Sprintf("background sleep %d still running", pid)
	})
}

// processGone reports whether pid has exited (absent, or a zombie waiting
// for a reaper).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && len(b) > i+2 && b[i+2] == 'Z'
}

func TestTailBuffer(t *testing.T) {
	var tb tailBuffer
	tb.Write([]byte("head-"))
	tb.Write([]byte(strings.Repeat("x", maxExecOutput-5))) // 5+4091+3: three bytes too many
	tb.Write([]byte("END"))
	got := tb.String()
	if len(got) != maxExecOutput || !strings.HasSuffix(got, "xxxEND") || !strings.HasPrefix(got, "d-xx") {
		t.Fatalf("tail buffer kept %d bytes, prefix %q suffix %q", len(got), got[:5], got[len(got)-6:])
	}
	tb.Write([]byte(strings.Repeat("y", 2*maxExecOutput)))
	if got := tb.String(); got != strings.Repeat("y", maxExecOutput) {
		t.Fatalf("big write: kept %d bytes", len(got))
	}
}

func TestFuncCheck(t *testing.T) {
	boom := errors.New("unit rollwave-api-green.service is failed")
	c := NewFuncCheck("unit", func(context.Context) error { return boom })
	err := c.Run(testContext(t))
	if !errors.Is(err, boom) || err.Error() != "check unit: unit rollwave-api-green.service is failed" {
		t.Fatalf("got %v", err)
	}
	if c.Name() != "unit" || WithName(c, "u2").Name() != "u2" {
		t.Fatal("names")
	}
	wantErrContains(t, WithName(c, "u2").Run(testContext(t)), "check u2:")
	if err := NewFuncCheck("ok", func(context.Context) error { return nil }).Run(testContext(t)); err != nil {
		t.Fatal(err)
	}
}

func TestFromSpec(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	render := func(s string) string { return strings.ReplaceAll(s, "{{port}}", port) }

	c, interval, err := FromSpec(&rollwavev1.HealthCheck{
		Kind: "http", Name: "api", Url: "http://127.0.0.1:{{port}}/healthz", IntervalMs: 2000, TimeoutMs: 1000,
	}, render)
	if err != nil {
		t.Fatal(err)
	}
	if interval != 2*time.Second || c.Name() != "api" {
		t.Fatalf("interval %s name %q", interval, c.Name())
	}
	if err := c.Run(testContext(t)); err != nil {
		t.Fatalf("rendered url: %v", err)
	}

	c, _, err = FromSpec(&rollwavev1.HealthCheck{Kind: "tcp", Address: "127.0.0.1:{{port}}"}, render)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "tcp" {
		t.Fatalf("unnamed check is named after its kind, got %q", c.Name())
	}
	if err := c.Run(testContext(t)); err != nil {
		t.Fatal(err)
	}

	c, interval, err = FromSpec(&rollwavev1.HealthCheck{Kind: "exec", Name: "probe", Command: []string{"sh", "-c", "test {{port}} = " + port}}, render)
	if err != nil {
		t.Fatal(err)
	}
	if interval != DefaultInterval {
		t.Fatalf("default interval %s", interval)
	}
	if err := c.Run(testContext(t)); err != nil {
		t.Fatalf("rendered argv: %v", err)
	}

	// Timeout defaults to DefaultTimeout capped at the interval.
	c, _, err = FromSpec(&rollwavev1.HealthCheck{Kind: "tcp", Name: "t", Address: "h:1", IntervalMs: 500}, nil)
	if err != nil || c.(*tcpCheck).timeout != 500*time.Millisecond {
		t.Fatalf("timeout cap: %v %v", err, c)
	}

	_, _, err = FromSpec(&rollwavev1.HealthCheck{Kind: "unit", Name: "svc"}, nil)
	if !errors.Is(err, ErrUnitCheck) {
		t.Fatalf("unit: %v", err)
	}
	_, _, err = FromSpec(&rollwavev1.HealthCheck{Kind: "smtp", Name: "g"}, nil)
	wantErrContains(t, err, `health check g: unknown kind "smtp"`)
	_, _, err = FromSpec(&rollwavev1.HealthCheck{Kind: "http", Name: "h", Url: "http://x/", IntervalMs: -1}, nil)
	wantErrContains(t, err, "interval")
	_, _, err = FromSpec(&rollwavev1.HealthCheck{Kind: "http", Name: "h", Url: "::bad"}, nil)
	wantErrContains(t, err, "http check h")
	_, _, err = FromSpec(nil, nil)
	wantErrContains(t, err, "nil")
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
