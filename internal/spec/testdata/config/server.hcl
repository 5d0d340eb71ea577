# A production coordinator.
node_name        = "coord-1"
region           = "eu-west"
data_dir         = "/var/lib/rollwave"
bootstrap_expect = 3
join             = ["10.0.0.2:7422", "coord-3.internal:7422"]
log_level        = "debug"

addresses {
  grpc   = "0.0.0.0:7420"
  raft   = "0.0.0.0:7421"
  gossip = "0.0.0.0:7422"
  http   = "0.0.0.0:7424"
}

enable_pprof = true

advertise {
  grpc   = "10.0.0.1:7420"
  raft   = "10.0.0.1:7421"
  gossip = "10.0.0.1:7422"
}

raft {
  heartbeat_timeout    = "2s"
  election_timeout     = "3s"
  leader_lease_timeout = "1s"
  commit_timeout       = "20ms"
  snapshot_interval    = "60s"
  snapshot_threshold   = 4096
  trailing_logs        = 2048
}
