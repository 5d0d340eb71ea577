#!/usr/bin/env bash
# Runs every fuzz target for ${FUZZTIME:-2m} each, one after the other, and
# stops at the first failure. A crashing input is written by go test under
# the package's testdata/fuzz/<Target>/; commit it: it becomes a regression
# test that plain `go test` runs from then on.
#
#   FUZZTIME=30s scripts/fuzz.sh            # shorter runs
#   FUZZPARALLEL=1 scripts/fuzz.sh          # fewer workers (default: GOMAXPROCS)
#   FUZZMINIMIZETIME=10s scripts/fuzz.sh    # time spent minimizing each new input (default 30s)
#   scripts/fuzz.sh FuzzParseRelease        # only the named targets
set -euo pipefail

cd "$(dirname "$0")/.."

# package target (one line per fuzz target)
targets=(
	"./internal/spec FuzzParseRelease"
	"./internal/spec FuzzParseServerConfig"
	"./internal/spec FuzzParseAgentConfig"
	"./internal/raftfsm FuzzDecodeEntry"
	"./internal/raftfsm FuzzSnapshotRestore"
	"./internal/deploy/slot FuzzStageTarGz"
	"./internal/coordinator FuzzBackupDecode"
	"./internal/agent FuzzAssignmentOrder"
)

fuzztime=${FUZZTIME:-2m}
extra=(-fuzzminimizetime "${FUZZMINIMIZETIME:-30s}")
if [[ -n "${FUZZPARALLEL:-}" ]]; then
	extra+=(-parallel "$FUZZPARALLEL")
fi

want=" $* "
ran=0
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	if [[ $# -gt 0 && "$want" != *" $name "* ]]; then
		continue
	fi
	echo "==> $name ($pkg, $fuzztime)"
	# -run '^$' skips the unit tests; the seed corpus still runs first.
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "${extra[@]}" "$pkg"
	ran=$((ran + 1))
done
if [[ $ran -eq 0 ]]; then
	echo "no fuzz target matches: $*" >&2
	exit 2
fi
echo "all $ran fuzz targets passed ($fuzztime each)"
