release "api-2.4.0" {
  app     = "api"
  version = "2.4.0"

  artifact {
    url = "https://example.com/api.tar.gz"
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
    canary = 1
  }

  health {
    check "http" {
      url = "http://127.0.0.1:{{port}}/healthz"
    }
  }
}
