//go:build e2e

package fleet

// Secured reports whether the coordinators run secured (mutual TLS,
// gossip key, ACLs) and, if so, the CA file and the certificate and key
// files issued for role ("server", "agent" or "cli"), for tests that play
// an attacker holding one of them (raft_forgery_test.go).
func (cs *Coordinators) Secured(role string) (ca, cert, key string, ok bool) {
	if cs.pki == nil {
		return "", "", "", false
	}
	p := cs.pki
	switch role {
	case "server":
		return p.ca, p.serverCert, p.serverKey, true
	case "agent":
		return p.ca, p.agentCert, p.agentKey, true
	case "cli":
		return p.ca, p.cliCert, p.cliKey, true
	}
	return "", "", "", false
}
