//go:build linux

package slot

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
	"go.uber.org/goleak"
)

// testArtifact is the test app (testdata/httpd) packaged as a tarball.
var testArtifact struct {
	bin  string // the built binary
	url  string // file:// URL of httpd.tar.gz
	sha  string
	data []byte
}

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "slot-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "httpd")
	build := exec.Command("go", "build", "-o", bin, "./testdata/httpd")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building testdata/httpd:", err)
		return 1
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	data := tarGz([]tarEntry{{name: "bin/", dir: true}, {name: "bin/httpd", body: exe, mode: 0o755}})
	p := filepath.Join(dir, "httpd.tar.gz")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	testArtifact.bin, testArtifact.url, testArtifact.sha, testArtifact.data = bin, "file://"+p, sha256Hex(data), data
	code := m.Run()
	if code == 0 {
		// Every goroutine a test started (units' waiters, proxies, health
		// trackers) is gone when the tests end.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// tarEntry describes one entry of a test tarball.
type tarEntry struct {
	name     string
	body     []byte
	mode     int64
	dir      bool
	symlink  string
	hardlink string
	typ      byte // overrides the type (devices)
}

func tarGz(entries []tarEntry) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		switch {
		case e.typ != 0:
			h.Typeflag, h.Size = e.typ, 0
		case e.dir:
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		case e.symlink != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.symlink, 0
		case e.hardlink != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, e.hardlink, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			panic(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write(e.body); err != nil {
				panic(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	if err := gz.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// freePort returns a loopback port for a slot or the proxy: the test
// gives it to the app (a child process) and to the spec, so it cannot let
// the code bind port 0; testutil picks it below the ephemeral range and
// never twice in this process.
func freePort(t *testing.T) int { return testutil.FreePort(t) }

func newTestDriver(t *testing.T) *ProcessDriver {
	t.Helper()
	d, err := NewProcessDriver(ProcessConfig{Logger: testutil.Logger(t), SettleTime: 100 * time.Millisecond, StopTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// progress records OnProgress calls.
type progress struct {
	mu  sync.Mutex
	evs []progressEvent
}

type progressEvent struct {
	app      string
	gen      uint64
	state    rollwavev1.AssignmentState
	reason   string
	evidence map[string]string
}

func (p *progress) add(app string, gen uint64, st rollwavev1.AssignmentState, reason string, evidence map[string]string) {
	p.mu.Lock()
	p.evs = append(p.evs, progressEvent{app, gen, st, reason, evidence})
	p.mu.Unlock()
}

// states returns the states reported for gen, in order.
func (p *progress) states(gen uint64) []rollwavev1.AssignmentState {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []rollwavev1.AssignmentState
	for _, e := range p.evs {
		if e.gen == gen {
			out = append(out, e.state)
		}
	}
	return out
}

// all returns the reports for gen, in order.
func (p *progress) all(gen uint64) []progressEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []progressEvent
	for _, e := range p.evs {
		if e.gen == gen {
			out = append(out, e)
		}
	}
	return out
}

func (p *progress) last(gen uint64) progressEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.evs) - 1; i >= 0; i-- {
		if p.evs[i].gen == gen {
			return p.evs[i]
		}
	}
	return progressEvent{}
}

// env is one host: a data dir, ports, a driver and a manager.
type env struct {
	t                 *testing.T
	dataDir           string
	blue, green, prox int
	drv               *ProcessDriver
	m                 *Manager
	prog              *progress
}

const testApp = "web"

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dataDir: t.TempDir(), blue: freePort(t), green: freePort(t), prox: freePort(t)}
	e.restart(newTestDriver(t))
	return e
}

// restart builds a new Manager (and uses drv) on the same data dir.
func (e *env) restart(drv *ProcessDriver) {
	e.t.Helper()
	e.drv = drv
	e.prog = &progress{}
	m, err := NewManager(ManagerConfig{
		DataDir: e.dataDir, Driver: drv, Logger: testutil.Logger(e.t),
		OnProgress: e.prog.add,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.m = m
	e.t.Cleanup(func() { m.Close() })
}

func (e *env) proxyAddr() string { return fmt.Sprintf("127.0.0.1:%d", e.prox) }

// spec is a release spec for the test app.
func (e *env) spec(version string) *rollwavev1.ReleaseSpec {
	return &rollwavev1.ReleaseSpec{
		Name: testApp + "-" + version, App: testApp, Version: version,
		Artifact: &rollwavev1.Artifact{Url: testArtifact.url, Sha256: testArtifact.sha},
		Unit: &rollwavev1.UnitSpec{
			ExecStart:   "{{slot_dir}}/bin/httpd -version {{version}}",
			Environment: map[string]string{"APP_SLOT": "{{slot}}"},
		},
		Slots:   &rollwavev1.SlotsSpec{BluePort: int32(e.blue), GreenPort: int32(e.green), KeepOld: "hot"},
		Traffic: &rollwavev1.TrafficSpec{Mode: "proxy", Listen: e.proxyAddr()},
		Health:  &rollwavev1.HealthSpec{HealthyDeadlineMs: 10_000},
	}
}

func assignment(gen uint64, version string) *rollwavev1.Assignment {
	return &rollwavev1.Assignment{App: testApp, Generation: gen, Version: version}
}

func (e *env) swap(gen uint64, spec *rollwavev1.ReleaseSpec) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return e.m.Swap(ctx, assignment(gen, spec.Version), spec, httpReady)
}

func (e *env) mustSwap(gen uint64, version string) {
	e.t.Helper()
	if err := e.swap(gen, e.spec(version)); err != nil {
		e.t.Fatalf("swap to %s (generation %d): %v", version, gen, err)
	}
}

// httpReady is the readiness check: GET /healthz answers 200.
func httpReady(ctx context.Context, port int) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// get fetches / over a fresh connection.
func get(addr string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// waitBody waits until addr answers / with want.
func waitBody(t *testing.T, addr, want string) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, func() (bool, string) {
		got, err := get(addr)
		if err != nil {
			return false, err.Error()
		}
		return got == want, fmt.Sprintf("got %q, want %q", got, want)
	})
}

// mustBody checks that addr answers / with want right now.
func mustBody(t *testing.T, addr, want string) {
	t.Helper()
	got, err := get(addr)
	if err != nil || got != want {
		t.Fatalf("GET %s = %q, %v; want %q", addr, got, err, want)
	}
}

// keepAlive is one HTTP/1.1 connection reused for several requests.
type keepAlive struct {
	c net.Conn
	r *bufio.Reader
}

func dialKeepAlive(t *testing.T, addr string) *keepAlive {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keepAlive{c: c, r: bufio.NewReader(c)}
}

func (k *keepAlive) get(t *testing.T) string {
	t.Helper()
	_ = k.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(k.c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// running lists the slots whose unit runs.
func (e *env) running() []Name {
	var out []Name
	for _, n := range []Name{Blue, Green} {
		if us, _ := e.drv.Status(context.Background(), testApp, n); us.Running() {
			out = append(out, n)
		}
	}
	return out
}

func (e *env) state() State {
	e.t.Helper()
	st, ok := e.m.AppState(testApp)
	if !ok {
		e.t.Fatal("no state for the app")
	}
	return st
}

var errTestCrash = errors.New("simulated kill -9")
