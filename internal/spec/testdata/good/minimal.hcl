# Only the required fields: everything else takes its default.
release "web-1.0.0" {
  app     = "web"
  version = "1.0.0"
  artifact {
    url    = "file:///srv/artifacts/web-1.0.0.tar.gz"
    sha256 = "b79756009919cc1d956af23430e06cbf65088d49b09d88cb8e3c83295f0ca7a7"
  }
  unit {
    exec_start = "{{slot_dir}}/web"
  }
  slots {
    blue_port  = 9001
    green_port = 9002
  }
  traffic {
    listen = "0.0.0.0:9000"
  }
  health {
    check "tcp" {
      address = "127.0.0.1:{{port}}"
    }
  }
}
