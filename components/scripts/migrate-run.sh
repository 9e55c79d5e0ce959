#!/usr/bin/env bash
# migrate.sh run <name> <new container|-> <source> <destination> <mount|-> <margin%>
#   <health-timeout-s> <snapshot>: steps 1-10 of migrate.sh's overview, from the pre-flight to
# the service verified on <destination>.
# The globals (name, container, src, dst, S, D, marker, ...) are set by migrate-lib.sh's
# migrate_args and migrate_paths, which migrate.sh runs first.
# shellcheck disable=SC2034,SC2154
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

# writers : the ids of the running containers, other than the new one, that bind-mount the source
writers() {
	local id
	docker ps -q --no-trunc | while read -r id; do
		[[ "$id" == "$container"* || "$container" == "$id"* ]] && continue
		grep -qxF "$src" <<<"$(docker inspect -f '{{range .Mounts}}{{if eq .Type "bind"}}{{.Source}}{{"\n"}}{{end}}{{end}}' "$id" 2>/dev/null)" && echo "$id"
	done
	return 0
}
# restart_writers : the writers recorded in the marker run again, with their restart policies
restart_writers() {
	local entry id policy
	IFS=, read -r -a entries <<<"$(marker_get writers)"
	for entry in "${entries[@]}"; do
		id="${entry%%:*}" policy="${entry#*:}"
		[[ -n "$id" ]] || continue
		docker update --restart="$policy" "$id" >/dev/null 2>&1 || true
		if [[ "$(docker inspect -f '{{.State.Running}}' "$id" 2>/dev/null)" != true ]]; then
			docker start "$id" >/dev/null && warn "$(docker inspect -f '{{.Name}}' "$id" | cut -c2-) runs on the untouched source $src again"
		fi
	done
}

cleanup() {
	local rc=$?
	if [[ -n "$watcher" ]]; then kill "$watcher" 2>/dev/null || true; fi
	if [[ -n "$tree_job" ]]; then
		# at the end of its input it ends; after a failure, at once, even in the middle of a command
		((rc == 0)) || kill "$tree_pid" 2>/dev/null || true
		exec {tree_in}>&-
		wait "$tree_job" 2>/dev/null || true # without bash's "Terminated" line
	fi
	if ((rc != 0 && stopped)) && has_container; then
		warn "stopping the new container and bringing the service back on the untouched source $src"
		docker stop -t 30 "$container" >/dev/null 2>&1 || true
		restart_writers
		marker_set service_stopped=
	fi
	rm -rf "$work"
	exit "$rc"
}
# tree COMMAND ARGS... : migrate-tree.py COMMAND ARGS in that process; what it printed in
# $tree_out, its exit status returned
tree() {
	local reply
	if ! printf '%s\0' "$#" "$@" >&"$tree_in" || ! IFS= read -r reply <&"$tree_rd"; then
		die "migrate-tree.py (python3, pid $tree_pid) ended unexpectedly; a re-run resumes"
	fi
	tree_out="${reply#* }"
	return "${reply%% *}"
}
now_ns() { echo $(($(date +%s%N) - 2000000000)); } # two seconds of slack for coarse timestamps
# Benchmarks and tests only (the program never sets them; sshd would not pass them): a command run
# at a named point, e.g. to change files as a running service would.
hook() { if [[ -n "${!1:-}" ]]; then MIGRATE_WATCHER_PID="$watcher" bash -c "${!1}" 9<&-; fi; }

# progress_df : every 5% of the source's size, what the destination's filesystem has gained since
# (cp has no progress of its own); until killed
progress_df() {
	local start used pct last=0
	start=$(df -B1 --output=used "$parent" | tail -1)
	while sleep 2; do
		used=$(df -B1 --output=used "$parent" | tail -1)
		pct=$((need > 0 ? (used - start) * 100 / need : 100))
		((pct < last + 5)) || {
			log "  $pct% ($(human $((used - start))) of $(human "$need"))"
			last=$pct
		}
	done
}

# changes MARK [--stopped PID] : the changed entries into $work/list, from the record, or from a
# walk of the whole source (ctime newer than $since) when the record cannot be trusted; sets
# listed and deleted. --stopped: the final pass, no other process may hold anything under $S.
changes() {
	local out="" rc=0
	if [[ ! -f "$work/untrusted" ]]; then
		tree delta "$S" "$D" "$work" "${watcher:-0}" "$@" || rc=$?
		out="$tree_out"
	fi
	if [[ -f "$work/untrusted" ]] && ((rc != 4)); then
		[[ -n "${walk_warned:-}" ]] || warn "$(cat "$work/untrusted"): the changes are found by walking the whole source instead"
		walk_warned=1
		rc=0
		tree scan "$S" "$D" "$work" "$since" "${@:2}" || rc=$?
		out="$tree_out"
	fi
	((rc != 4)) || die "processes still hold files open under $src (pids: $out); not copying the final state"
	((rc == 0)) || die "could not find the changed entries under $src"
	read -r listed deleted <<<"$out"
}
# copy live|final : rsync of the lists migrate-tree.py wrote ($work/list, holes, sparse, top);
# -I: by content, never skipped on size and mtime
copy() {
	local rc=0
	# in place: no temporary file and rename for each (migrate-tree.py unlinks a hard-linked name
	# first); without --sparse but for the files that have holes (WORK/holes)
	if [[ -s "$work/list" ]]; then "${RSYNC_DENSE[@]}" -I --inplace --force --from0 --files-from="$work/list" "$S/" "$D/" || rc=$?; fi
	if [[ -s "$work/holes" ]] && ((rc == 0)); then "${RSYNC[@]}" -I --inplace --force --from0 --files-from="$work/holes" "$S/" "$D/" || rc=$?; fi
	# large sparse files: their data is in place already (migrate-tree.py), only attributes left
	if [[ -s "$work/sparse" ]] && ((rc == 0)); then "${RSYNC[@]}" --from0 --files-from="$work/sparse" "$S/" "$D/" || rc=$?; fi
	# the top directory's own attributes, last (the copies above renamed files into it)
	if [[ -s "$work/top" ]] && ((rc == 0)); then "${RSYNC[@]}" --exclude='/*' "$S/" "$D/" || rc=$?; fi
	# live: 23/24 are entries the service changed or removed meanwhile; they fail the comparison
	# and are copied again
	((rc == 0)) || [[ "$1" == live && ($rc == 23 || $rc == 24) ]] ||
		die "rsync failed with exit $rc in the $1 pass"
}

# migrate_run <mount|-> <margin%> <health-timeout-s> <snapshot>
migrate_run() {
	mount_point="$1" margin="$2" health_timeout="$3" snapshot="$4"
	[[ "$margin" =~ ^[0-9]+$ ]] || die "the margin must be a whole percentage, got '$margin'"
	[[ "$snapshot" == none || "$snapshot" =~ ^borg:[a-z][a-z0-9-]*:[a-z][a-z0-9-]*:/ ]] ||
		die "snapshot must be none or borg:<host>:<repository name>:<repository path>, got '$snapshot'"
	state="$(marker_get state)"
	if [[ "$state" == complete ]]; then
		log "migration $name completed on $(marker_get completed_at); nothing to do (the source is never copied again)"
		exit 0
	fi
	if [[ "$state" == verified ]]; then
		# verified, waiting for Pulumi to replace the container; the destination must be as verified
		[[ "$(marker_get source)" == "$src" && "$(marker_get destination)" == "$dst" ]] ||
			die "migration $name was verified for $(marker_get source) -> $(marker_get destination), not $src -> $dst"
		changes="$(rsync -aHAX --numeric-ids --modify-window=-1 -n -i --delete "$S/" "$D/" | head -20 || true)"
		if [[ -n "$changes" ]]; then
			# The service runs on the destination from the trial on, so it may well differ from the
			# source now; whatever the reason, the source is never copied over it again.
			warn "the destination $dst changed after migration $name was verified; not copying over it. Differences (first 20):"$'\n'"$changes"$'\n'"Expected once the service has run on $dst. If it has not, inspect $dst; delete ${marker#"$ROOT"} only to start the migration over from the source"
			exit 0
		fi
		log "migration $name is verified and the destination is unchanged; nothing to do until the container is replaced"
		exit 0
	fi

	# an earlier run killed while the service was stopped (its clean-up never ran): the service
	# runs again first, on the source it never left
	if has_container && [[ "$(marker_get service_stopped)" == 1 ]]; then
		require_cmd docker
		warn "an earlier run of migration $name stopped the service and did not finish; it runs on $src again first"
		docker stop -t 30 "$container" >/dev/null 2>&1 || true
		restart_writers
		marker_set service_stopped=
	fi

	# 1. pre-flight
	[[ -r "$S" && -x "$S" ]] || die "the source $src is not readable; nothing was touched"
	if has_container; then
		require_cmd docker
		docker inspect "$container" >/dev/null 2>&1 || die "there is no container '$container' on $(hostname) (the service's new container, created by pulumi up); nothing was touched"
		[[ "$(docker inspect -f '{{index .Config.Labels "managed-by"}}' "$container")" == dgx-storage ]] ||
			die "container $container is not this project's (no managed-by=dgx-storage label); nothing was touched"
		grep -qxF "$dst" <<<"$(docker inspect -f '{{range .Mounts}}{{.Source}}{{"\n"}}{{end}}' "$container")" ||
			die "container $container does not mount $dst; nothing was touched"
	fi
	parent="$D"
	while [[ ! -e "$parent" ]]; do parent="$(dirname "$parent")"; done
	if [[ "$mount_point" != - ]]; then
		on="$(findmnt -n -o TARGET --target "$parent")"
		[[ "$on" == "${ROOT}${mount_point}" || (-z "$ROOT" && "$on" == "$mount_point") ]] ||
			die "the destination $dst is on the filesystem mounted at $on, not on $mount_point; nothing was touched"
	fi
	resume=0
	if [[ -e "$D" && ! -d "$D" ]]; then
		die "the destination $dst exists and is not a directory; nothing was touched"
	elif [[ -d "$D" ]] && [[ -n "$(ls -A "$D")" ]]; then
		if [[ "$state" != copying || "$(marker_get source)" != "$src" || "$(marker_get destination)" != "$dst" ]]; then
			die "the destination $dst is not empty and holds no earlier run of migration $name; nothing was touched"
		fi
		resume=1
		log "resuming migration $name: $dst holds a partial copy from an earlier run (its content is compared, not trusted)"
	fi
	need=$(du -s --block-size=1 "$S" | cut -f1)
	have_partial=0
	[[ -d "$D" ]] && have_partial=$(du -s --block-size=1 "$D" | cut -f1)
	avail=$(df -B1 --output=avail "$parent" | tail -1 | tr -d ' ')
	want=$((need + need * margin / 100 - have_partial))
	((avail >= want)) ||
		die "not enough room for $dst: the source takes $(human "$need"), with the ${margin}% margin $(human "$want") more are needed, $(human "$avail") are free; nothing was touched"
	if [[ "$DRY_RUN" == 1 ]]; then
		log "dry run: pre-flight passed ($(human "$need") to copy, $(human "$avail") free)"
		exit 0
	fi

	# 2. snapshot: an archive in the backup component's repository, with its pass file and state,
	# taken while the service runs, so SQLite databases go in through borg-run.sh's consistent copies
	if [[ "$snapshot" == borg:* ]]; then
		IFS=: read -r _ borg_host borg_name borg_repo <<<"$snapshot"
		runner="${ROOT}${DGX_LIB_DIR}/borg-run.sh"
		[[ -f "$runner" ]] || die "snapshot=borg but ${runner#"$ROOT"} is not installed (apply the backup component first); nothing was touched"
		sqlite=()
		while IFS= read -r -d '' db; do sqlite+=(--sqlite "${db#"$ROOT"}"); done < <(find "$S" -maxdepth 3 -type f \( -name '*.sqlite3' -o -name '*.sqlite' \) -print0)
		log "borg archive of $src before migrating (repository $borg_repo)"
		# borg's state: borg-run.sh's default, the backup units' BORG_BASE_DIR (${STATE_DIR}/borg)
		BORG_PASSCOMMAND="cat ${ROOT}${DGX_ETC_DIR}/borg/${borg_name}.pass" \
			bash "$runner" --repo "$borg_repo" --host "$borg_host" create "migration-$name" "${sqlite[@]}" "$src" 9<&- ||
			die "the borg archive of $src failed (a repository locked out counts as a failure); nothing was copied and the service was not stopped"
	fi

	mkdir -p "$D"
	marker_set state=copying source="$src" destination="$dst" container="$container" started_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	work="${state_dir}/${name}.work"
	# a watcher left by a run that was killed outright (its clean-up never ran)
	if old="$(cat "$work/watcher.pid" 2>/dev/null)" && grep -qaF "$work/sentinel" "/proc/$old/cmdline" 2>/dev/null; then kill "$old" 2>/dev/null || true; fi
	rm -rf "$work"
	mkdir -p "$work/sentinel"
	chmod 0700 "$work"
	watcher="" stopped=0 tree_pid="" tree_job=""
	trap cleanup EXIT
	trap 'exit 143' TERM INT HUP
	# The tree work (migrate-tree.py) is done by one python3 for the whole run, started now: no
	# interpreter starts inside the downtime (a start costs 20 ms on a quiet machine, more than a
	# second on one loaded with other work).
	coproc TREE {
		exec 9<&-
		exec_py migrate-tree.py serve
	}
	# shellcheck disable=SC2153 # TREE_PID and TREE are coproc's
	tree_job="$TREE_PID" tree_in="${TREE[1]}" tree_rd="${TREE[0]}"
	IFS=' ' read -r _ tree_pid <&"$tree_rd" || die "could not start migrate-tree.py (python3)"

	# 3. the change record: from here on every change under the source is an event in $work/record;
	# the sentinel directory carries the marks (migrate-tree.py delta). Queue overflows, a failed
	# watch, a stopped watcher are noticed there, and the full walk is used instead.
	pass1_since="$(now_ns)"
	if command -v inotifywait >/dev/null 2>&1; then
		t_watch="$(now)"
		inotifywait -m -r -P -e modify,attrib,close_write,move,create,delete,delete_self,move_self,unmount,q_overflow \
			--format '%e%0%w%f%0' --no-newline "$S" "$work/sentinel" >"$work/record" 2>"$work/watcher.err" 9<&- &
		watcher=$!
		echo "$watcher" >"$work/watcher.pid"
		until grep -qs '^Watches established' "$work/watcher.err"; do
			if ! kill -0 "$watcher" 2>/dev/null; then
				echo "the change record's watcher reported: $(grep -v '^Setting up watches' "$work/watcher.err" | head -1)" >"$work/untrusted"
				break
			fi
			sleep 0.05
		done
		[[ -f "$work/untrusted" ]] || log "change record: watching $src (set up in $(elapsed "$t_watch") s)"
	else
		echo "inotifywait is not installed (Debian package inotify-tools)" >"$work/untrusted"
	fi

	# 4. pass 1, service running
	log "pass 1 (service running): $src -> $dst ($(human "$need"))"
	RSYNC_DENSE=(rsync -aHAX --numeric-ids --modify-window=-1)
	RSYNC=("${RSYNC_DENSE[@]}" --sparse)
	# --modify-window=-1: times must match to the nanosecond (rsync otherwise compares whole seconds).
	# --delete --force: a partial copy holds what the source has since removed or turned into another
	# type (a directory now a file); --checksum: and files whose size and mtime match but whose content
	# may not (a file rewritten with its mtime put back, an interrupted write).
	pass1_opts=(--delete --force)
	((resume)) && pass1_opts+=(--checksum)
	t0="$(now)" rc=0
	if ((resume)); then
		# progress (bytes, %, rate, files) every 5%; the process substitution keeps rsync's exit status
		"${RSYNC[@]}" "${pass1_opts[@]}" --info=progress2 "$S/" "$D/" > >(tr '\r' '\n' | awk '/(to|ir)-chk/ { p = $2 + 0; if (p >= last + 5 || p == 100) { print "  " $0; last = p } }') || rc=$?
		# 24: files vanished while rsync ran (the service removed them); the record and the walk know
		((rc == 0 || rc == 24)) || die "pass 1 (rsync) failed with exit $rc; the service still runs on $src and a re-run resumes"
	else
		# An empty destination: GNU cp -a makes the bulk copy with under half of rsync's CPU (no
		# sender/receiver protocol): owners by number, modes and ACLs, times to the nanosecond, hard
		# links, sparse files, devices, xattrs (named, so that a failure to copy them is an error, which
		# -a alone does not report: cp(1)). What it misses or what changes meanwhile, the verification
		# below finds and the live passes copy with rsync.
		used_before=$(df -B1 --output=used "$parent" | tail -1)
		progress_df 9<&- &
		progress=$!
		cp -a --preserve=xattr --sparse=auto -T "$S" "$D" 2>"$work/cp.err" || rc=$?
		kill "$progress" 2>/dev/null || true
		wait "$progress" 2>/dev/null || true
		# files the service removed while cp ran are the only failure let through, as rsync's 24: cp
		# ended by itself (not by a signal) and said nothing else
		if ((rc != 0)); then
			if ((rc > 128)) || [[ ! -s "$work/cp.err" ]] || grep -qv ': No such file or directory$' "$work/cp.err"; then
				head -20 "$work/cp.err" >&2
				die "pass 1 (cp -a) failed with exit $rc; the service still runs on $src and a re-run resumes"
			fi
		fi
		log "  $(human "$(($(df -B1 --output=used "$parent" | tail -1) - used_before))") written to the destination's filesystem"
	fi
	log "pass 1 done in $(elapsed "$t0") s"
	hook MIGRATE_AFTER_PASS1

	# 5. verification of pass 1, service running
	log "verifying pass 1 (service running)"
	since="$(now_ns)"
	tree walk-verify "$S" "$D" "$pass1_since" "$work" ||
		die "the verification of pass 1 failed; the service still runs on $src and a re-run resumes"
	read -r entries deleted data apparent <<<"$tree_out"
	log "pass 1 verified: $entries entries ($(human "$data") of data, $(human "$apparent") apparent), $deleted removed from $dst"
	# pass 1's data to the disk now, while the service runs (syncfs of the destination's filesystem):
	# its writeback would otherwise compete with the final pass, inside the downtime
	t="$(now)"
	sync -f "$D/" || die "could not sync $dst to its disk"
	log "pass 1 on the disk ($(elapsed "$t") s)"

	# 6. live passes: what changed since, until a pass is quick
	copied=0 extra=0
	for ((pass = 1; ; pass++)); do
		t="$(now)" next_since="$(now_ns)"
		changes "m$pass"
		copy live
		tree verify "$S" "$D" "$work" live || die "could not compare the changed entries"
		read -r _ bytes <<<"$tree_out"
		since="$next_since" copied=$((copied + listed)) extra=$((extra + bytes))
		took="$(elapsed "$t")"
		log "live pass $pass (service running): $listed changed entries copied, $deleted removed, in $took s"
		# quick or nothing to do: the final pass then has about as little; five at most, for a
		# service that changes faster than it can be copied
		if ((listed == 0 || pass >= 5)) || awk -v t="$took" 'BEGIN { exit !(t < 1) }'; then break; fi
	done
	hook MIGRATE_BEFORE_STOP

	# 7. the stop: every writer, its restart policy recorded and set to `no` first
	stopped_at="$(now)"
	if has_container; then
		running=()
		mapfile -t running < <(writers)
		recorded=()
		for id in "${running[@]}"; do recorded+=("$id:$(docker inspect -f '{{.HostConfig.RestartPolicy.Name}}' "$id")"); done
		marker_set service_stopped=1 writers="$(
			IFS=,
			echo "${recorded[*]}"
		)"
		stopped=1
		for id in "${running[@]}"; do
			log "stopping $(docker inspect -f '{{.Name}}' "$id" | cut -c2-) (${id:0:12})"
			docker update --restart=no "$id" >/dev/null
			docker stop -t 60 "$id" >/dev/null
		done
	fi
	hook MIGRATE_AT_STOP

	# 8. final pass and its verification: the downtime (no process may hold a file under the source)
	t_final="$(now)"
	changes final --stopped $$
	copy final
	tree verify "$S" "$D" "$work" final || die "the trees differ after the final pass; see above"
	read -r _ bytes <<<"$tree_out"
	copied=$((copied + listed)) extra=$((extra + bytes))
	log "final pass (service stopped): $listed changed entries copied and compared, $deleted removed, in $(elapsed "$t_final") s"
	done_fields=(bytes_copied="$((data + extra))" files_verified="$entries" entries_recopied="$copied" stopped_at="$stopped_at")

	# 9. the cut-over: the new container on the destination
	if has_container; then
		log "starting the new container $(docker inspect -f '{{.Name}}' "$container" | cut -c2-) on $dst"
		docker start "$container" >/dev/null
		if ! wait_healthy --give-up-unhealthy "$container" "$health_timeout"; then
			logs="$(docker logs --tail 10 "$container" 2>&1 || true)"
			die "the service did not become healthy on $dst within ${health_timeout}s; last log lines:"$'\n'"$logs"
		fi
		log "the service is healthy on $dst"
	fi

	# 10. the service runs from the destination
	marker_set "${done_fields[@]}" state=verified verified_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)" handover_at="$(now)" service_stopped=
	stopped=0 # from here on the writers stay stopped: the new container serves
	log "migration $name verified: $((data + extra)) bytes copied, $entries files verified; downtime $(elapsed "$stopped_at") s (service stopped to healthy on $dst)"
}
