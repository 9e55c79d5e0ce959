#!/usr/bin/env bash
# Hand a service over to the container Pulumi created for it (created stopped), and back to the
# old one if the new one does not become healthy.
#
#   container-switch.sh <name> <new container id> <wait seconds> <stop grace seconds> [--migration <name>]...
#
# 1. The new container is running, healthy and named <name>: only the bookkeeping of step 4
#    (a re-run, or the migration already started it). Nothing is stopped.
# 2. Otherwise the predecessor is stopped (docker stop -t <grace>, restart policy `no` so that a
#    dockerd restart or a reboot cannot start it beside the new one): the container that holds
#    <name> when it is not the new one (an old one given its name back by an earlier rollback),
#    and the one container-adopt.sh renamed (<name>-pre-dgx-storage, <name>-previous), when
#    either runs.
# 3. The new container gets the name (it may carry <name>-unhealthy from an earlier rollback) and
#    starts; it must become healthy within <wait seconds> (its health check; without one, running
#    for 10 s).
# 4. Healthy: the old container stays stopped, restart policy `no`, kept under its
#    -pre-dgx-storage (or -previous) name for a manual rollback; when every container of its docker compose
#    project on this host has been taken over, the project's files are moved aside
#    (<file>.pre-dgx-storage) so that `docker compose up` cannot start the old definitions on the
#    old data. The downtime (predecessor stopped to new healthy) is printed and recorded.
# 5. Not healthy: the new container is stopped and renamed <name>-unhealthy, the old one gets
#    <name> back, its restart policy back, and runs again if it ran before; the command fails,
#    and the next `pulumi up` runs it again (a failed command is re-run). Not so after a
#    --migration of the service has cut over (migrate.sh started the new container on the moved
#    data, which it has written since): the old container would run on stale data, so it stays
#    stopped and the command fails saying so.
#
# It runs in a transient systemd unit (dgx-switch-<name>, lib.sh run_detached): if `pulumi up`
# dies or its SSH connection drops half-way, the switch still completes or rolls back on the host.
# The output is streamed from the unit's log, $DGX_LOG_DIR/dgx-switch-<name>.log.
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

usage="usage: container-switch.sh <name> <new container id> <wait seconds> <stop grace seconds> [--migration <name>]..."
args=("$@")
[[ $# -ge 4 ]] || die "$usage"
name="$1" new="$2" wait_s="$3" grace="$4"
shift 4
migrations=()
while [[ $# -gt 0 ]]; do
	[[ "$1" == --migration && $# -ge 2 ]] || die "$usage"
	migrations+=("$2")
	shift 2
done
[[ "$name" =~ ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$ ]] || die "'$name' is not a container name"
[[ "$new" =~ ^[0-9a-f]{12,64}$ ]] || die "'$new' is not a container id"
[[ "$wait_s" =~ ^[1-9][0-9]*$ && "$grace" =~ ^[0-9]+$ ]] || die "the wait and grace must be whole seconds, got '$wait_s' and '$grace'"
require_cmd docker
adoption="${STATE_DIR}/adoption/${name}.state"
lock="${ROOT}/run/lock/dgx-storage-containers.lock"

field() { docker container inspect --format "$2" "$1" 2>/dev/null || true; }
ours() { [[ "$(field "$1" '{{index .Config.Labels "managed-by"}}')" == dgx-storage ]]; }
now() { date +%s.%N; }

# The switch proper: run in the transient unit (or directly in tests, ROOT set).
switch() {
	[[ -n "$(field "$new" '{{.Id}}')" ]] ||
		die "the container Pulumi created for $name (${new:0:12}) does not exist; run 'pulumi up --refresh' so that Pulumi creates it again"
	ours "$new" || die "container ${new:0:12} is not this project's (no managed-by=dgx-storage label); refusing to switch $name to it"
	local new_name holder kept t0 t1
	new_name="$(field "$new" '{{.Name}}')"
	new_name="${new_name#/}"
	holder="$(field "$name" '{{.Id}}')"
	kept="$(state_get "$adoption" kept)"

	if [[ "$new_name" == "$name" && "$(container_health "$new")" == healthy ]] || { [[ "$new_name" == "$name" && "$(container_health "$new")" == none ]] && wait_healthy "$new" 11; }; then
		log "$name (${new:0:12}) runs and is healthy; nothing to switch"
		finish 0
		return 0
	fi

	# who serves the name now: the old container under the name (given back by a rollback), and/or
	# the one container-adopt.sh renamed, under its kept name
	local preds=() p
	[[ -n "$holder" && "$holder" != "$new"* ]] && preds+=("$holder")
	if [[ -n "$kept" && -n "$(field "$kept" '{{.Id}}')" ]]; then
		p="$(field "$kept" '{{.Id}}')"
		[[ " ${preds[*]} " == *" $p "* ]] || preds+=("$p")
	fi
	t0="$(now)"
	[[ -f "$adoption" ]] && state_set "$adoption" "state=switching" "switchStartedAt=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	for p in "${preds[@]}"; do
		if [[ "$(field "$p" '{{.State.Running}}')" == true ]]; then
			docker update --restart=no "$p" >/dev/null
			log "stopping ${p:0:12} ($(field "$p" '{{.Name}}')) (up to ${grace} s)"
			docker stop -t "$grace" "$p" >/dev/null
		else
			docker update --restart=no "$p" >/dev/null
		fi
	done
	# the name: the old container keeps (or gets back) its kept name, the new one takes <name>
	if [[ -n "$holder" && "$holder" != "$new"* ]]; then
		[[ -n "$kept" ]] || kept="${name}-pre-dgx-storage"
		docker rename "$holder" "$kept"
		state_set "$adoption" "kept=$kept" "id=$holder"
	fi
	[[ "$new_name" == "$name" ]] || docker rename "$new" "$name"
	log "starting $name (${new:0:12}); waiting up to ${wait_s} s for it to become healthy"
	docker start "$new" >/dev/null || true
	if wait_healthy "$new" "$wait_s"; then
		t1="$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')"
		[[ -f "$adoption" ]] && state_set "$adoption" "downtimeSeconds=$t1"
		log "switched $name to ${new:0:12}: healthy; downtime $t1 s (predecessor stopped to healthy)"
		finish 1
		return 0
	fi
	rollback "$(container_health "$new")"
}

# finish SWITCHED : the bookkeeping once the new container serves the name.
finish() {
	[[ -f "$adoption" ]] || return 0
	[[ "$(state_get "$adoption" state)" == switched && "$1" == 0 ]] && {
		retire_compose
		return 0
	}
	state_set "$adoption" "state=switched" "switchedAt=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	local kept
	kept="$(state_get "$adoption" kept)"
	if [[ -n "$(field "$kept" '{{.Id}}')" ]]; then
		docker update --restart=no "$kept" >/dev/null
		if [[ "$(field "$kept" '{{.State.Running}}')" == true ]]; then
			warn "$kept (the old container) was running beside $name; stopping it"
			docker stop -t "$grace" "$kept" >/dev/null
		fi
		log "the old container stays stopped as $kept (restart policy no): to go back by hand, docker stop $name && docker rename $name $name-dgx-storage && docker rename $kept $name && docker start $name"
	fi
	retire_compose
}

# taken_over NAME : NAME is the kept old container of a service this project has switched over.
taken_over() {
	local f
	for f in "${STATE_DIR}"/adoption/*.state; do
		[[ -f "$f" && "$(state_get "$f" kept)" == "$1" && "$(state_get "$f" state)" == switched ]] && return 0
	done
	return 1
}

# retire_compose : move a compose project's files aside once all of its containers here are taken over.
retire_compose() {
	local project files f others=() c aside
	project="$(state_get "$adoption" composeProject)"
	files="$(state_get "$adoption" composeFiles)"
	[[ -n "$project" ]] || return 0
	mkdir -p "$(dirname "$lock")"
	exec 9>"$lock"
	flock 9
	while IFS= read -r c; do
		[[ -n "$c" ]] && ! taken_over "$c" && others+=("$c")
	done < <(docker ps -a --filter "label=com.docker.compose.project=$project" --format '{{.Names}}')
	if ((${#others[@]} > 0)); then
		log "compose project '$project' still has containers this stack has not taken over (${others[*]}); its files stay"
		return 0
	fi
	IFS=, read -r -a list <<<"$files"
	for f in "${list[@]}"; do
		if [[ ! -f "${ROOT}${f}" ]]; then
			[[ -e "${ROOT}${f}.pre-dgx-storage" ]] || warn "the compose file $f of project '$project' is not there; nothing to move aside"
			continue
		fi
		aside="${f}.pre-dgx-storage"
		[[ -e "${ROOT}${aside}" ]] && aside="${aside}-$(date -u +%Y%m%dT%H%M%SZ)"
		mv "${ROOT}${f}" "${ROOT}${aside}"
		log "moved the compose file of project '$project' aside: $f -> $aside (every container of it is taken over; docker compose up there cannot start the old definitions)"
	done
	flock -u 9
}

# rollback HEALTH : the new container failed; give the service back to the old one, unless the
# service's data has moved: a migration that cut over has the new container writing to its
# destination, and the old one would run on a source that no longer has the latest data.
rollback() {
	local logs kept id restart m state moved=()
	logs="$(docker logs --tail 10 "$new" 2>&1 || true)"
	for m in "${migrations[@]}"; do
		state="$(run_py migrate-state.py get "${STATE_DIR}/migrations/${m}.json" state)"
		[[ "$state" == verified || "$state" == complete ]] && moved+=("$m")
	done
	if ((${#moved[@]} > 0)); then
		die "the new container of $name (${new:0:12}) is not healthy within ${wait_s} s (it is $1), after migration ${moved[*]} moved its data: the old container is not started on the old data. Last log lines:
${logs}
Look at the container (docker logs $name) and run pulumi up again once it is fixed."
	fi
	docker stop -t "$grace" "$new" >/dev/null 2>&1 || true
	kept="$(state_get "$adoption" kept)"
	id="$(state_get "$adoption" id)"
	if [[ -n "$id" && -n "$(field "$id" '{{.Id}}')" ]]; then
		docker rename "$new" "${name}-unhealthy"
		docker rename "$id" "$name"
		restart="$(state_get "$adoption" restartPolicy)"
		docker update --restart="${restart:-no}" "$id" >/dev/null
		if [[ "$(state_get "$adoption" wasRunning)" == true ]]; then
			docker start "$id" >/dev/null
			warn "$name runs as before: the old container ${id:0:12} has its name, its restart policy ($restart) and its data back"
		fi
		state_set "$adoption" "state=rolled-back" "rolledBackAt=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	fi
	die "the new container of $name (${new:0:12}) did not become healthy within ${wait_s} s (it is $1); last log lines:
${logs}
Fix the cause and run pulumi up again: it switches again."
}

if should_detach; then
	run_detached "dgx-switch-${name}" "${args[@]}"
	exit $?
fi
switch
