package footprint

import (
	"math/rand/v2"
	"net"
	"strconv"
)

// tryFreeAddr returns a random 127.0.0.1 port below the ephemeral range if
// it is free for TCP and UDP right now.
func tryFreeAddr() (string, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(20000+rand.IntN(12000)))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	u, err := net.ListenPacket("udp", addr)
	l.Close()
	if err != nil {
		return "", err
	}
	u.Close()
	return addr, nil
}
