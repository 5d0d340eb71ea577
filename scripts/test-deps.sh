#!/usr/bin/env bash
# Installs the Debian packages `make test` needs when they are missing:
# prometheus (the prometheus and promtool binaries: the external metric
# gate test starts a real Prometheus, the alert rules are checked with
# promtool) and chromium (the dashboard's browser tests). As root it runs
# apt-get; otherwise it says what to install and fails, so no test is
# skipped for a missing tool.
set -euo pipefail
need=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || need+=(prometheus)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "make test needs ${need[*]}: run  sudo apt-get install -y ${need[*]}" >&2
	exit 1
fi
echo "== installing ${need[*]} for the tests"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q "${need[@]}"
