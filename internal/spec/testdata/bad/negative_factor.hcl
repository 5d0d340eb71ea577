release "api-2.4.0" {
  app     = "api"
  version = "2.4.0"

  artifact {
    url    = "https://example.com/api.tar.gz"
    sha256 = "b79756009919cc1d956af23430e06cbf65088d49b09d88cb8e3c83295f0ca7a7"
  }

  unit {
    exec_start = "{{slot_dir}}/bin/api --port {{port}}"
  }

  slots {
    blue_port  = 8081
    green_port = 8082
  }

  traffic {
    listen = ":8080"
  }

  phases {
    growth = "geometric"
    factor = -2
  }

  health {
    check "http" {
      url = "http://127.0.0.1:{{port}}/healthz"
    }
  }
}
