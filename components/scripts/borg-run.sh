#!/usr/bin/env bash
# The backup jobs the systemd services run (installed as $DGX_LIB_DIR/borg-run.sh).
#
#   borg-run.sh --repo <repo> --host <name> [--growth-factor N] <command> ...
#
#   create <series> [--sqlite <db>]... <path>...     archive <host>-<series>-<time> of the paths
#   prune <series> --keep-<unit>=N...                 prune that series alone, then `borg compact`
#   check [--verify-data]                             `borg check` (--verify-data reads every chunk)
#   drill <series> [--sample N]                       restore drill on the latest archive of a series
#   copy-offsite <ssh-key> <known-hosts> [--sqlite <db>]... <path>...
#                                                     archive <host>-offsite-<time> into --repo, an
#                                                     ssh:// repository on the other host (created
#                                                     on the first run, its key exported)
#   watch <job>=<max-age-seconds>...      alert when a job's last run is older than its max age
#
# The passphrase comes from BORG_PASSCOMMAND (set by the unit: `cat $DGX_ETC_DIR/borg/<repo>.pass`);
# it is never read into this script. borg's state lives in $DGX_VAR_DIR/borg (BORG_BASE_DIR).
#
# Every run appends a JSON line {job, host, start, status, exit_code, duration_s, bytes_added,
# archive, message} to $DGX_VAR_DIR/backup-status/<job>.history.jsonl (the newest 500
# kept) and writes the same line to <job>.json (the last result, for monitoring), where <job> is
# create-<series>, prune-<series>, check, check-verify-data, drill-<series> or copy-offsite.
# It logs to the journal with the tag dgx-backup. An error, a borg warning (exit 1), or an
# archive that added more than --growth-factor (default 4) times the median of the last 10
# runs raises an alert: the journal at priority err/warning and, when $DGX_ETC_DIR/alert-webhook
# holds a URL, a POST of the message to it (ALERT_CMD, when set, replaces the POST: it runs
# with the message on stdin and ALERT_PRIORITY, ALERT_JOB, ALERT_URL_FILE in its environment).
# Exit status: 0 on success and on a warning (the alert has been sent), 2 on an error, 3 when the
# run was skipped because the repository stayed locked for all of --lock-wait (status "skipped",
# a warning alert): the unit shows as failed until a run succeeds, a second ExecStart= of the unit
# does not run, and a migration's snapshot fails rather than going on without an archive.
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

usage="usage: borg-run.sh --repo <repo> --host <name> [--growth-factor N] [--lock-wait S] create|prune|check|drill|copy-offsite|watch ..."
repo="" host="" growth_factor=4 lock_wait=600
while [[ $# -gt 0 && "$1" == --* ]]; do
	case "$1" in
	--repo) repo="${2:-}" ;;
	--host) host="${2:-}" ;;
	--growth-factor) growth_factor="${2:-}" ;;
	--lock-wait) lock_wait="${2:-}" ;;
	*) die "unknown option $1; $usage" ;;
	esac
	shift 2 || die "$1 needs a value; $usage"
done
[[ $# -ge 1 ]] || die "$usage"
command="$1"
shift
[[ -n "$repo" ]] || die "--repo is missing; $usage"
[[ "$host" =~ ^[a-z][a-z0-9-]*$ ]] || die "--host must be lower-case letters, digits and '-', got '$host'"
[[ "$growth_factor" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--growth-factor must be a number, got '$growth_factor'"
[[ "$lock_wait" =~ ^[1-9][0-9]*$ ]] || die "--lock-wait must be a whole number of seconds, got '$lock_wait'"
[[ -n "${BORG_PASSCOMMAND:-}" ]] || die "BORG_PASSCOMMAND is not set (the unit sets it to 'cat ${DGX_ETC_DIR}/borg/<repo>.pass')"
unset BORG_PASSPHRASE BORG_PASSPHRASE_FD
require_cmd borg python3

case "$repo" in
ssh://*) export BORG_REPO="$repo" ;;
/*) export BORG_REPO="${ROOT}${repo}" ;;
*) die "--repo must be an absolute path or an ssh:// URL, got '$repo'" ;;
esac
export BORG_BASE_DIR="${BORG_BASE_DIR:-${STATE_DIR}/borg}"
# a scheduled job must never wait for an answer: every question borg might ask is answered "no"
export BORG_RELOCATED_REPO_ACCESS_IS_OK=no BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=no
status_dir="${STATE_DIR}/backup-status"
staging_root="${STATE_DIR}/sqlite-snapshots"
webhook_file="${ROOT}${DGX_ETC_DIR}/alert-webhook"
# How long borg waits for the repository lock (--lock-wait, seconds). borg's default of 1 s fails
# whenever two jobs meet; the units pass a share of the job's own period, so a job waits out a
# long daily, check or verify-data run but never into its own next run. Still locked after that:
# the run is skipped with a warning (not an error), and the next one catches up.
LOCK_WAIT="$lock_wait"

job="" outcome=error message="" borg_rc="" bytes_added="" archive="" create_json="" started="$(date +%s)"
work="$(mktemp -d)"

# fail <message> : end the job as an error; the message goes into the status record and the alert
fail() {
	message="$*"
	die "$*"
}

# alert <err|warning|info> <message> : journal (tag dgx-backup), and the webhook for err/warning
alert() {
	local prio="$1" text="$2"
	logger -t dgx-backup -p "user.$prio" -- "$text" 2>/dev/null || printf 'dgx-backup: %s: %s\n' "$prio" "$text" >&2
	[[ "$prio" != info && -s "$webhook_file" ]] || return 0
	if [[ -n "${ALERT_CMD:-}" ]]; then
		printf '%s\n' "$text" | ALERT_PRIORITY="$prio" ALERT_JOB="$job" ALERT_URL_FILE="$webhook_file" bash -c "$ALERT_CMD" ||
			warn "the alert command failed"
		return 0
	fi
	# the URL stays out of argv: python reads it from the file
	printf '%s\n' "$text" | run_py borg-run.py post-webhook "$webhook_file" "$prio" ||
		warn "the alert POST to the webhook in ${DGX_ETC_DIR}/alert-webhook failed"
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
		"$bytes_added" "$archive" "$message" "$growth_factor" "$create_json")"; then
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
	[[ "$outcome" == error ]] && exit 2
	[[ "$outcome" == skipped ]] && exit 3
	exit 0
}
trap finish EXIT
trap 'message="stopped by SIGTERM"; exit 143' TERM

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

run_create() {
	[[ $# -ge 2 ]] || fail "usage: borg-run.sh ... create <series> [--sqlite <db>]... <path>..."
	archive_into "$@"
	[[ "$outcome" == warning ]] || outcome=ok
}

run_prune() {
	local series="$1" k
	shift
	[[ $# -ge 1 ]] || fail "usage: borg-run.sh ... prune <series> --keep-<unit>=N..."
	for k in "$@"; do
		[[ "$k" =~ ^--keep-((secondly|minutely|hourly|daily|weekly|monthly|yearly)=[0-9]+|within=[0-9]+[Hdwmy])$ ]] ||
			fail "'$k' is not a retention option (--keep-daily=7, --keep-within=2d, ...)"
	done
	local -a dry=()
	[[ "$DRY_RUN" != 1 ]] || dry=(--dry-run)
	# the glob keeps each series' retention to its own archives (hourly never prunes daily)
	borg_do prune "${dry[@]}" --list --lock-wait "$LOCK_WAIT" --glob-archives "${host}-${series}-*" "$@"
	# prune only marks chunks unused; compact frees the space (borg 1.2)
	[[ "$DRY_RUN" == 1 ]] || borg_do compact --lock-wait "$LOCK_WAIT"
	[[ "$outcome" == warning ]] || outcome=ok
}

run_check() {
	local -a opts=()
	case "${1:-}" in
	"") ;;
	--verify-data) opts=(--verify-data) job=check-verify-data ;;
	*) fail "usage: borg-run.sh ... check [--verify-data]" ;;
	esac
	[[ "$DRY_RUN" != 1 ]] || {
		log "dry run: would run borg check ${opts[*]}"
		return 0
	}
	# borg 1.2 check exits 1, not 2, when it finds damage ("errors found"): for a check that is
	# an error, not a warning
	borg_run check --lock-wait "$LOCK_WAIT" "${opts[@]}"
	if ((borg_rc != 0)); then
		message="borg check ${opts[*]} found errors (exit $borg_rc): the repository is damaged; see the journal (tag dgx-backup); copy the repository before any borg check --repair"
		exit 2
	fi
	outcome=ok
}

# The restore drill: extract a sample of the latest archive of a series into a scratch directory
# and compare sha256 with the live files that have not changed since that archive was made.
run_drill() {
	local series="${1:-}" sample=200 scratch latest
	[[ -n "$series" ]] || fail "usage: borg-run.sh ... drill <series> [--sample N]"
	shift
	if [[ "${1:-}" == --sample ]]; then
		[[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || fail "--sample needs a positive number"
		sample="$2"
	fi
	[[ "$DRY_RUN" != 1 ]] || {
		log "dry run: would extract $sample files of the latest ${host}-${series} archive and compare them"
		return 0
	}
	borg_do list --lock-wait "$LOCK_WAIT" --glob-archives "${host}-${series}-*" --sort-by timestamp --last 1 \
		--format '{archive}{NL}' >"$work/latest"
	latest="$(head -n1 "$work/latest")"
	[[ -n "$latest" ]] || {
		message="no archive ${host}-${series}-* to drill"
		exit 2
	}
	archive="$latest"
	borg_do list --lock-wait "$LOCK_WAIT" --json-lines "::$latest" >"$work/contents.jsonl"
	# the sample: regular files, chosen at random but repeatably for one archive
	run_py borg-run.py drill-sample "$work/contents.jsonl" "$sample" "$latest" >"$work/sample"
	[[ -s "$work/sample" ]] || {
		message="the archive $latest holds no files"
		exit 2
	}
	scratch="$work/restore"
	mkdir -p "$scratch"
	local -a sample_paths
	mapfile -t sample_paths <"$work/sample"
	cd "$scratch"
	borg_run extract --lock-wait "$LOCK_WAIT" "::$latest" "${sample_paths[@]}"
	cd /
	if ((borg_rc >= 2)); then
		message="restore drill: extracting from $latest failed (borg exit $borg_rc): the repository is damaged or unreadable; run borg check --verify-data"
		exit 2
	fi
	((borg_rc == 0)) || outcome=warning
	local report
	report="$(run_py borg-run.py drill-compare "$work/contents.jsonl" "$work/sample" "$scratch")" || fail "the drill's comparison failed"
	local same changed nbad
	read -r same changed nbad <<<"$(head -n1 <<<"$report")"
	if ((nbad > 0)); then
		message="restore drill of $latest: $nbad of $((same + nbad)) unchanged files differ after restore: $(tail -n +2 <<<"$report" | tr '\n' ' ')"
		exit 2
	fi
	if ((same == 0)); then
		message="restore drill of $latest: none of the sampled files is unchanged since the archive; nothing could be compared"
		outcome=warning
		return 0
	fi
	message="restore drill of $latest: $same files identical by sha256, $changed skipped (changed since the archive)"
	[[ "$outcome" == warning ]] || outcome=ok
}

# The weekly off-site copy: a separate archive of the same paths into the repository on the
# other host. borg 1.2 cannot copy archives between repositories (`borg transfer` is borg 2), and
# a second `borg create` is as cheap: the far side only receives chunks it does not have. The
# far side forces `borg serve --append-only --restrict-to-path <repo>` for this key, so this
# host cannot delete its own off-site history; retention there is the receiving operator's job.
run_copy_offsite() {
	[[ $# -ge 3 ]] || fail "usage: borg-run.sh --repo ssh://... copy-offsite <ssh-key> <known-hosts> [--sqlite <db>]... <path>..."
	local key known_hosts out
	[[ "$BORG_REPO" == ssh://* ]] || fail "copy-offsite needs --repo ssh://<user>@<host>:<port>/<path>, got '$repo'"
	key="$(host_path "$1")" known_hosts="$(host_path "$2")"
	shift 2
	[[ -f "$key" ]] || fail "the off-site SSH key $key does not exist (borg-repo.sh ssh-key creates it)"
	[[ -f "$known_hosts" ]] || fail "the off-site host key file $known_hosts does not exist"
	# BORG_RSH from the environment wins: the tests use a local wrapper instead of ssh
	export BORG_RSH="${BORG_RSH:-ssh -i $key -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$known_hosts -o ServerAliveInterval=30}"
	# not borg_run: borg's message must be captured in $out to tell "does not exist" (init it) from other failures
	if [[ "$DRY_RUN" != 1 ]] && ! out="$(borg list --lock-wait "$LOCK_WAIT" --short --last 1 2>&1 >/dev/null)"; then
		[[ "$out" == *"does not exist"* ]] || {
			message="cannot open the off-site repository $repo: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
			exit 2
		}
		borg init --encryption=repokey "$BORG_REPO" >"$work/init.log" 2>&1 || {
			message="borg init of the off-site repository $repo failed: $(tail -n 3 "$work/init.log" | tr '\n' ' ')"
			exit 2
		}
		mkdir -p "${ROOT}${DGX_ETC_DIR}/borg"
		borg_do key export "$BORG_REPO" "$work/offsite.key"
		install_content "${ROOT}${DGX_ETC_DIR}/borg/${host}-offsite.key" 0600 <"$work/offsite.key" >/dev/null
		log "initialised the off-site repository $repo; its key is in ${DGX_ETC_DIR}/borg/${host}-offsite.key"
	fi
	archive_into offsite "$@"
	[[ "$outcome" == warning ]] || outcome=ok
}

# watch <job>=<max-age-seconds>... : a job whose last run (its status record) is older than its
# max age, or that has not run within it since the watch began, is a missed schedule: alert (err)
run_watch() {
	local spec jid max since now last missed=0
	[[ $# -ge 1 ]] || fail "watch needs <job>=<max age in seconds>..."
	mkdir -p "$status_dir"
	[[ -f "$status_dir/.watch-since" ]] || date +%s >"$status_dir/.watch-since"
	since="$(cat "$status_dir/.watch-since")"
	now="$(date +%s)"
	for spec in "$@"; do
		jid="${spec%%=*}" max="${spec#*=}"
		[[ "$jid" =~ ^[a-z][a-z0-9-]*$ && "$max" =~ ^[0-9]+$ ]] || fail "watch: '$spec' is not <job>=<seconds>"
		last="$(run_py borg-run.py last-start "$status_dir/$jid.json" 2>/dev/null || true)"
		if [[ -z "$last" ]]; then
			if ((now - since > max)); then
				alert err "$host backup job $jid missed its schedule: it has not run since the watch began $(((now - since) / 3600)) h ago (expected at least every $((max / 3600)) h)"
				missed=$((missed + 1))
			fi
		elif ((now - last > max)); then
			alert err "$host backup job $jid missed its schedule: last run $(date -u -d "@$last" +%Y-%m-%dT%H:%MZ), $(((now - last) / 3600)) h ago (expected at least every $((max / 3600)) h)"
			missed=$((missed + 1))
		fi
	done
	outcome=ok
	if ((missed > 0)); then
		outcome=warning
		message="$missed missed schedule(s)"
	fi
}

case "$command" in
create | prune | drill) name="${command}-${1:-}" ;;
check) name=check ;;
copy-offsite) name="copy-offsite" ;;
watch) name=watch ;;
*) die "unknown command '$command'; $usage" ;;
esac
[[ "$name" =~ ^[a-z][a-z0-9-]*[a-z0-9]$ ]] || die "the series must be lower-case letters, digits and '-'; $usage"
job="$name"
"run_${command//-/_}" "$@"
