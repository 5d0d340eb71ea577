# The DESIGN.md example, with a real digest.
release "api-2.4.0" {
  app     = "api"
  version = "2.4.0"

  artifact {
    url    = "https://artifacts.internal/api/2.4.0/api.tar.gz"
    sha256 = "b79756009919cc1d956af23430e06cbf65088d49b09d88cb8e3c83295f0ca7a7"
  }

  unit {
    exec_start  = "{{slot_dir}}/bin/api --listen 127.0.0.1:{{port}}"
    user        = "api"
    environment = { LOG_LEVEL = "info" }
  }

  slots {
    blue_port  = 8081
    green_port = 8082
    keep_old   = "hot"
  }

  traffic {
    mode   = "proxy"
    listen = ":8080"
  }

  target {
    cells   = ["*"]
    exclude = ["db-*"]
  }

  phases {
    canary               = 1
    growth               = "geometric"
    factor               = 2
    step                 = 0
    max_size             = "25%"
    per_cell_max         = 10
    parallel_cells_after = 3
  }

  bake {
    first = "30m"
    decay = 0.5
    min   = "5m"
  }

  health {
    check "http" {
      url      = "http://127.0.0.1:{{port}}/healthz"
      interval = "2s"
      timeout  = "1s"
    }
    min_healthy_time = "10s"
    healthy_deadline = "2m"
  }

  gates {
    max_failed_hosts = "5%"
    max_unreachable  = 1
    max_cpu_percent  = 90
    max_mem_percent  = 90
    max_restarts     = 2
    baseline         = "compare"
  }

  rollback {
    on_failure        = "all"
    isolation_timeout = "30s"
    on_control_plane_loss = "hold"   # every coordinator down mid-bake: keep the new version while healthy ("revert": go back)
  }

  approval { after_phases = [0] }
}
