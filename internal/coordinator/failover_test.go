package coordinator

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestRaftStreamReportsEndedConnections(t *testing.T) {
	s, err := newRaftStream("127.0.0.1:0", nil, raftNetHooks{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := s.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	client, err := s.Dial(raft.ServerAddress(s.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	server := <-accepted
	go func() { _, _ = server.Read(make([]byte, 1)) }()
	client.Close()
	select {
	case <-s.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the peer's close was not reported")
	}
	server.Close()
}

func TestRaftStreamRefusesUnadvertisableAddress(t *testing.T) {
	if s, err := newRaftStream("0.0.0.0:0", nil, raftNetHooks{}); err == nil {
		s.Close()
		t.Fatal("a wildcard bind address without advertise.raft was accepted")
	}
}

func TestProbeRaftPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := probeRaftPort(addr, nil); err != nil {
		t.Fatalf("listening port: %v", err)
	}
	ln.Close()
	if err := probeRaftPort(addr, nil); !errors.Is(err, errRaftPortRefused) {
		t.Fatalf("closed port: %v, want a refusal", err)
	}
	// A listener that accepts and closes at once (a server being killed
	// resets the connections its kernel had completed).
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if err := probeRaftPort(ln.Addr().String(), nil); !errors.Is(err, errRaftPortRefused) {
		t.Fatalf("a port that closes every connection: %v, want a refusal", err)
	}
}

// A probe whose dial times out (a lossy link drops the SYN) proves nothing
// about the leader process: it is an error, but not a refusal.
func TestProbeRaftPortTimeoutIsNotARefusal(t *testing.T) {
	timeout := func(addr string, d time.Duration) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: timeoutError{}}
	}
	err := probeRaftPort("127.0.0.1:1", timeout)
	if err == nil || errors.Is(err, errRaftPortRefused) {
		t.Fatalf("timed-out dial: %v, want an error that is not a refusal", err)
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// A dial reset while connecting (the leader's listener closed with the
// connection in its queue: seen when the probe raced the kill) is a
// refusal too, or that follower would wait out raft's own timeouts.
func TestProbeRaftPortResetWhileConnectingIsARefusal(t *testing.T) {
	reset := func(addr string, d time.Duration) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNRESET)}
	}
	if err := probeRaftPort("127.0.0.1:1", reset); !errors.Is(err, errRaftPortRefused) {
		t.Fatalf("dial reset by peer: %v, want a refusal", err)
	}
}
