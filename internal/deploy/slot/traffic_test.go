package slot

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollwave/rollwave/internal/testutil"
)

// echoBackend greets each connection with "<name>\n" and then echoes
// lines prefixed with its name.
func echoBackend(t *testing.T, name string) int {
	t.Helper()
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
			go func() {
				defer c.Close()
				io.WriteString(c, name+"\n")
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					io.WriteString(c, name+":"+line)
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

type lineConn struct {
	net.Conn
	r *bufio.Reader
}

func dialLine(t *testing.T, addr string) *lineConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return &lineConn{Conn: c, r: bufio.NewReader(c)}
}

func (c *lineConn) line() (string, error) {
	s, err := c.r.ReadString('\n')
	return strings.TrimSuffix(s, "\n"), err
}

func (c *lineConn) mustLine(t *testing.T, want string) {
	t.Helper()
	got, err := c.line()
	if err != nil || got != want {
		t.Fatalf("read %q, %v; want %q", got, err, want)
	}
}

func newTestProxy(t *testing.T, opts ...ProxyOption) *Proxy {
	t.Helper()
	p, err := NewProxy("127.0.0.1:0", testutil.Logger(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestProxySwitchKeepsInFlightConnections(t *testing.T) {
	t.Parallel()
	a, b := echoBackend(t, "A"), echoBackend(t, "B")
	p := newTestProxy(t)
	if _, ok := p.Current(); ok {
		t.Fatal("Current reports a slot before Point")
	}
	ctx := context.Background()
	if err := p.Point(ctx, Blue, a); err != nil {
		t.Fatal(err)
	}
	c1 := dialLine(t, p.Addr().String())
	c1.mustLine(t, "A")

	if err := p.Point(ctx, Green, b); err != nil {
		t.Fatal(err)
	}
	if cur, ok := p.Current(); !ok || cur != Green {
		t.Fatalf("Current = %s, %v", cur, ok)
	}
	c2 := dialLine(t, p.Addr().String())
	c2.mustLine(t, "B")
	// The connection opened before the switch still talks to A.
	io.WriteString(c1, "hello\n")
	c1.mustLine(t, "A:hello")
	io.WriteString(c2, "hello\n")
	c2.mustLine(t, "B:hello")
}

func TestProxyNoBackendClosesConnections(t *testing.T) {
	t.Parallel()
	p := newTestProxy(t)
	c := dialLine(t, p.Addr().String())
	if _, err := c.line(); err == nil {
		t.Fatal("connection without a backend was not closed")
	}
}

func TestProxyBoundsConnections(t *testing.T) {
	t.Parallel()
	p := newTestProxy(t, WithMaxConns(2))
	if err := p.Point(context.Background(), Blue, echoBackend(t, "A")); err != nil {
		t.Fatal(err)
	}
	c1 := dialLine(t, p.Addr().String())
	c1.mustLine(t, "A")
	c2 := dialLine(t, p.Addr().String())
	c2.mustLine(t, "A")
	// The third is accepted and closed at once.
	c3 := dialLine(t, p.Addr().String())
	if got, err := c3.line(); err == nil {
		t.Fatalf("connection over the limit got %q", got)
	}
	// Once one closes, a new connection is served again.
	c1.Close()
	testutil.WaitFor(t, 5*time.Second, func() (bool, string) {
		c, err := net.Dial("tcp", p.Addr().String())
		if err != nil {
			return false, err.Error()
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		got, err := bufio.NewReader(c).ReadString('\n')
		return got == "A\n", "got " + got + " " + errString(err)
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestProxyIdleTimeout(t *testing.T) {
	t.Parallel()
	p := newTestProxy(t, WithIdleTimeout(100*time.Millisecond))
	if err := p.Point(context.Background(), Blue, echoBackend(t, "A")); err != nil {
		t.Fatal(err)
	}
	c := dialLine(t, p.Addr().String())
	c.mustLine(t, "A")
	// Nothing more is sent: the proxy closes the idle connection.
	if got, err := c.line(); err == nil {
		t.Fatalf("idle connection still open, read %q", got)
	}
}

func TestProxyCloseEndsConnections(t *testing.T) {
	t.Parallel()
	p, err := NewProxy("127.0.0.1:0", testutil.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Point(context.Background(), Blue, echoBackend(t, "A")); err != nil {
		t.Fatal(err)
	}
	c := dialLine(t, p.Addr().String())
	c.mustLine(t, "A")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.line(); err == nil {
		t.Fatal("connection survived Close")
	}
	if _, err := net.Dial("tcp", p.Addr().String()); err == nil {
		t.Fatal("proxy still listening after Close")
	}
}

func TestExecSwitch(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "lb")
	s, err := NewExecSwitch([]string{"sh", "-c", `echo "$1 $2" > "$3"`, "hook", "{{slot}}", "{{port}}", out})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Point(context.Background(), Green, 8082); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if string(b) != "green 8082\n" {
		t.Fatalf("hook wrote %q", b)
	}
	if cur, ok := s.Current(); !ok || cur != Green {
		t.Fatalf("Current = %s, %v", cur, ok)
	}

	fail, err := NewExecSwitch([]string{"sh", "-c", "echo no balancer >&2; exit 3"})
	if err != nil {
		t.Fatal(err)
	}
	err = fail.Point(context.Background(), Blue, 1)
	if !errors.Is(err, ErrSwitch) || !strings.Contains(err.Error(), "no balancer") {
		t.Fatalf("failing hook: %v", err)
	}
	if _, ok := fail.Current(); ok {
		t.Fatal("a failed hook counts as switched")
	}
	if _, err := NewExecSwitch([]string{"hook", "{{prot}}"}); !errors.Is(err, ErrTemplate) {
		t.Fatalf("unknown placeholder: %v", err)
	}
	if _, err := NewExecSwitch(nil); err == nil {
		t.Fatal("empty hook accepted")
	}
}

func TestNoneSwitch(t *testing.T) {
	s := NewNoneSwitch()
	if _, ok := s.Current(); ok {
		t.Fatal("current before point")
	}
	_ = s.Point(context.Background(), Blue, 1)
	if cur, ok := s.Current(); !ok || cur != Blue {
		t.Fatalf("Current = %s, %v", cur, ok)
	}
}
