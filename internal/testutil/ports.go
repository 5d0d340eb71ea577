package testutil

import (
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
)

// This file is the one port picker of every test. Prefer not to pick at
// all: let the code under test bind port 0 and report its address, or
// hand it a listener. Pick only where a fixed port must be given (a child
// process, a config that is restarted on the same address), and then
// retry on EADDRINUSE with a fresh port (coordtest does).
//
// Why not "listen on :0, close, hand the port on": the kernel gives :0
// ports from the ephemeral range, the same range every outgoing connection
// on the machine takes its source port from; on a loaded machine one of
// them takes the port before the code under test binds it ("bind: address
// already in use").

// Ports below Linux's ephemeral range (32768–60999 by default) are never
// handed out for outgoing connections, so a port reserved here cannot be
// taken by some client socket between the check and the server's bind.
const (
	lowPort  = 20000
	highPort = 32000
)

// FreeAddr returns 127.0.0.1:PORT where PORT is below the ephemeral range,
// free for both TCP and UDP right now (memberlist binds both), and not
// handed out before in this process. The port is not held: the caller
// binds it, and may bind it again after a restart.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := PickFreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// PickFreeAddr is FreeAddr for programs without a test (the benchmarks):
// a random 127.0.0.1 port below the ephemeral range, free for TCP and UDP
// right now, or an error after 500 tries.
func PickFreeAddr() (string, error) {
	for i := 0; i < 500; i++ {
		port := lowPort + rand.IntN(highPort-lowPort)
		if !claim(port) {
			continue // handed out before in this process
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return addr, nil
	}
	return "", errors.New("no free loopback port found in 500 tries")
}

// FreePort is FreeAddr's port.
func FreePort(t testing.TB) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(FreeAddr(t))
	port, _ := strconv.Atoi(p)
	return port
}

// FreePorts returns n distinct free loopback ports (see FreeAddr).
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	out := make([]int, 0, n)
	for len(out) < n {
		out = append(out, FreePort(t))
	}
	return out
}

var (
	claimedMu sync.Mutex
	claimed   = map[int]bool{}
)

// claim records port as handed out and reports whether it was not before:
// parallel tests of one process never get the same port (a test that
// restarts something on its port keeps it).
func claim(port int) bool {
	claimedMu.Lock()
	defer claimedMu.Unlock()
	if claimed[port] {
		return false
	}
	claimed[port] = true
	return true
}
