package speccore

import (
	"encoding/base64"
)

// TLSConfig is the `tls { }` block of the server and agent config files.
// With no files set TLS is off; set all three to turn it on.
type TLSConfig struct {
	// CAFile is the cluster CA certificate (PEM).
	CAFile string
	// CertFile and KeyFile are this node's certificate and key (PEM), made
	// with `rollwave tls cert create`.
	CertFile, KeyFile string
	// VerifyServerHostname pins the region of server certificates
	// (server.<region>.rollwave); default true.
	VerifyServerHostname bool
	// Region (agent config only) is the region of the cluster's
	// certificates (server.<region>.rollwave, agent.<region>.rollwave)
	// when it differs from the agent's own region, which places the host
	// for parallel regions (phases.parallel_regions_after); empty: the
	// agent's region.
	Region string
}

// Enabled reports whether any TLS file is set.
func (t TLSConfig) Enabled() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

func TLSFields(t *TLSConfig, extra ...Field) BlockFunc {
	return Sub(append([]Field{
		Attr("ca_file", Str(&t.CAFile)),
		Attr("cert_file", Str(&t.CertFile)),
		Attr("key_file", Str(&t.KeyFile)),
		Attr("verify_server_hostname", Boolean(&t.VerifyServerHostname)),
	}, extra...)...)
}

func (t TLSConfig) Check(ps *Problems) {
	if !t.Enabled() {
		return
	}
	for _, f := range []struct{ Name, v string }{{"tls.ca_file", t.CAFile}, {"tls.cert_file", t.CertFile}, {"tls.key_file", t.KeyFile}} {
		if f.v == "" {
			ps.Add(f.Name, "is required when any tls file is set; expected a PEM file path")
		}
	}
}

// CheckGossipKeyField validates `encrypt`: empty (gossip in the clear) or a
// base64 key of 16, 24 or 32 bytes, as `rollwave keygen` prints.
func CheckGossipKeyField(ps *Problems, field, key string) {
	if key == "" {
		return
	}
	b, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		ps.Add(field, "must be base64 (as printed by 'rollwave keygen'): %v", err)
		return
	}
	switch len(b) {
	case 16, 24, 32:
	default:
		ps.Add(field, "must decode to 16, 24 or 32 bytes, got %d", len(b))
	}
}

// GossipKeyBytes decodes a validated `encrypt` value (nil when empty).
func GossipKeyBytes(key string) []byte {
	if key == "" {
		return nil
	}
	b, _ := base64.StdEncoding.DecodeString(key)
	return b
}
