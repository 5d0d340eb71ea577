package health

import (
	"context"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	rollwavev1 "github.com/rollwave/rollwave/proto/rollwave/v1"
)

// TestHTTPCheckSyntheticRequest: an http check sends the method, headers
// and body of the spec, accepts any status of a set, and matches the body
// by substring and by regexp.
func TestHTTPCheckSyntheticRequest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch {
		case r.Method != http.MethodPost || r.URL.Path != "/api/cart":
			w.WriteHeader(http.StatusMethodNotAllowed)
		case r.Header.Get("X-Synthetic") != "rollwave/2.0" || r.Host != "shop.internal" || r.Header.Get("Content-Type") != "application/json":
			w.WriteHeader(http.StatusBadRequest)
		case string(b) != `{"sku":"probe"}`:
			w.WriteHeader(http.StatusUnprocessableEntity)
		default:
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"cart":"c-1","total":0}`)
		}
	}))
	defer srv.Close()
	spec := func(mod func(hc *rollwavev1.HealthCheck)) *rollwavev1.HealthCheck {
		hc := &rollwavev1.HealthCheck{Kind: "http", Name: "cart", Url: srv.URL + "/api/cart", Method: "POST",
			Headers:        map[string]string{"X-Synthetic": "rollwave/{{version}}", "Host": "shop.internal", "Content-Type": "application/json"},
			Body:           `{"sku":"probe"}`,
			ExpectStatuses: []int32{200, 201}, BodyContains: `"cart":"c-1"`, BodyMatch: `"total":\d+`, TimeoutMs: 2000}
		if mod != nil {
			mod(hc)
		}
		return hc
	}
	render := func(s string) string { return strings.ReplaceAll(s, "{{version}}", "2.0") }
	cases := []struct {
		name    string
		mod     func(hc *rollwavev1.HealthCheck)
		wantErr string // "" = healthy
	}{
		{"the request the app expects", nil, ""},
		// GET (the old check's only method) is refused by this endpoint
		{"wrong method", func(hc *rollwavev1.HealthCheck) { hc.Method = "" }, "status 405, want one of [200 201]"},
		{"missing header", func(hc *rollwavev1.HealthCheck) { delete(hc.Headers, "X-Synthetic") }, "status 400"},
		{"wrong body", func(hc *rollwavev1.HealthCheck) { hc.Body = "{}" }, "status 422"},
		{"status outside the set", func(hc *rollwavev1.HealthCheck) { hc.ExpectStatuses = []int32{200, 202} }, "status 201, want one of [200 202]"},
		{"single expected status", func(hc *rollwavev1.HealthCheck) { hc.ExpectStatuses, hc.ExpectStatus = nil, 201 }, ""},
		{"substring missing", func(hc *rollwavev1.HealthCheck) { hc.BodyContains = `"cart":"c-2"` }, `body does not contain "\"cart\":\"c-2\""`},
		{"regexp not matching", func(hc *rollwavev1.HealthCheck) { hc.BodyMatch = `"total":[1-9]` }, "body does not match"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := FromSpec(spec(tc.mod), render)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Run(context.Background())
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Run: %v, want %q", err, tc.wantErr)
			}
		})
	}
	// Bad input is refused when the check is built, naming the field.
	for _, hc := range []*rollwavev1.HealthCheck{
		spec(func(hc *rollwavev1.HealthCheck) { hc.Method = "BREW" }),
		spec(func(hc *rollwavev1.HealthCheck) { hc.Headers = map[string]string{"X-Bad": "a\r\nInjected: 1"} }),
		spec(func(hc *rollwavev1.HealthCheck) { hc.ExpectStatuses = []int32{999} }),
	} {
		if _, _, err := FromSpec(hc, nil); err == nil {
			t.Errorf("FromSpec accepted %v", hc)
		}
	}
}

// grpcServer serves grpc.health.v1 on 127.0.0.1 (TLS when creds is set).
func grpcServer(t *testing.T, creds credentials.TransportCredentials) (string, *grpchealth.Server) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	s := grpc.NewServer(opts...)
	hs := grpchealth.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return l.Addr().String(), hs
}

func TestGRPCCheck(t *testing.T) {
	addr, hs := grpcServer(t, nil)
	hs.SetServingStatus("shop.Cart", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("shop.Pay", healthpb.HealthCheckResponse_NOT_SERVING)
	run := func(service string) error {
		c, _, err := FromSpec(&rollwavev1.HealthCheck{Kind: "grpc", Name: "rpc", Address: addr, GrpcService: service, TimeoutMs: 2000}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Run(context.Background())
	}
	if err := run("shop.Cart"); err != nil {
		t.Fatalf("serving service: %v", err)
	}
	if err := run(""); err != nil {
		t.Fatalf("the server as a whole: %v", err)
	}
	if err := run("shop.Pay"); err == nil || !strings.Contains(err.Error(), "NOT_SERVING, want SERVING") {
		t.Fatalf("not serving: %v", err)
	}
	if err := run("shop.Nope"); err == nil || !strings.Contains(err.Error(), `service "shop.Nope" is unknown`) {
		t.Fatalf("unknown service: %v", err)
	}
	// A server that went away fails the check within its timeout.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := l.Addr().String()
	l.Close()
	c, _, err := FromSpec(&rollwavev1.HealthCheck{Kind: "grpc", Address: gone, TimeoutMs: 500}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.Run(context.Background()); err == nil {
		t.Fatal("a closed port passed")
	} else if time.Since(start) > 10*time.Second {
		t.Fatalf("took %s", time.Since(start))
	}
}

// TestGRPCCheckTLS: tls = true with ca_file verifies the server; without
// the CA the check fails, as does plaintext against a TLS server.
func TestGRPCCheckTLS(t *testing.T) {
	// httptest's certificate is valid for 127.0.0.1; only its TLS config
	// and CA are used.
	hs := httptest.NewUnstartedServer(nil)
	hs.StartTLS()
	hs.Close()
	tc := hs.TLS.Clone()
	tc.NextProtos = nil
	addr, h := grpcServer(t, credentials.NewTLS(tc))
	h.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(hc *rollwavev1.HealthCheck) error {
		hc.Kind, hc.Address, hc.TimeoutMs = "grpc", addr, 2000
		c, _, err := FromSpec(hc, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Run(context.Background())
	}
	if err := run(&rollwavev1.HealthCheck{Tls: true, CaFile: ca}); err != nil {
		t.Fatalf("TLS with the CA: %v", err)
	}
	if err := run(&rollwavev1.HealthCheck{Tls: true}); err == nil {
		t.Fatal("TLS against the system roots passed with a test CA")
	}
	if err := run(&rollwavev1.HealthCheck{}); err == nil {
		t.Fatal("plaintext against a TLS server passed")
	}
}
