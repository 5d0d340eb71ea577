//go:build !linux

package coordinator

import "net"

// wrapLimited returns c with release called on its first Close. Only
// Linux has the ready-read path (connlimit_linux.go).
func wrapLimited(c net.Conn, release func()) net.Conn {
	return &limitedConn{Conn: c, release: release}
}
