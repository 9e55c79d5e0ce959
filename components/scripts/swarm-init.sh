#!/usr/bin/env bash
# Make this host the manager of a swarm, once.
#
#   swarm-init.sh <advertise address>
#
# Not in a swarm: `docker swarm init`. Already the manager, advertising that address: nothing
# to do. A worker of some swarm, or a manager advertising another address: an error, nothing
# changed (leaving or re-initialising a swarm is the operator's decision).
# stdout is one JSON line for the stack outputs, {"nodeId","managerAddress","workerToken"};
# it holds the join token, so the program keeps stdout secret and logs only stderr.
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

[[ $# -eq 1 ]] || die "usage: swarm-init.sh <advertise address>"
advertise="$1"
require_cmd docker
swarm() { docker info --format "{{.Swarm.$1}}"; }

state="$(swarm LocalNodeState)"
case "$state" in
inactive)
	if [[ "$DRY_RUN" == 1 ]]; then
		log "dry run: would run docker swarm init --advertise-addr $advertise" >&2
		exit 0
	fi
	docker swarm init --advertise-addr "$advertise" >/dev/null
	log "initialised a swarm with this host as manager ($advertise)" >&2
	;;
active)
	[[ "$(swarm ControlAvailable)" == true ]] ||
		die "this host is a worker in another swarm (managers: $(swarm RemoteManagers)); leave it first (docker swarm leave) if it should manage its own"
	have="$(swarm NodeAddr)"
	[[ "$have" == "$advertise" ]] ||
		die "this host already manages a swarm advertised on $have, but the stack config says $advertise; fix swarm.advertiseAddress or re-create the swarm by hand"
	log "already the manager of a swarm advertised on $advertise; nothing to do" >&2
	;;
*) die "the swarm state of this host is '$state'; resolve it by hand (docker info) and apply again" ;;
esac

node_id="$(swarm NodeID)"
token="$(docker swarm join-token -q worker)"
printf '{"nodeId":"%s","managerAddress":"%s:2377","workerToken":"%s"}\n' "$node_id" "$advertise" "$token"
