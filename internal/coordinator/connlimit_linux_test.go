package coordinator

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/mem"
)

// readyReader is grpc-go's optional net.Conn interface
// (internal/transport/readyreader.Reader): a connection that has it is
// read without a per-connection bufio.Reader.
type readyReader interface {
	ReadOnReady(bufSize int, pool mem.BufferPool) (*[]byte, int, error)
}

// countingPool counts buffers taken and given back.
type countingPool struct {
	mem.BufferPool
	got, put atomic.Int64
}

func (p *countingPool) Get(n int) *[]byte { p.got.Add(1); return p.BufferPool.Get(n) }
func (p *countingPool) Put(b *[]byte)     { p.put.Add(1); p.BufferPool.Put(b) }

// A TCP connection through the limit listener keeps grpc-go's ready-read
// path: it reads what arrived into a pool buffer, gives every buffer back
// on errors, reports a passed deadline and the peer's close (io.EOF), and
// still gives its slot back on Close.
func TestLimitedTCPConnReadsOnReady(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newLimitListener(inner, Limits{RPCMaxConns: 1}, slog.New(slog.DiscardHandler))
	defer ln.Close()
	client, err := net.DialTimeout("tcp", inner.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	rr, ok := c.(readyReader)
	if !ok {
		t.Fatalf("accepted %T has no ReadOnReady: grpc-go would pin a 32 KiB bufio.Reader on it", c)
	}
	pool := &countingPool{BufferPool: mem.DefaultBufferPool()}

	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf, n, err := rr.ReadOnReady(64, pool)
	if err != nil || string((*buf)[:n]) != "hello" {
		t.Fatalf("ReadOnReady = %q, %v; want hello", (*buf)[:n], err)
	}
	pool.Put(buf)

	// Nothing to read and a deadline in the past: the deadline's error.
	if err := c.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := rr.ReadOnReady(64, pool); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadOnReady past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}

	// The peer closes: io.EOF.
	if err := c.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	client.Close()
	if _, _, err := rr.ReadOnReady(64, pool); err != io.EOF {
		t.Fatalf("ReadOnReady after the peer closed: %v, want io.EOF", err)
	}
	if got, put := pool.got.Load(), pool.put.Load(); got != put {
		t.Fatalf("%d buffers taken from the pool, %d given back", got, put)
	}

	if total, _ := ln.counts("127.0.0.1"); total != 1 {
		t.Fatalf("open connections %d before Close, want 1", total)
	}
	c.Close()
	c.Close()
	if total, _ := ln.counts("127.0.0.1"); total != 0 {
		t.Fatalf("open connections %d after Close, want 0", total)
	}
}
