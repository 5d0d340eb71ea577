package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
)

// Role is what a certificate allows its holder to be.
type Role string

// Roles, as the first label of the certificate name <role>.<region>.<domain>.
const (
	RoleServer Role = "server"
	RoleAgent  Role = "agent"
	RoleCLI    Role = "cli"
)

// ErrNoRole is returned (wrapped) by PeerRole when the peer presented no
// verified certificate carrying a role name.
var ErrNoRole = errors.New("no verified peer certificate with a rollwave role")

// ParseRole accepts "server", "agent" or "cli".
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleServer, RoleAgent, RoleCLI:
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q: want server, agent or cli", s)
}

func isRoleLabel(s string) bool {
	_, err := ParseRole(s)
	return err == nil
}

// Identity is what a certificate's role name says.
type Identity struct {
	Role   Role
	Region string
	Domain string
}

// Name returns "<role>.<region>.<domain>".
func (id Identity) Name() string { return RoleName(id.Role, id.Region, id.Domain) }

// CertIdentity reads the role name from cert's DNS names: the one of the
// form <role>.<region>.<domain> whose first label is server, agent or cli.
// A certificate with none, or with role names that disagree, has no
// identity (CreateCert never issues such certificates).
func CertIdentity(cert *x509.Certificate) (Identity, error) {
	var found *Identity
	for _, name := range cert.DNSNames {
		first, rest, ok := strings.Cut(name, ".")
		if !ok || !isRoleLabel(first) {
			continue
		}
		region, domain, ok := strings.Cut(rest, ".")
		if !ok || region == "" || domain == "" {
			continue
		}
		id := Identity{Role: Role(first), Region: region, Domain: domain}
		if found != nil && *found != id {
			return Identity{}, fmt.Errorf("%w: certificate names both %s and %s", ErrNoRole, found.Name(), id.Name())
		}
		found = &id
	}
	if found == nil {
		return Identity{}, fmt.Errorf("%w: certificate %q has no <role>.<region>.<domain> name", ErrNoRole, cert.Subject.CommonName)
	}
	return *found, nil
}

// PeerIdentity returns the identity of the verified leaf certificate of a
// connection. Only chains verified during the handshake count (the state a
// server built by ServerTLSConfig has, since it verifies client
// certificates); an unverified peer certificate yields ErrNoRole.
func PeerIdentity(state tls.ConnectionState) (Identity, error) {
	if len(state.VerifiedChains) == 0 || len(state.VerifiedChains[0]) == 0 {
		return Identity{}, fmt.Errorf("%w: the peer presented no verified certificate", ErrNoRole)
	}
	return CertIdentity(state.VerifiedChains[0][0])
}

// PeerRole returns the role of a connection's verified peer certificate:
// server.<region>.<domain> → RoleServer, and so on. Services authorize by
// it (see UnaryAuthorizer).
func PeerRole(state tls.ConnectionState) (Role, error) {
	id, err := PeerIdentity(state)
	if err != nil {
		return "", err
	}
	return id.Role, nil
}
