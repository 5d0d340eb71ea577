# /etc/rollwave/agent.hcl — rollwave-agent configuration.
#
# EDIT BEFORE STARTING THE AGENT: `cell` and `join` below are placeholders
# that parse but join nothing useful. Then:
#   systemctl start rollwave-agent
# Flags given on the command line override this file (see
# `rollwave-agent -help`). Package upgrades never overwrite this file.

# The host's cell (required): the unit releases roll out by.
cell = "default"

# Gossip addresses (host:port) of one or more coordinators (required).
join = ["127.0.0.1:7422"]

# Host id; defaults to the host name.
# node_name = "web-17"

# region = "global"

# Labels that release targets match (target.labels).
# labels = {
#   role = "web"
# }

# Slot state, staged artifacts and logs.
data_dir = "/var/lib/rollwave-agent"

# systemd (slots are systemd units) or process (hosts without systemd).
unit_driver = "systemd"

# heartbeat_interval = "2s"
# log_level          = "info"

# addresses {
#   gossip = "0.0.0.0:7423"
# }
# advertise {
#   gossip = "10.0.0.17:7423"
# }
