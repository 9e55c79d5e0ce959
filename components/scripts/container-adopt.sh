#!/usr/bin/env bash
# Free a service's container name for the container Pulumi is about to create, without stopping
# anything: a container that holds the name and is not managed by this project (a `docker run`
# or docker compose one, as the servers run today) is renamed to <name>-pre-dgx-storage and goes
# on running. container-switch.sh later stops it, starts the new one, and hands the service back
# to it if the new one does not become healthy.
#
#   container-adopt.sh <name>
#
# Docker refuses to create a container under a name that is taken (409 Conflict), and the Docker
# provider creates, it never adopts: a container it does not have in its state is never renamed
# or removed by it. Renaming a running container is instantaneous and does not touch its
# processes, ports, mounts or network aliases (docker rename).
#
# What the holder was (id, restart policy, compose project and files) is recorded in
# /var/lib/dgx-storage/adoption/<name>.state before anything changes. The name free or held by a
# container of this project: nothing to do.
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

[[ $# -eq 1 ]] || die "usage: container-adopt.sh <name>"
name="$1"
[[ "$name" =~ ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$ ]] || die "'$name' is not a container name"
require_cmd docker
state_file="${STATE_DIR}/adoption/${name}.state"

# field ID FORMAT : one docker inspect field of a container, empty when it does not exist.
field() { docker container inspect --format "$2" "$1" 2>/dev/null || true; }

id="$(field "$name" '{{.Id}}')"
if [[ -z "$id" ]]; then
	log "no container holds the name $name"
	exit 0
fi
if [[ "$(field "$id" '{{index .Config.Labels "managed-by"}}')" == dgx-storage ]]; then
	log "$name is already this project's container (${id:0:12}); nothing to adopt"
	exit 0
fi

kept="${name}-pre-dgx-storage"
if [[ -n "$(field "$kept" '{{.Id}}')" ]]; then
	kept="${kept}-$(date -u +%Y%m%dT%H%M%SZ)"
fi
image="$(field "$id" '{{.Config.Image}}')"
running="$(field "$id" '{{.State.Running}}')"
restart="$(field "$id" '{{.HostConfig.RestartPolicy.Name}}')"
project="$(field "$id" '{{index .Config.Labels "com.docker.compose.project"}}')"
files="$(field "$id" '{{index .Config.Labels "com.docker.compose.project.config_files"}}')"
if [[ "$DRY_RUN" == 1 ]]; then
	log "dry run: would rename $name (${id:0:12}, $image) to $kept"
	exit 0
fi

# the record comes first: whatever happens next, the switch and the operator know what was there
state_write "$state_file" "name=$name" "id=$id" "kept=$kept" "image=$image" "wasRunning=$running" \
	"restartPolicy=${restart:-no}" "composeProject=$project" "composeFiles=$files" \
	"state=renamed" "renamedAt=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
docker rename "$id" "$kept"
log "renamed $name (${id:0:12}, $image, $([[ $running == true ]] && echo running || echo stopped)) to $kept; it runs on until the new container takes over"
if [[ -n "$project" ]]; then
	log "$kept belongs to the docker compose project '$project' (${files:-no config file recorded}); once every container of that project on this host is taken over, its files are moved aside so that compose cannot start the old definitions again"
fi
