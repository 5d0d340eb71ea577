package testutil

import (
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
)

// Ports below Linux's ephemeral range (32768–60999 by default) are never
// handed out for outgoing connections, so a port reserved here cannot be
// taken by some client socket between the check and the server's bind.
const (
	lowPort  = 20000
	highPort = 32000
)

// FreeAddr returns 127.0.0.1:PORT where PORT is free for both TCP and UDP
// right now (memberlist binds both). The port is not held: the caller binds
// it, and may bind it again after a restart.
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
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(lowPort+rand.IntN(highPort-lowPort)))
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

// FreePorts returns n distinct free loopback ports (see FreeAddr).
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	seen := map[int]bool{}
	var out []int
	for len(out) < n {
		_, p, _ := net.SplitHostPort(FreeAddr(t))
		port, _ := strconv.Atoi(p)
		if !seen[port] {
			seen[port] = true
			out = append(out, port)
		}
	}
	return out
}
