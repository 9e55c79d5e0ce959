#!/usr/bin/env bash
# Read-only checks of what the stack will meet on the host, before anything is changed there.
#
#   preflight.sh <host> <check>...
#     volume:<name>:<device or ->     a Docker volume the stack declares (bind device, or a plain one)
#     network:<name>:<0|1>            the overlay network (manager only) and whether it is encrypted
#     container:<name>                a service container the stack declares
#     address:<ipv4>                  an address a published port is bound to: one of the host's own
#
# Every problem is listed at once, then the command fails and nothing else of the apply runs
# (every other command of the host depends on this one). The report of what exists (volumes used
# as they are, containers that will be adopted) goes to stdout.
#
# Why the volumes are checked: `docker volume create` with the name of an existing volume of the
# same driver returns the existing volume as it is, whatever options were asked for (moby,
# volume/service/store.go, create: checkConflict only refuses another driver), and the Docker
# provider calls exactly that. A hand-made chroma-persistent bound to another directory would be
# mounted into the service without a word. The network: a taken name makes `docker network
# create` fail (the daemon refuses duplicates), so one made by hand with the same options is used
# as it is by network-ensure.sh, and one with other options is refused here.
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

[[ $# -ge 1 ]] || die "usage: preflight.sh <host> <volume:NAME:DEVICE|network:NAME:0|1|container:NAME|address:IPV4>..."
host="$1"
shift
require_cmd docker
docker info >/dev/null 2>&1 || die "the Docker engine on $host does not answer (systemctl status docker); nothing was changed"

problems=()
problem() { problems+=("$*"); }

check_volume() {
	local name="$1" device="$2" have driver opts want
	have="$(docker volume inspect --format '{{.Driver}}|{{range $k, $v := .Options}}{{$k}}={{$v}};{{end}}|{{index .Labels "managed-by"}}' "$name" 2>/dev/null)" || {
		log "volume $name: absent, it will be created"
		return 0
	}
	IFS='|' read -r driver opts _ <<<"$have"
	if [[ "$device" == - ]]; then want=""; else want="device=${device};o=bind;type=none;"; fi
	if [[ "$driver" != local || "$opts" != "$want" ]]; then
		problem "volume $name exists with driver $driver and options '${opts:-none}', but the stack declares a local volume with options '${want:-none}'; docker volume create would hand the existing one to the service as it is. Rename it by hand (docker volume ls; its data stays where it is) or change its entry in the stack's volumes"
		return 0
	fi
	log "volume $name: exists with the declared driver and options; used as it is"
}

check_network() {
	local verdict
	verdict="$(overlay_network_check "$1" "$2")"
	case "$verdict" in
	absent) log "network $1: absent, it will be created" ;;
	match) log "network $1: exists with the declared options; used as it is" ;;
	*) problem "$verdict" ;;
	esac
}

check_container() {
	local name="$1" have id image running labels project files
	have="$(docker container inspect --format '{{.Id}}|{{.Config.Image}}|{{.State.Running}}|{{index .Config.Labels "managed-by"}}|{{index .Config.Labels "com.docker.compose.project"}}|{{index .Config.Labels "com.docker.compose.project.config_files"}}' "$name" 2>/dev/null)" || {
		log "container $name: absent, it will be created"
		return 0
	}
	IFS='|' read -r id image running labels project files <<<"$have"
	if [[ "$labels" == dgx-storage ]]; then
		log "container $name: this project's (${id:0:12})"
		return 0
	fi
	log "container $name: ${id:0:12} ($image, $([[ $running == true ]] && echo running || echo stopped)) is not this project's: it will be renamed $name-pre-dgx-storage and keep running until the new one takes over, then stay stopped for a rollback"
	if [[ -n "$project" ]]; then
		log "container $name belongs to the docker compose project \"$project\" ($files): its files are moved aside once every container of it here is taken over"
	fi
}

# Docker binds a published port to an address the host does not have only to fail when the
# container starts ("cannot assign requested address"), long after the old container was stopped.
host_addresses=""
check_address() {
	if [[ -z "$host_addresses" ]]; then
		require_cmd ip
		# "2: eth0    inet 192.168.68.69/24 brd ..." -> 192.168.68.69
		host_addresses="$(ip -o -4 addr show | awk '{ split($4, a, "/"); print a[1] }' | sort -u | tr '\n' ' ')"
	fi
	if [[ " $host_addresses" == *" $1 "* ]]; then
		log "address $1: an address of this host"
	else
		problem "a published port is bound to $1 (services.<s>.ports[].ip), but $host has no such address (ip -o -4 addr: ${host_addresses% }); set the address of one of its interfaces"
	fi
}

for check in "$@"; do
	IFS=: read -r kind a b <<<"$check"
	case "$kind" in
	volume) check_volume "$a" "$b" ;;
	network) check_network "$a" "$b" ;;
	container) check_container "$a" ;;
	address) check_address "$a" ;;
	*) die "unknown check '$check'" ;;
	esac
done

if ((${#problems[@]} > 0)); then
	printf '%s: error: %s\n' "$SCRIPT_NAME" "the host $host is not as the stack expects (${#problems[@]} problem$( ((${#problems[@]} == 1)) || echo s)); nothing was changed:" >&2
	printf '  - %s\n' "${problems[@]}" >&2
	exit 1
fi
log "$host: checked ${#} objects; nothing in the way"
