#!/usr/bin/env bash
# Join this host to the manager's swarm as a worker, once. The join token arrives on stdin.
#
#   swarm-join.sh <manager address:port> <manager node id> <advertise address>   < token
#
# The token is never put in argv (where `ps` on the host would show it): it goes from stdin to
# the Docker Engine API (POST /swarm/join) over the local socket.
# Already a worker of that manager's swarm: nothing to do. A member of another swarm, or a
# manager itself: an error, nothing changed.
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

[[ $# -eq 3 ]] || die "usage: swarm-join.sh <manager address:port> <manager node id> <advertise address> < token"
manager="$1" manager_id="$2" advertise="$3"
require_cmd docker python3
socket="${DOCKER_SOCKET:-/var/run/docker.sock}"
swarm() { docker info --format "{{.Swarm.$1}}"; }

IFS= read -r token || true
[[ "$token" =~ ^SWMTKN-1-[a-z0-9]+-[a-z0-9]+$ ]] || die "stdin does not hold a swarm join token (SWMTKN-1-...)"

state="$(swarm LocalNodeState)"
case "$state" in
active)
	[[ "$(swarm ControlAvailable)" != true ]] ||
		die "this host is a swarm manager itself; it cannot also join $manager as a worker"
	managers="$(docker info --format '{{json .Swarm.RemoteManagers}}')"
	if [[ "$managers" == *"\"$manager_id\""* ]]; then
		log "already a worker in the swarm of $manager ($manager_id); nothing to do"
		exit 0
	fi
	die "this host is a member of another swarm (managers: $managers); leave it first (docker swarm leave) to join $manager"
	;;
inactive) ;;
*) die "the swarm state of this host is '$state'; resolve it by hand (docker info) and apply again" ;;
esac

if [[ "$DRY_RUN" == 1 ]]; then
	log "dry run: would join the swarm of $manager"
	exit 0
fi
# printf is a shell builtin: the token goes down the pipe without appearing in any argv
printf '%s' "$token" | run_py swarm-join.py "$socket" "$manager" "$advertise"
log "joined the swarm of $manager as a worker (advertising $advertise)"
