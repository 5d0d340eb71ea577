package tlsutil

import (
	"crypto/tls"
	"errors"
	"fmt"
)

// Config says where a part's TLS material is and which names it trusts.
type Config struct {
	// CAFile is the cluster CA certificate (PEM). Peers must present a
	// certificate it signed.
	CAFile string
	// CertFile and KeyFile are this part's certificate and key (PEM),
	// created by `rollwave tls cert create`.
	CertFile, KeyFile string
	// VerifyServerHostname pins the region: clients accept only a server
	// certificate named server.<Region>.<Domain>, and servers accept only
	// peers of their own region. When false, clients still accept only
	// server certificates (server.<any region>.<Domain>) — an agent's or the
	// CLI's certificate can never pose as a server — but of any region.
	VerifyServerHostname bool
	// Region and Domain are this cluster's names, as in the certificates.
	Region, Domain string
}

// DefaultConfig returns the defaults (region "global", domain "rollwave",
// hostnames verified); the file names still have to be set.
func DefaultConfig() Config {
	return Config{VerifyServerHostname: true, Region: DefaultRegion, Domain: DefaultDomain}
}

// Validate reports every missing or invalid field.
func (c Config) Validate() error {
	var errs []error
	for _, f := range []struct{ name, val string }{
		{"CAFile", c.CAFile}, {"CertFile", c.CertFile}, {"KeyFile", c.KeyFile},
	} {
		if f.val == "" {
			errs = append(errs, fmt.Errorf("tlsutil: Config.%s is required", f.name))
		}
	}
	if err := checkLabel("Config.Region", c.Region); err != nil {
		errs = append(errs, err)
	}
	if err := checkDomain(c.Domain); err != nil {
		errs = append(errs, fmt.Errorf("Config.Domain: %w", err))
	}
	return errors.Join(errs...)
}

// ServerName is the name clients expect on a server's certificate:
// server.<Region>.<Domain>.
func (c Config) ServerName() string { return RoleName(RoleServer, c.Region, c.Domain) }

// ServerTLSConfig loads the material and returns a configuration for a
// listener: TLS 1.3 only, client certificates required and verified
// against the CA. Use NewReloader instead to reload on SIGHUP.
func (c Config) ServerTLSConfig() (*tls.Config, error) {
	r, err := NewReloader(c)
	if err != nil {
		return nil, err
	}
	return r.ServerTLSConfig()
}

// ClientTLSConfig loads the material and returns a configuration for a
// part with role dialing a server: TLS 1.3 only, its certificate offered,
// and only a server certificate from the CA accepted. Use NewReloader
// instead to reload on SIGHUP.
func (c Config) ClientTLSConfig(role Role) (*tls.Config, error) {
	r, err := NewReloader(c)
	if err != nil {
		return nil, err
	}
	return r.ClientTLSConfig(role)
}

// accepts reports whether a peer identity belongs to this cluster: the
// same domain, and the same region when VerifyServerHostname is set.
func (c Config) accepts(id Identity) error {
	if id.Domain != c.Domain {
		return fmt.Errorf("peer certificate %s is for domain %q, not %q", id.Name(), id.Domain, c.Domain)
	}
	if c.VerifyServerHostname && id.Region != c.Region {
		return fmt.Errorf("peer certificate %s is for region %q, not %q", id.Name(), id.Region, c.Region)
	}
	return nil
}
