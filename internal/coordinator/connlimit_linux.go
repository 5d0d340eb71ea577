package coordinator

import (
	"io"
	"net"
	"syscall"

	"google.golang.org/grpc/mem"
)

// readyConn is a limitedConn over a TCP connection that grpc-go can read
// without pinning a buffer. grpc-go reads a bare *net.TCPConn only while
// data is ready, into a pooled buffer it gives back at once; any other
// net.Conn — limitedConn too — gets a bufio.Reader of ReadBufferSize
// (32 KiB) for the connection's lifetime, 32 MiB per 1,000 agents on the
// leader (docs/performance.md, "Coordinator memory"). grpc-go looks for
// the documented optional interface readyreader.Reader on the connection
// (ReadOnReady); its implementation for *net.TCPConn is in an internal
// package, so this is the same few lines over the connection's
// syscall.RawConn.
type readyConn struct {
	*limitedConn
	raw syscall.RawConn

	// One read at a time (grpc-go's reader goroutine): the state of the
	// current read lives here, so a read allocates nothing of its own.
	pool    mem.BufferPool
	bufSize int
	buf     *[]byte
	n       int
	err     error
	doRead  func(fd uintptr) bool
}

// wrapLimited returns c with release called on its first Close.
func wrapLimited(c net.Conn, release func()) net.Conn {
	lc := &limitedConn{Conn: c, release: release}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return lc
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return lc
	}
	rc := &readyConn{limitedConn: lc, raw: raw}
	rc.doRead = rc.readFD
	return rc
}

// readFD is one read attempt when the poller says fd is readable; false
// asks the poller to wait for the next readiness.
func (c *readyConn) readFD(fd uintptr) bool {
	c.buf = c.pool.Get(c.bufSize)
	c.n, c.err = syscall.Read(int(fd), *c.buf)
	if c.err != nil {
		c.pool.Put(c.buf)
		c.buf = nil
	}
	return c.err != syscall.EAGAIN && c.err != syscall.EWOULDBLOCK
}

// ReadOnReady waits until the connection is readable (or its read
// deadline passes), then reads up to bufSize bytes into a buffer from
// pool. The caller gives the buffer back to pool once consumed. A closed
// peer is io.EOF.
func (c *readyConn) ReadOnReady(bufSize int, pool mem.BufferPool) (*[]byte, int, error) {
	c.pool, c.bufSize = pool, bufSize
	err := c.raw.Read(c.doRead)
	buf, n, readErr := c.buf, c.n, c.err
	c.pool, c.buf, c.n, c.err = nil, nil, 0, nil
	switch {
	case err != nil: // deadline passed or connection closed while waiting
		if buf != nil {
			pool.Put(buf)
		}
		return nil, 0, err
	case readErr != nil:
		return nil, 0, readErr // its buffer went back in readFD
	case n == 0:
		pool.Put(buf)
		return nil, 0, io.EOF
	}
	return buf, n, nil
}
