//go:build e2e

package fleet

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/rollwave/rollwave/internal/tlsutil"
	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// The fleet runs secured as an operator would run it in production: mutual
// TLS on every gRPC link, encrypted gossip, ACL tokens on the operator
// API. ROLLWAVE_E2E_INSECURE=1 runs everything in the clear instead (to
// tell a security problem from another one).
func secureMode() bool { return os.Getenv("ROLLWAVE_E2E_INSECURE") == "" }

// pki is the fleet's certificates and gossip key.
type pki struct {
	dir                   string
	ca                    string
	serverCert, serverKey string
	agentCert, agentKey   string
	cliCert, cliKey       string
	gossipKey             string
	token                 string // the bootstrap (admin) token's secret
}

// newPKI makes a CA, one certificate per role and a gossip key in dir.
func newPKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ca, err := tlsutil.CreateCA(tlsutil.CAOptions{Dir: dir})
	if err != nil {
		return nil, fmt.Errorf("create CA: %w", err)
	}
	p := &pki{dir: dir, ca: ca.CertFile}
	for _, r := range []struct {
		role      tlsutil.Role
		cert, key *string
	}{
		{tlsutil.RoleServer, &p.serverCert, &p.serverKey},
		{tlsutil.RoleAgent, &p.agentCert, &p.agentKey},
		{tlsutil.RoleCLI, &p.cliCert, &p.cliKey},
	} {
		g, err := tlsutil.CreateCert(tlsutil.CertOptions{CAFile: ca.CertFile, CAKeyFile: ca.KeyFile, Kind: r.role, Dir: dir})
		if err != nil {
			return nil, fmt.Errorf("create %s certificate: %w", r.role, err)
		}
		*r.cert, *r.key = g.CertFile, g.KeyFile
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	p.gossipKey = base64.StdEncoding.EncodeToString(key)
	return p, nil
}

// serverArgs are the security flags of `rollwave server`.
func (p *pki) serverArgs() []string {
	return []string{"-ca-file", p.ca, "-cert-file", p.serverCert, "-key-file", p.serverKey,
		"-encrypt", p.gossipKey, "-acl-enabled"}
}

// cliEnv is what the CLI needs to talk to a secured cluster.
func (p *pki) cliEnv() []string {
	env := []string{"ROLLWAVE_CACERT=" + p.ca, "ROLLWAVE_CLIENT_CERT=" + p.cliCert, "ROLLWAVE_CLIENT_KEY=" + p.cliKey}
	if p.token != "" {
		env = append(env, "ROLLWAVE_TOKEN="+p.token)
	}
	return env
}

// bootstrapACL creates the admin token the harness uses from then on.
func (cs *Coordinators) bootstrapACL() error {
	out, errOut, err := cs.CLI("acl", "bootstrap", "-name", "e2e-admin", "-json")
	if err != nil {
		return fmt.Errorf("acl bootstrap: %w: %s", err, errOut)
	}
	var resp rollwavev1.ACLTokenSecretResponse
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal([]byte(out), &resp); err != nil {
		return fmt.Errorf("decode acl bootstrap -json: %w\n%s", err, out)
	}
	if resp.GetSecret() == "" {
		return fmt.Errorf("acl bootstrap returned no secret:\n%s", out)
	}
	cs.pki.token = resp.GetSecret()
	return nil
}

// Agent-side paths of the TLS material inside a host.
const (
	hostCA   = "/etc/rollwave/rollwave-ca.pem"
	hostCert = "/etc/rollwave/agent.pem"
	hostKey  = "/etc/rollwave/agent-key.pem"
)

// installAgentTLS copies the CA and the agent certificate into h.
func (p *pki) installAgentTLS(h *Host) error {
	for _, f := range []struct {
		src, dst string
		mode     os.FileMode
	}{{p.ca, hostCA, 0o644}, {p.agentCert, hostCert, 0o644}, {p.agentKey, hostKey, 0o600}} {
		b, err := os.ReadFile(f.src)
		if err != nil {
			return err
		}
		if err := h.WriteFile(f.dst, b, f.mode); err != nil {
			return fmt.Errorf("%s: write %s: %w", h.Name, f.dst, err)
		}
	}
	return nil
}

// agentConfigBlock is the agent.hcl part for a secured fleet. hostRegion:
// the host has a region of its own (AgentOptions.Region), so the tls
// block names the certificates' region (the default one).
func (p *pki) agentConfigBlock(hostRegion bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "encrypt = %q\n", p.gossipKey)
	fmt.Fprintf(&b, "tls {\n  ca_file   = %q\n  cert_file = %q\n  key_file  = %q\n", hostCA, hostCert, hostKey)
	if hostRegion {
		fmt.Fprintf(&b, "  region    = %q\n", tlsutil.DefaultRegion)
	}
	b.WriteString("}\n")
	return b.String()
}
