# /etc/rollwave/server.hcl — rollwave coordinator configuration.
#
# As shipped this is a single server on 127.0.0.1 that bootstraps itself:
# fine for a try-out, not for production. For a cluster, give each server a
# unique node_name, set bootstrap_expect = 3 (or 5), list the other servers
# in join, and bind the addresses to this host's IP (see
# docs/operations.md). Then:
#   systemctl start rollwave
# Package upgrades never overwrite this file.

# node_name = "c1"   # default: the host name
# region    = "global"

# The unit's sandbox only lets the server write here (ReadWritePaths).
data_dir = "/var/lib/rollwave"

# Bootstrap a new cluster once this many servers are seen in gossip;
# 0 joins an existing cluster.
bootstrap_expect = 1

# Gossip addresses (host:port) of other servers.
# join = ["10.0.0.2:7422", "10.0.0.3:7422"]

log_level = "info"

addresses {
  grpc   = "127.0.0.1:7420"
  raft   = "127.0.0.1:7421"
  gossip = "127.0.0.1:7422"
}

# When binding to 0.0.0.0, tell the others what to dial:
# advertise {
#   grpc   = "10.0.0.1:7420"
#   raft   = "10.0.0.1:7421"
#   gossip = "10.0.0.1:7422"
# }

# Notifications: the leader POSTs each subscribed audit event to every
# target, at least once and in order (docs/operations.md, "Notifications").
# ui_url = "https://rollwave.example.com"   # Slack messages link releases here
# notify "ops" {
#   type        = "webhook"                  # or "slack"
#   url         = "https://hooks.example.com/rollwave"
#   events      = ["gate.failed", "release.rolled_back", "release.awaiting_approval", "release.succeeded", "host.reverted_isolated"]
#   secret_file = "/etc/rollwave/notify-ops.secret"   # HMAC-SHA256 key; chmod 600
# }
