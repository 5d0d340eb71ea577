package speccore

// The HTTP listener's address (addresses.http) on servers and agents.
// Ports follow the gRPC, raft and gossip ports (7420–7423): 7424 on a
// coordinator, 7425 on an agent, so both fit on one machine (the demo).
// Both default to loopback: without TLS the listener has no
// authentication, so exposing it is the operator's choice.
const (
	// DefaultServerHTTPAddr is a coordinator's default HTTP listener.
	DefaultServerHTTPAddr = "127.0.0.1:7424"
	// DefaultAgentHTTPAddr is an agent's default HTTP listener.
	DefaultAgentHTTPAddr = "127.0.0.1:7425"
	// HTTPOff (or "") as addresses.http turns the listener off.
	HTTPOff = "off"
)

// HTTPEnabled reports whether addr asks for an HTTP listener.
func HTTPEnabled(addr string) bool { return addr != "" && addr != HTTPOff }

// CheckHTTPAddr accepts "" and "off" (no listener) or a bind address.
func CheckHTTPAddr(ps *Problems, p, addr string) {
	if !HTTPEnabled(addr) {
		return
	}
	if msg := CheckHostPort(addr, 0); msg != "" {
		ps.Add(p, `%s (or "off" for no HTTP listener)`, msg)
	}
}

// HTTPBind is addr for the distinct-ports check, "" when off.
func HTTPBind(addr string) string {
	if !HTTPEnabled(addr) {
		return ""
	}
	return addr
}
