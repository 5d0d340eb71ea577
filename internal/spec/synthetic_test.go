package spec

import (
	"strings"
	"testing"
)

// withChecks replaces minimal.hcl's health block's checks with checks.
func withHealth(t *testing.T, checks string) string {
	src := minimalSrc(t)
	i := strings.Index(src, "  health {")
	j := strings.Index(src[i:], "\n  }\n") + i + len("\n  }\n")
	return src[:i] + "  health {\n" + checks + "\n  }\n" + src[j:]
}

func TestParseSyntheticChecks(t *testing.T) {
	src := withHealth(t, `    check "http" "cart" {
      url     = "http://127.0.0.1:{{port}}/api/cart"
      method  = "POST"
      headers = { "Content-Type" = "application/json", "X-Version" = "{{version}}" }
      body    = "{\"sku\":\"probe\"}"
      expect_status = [200, 201]
      body_contains = "\"cart\""
    }
    check "grpc" {
      address      = "127.0.0.1:{{port}}"
      grpc_service = "shop.Cart"
      tls          = true
      ca_file      = "/etc/ssl/shop-ca.pem"
    }`)
	r, err := ParseRelease("spec.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	h, g := r.Health.Checks[0], r.Health.Checks[1]
	if h.Method != "POST" || h.Headers["X-Version"] != "{{version}}" || h.Body != `{"sku":"probe"}` ||
		len(h.ExpectStatuses) != 2 || h.ExpectStatus != 200 || h.BodyContains != `"cart"` {
		t.Fatalf("http check: %+v", h)
	}
	if g.Kind != CheckGRPC || g.Name != "grpc" || g.GRPCService != "shop.Cart" || !g.TLS || g.CAFile != "/etc/ssl/shop-ca.pem" {
		t.Fatalf("grpc check: %+v", g)
	}
}

func TestParseSyntheticChecksInvalid(t *testing.T) {
	cases := []struct {
		name, checks string
		want         []string
	}{
		{
			// A method outside the set, a header with a newline (it would
			// inject headers), a status outside 100-599 in the set.
			name: "http",
			checks: "    check \"http\" {\n url = \"http://127.0.0.1:{{port}}/\"\n method = \"BREW\"\n" +
				" headers = { \"X-A\" = \"a\\r\\nX-Injected: 1\" }\n expect_status = [200, 700]\n }",
			want: []string{
				`release.health.check[0].method: must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, got "BREW"`,
				`release.health.check[0].headers: header "X-A": value must not contain control characters`,
				`release.health.check[0].expect_status[1]: must be an HTTP status from 100 to 599, got 700`,
			},
		},
		{
			// A grpc check needs an address; ca_file needs tls.
			name:   "grpc",
			checks: "    check \"grpc\" {\n ca_file = \"ca.pem\"\n }",
			want: []string{
				`release.health.check[0]: missing required field "address"`,
				`release.health.check[0].tls: must be true when ca_file or tls_server_name is set`,
				`release.health.check[0].ca_file: must be an absolute path on the host, got "ca.pem"`,
			},
		},
		{
			// Fields of one kind on another.
			name:   "misplaced",
			checks: "    check \"tcp\" {\n address = \"127.0.0.1:{{port}}\"\n method = \"GET\"\n grpc_service = \"x\"\n }",
			want: []string{
				`release.health.check[0].method: is not used by tcp checks`,
				`release.health.check[0].grpc_service: is not used by tcp checks`,
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRelease("spec.hcl", []byte(withHealth(t, tc.checks)))
			if r != nil {
				t.Fatal("got a release with errors")
			}
			checkDiags(t, err, tc.want)
		})
	}
}
