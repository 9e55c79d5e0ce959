#!/usr/bin/env bash
# Compare a host with what its stack declares, without changing anything.
#
#   drift-probe.sh < expectation.json      (components/render/drift.ts: DriftExpectation)
#
# Prints a JSON list of differences, {"kind","what","expected","actual"}, on stdout (an empty
# list when the host is as declared). It only reads: files and their hashes, daemon.json's keys,
# live kernel parameters, `systemctl is-enabled`, `docker info`, `docker inspect`, the migration
# state files. daemon.json keys are checked as the merge left them: a key this project left to a
# dockerd flag (not in the merge's state file) is not expected in the file.
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
require_cmd python3
export DGX_ROOT="$ROOT" DGX_STATE_DIR="$STATE_DIR"
run_py drift-probe.py
