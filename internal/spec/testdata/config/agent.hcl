# A host agent.
node_name          = "web-17"
cell               = "eu-west-1a"
region             = "eu-west"
labels             = { rack = "r12", tier = "edge" }
data_dir           = "/srv/rollwave-agent"
join               = ["10.0.0.1:7422", "10.0.0.2:7422"]
unit_driver        = "process"
heartbeat_interval = "5s"
log_level          = "warn"

addresses {
  gossip = "0.0.0.0:7423"
  http   = "off"
}

advertise {
  gossip = "10.1.2.17:7423"
}
