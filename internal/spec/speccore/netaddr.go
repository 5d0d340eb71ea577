package speccore

import (
	"fmt"
	"net"
	"strconv"
)

// CheckHostPort returns why addr is not host:port with a port in
// [minPort, 65535], or "". An empty host means all interfaces.
func CheckHostPort(addr string, minPort int) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf(`expected host:port such as "127.0.0.1:8080" or ":8080", got %q`, addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < minPort || n > 65535 {
		return fmt.Sprintf("port must be a number from %d to 65535, got %q in %q", minPort, port, addr)
	}
	if !validHost(host) {
		return fmt.Sprintf("host %q in %q is neither an IP address nor a host name", host, addr)
	}
	return ""
}

// checkAdvertise returns why addr cannot be advertised to peers, or "":
// peers need a concrete host and port to dial.
func checkAdvertise(addr string) string {
	if msg := CheckHostPort(addr, 1); msg != "" {
		return msg
	}
	host, _, _ := net.SplitHostPort(addr)
	if host == "" {
		return fmt.Sprintf("an advertised address needs a host peers can dial, got %q", addr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Sprintf("an advertised address cannot be the unspecified address, got %q", addr)
	}
	return ""
}

// validHost accepts "", an IP address or an RFC 1123 host name.
func validHost(h string) bool {
	if h == "" || net.ParseIP(h) != nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
			continue
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_':
			if label == 0 {
				return false
			}
		default:
			return false
		}
		label++
		if label > 63 {
			return false
		}
	}
	return true
}
