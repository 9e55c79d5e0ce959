#!/usr/bin/env bash
# Restart dockerd when, and only when, it is not running with the current daemon.json.
#
#   docker-restart.sh <expected storage driver>
#
# "Running with the current file" is read off the host, not remembered: dockerd's main process
# started after daemon.json was last written, and `docker info` reports the expected storage
# driver. A second apply therefore restarts nothing.
# If dockerd does not come back with the new file, the previous daemon.json (saved by
# daemon-json-merge.sh) is put back, dockerd is started on it, and the command fails with the
# journal's last lines: the host is left as it was.
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

[[ $# -eq 1 ]] || die "usage: docker-restart.sh <expected storage driver>"
expected_driver="$1"
require_cmd systemctl docker python3
file="${ROOT}/etc/docker/daemon.json"
timeout_s="${DOCKER_START_TIMEOUT:-120}"

running_driver() { docker info --format '{{.Driver}}' 2>/dev/null || true; }

wait_for_docker() {
	local deadline=$((SECONDS + timeout_s))
	while ((SECONDS < deadline)); do
		if docker info >/dev/null 2>&1; then return 0; fi
		sleep 1
	done
	return 1
}

# Both times in microseconds: whole seconds would call a restart in the same second as the write
# "before" it and restart again on the next apply. systemd before 248 has no --timestamp=us;
# there an equal second counts as "not after" and dockerd is restarted (the safe side).
started_at=0
if systemctl is-active --quiet docker.service; then
	ts="$(systemctl show -p ExecMainStartTimestamp --value --timestamp=us+utc docker.service 2>/dev/null ||
		systemctl show -p ExecMainStartTimestamp --value docker.service)"
	[[ -n "$ts" ]] && started_at="$(date -d "$ts" +%s%6N)"
fi
written_at=0
[[ -f "$file" ]] && written_at="$(date -d "$(stat -c %y "$file")" +%s%6N)"

if ((started_at > written_at)) && [[ "$(running_driver)" == "$expected_driver" ]]; then
	log "dockerd already runs with the current daemon.json (storage driver $expected_driver); no restart"
	exit 0
fi

if [[ -f "$file" ]]; then
	python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$file" ||
		die "${file#"$ROOT"} is not valid JSON; not restarting dockerd"
fi
if [[ "$DRY_RUN" == 1 ]]; then
	log "dry run: would restart docker.service (running containers stop unless live-restore is on)"
	exit 0
fi

log "restarting docker.service to load daemon.json (containers with a restart policy come back)"
if systemctl restart docker.service && wait_for_docker && [[ "$(running_driver)" == "$expected_driver" ]]; then
	log "dockerd is running with storage driver $(running_driver)"
	exit 0
fi

failure="dockerd did not come back with storage driver '$expected_driver' (got '$(running_driver)')"
journal="$(journalctl -u docker.service -n 15 --no-pager 2>/dev/null || true)"
# shellcheck disable=SC2012 # names are ours
previous="$(ls -1t "${STATE_DIR}/backups/daemon.json."* 2>/dev/null | head -n 1 || true)"
if [[ -n "$previous" ]]; then
	cp -p "$file" "${STATE_DIR}/daemon.json.rejected"
	cp -p "$previous" "$file"
	systemctl reset-failed docker.service 2>/dev/null || true
	if systemctl restart docker.service && wait_for_docker; then
		die "$failure. The previous daemon.json was restored from ${previous#"$ROOT"} and dockerd runs on it again; the rejected file is ${STATE_DIR#"$ROOT"}/daemon.json.rejected. Journal:
$journal"
	fi
	die "$failure, and it did not start on the restored previous daemon.json either. Journal:
$journal"
fi
die "$failure, and there is no previous daemon.json to go back to. Journal:
$journal"
