#!/usr/bin/env bash
# Free a service's container name for the container Pulumi is about to create, without stopping
# anything: the container that holds the name is renamed and goes on running, until
# container-switch.sh stops it, starts the new one, and hands the service back to it if the new
# one does not become healthy.
#
#   container-adopt.sh <name> <config hash>
#
# The holder of <name>:
#   - none, or this project's container of this configuration (label dgx-storage/config =
#     <config hash>): nothing to do;
#   - a container that is not this project's (a `docker run` or docker compose one, as the
#     servers run today): renamed <name>-pre-dgx-storage (with a time when that name is taken),
#     kept after the switch for a manual rollback until the operator removes it;
#   - this project's container of another configuration (the one a replacement retires):
#     renamed <name>-previous; an older <name>-previous of this project is removed first (it is
#     two configurations old, stopped since the last switch).
# A stopped <name>-unhealthy of this project (a new container the switch gave up on, which Pulumi
# has since replaced) is removed: nothing would ever start it again.
#
# Docker refuses to create a container under a name that is taken (409 Conflict), and the Docker
# provider creates, it never adopts: a container it does not have in its state is never renamed
# or removed by it. Renaming a running container is instantaneous and does not touch its
# processes, ports, mounts or network aliases (docker rename), except on a swarm-scoped network
# (the attachable overlay): there dockerd 20.10 fails the rename ("Could not add service state
# for endpoint ... to cluster on rename: ... already exists", moby/moby#42351, open), so a running
# holder leaves those networks for the rename and rejoins them at once with its aliases (its
# clients on the overlay miss it for that second; its published ports do not). What the holder
# was (id, restart policy, whether it ran, compose project and files, the files resolved against
# the project's working directory as compose v1 records them relative) is recorded in
# $DGX_VAR_DIR/adoption/<name>.state before it is renamed.
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

[[ $# -eq 2 ]] || die "usage: container-adopt.sh <name> <config hash>"
name="$1" hash="$2"
[[ "$name" =~ ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$ ]] || die "'$name' is not a container name"
[[ "$hash" =~ ^[0-9a-f]{64}$ ]] || die "'$hash' is not a configuration hash (sha256)"
require_cmd docker
state_file="${STATE_DIR}/adoption/${name}.state"

# field ID FORMAT : one docker inspect field of a container, empty when it does not exist.
field() { docker container inspect --format "$2" "$1" 2>/dev/null || true; }
ours() { [[ "$(field "$1" '{{index .Config.Labels "managed-by"}}')" == dgx-storage ]]; }

leftover="$(field "${name}-unhealthy" '{{.Id}}')"
if [[ -n "$leftover" ]] && ours "$leftover" && [[ "$(field "$leftover" '{{.State.Running}}')" != true ]]; then
	[[ "$DRY_RUN" == 1 ]] || docker rm "$leftover" >/dev/null
	log "removed ${name}-unhealthy (${leftover:0:12}), a new container an earlier switch gave up on"
fi

id="$(field "$name" '{{.Id}}')"
if [[ -z "$id" ]]; then
	log "no container holds the name $name"
	exit 0
fi
if ours "$id"; then
	if [[ "$(field "$id" '{{index .Config.Labels "dgx-storage/config"}}')" == "$hash" ]]; then
		log "$name is already this project's container of this configuration (${id:0:12}); nothing to do"
		exit 0
	fi
	kept="${name}-previous"
	older="$(field "$kept" '{{.Id}}')"
	if [[ -n "$older" ]]; then
		ours "$older" || die "$kept exists and is not this project's container; rename or remove it by hand"
		[[ "$(field "$older" '{{.State.Running}}')" != true ]] || die "$kept (${older:0:12}) is running; it should have stopped at the last switch. Stop it by hand after checking which container serves $name"
		[[ "$DRY_RUN" == 1 ]] || docker rm "$older" >/dev/null
		log "removed the older $kept (${older:0:12}), two configurations old"
	fi
else
	kept="${name}-pre-dgx-storage"
	[[ -z "$(field "$kept" '{{.Id}}')" ]] || kept="${kept}-$(date -u +%Y%m%dT%H%M%SZ)"
fi
image="$(field "$id" '{{.Config.Image}}')"
running="$(field "$id" '{{.State.Running}}')"
restart="$(field "$id" '{{.HostConfig.RestartPolicy.Name}}')"
project="$(field "$id" '{{index .Config.Labels "com.docker.compose.project"}}')"
files="$(field "$id" '{{index .Config.Labels "com.docker.compose.project.config_files"}}')"
workdir="$(field "$id" '{{index .Config.Labels "com.docker.compose.project.working_dir"}}')"
if [[ -n "$files" ]]; then
	# docker-compose 1.x records the files as given (docker-compose.yml), compose v2 absolute
	resolved=()
	IFS=, read -r -a given <<<"$files"
	for f in "${given[@]}"; do
		[[ -z "$f" ]] && continue
		[[ "$f" == /* || -z "$workdir" ]] || f="${workdir%/}/$f"
		resolved+=("$f")
	done
	files="$(
		IFS=,
		echo "${resolved[*]}"
	)"
fi
if [[ "$DRY_RUN" == 1 ]]; then
	log "dry run: would rename $name (${id:0:12}, $image) to $kept"
	exit 0
fi

# the record comes first: whatever happens next, the switch and the operator know what was there
state_write "$state_file" "name=$name" "id=$id" "kept=$kept" "image=$image" "wasRunning=$running" \
	"restartPolicy=${restart:-no}" "composeProject=$project" "composeFiles=$files" \
	"state=renamed" "renamedAt=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
# swarm_networks ID : "<network> <alias,alias>" per swarm-scoped network the container is on.
swarm_networks() {
	local net aliases
	# shellcheck disable=SC2016 # a Go template, not a shell expansion
	while read -r net aliases; do
		[[ -n "$net" && "$(docker network inspect --format '{{.Scope}}' "$net" 2>/dev/null)" == swarm ]] && echo "$net $aliases"
	done < <(field "$1" '{{range $n, $e := .NetworkSettings.Networks}}{{$n}} {{join $e.Aliases ","}}{{"\n"}}{{end}}')
}
# rejoin ID NETWORK ALIASES : connect again with the aliases (not the short id, which dockerd adds)
rejoin() {
	local a opts=()
	IFS=, read -r -a list <<<"$3"
	for a in "${list[@]}"; do
		[[ -n "$a" && "$a" != "${1:0:12}" ]] && opts+=(--alias "$a")
	done
	docker network connect "${opts[@]}" "$2" "$1"
}
left=()
if [[ "$running" == true ]]; then
	while read -r net aliases; do
		[[ -n "$net" ]] || continue
		docker network disconnect "$net" "$id"
		left+=("$net $aliases")
	done < <(swarm_networks "$id")
fi
renamed=0
docker rename "$id" "$kept" && renamed=1
for entry in "${left[@]}"; do
	rejoin "$id" "${entry%% *}" "${entry#* }" || warn "could not connect ${id:0:12} to ${entry%% *} again: its clients on that network cannot reach it until the switch"
done
((${#left[@]} == 0)) || log "$kept left and rejoined ${#left[@]} swarm-scoped network(s) for the rename (moby/moby#42351)"
((renamed)) || die "could not rename $name (${id:0:12}) to $kept; it runs on unchanged"
log "renamed $name (${id:0:12}, $image, $([[ $running == true ]] && echo running || echo stopped)) to $kept; it serves until the new container takes over"
if [[ -n "$project" ]]; then
	log "$kept belongs to the docker compose project '$project' (${files:-no config file recorded}); once every container of that project on this host is taken over, its files are moved aside so that compose cannot start the old definitions again"
fi
