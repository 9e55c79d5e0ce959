#!/usr/bin/env bash
# borg-run.sh's shared functions: the status record and alerts of a job (finish, run on every
# exit), running borg, and one `borg create` (archive_into) for create and copy-offsite.
# The globals (repo, host, job, outcome, message, borg_rc, work, status_dir, LOCK_WAIT, ...) are
# set by borg-run.sh, which sources this file.
# shellcheck disable=SC2034,SC2154
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

borg_run_lib_loaded() { :; }
if ! declare -F alert >/dev/null; then
	# shellcheck source=components/scripts/backup-alert.sh
	. "$(dirname "${BASH_SOURCE[0]}")/backup-alert.sh"
fi

# fail <message> : end the job as an error; the message goes into the status record and the alert
fail() {
	message="$*"
	die "$*"
}

# record the run, decide on alerts; runs on every exit (die, borg failure, SIGTERM from systemd).
# One python3 call reads borg create's --json output (archive name, bytes added), appends the
# status record and judges the size: each python3 start costs ~20 ms of every run.
finish() {
	local rc=$? verdict result prio growth=""
	trap - EXIT
	[[ -n "$job" && "$DRY_RUN" != 1 ]] || {
		rm -rf "$work"
		exit "$rc"
	}
	if [[ "$outcome" != skipped ]] && [[ "$rc" -ne 0 || "$outcome" == error ]]; then
		outcome=error
		[[ -n "$message" ]] || message="exited with status $rc (see the journal, tag dgx-backup)"
	fi
	mkdir -p "$status_dir"
	if result="$(run_py borg-run.py record "$status_dir" "$job" "$host" "$started" "$(date +%s)" "$outcome" "${borg_rc:-$rc}" \
		"$bytes_added" "$archive" "$message" "$growth_factor" "$create_json" "$metrics_dir" "$archives_json" "$archives_glob")"; then
		{
			read -r outcome
			read -r archive
			read -r bytes_added
			read -r growth
			read -r message
		} <<<"$result"
		[[ "$archive" != - ]] || archive=""
		[[ "$bytes_added" != - ]] || bytes_added=""
	else
		warn "could not write the status of $job to $status_dir"
	fi
	rm -rf "$work"
	case "$outcome" in
	ok) verdict="ok" prio=info ;;
	warning) verdict="finished with warnings${borg_rc:+ (borg exit $borg_rc)}" prio=warning ;;
	skipped) verdict="SKIPPED" prio=warning ;;
	*) verdict="FAILED" prio=err ;;
	esac
	alert "$prio" "$host $job $verdict${archive:+: archive $archive}${bytes_added:+, added $bytes_added bytes}${message:+; $message}"
	[[ -z "$growth" ]] || alert warning "$host $job: abnormal backup size: $growth"
	if [[ "$outcome" == ok && -s "$heartbeat_file" ]]; then
		# the URL stays out of argv: python reads it from the file
		run_py borg-run.py ping "$heartbeat_file" || warn "the heartbeat ping failed"
	fi
	[[ "$outcome" == error ]] && exit 2
	[[ "$outcome" == skipped ]] && exit 3
	exit 0
}

# borg_run <borg args...> : run borg, its exit code in borg_rc. When borg gave up waiting for the
# repository lock (held by another job for all of LOCK_WAIT), the run ends here as skipped: a
# warning with its alert, exit 3.
borg_run() {
	borg_rc=0
	# borg's stderr still goes to the journal as it comes; a copy is kept to tell a lock timeout
	# (a group: bash sets $! for a process substitution on a compound command, not on an external one)
	{ borg "$@" || borg_rc=$?; } 2> >(tee "$work/borg.err" >&2)
	wait $! || true # the copy is complete
	if ((borg_rc == 2)) && grep -q "Failed to create/acquire the lock" "$work/borg.err"; then
		outcome=skipped
		message="the repository stayed locked by another job for ${LOCK_WAIT} s (a long daily, check or verify-data run, or a migration's snapshot); the next scheduled run catches up"
		exit 3
	fi
}

# borg_do <borg args...> : run borg, keep its exit code; 0 and 1 (warning) go on, 2+ ends the job
borg_do() {
	borg_run "$@"
	if ((borg_rc >= 2)); then
		message="borg $1 failed with exit status $borg_rc"
		exit 2
	fi
	if ((borg_rc == 1)); then outcome=warning; fi
	return 0
}

# count_archives GLOB : the archives matching GLOB that the repository holds now, for the status
# record and dgx_backup_archives. Neither `borg create --json` nor `borg prune` (1.2 has no --json
# for prune; its --list is log text) reports the repository's archive count, so one `borg list
# --json` asks the manifest: its "archives" array lists each archive once, checkpoints left out
# (https://borgbackup.readthedocs.io/en/1.2-maint/usage/list.html, --json and
# --consider-checkpoints). The list waits a minute at most for the lock (the next job may hold
# it); a list that fails costs only the count, never the job.
count_archives() {
	[[ "$DRY_RUN" != 1 ]] || return 0
	if borg list --lock-wait 60 --glob-archives "$1" --json >"$work/archives.json" 2>"$work/list.err"; then
		archives_json="$work/archives.json" archives_glob="$1"
	else
		warn "could not count the archives $1 in $repo: $(tail -n 2 "$work/list.err" | tr '\n' ' ')"
	fi
}

# host_path P : the path on this host (under ROOT in tests); absolute, no '..'
host_path() {
	[[ "$1" == /* && "$1" != *..* ]] || fail "paths must be absolute without '..', got '$1'"
	printf '%s' "${ROOT}$1"
}

# snapshot_sqlite DB : a consistent copy of a live SQLite database (the online backup API, which
# sees one committed state even while the application writes) at the same path under
# $DGX_VAR_DIR/sqlite-snapshots. The copy is rewritten only when the database or its WAL
# changed since the last copy, so an unchanged database keeps its inode and mtime and borg's
# files cache skips it. https://www.sqlite.org/backup.html
snapshot_sqlite() {
	local db dest
	db="$(host_path "$1")"
	[[ -f "$db" ]] || fail "the SQLite database $1 does not exist"
	dest="${staging_root}$1"
	mkdir -p "$(dirname "$dest")"
	chmod 0700 "$staging_root"
	run_py borg-run.py sqlite-snapshot "$db" "$dest" || fail "the SQLite snapshot of $1 failed"
}

# archive_into <series> [--sqlite DB]... <path>... : one `borg create` into BORG_REPO
archive_into() {
	local series="$1" p db
	shift
	local -a paths=() dbs=() excludes=()
	while [[ $# -gt 0 ]]; do
		case "$1" in
		--sqlite)
			[[ $# -ge 2 ]] || fail "--sqlite needs a database path"
			dbs+=("$2")
			shift 2
			;;
		*)
			p="$(host_path "$1")"
			[[ -e "$p" ]] || fail "the path to back up $1 does not exist on $host"
			paths+=("$p")
			shift
			;;
		esac
	done
	((${#paths[@]} > 0)) || fail "no paths to back up"
	for db in "${dbs[@]}"; do
		snapshot_sqlite "$db"
		# the live file (and its journal) is replaced by the consistent copy in the archive
		for p in "" -wal -shm -journal; do excludes+=(--exclude "pf:$(host_path "$db")$p"); done
	done
	for db in "${dbs[@]}"; do paths+=("${staging_root}${db}"); done
	if [[ "$DRY_RUN" == 1 ]]; then
		log "dry run: would archive ${host}-${series} of ${paths[*]} into $BORG_REPO"
		return 0
	fi
	# --one-file-system: a mount below a configured path (a USB disk, an NFS share, a container's
	#   overlay) is not swept in; each filesystem to back up is listed as a path of its own.
	# --exclude-caches: directories tagged CACHEDIR.TAG (pip, huggingface caches) are skipped.
	# The default files cache (ctime,size,inode) works because the paths are stable host paths,
	# never temporary mounts, so an unchanged file is not read again.
	borg_do create --json --compression lz4 --lock-wait "$LOCK_WAIT" --exclude-caches --one-file-system \
		"${excludes[@]}" "::${host}-${series}-{now:%Y-%m-%dT%H:%M:%S}" "${paths[@]}" >"$work/create.json"
	create_json="$work/create.json" # read by finish
}
