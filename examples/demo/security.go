package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// security is the demo cluster's TLS material, gossip key and operator
// token: the demo runs secured, as production should.
type security struct {
	ca, serverCert, serverKey, agentCert, agentKey, cliCert, cliKey string
	gossipKey                                                       string
	token                                                           string
}

func (s security) serverArgs() []string {
	return []string{"-ca-file", s.ca, "-cert-file", s.serverCert, "-key-file", s.serverKey, "-encrypt", s.gossipKey, "-acl-enabled"}
}

func (s security) agentArgs() []string {
	return []string{"-ca-file", s.ca, "-cert-file", s.agentCert, "-key-file", s.agentKey, "-encrypt", s.gossipKey}
}

func (s security) cliEnv() []string {
	if s.ca == "" {
		return nil
	}
	env := []string{"ROLLWAVE_CACERT=" + s.ca, "ROLLWAVE_CLIENT_CERT=" + s.cliCert, "ROLLWAVE_CLIENT_KEY=" + s.cliKey}
	if s.token != "" {
		env = append(env, "ROLLWAVE_TOKEN="+s.token)
	}
	return env
}

// secure makes a CA, a certificate per role and a gossip key with the CLI,
// as an operator would.
func (d *demo) secure(ctx context.Context) error {
	d.say.section("Securing the cluster: a CA, a certificate per role, a gossip key")
	pki := filepath.Join(d.tmp, "pki")
	if err := d.show(ctx, "tls", "ca", "create", "-dir", pki); err != nil {
		return err
	}
	ca, caKey := filepath.Join(pki, "rollwave-ca.pem"), filepath.Join(pki, "rollwave-ca-key.pem")
	for _, kind := range []string{"server", "agent", "cli"} {
		args := []string{"tls", "cert", "create", "-" + kind, "-dir", pki, "-ca", ca, "-key", caKey}
		if kind == "agent" {
			// The agents serve /metrics over HTTPS on 127.0.0.1: their
			// certificate must name it, as a real agent's names its
			// host's address (server certificates name 127.0.0.1 anyway).
			args = append(args, "-additional-ipaddress", "127.0.0.1")
		}
		if err := d.show(ctx, args...); err != nil {
			return err
		}
	}
	name := func(kind, suffix string) string { return filepath.Join(pki, "global-"+kind+"-rollwave-0"+suffix) }
	d.sec = security{ca: ca,
		serverCert: name("server", ".pem"), serverKey: name("server", "-key.pem"),
		agentCert: name("agent", ".pem"), agentKey: name("agent", "-key.pem"),
		cliCert: name("cli", ".pem"), cliKey: name("cli", "-key.pem")}
	d.say.command("rollwave keygen")
	out, err := d.quiet(ctx, "keygen")
	if err != nil {
		return err
	}
	d.sec.gossipKey = strings.TrimSpace(string(out))
	d.say.output("(a 32-byte key, passed to every server and agent with -encrypt)")
	return nil
}

// bootstrapACL creates the admin token, then a deploy token the rest of
// the demo uses: operators do not roll out with the admin token.
func (d *demo) bootstrapACL(ctx context.Context) error {
	d.say.command("rollwave acl bootstrap")
	var boot rollwavev1.ACLTokenSecretResponse
	if err := d.cliJSON(ctx, &boot, "acl", "bootstrap", "-name", "demo-admin", "-json"); err != nil {
		return err
	}
	if boot.GetSecret() == "" {
		return fmt.Errorf("acl bootstrap returned no secret")
	}
	d.say.output("admin token created (its secret is shown once; the demo keeps it)")
	d.sec.token = boot.GetSecret()
	d.say.command("rollwave acl token create -name demo-operator -role deploy")
	var dep rollwavev1.ACLTokenSecretResponse
	if err := d.cliJSON(ctx, &dep, "acl", "token", "create", "-name", "demo-operator", "-role", "deploy", "-json"); err != nil {
		return err
	}
	d.sec.token = dep.GetSecret()
	d.say.command("export ROLLWAVE_TOKEN=<the demo-operator secret>")
	d.say.note("")
	d.say.note("Open the dashboard now to watch the releases as they run:")
	d.dashboardNote()
	return nil
}
