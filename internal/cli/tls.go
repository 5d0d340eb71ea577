package cli

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/rollwave/rollwave/internal/tlsutil"
)

// `rollwave tls …` creates the cluster's certificates locally; it talks to
// no coordinator.

func newTLSCommand() *cobra.Command {
	cmd := makeGroup(&cobra.Command{
		Use:   "tls",
		Short: "Create the cluster CA and certificates for servers, agents and the CLI",
		Long: `Create the TLS material rollwave uses for mutual TLS between coordinators,
agents and the CLI: one CA per cluster, and a certificate per part whose name
says its role (server.<region>.<domain>, agent.<region>.<domain>,
cli.<region>.<domain>). These commands work on local files only.`,
	})
	ca := makeGroup(&cobra.Command{Use: "ca", Short: "Create the cluster certificate authority"})
	ca.AddCommand(newTLSCACreateCommand())
	cert := makeGroup(&cobra.Command{Use: "cert", Short: "Create certificates signed by the cluster CA"})
	cert.AddCommand(newTLSCertCreateCommand())
	cmd.AddCommand(ca, cert)
	return cmd
}

func newTLSCACreateCommand() *cobra.Command {
	var (
		opts           tlsutil.CAOptions
		nameConstraint bool
		permitted      []string
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a new certificate authority",
		Long: `Create a self-signed ECDSA P-256 certificate authority, written as
<domain>-ca.pem and <domain>-ca-key.pem (mode 0600) in -dir. Existing files
are never overwritten. Keep the key offline: whoever holds it can mint
server certificates, and so command every agent.`,
		Example: `  rollwave tls ca create
  rollwave tls ca create -domain corp -days 3650 -dir /etc/rollwave/tls`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Days <= 0 {
				return usageErrorf("invalid -days %d: must be positive", opts.Days)
			}
			if !nameConstraint && len(permitted) > 0 {
				return usageErrorf("-permitted-domain needs -name-constraint")
			}
			opts.NameConstraint, opts.PermittedDNSDomains = nameConstraint, permitted
			g, err := tlsutil.CreateCA(opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "==> CA certificate saved to: %s\n", g.CertFile)
			fmt.Fprintf(out, "==> CA certificate key saved to: %s\n", g.KeyFile)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Domain, "domain", tlsutil.DefaultDomain, "cluster domain in certificate names and file names")
	f.IntVar(&opts.Days, "days", tlsutil.DefaultCADays, "validity in days")
	f.StringVar(&opts.Dir, "dir", ".", "directory to write the files to")
	f.BoolVar(&nameConstraint, "name-constraint", false, "restrict the CA to names under -domain and localhost")
	f.StringArrayVar(&permitted, "permitted-domain", nil, "with -name-constraint: a further DNS domain the CA may sign (repeatable)")
	return cmd
}

func newTLSCertCreateCommand() *cobra.Command {
	var (
		server, agent, cliCert bool
		opts                   tlsutil.CertOptions
		ips                    []string
	)
	cmd := &cobra.Command{
		Use:   "create -server|-agent|-cli",
		Short: "Create a certificate for a server, an agent or the CLI",
		Long: `Create an ECDSA P-256 certificate signed by the cluster CA, named
<kind>.<region>.<domain>, written as <region>-<kind>-<domain>-<n>.pem and
<region>-<kind>-<domain>-<n>-key.pem (mode 0600) in -dir, n being the first
index not in use: existing files are never overwritten.

Server certificates also name localhost and 127.0.0.1 and allow server and
client authentication; agent certificates allow both too; CLI certificates
allow client authentication only. Add a host's own names with
-additional-dnsname and -additional-ipaddress.`,
		Example: `  rollwave tls cert create -server
  rollwave tls cert create -server -additional-dnsname coord1.example.com -additional-ipaddress 10.0.0.11
  rollwave tls cert create -agent -region eu
  rollwave tls cert create -cli -ca /etc/rollwave/tls/rollwave-ca.pem -key /etc/rollwave/tls/rollwave-ca-key.pem`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			n := 0
			for kind, set := range map[tlsutil.Role]bool{tlsutil.RoleServer: server, tlsutil.RoleAgent: agent, tlsutil.RoleCLI: cliCert} {
				if set {
					opts.Kind = kind
					n++
				}
			}
			if n != 1 {
				return usageErrorf("give exactly one of -server, -agent or -cli")
			}
			if opts.Days <= 0 {
				return usageErrorf("invalid -days %d: must be positive", opts.Days)
			}
			for _, s := range ips {
				ip := net.ParseIP(s)
				if ip == nil {
					return usageErrorf("invalid -additional-ipaddress %q: not an IP address", s)
				}
				opts.AdditionalIPs = append(opts.AdditionalIPs, ip)
			}
			caCert, caKey := tlsutil.CAFileNames(opts.Domain)
			if !cmd.Flags().Changed("ca") {
				opts.CAFile = caCert
			}
			if !cmd.Flags().Changed("key") {
				opts.CAKeyFile = caKey
			}
			g, err := tlsutil.CreateCert(opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "==> Using CA file %s and CA key %s\n", opts.CAFile, opts.CAKeyFile)
			fmt.Fprintf(out, "==> %s certificate saved to: %s\n", opts.Kind, g.CertFile)
			fmt.Fprintf(out, "==> %s certificate key saved to: %s\n", opts.Kind, g.KeyFile)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&server, "server", false, "a coordinator's certificate")
	f.BoolVar(&agent, "agent", false, "an agent's certificate")
	f.BoolVar(&cliCert, "cli", false, "an operator's CLI certificate")
	f.StringVar(&opts.Region, "region", tlsutil.DefaultRegion, "region in the certificate name")
	f.StringVar(&opts.Domain, "domain", tlsutil.DefaultDomain, "cluster domain in the certificate name")
	f.StringVar(&opts.CAFile, "ca", "<domain>-ca.pem", "CA certificate file")
	f.StringVar(&opts.CAKeyFile, "key", "<domain>-ca-key.pem", "CA key file")
	f.IntVar(&opts.Days, "days", tlsutil.DefaultCertDays, "validity in days")
	f.StringVar(&opts.Dir, "dir", ".", "directory to write the files to")
	f.StringArrayVar(&opts.AdditionalDNS, "additional-dnsname", nil, "a further DNS name for the certificate (repeatable)")
	f.StringArrayVar(&ips, "additional-ipaddress", nil, "a further IP address for the certificate (repeatable)")
	return cmd
}
