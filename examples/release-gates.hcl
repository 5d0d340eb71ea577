# A release judged by what users feel: synthetic requests that look like
# real traffic on every host, and the metric systems the team already runs
# consulted by the leader during every bake.
release "shop-3.1.0" {
  app     = "shop"
  version = "3.1.0"

  artifact {
    url    = "https://artifacts.internal/shop/3.1.0/shop.tar.gz"
    sha256 = "b79756009919cc1d956af23430e06cbf65088d49b09d88cb8e3c83295f0ca7a7"
  }

  unit {
    exec_start = "{{slot_dir}}/bin/shop --http 127.0.0.1:{{port}}"
  }

  slots {
    blue_port  = 8081
    green_port = 8082
  }

  traffic {
    listen = ":8080"
  }

  health {
    # A synthetic order, not just /healthz: method, headers, body,
    # accepted statuses and what the answer must contain.
    check "http" "cart" {
      url           = "http://127.0.0.1:{{port}}/api/cart"
      method        = "POST"
      headers       = { "Content-Type" = "application/json", "X-Synthetic" = "rollwave/{{version}}" }
      body          = "{\"sku\":\"probe-1\",\"qty\":1}"
      expect_status = [200, 201]
      body_contains = "\"cart_id\""
      interval      = "5s"
      timeout       = "2s"
    }
    # The gRPC API's own health service (grpc.health.v1).
    check "grpc" "orders" {
      address      = "127.0.0.1:{{port}}"
      grpc_service = "shop.v1.Orders"
    }
  }

  gates {
    max_failed_hosts = "5%"

    # PromQL instant query; every series must be <= max. {{hosts_regex}} is
    # the phase's hosts as ^(a|b)$, escaped for a "…" PromQL string.
    gate "prometheus" "errors" {
      address  = "http://prometheus.internal:9090"
      query    = "sum(rate(http_requests_total{job=\"{{app}}\",version=\"{{version}}\",code=~\"5..\",instance=~\"{{hosts_regex}}\"}[2m])) / sum(rate(http_requests_total{job=\"{{app}}\",version=\"{{version}}\",instance=~\"{{hosts_regex}}\"}[2m]))"
      max      = 0.01
      interval = "30s"
      # a file name in the coordinator's gate_credentials_dir, not a path
      bearer_token_file = "prometheus-token"
    }

    # Any other system: the phase context is POSTed as JSON and the answer
    # is {"verdict": "pass"|"fail"|"inconclusive", "reason": "..."}.
    gate "http" "slo" {
      url           = "https://slo.internal/rollwave/verdict"
      username      = "rollwave"
      password_file = "slo-password"
      timeout       = "5s"
      attempts      = 3
    }
  }
}
