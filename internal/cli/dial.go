package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rollwave/rollwave/internal/spec"
	"github.com/rollwave/rollwave/internal/tlsutil"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// The one place the CLI builds its gRPC connection. Transport security (TLS,
// client certificates, tokens) is added here and nowhere else.

// TLS settings: flags, else environment variables (as Nomad's
// NOMAD_CACERT…). With a CA file the CLI speaks mutual TLS and accepts only
// server certificates.
const (
	EnvCACert     = "ROLLWAVE_CACERT"
	EnvClientCert = "ROLLWAVE_CLIENT_CERT"
	EnvClientKey  = "ROLLWAVE_CLIENT_KEY"
	EnvRegion     = "ROLLWAVE_REGION"
	// EnvToken holds the operator ACL token secret when neither -token nor
	// -token-file is given.
	EnvToken = "ROLLWAVE_TOKEN"
	// EnvTokenFile names a file holding the token secret (exclusive with
	// ROLLWAVE_TOKEN).
	EnvTokenFile = "ROLLWAVE_TOKEN_FILE"
)

type tlsFlags struct {
	caFile, certFile, keyFile, region string
}

func (t *tlsFlags) register(pf *pflag.FlagSet) {
	pf.StringVar(&t.caFile, "ca-file", "", "CA certificate for mutual TLS (env "+EnvCACert+")")
	pf.StringVar(&t.certFile, "client-cert", "", "client certificate made with 'rollwave tls cert create -cli' (env "+EnvClientCert+")")
	pf.StringVar(&t.keyFile, "client-key", "", "client certificate key (env "+EnvClientKey+")")
	pf.StringVar(&t.region, "tls-region", "", "region of the server certificates to accept (env "+EnvRegion+"; default global)")
}

func orEnv(v, env string) string {
	if v != "" {
		return v
	}
	return strings.TrimSpace(os.Getenv(env))
}

// tokenCreds sends the operator ACL token with every call as
// "authorization: Bearer <secret>".
type tokenCreds struct{ secret string }

func (t tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + t.secret}, nil
}

// RequireTransportSecurity is false so tokens also work against servers
// without TLS (dev clusters); in production the API runs over mutual TLS.
func (tokenCreds) RequireTransportSecurity() bool { return false }

// dialOptions are the options every connection to a coordinator uses.
func (a *app) dialOptions() ([]grpc.DialOption, error) {
	opts, err := a.transportOptions()
	if err != nil {
		return nil, err
	}
	secret, err := a.tokenSecret()
	if err != nil {
		return nil, err
	}
	if secret != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(tokenCreds{secret: secret}))
	}
	return opts, nil
}

// tokenSecret is the operator ACL token: -token or -token-file, else
// ROLLWAVE_TOKEN or ROLLWAVE_TOKEN_FILE; giving both forms at one level is
// a usage error. -token shows in ps: scripts should use the file or the
// environment.
func (a *app) tokenSecret() (string, error) {
	s, _, err := spec.PickSecret(
		spec.SecretLayer{Value: a.token, File: a.tokenFile, ValueName: "-token", FileName: "-token-file"},
		spec.SecretLayer{Value: strings.TrimSpace(os.Getenv(EnvToken)), File: os.Getenv(EnvTokenFile), ValueName: EnvToken, FileName: EnvTokenFile},
	)
	if errors.Is(err, spec.ErrSecretConflict) {
		return "", usageErrorf("%v", err)
	}
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return s, nil
}

// transportOptions choose plaintext or mutual TLS.
func (a *app) transportOptions() ([]grpc.DialOption, error) {
	ca, cert, key := orEnv(a.tls.caFile, EnvCACert), orEnv(a.tls.certFile, EnvClientCert), orEnv(a.tls.keyFile, EnvClientKey)
	if ca == "" && cert == "" && key == "" {
		return []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, nil
	}
	if ca == "" || cert == "" || key == "" {
		return nil, usageErrorf("mutual TLS needs all of -ca-file, -client-cert and -client-key (or %s, %s, %s)", EnvCACert, EnvClientCert, EnvClientKey)
	}
	cfg := tlsutil.DefaultConfig()
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = ca, cert, key
	if r := orEnv(a.tls.region, EnvRegion); r != "" {
		cfg.Region = r
	}
	tc, err := cfg.ClientTLSConfig(tlsutil.RoleCLI)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tc))}, nil
}

// connect returns an OperatorService client for the coordinator chosen by
// -address / ROLLWAVE_ADDR, and a function that closes the connection.
// grpc.NewClient does not dial: an unreachable address surfaces as
// codes.Unavailable on the first call, which Run reports with the address.
func (a *app) connect(cmd *cobra.Command) (rollwavev1.OperatorServiceClient, func(), error) {
	if a.timeout <= 0 {
		return nil, nil, usageErrorf("invalid -timeout %s: must be positive", a.timeout)
	}
	addr := a.resolvedAddress(cmd)
	if st := stateOf(cmd); st != nil {
		st.address = addr
	}
	conn, err := a.dial(addr)
	if err != nil {
		return nil, nil, err
	}
	return rollwavev1.NewOperatorServiceClient(conn), func() { _ = conn.Close() }, nil
}

// dial opens a client connection to the coordinator at addr with the
// CLI's connection settings (TLS, token).
func (a *app) dial(addr string) (*grpc.ClientConn, error) {
	opts, err := a.dialOptions()
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("coordinator address %q: %w", addr, err)
	}
	return conn, nil
}

// unary returns a context bounded by -timeout for one unary call.
func (a *app) unary(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), a.timeout)
}

// invoke connects to the coordinator and makes one unary call, bounded by
// -timeout: method is the OperatorServiceClient method as an expression,
// e.g. invoke(a, cmd, rollwavev1.OperatorServiceClient.Status, req).
func invoke[Req, Resp any](a *app, cmd *cobra.Command,
	method func(rollwavev1.OperatorServiceClient, context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) (Resp, error) {
	client, done, err := a.connect(cmd)
	if err != nil {
		var zero Resp
		return zero, err
	}
	defer done()
	ctx, cancel := a.unary(cmd)
	defer cancel()
	return method(client, ctx, req)
}
