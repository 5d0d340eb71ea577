#!/bin/sh
# deploy.sh — roll a release out from a CI pipeline and fail the pipeline
# unless it succeeds.
#
#   usage: deploy.sh SPEC.hcl [TIMEOUT]
#
# Needs `rollwave` on PATH and the coordinator in ROLLWAVE_ADDR (plus
# ROLLWAVE_TOKEN / TLS flags when the cluster has them). TIMEOUT bounds the
# whole rollout (default 30m); a release still running then is left
# running — nothing is stopped — and the pipeline fails with exit 3.
#
# Exit codes (rollwave release start -wait):
#   0  the release succeeded
#   1  it was rolled back, failed or aborted (or a local error)
#   2  usage: a bad flag or argument
#   3  timed out: still running, paused or waiting for approval
#   4-9 the coordinator refused the request (6: the spec is invalid,
#      8: the token may not deploy, 9: no coordinator reachable; see
#      docs/operations.md)
set -u

spec=${1:?usage: deploy.sh SPEC.hcl [TIMEOUT]}
timeout=${2:-30m}

# The plan first: a spec error or an empty target fails here, before
# anything is stored.
rollwave release plan "$spec" || exit $?

rollwave release start "$spec" -wait -timeout "$timeout"
code=$?
case $code in
0) echo "deploy: $spec succeeded" ;;
1) echo "deploy: $spec was rolled back, failed or aborted; see 'rollwave release events ID'" >&2 ;;
9) echo "deploy: $spec did not finish within $timeout; it is still running (approve, or follow it with 'rollwave release status ID -wait')" >&2 ;;
*) echo "deploy: rollwave could not start $spec (exit $code)" >&2 ;;
esac
exit $code
