#!/usr/bin/env bash
# The copy of the local borg repository in object storage (S3 or Azure Blob) and its restore drill
# (installed as $DGX_LIB_DIR/cloud-copy.sh, run by the dgx-backup-cloud-* units).
#
#   cloud-copy.sh --repo <repo> --host <name> --config <rclone.conf> [--lock-wait S] <command> ...
#
#   copy <target> <remote> [--backup-dir <remote> | --versioned]
#       `borg check` of the local repository; only when it passes, `rclone sync` of the repository
#       directory to <remote> (e.g. s3-main:bucket/sark/repo) while `borg with-lock` holds the
#       repository lock (no create, prune or compact changes a file under rclone). With
#       --backup-dir, every object the sync would overwrite or delete is moved to
#       <backup-dir>/<UTC date>T<time>Z first (the target keeps no versions of its own). With
#       --versioned (an S3 bucket that keeps versions itself), the bucket must say its versioning
#       is Enabled (`rclone backend versioning`) before anything is read: a sync into a bucket
#       without it would delete replaced objects for good, so the copy is refused instead.
#   drill <target> <remote> <scratch dir> [--sample N] [--series S]
#       fetch <remote> into <scratch dir>/repo, `borg check` it, extract N files (default 200) of
#       its latest <host>-<series>-* archive (default daily) and compare their sha256 with the live
#       files unchanged since that archive; the scratch copy is removed afterwards.
#   restore-point <target> <remote> <backup-dir run> <dest>   (by hand, not scheduled)
#       the repository as it was before one sync: <remote> and the objects that sync moved to
#       <backup-dir run> (one dated prefix), fetched into <dest> (a new directory), without the
#       segments and index files that sync added.
#
# <target> names the rclone remote in <rclone.conf> (root's, 0600, written from a Pulumi secret
# on stdin by secret-file.sh); no credential ever comes through argv or the environment.
# The status record (borg-run.py record, the same format as borg-run.sh's) goes to
# $DGX_VAR_DIR/backup-status/cloud-copy-<target>.json or cloud-drill-<target>.json, with
# bytes_added = the bytes rclone transferred, and the same metrics as every backup job to
# $DGX_TEXTFILE_DIR/dgx_backup_cloud_copy_<target>.prom (or _cloud_drill_) when node_exporter's
# textfile directory exists; an error or warning raises the same alert as the other backup jobs
# (journal tag dgx-backup, and the webhook in $DGX_ETC_DIR/alert-webhook).
# Exit status: 0 on success or a warning, 2 on an error, 3 when the repository stayed locked.
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

usage="usage: cloud-copy.sh --repo <repo> --host <name> --config <rclone.conf> [--lock-wait S] copy|drill|restore-point <target> <remote> ..."
repo="" host="" rclone_conf="" lock_wait=600
while [[ $# -gt 0 && "$1" == --* ]]; do
	case "$1" in
	--repo) repo="${2:-}" ;;
	--host) host="${2:-}" ;;
	--config) rclone_conf="${2:-}" ;;
	--lock-wait) lock_wait="${2:-}" ;;
	*) die "unknown option $1; $usage" ;;
	esac
	shift 2 || die "$1 needs a value; $usage"
done
[[ $# -ge 3 ]] || die "$usage"
command="$1" target="$2" remote="$3"
shift 3
[[ "$repo" == /* && "$repo" != *..* ]] || die "--repo must be an absolute local path, got '$repo'"
[[ "$host" =~ ^[a-z][a-z0-9-]*$ ]] || die "--host must be lower-case letters, digits and '-', got '$host'"
[[ "$target" =~ ^[a-z][a-z0-9-]*[a-z0-9]$ ]] || die "the target must be lower-case letters, digits and '-', got '$target'"
[[ "$remote" == "$target:"* ]] || die "the remote must be on the target's rclone remote ($target:...), got '$remote'"
# the bucket (S3) or container (Azure) the remote is in
bucket="${remote#"$target":}"
bucket="${bucket%%/*}"
[[ "$lock_wait" =~ ^[1-9][0-9]*$ ]] || die "--lock-wait must be a whole number of seconds, got '$lock_wait'"
[[ "$rclone_conf" == /* ]] || die "--config must be the absolute path of the rclone config, got '$rclone_conf'"
rclone_conf="${ROOT}${rclone_conf}"
[[ -n "${BORG_PASSCOMMAND:-}" ]] || die "BORG_PASSCOMMAND is not set (the unit sets it to 'cat ${DGX_ETC_DIR}/borg/<repo>.pass')"
unset BORG_PASSPHRASE BORG_PASSPHRASE_FD
# rclone's S3 backend loads the CA bundle this variable names and fails when it cannot; the
# targets are reached with the system's trust store (the unit also unsets it)
unset AWS_CA_BUNDLE
# nothing from an operator's shell may change what rclone does: its config is the file above
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep '^RCLONE_' || true)
require_cmd borg rclone python3

export BORG_REPO="${ROOT}${repo}"
export BORG_BASE_DIR="${BORG_BASE_DIR:-${STATE_DIR}/borg}"
export BORG_RELOCATED_REPO_ACCESS_IS_OK=no BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=no
status_dir="${STATE_DIR}/backup-status"
webhook_file="${ROOT}${DGX_ETC_DIR}/alert-webhook"

job="" outcome=error message="" borg_rc="" bytes="" archive="" started="$(date +%s)"
work="$(mktemp -d)"
scratch=""

if ! declare -F alert >/dev/null; then
	# shellcheck source=components/scripts/backup-alert.sh
	. "$(dirname "${BASH_SOURCE[0]}")/backup-alert.sh"
fi

# record the run (borg-run.py record: the format of every backup job's status) and alert
finish() {
	local rc=$? verdict result prio unused
	trap - EXIT
	[[ -z "$scratch" ]] || rm -rf "$scratch"
	[[ -n "$job" && "$DRY_RUN" != 1 ]] || {
		rm -rf "$work"
		# restore-point is run by hand: no record, no alert, its verdict on the terminal
		if [[ -n "$message" && "$rc" -ne 0 ]]; then printf '%s: error: %s\n' "$SCRIPT_NAME" "$message" >&2; elif [[ -n "$message" ]]; then log "$message"; fi
		exit "$rc"
	}
	if [[ "$outcome" != skipped ]] && [[ "$rc" -ne 0 || "$outcome" == error ]]; then
		outcome=error
		[[ -n "$message" ]] || message="exited with status $rc (see the journal, tag dgx-backup)"
	fi
	mkdir -p "$status_dir"
	# growth factor 0: a cloud copy's size is the changed objects', judged by no median; the
	# metrics go to node_exporter's textfile directory (when it exists), as borg-run.sh's do
	if result="$(run_py borg-run.py record "$status_dir" "$job" "$host" "$started" "$(date +%s)" "$outcome" "${borg_rc:-$rc}" \
		"$bytes" "$archive" "$message" 1000000 "" "${ROOT}${DGX_TEXTFILE_DIR}")"; then
		{
			read -r outcome
			read -r archive
			read -r bytes
			read -r unused # the growth verdict: none with this factor
			read -r message
		} <<<"$result"
		[[ "$archive" != - ]] || archive=""
		[[ "$bytes" != - ]] || bytes=""
		: "$unused"
	else
		warn "could not write the status of $job to $status_dir"
	fi
	rm -rf "$work"
	case "$outcome" in
	ok) verdict="ok" prio=info ;;
	warning) verdict="finished with warnings" prio=warning ;;
	skipped) verdict="SKIPPED" prio=warning ;;
	*) verdict="FAILED" prio=err ;;
	esac
	alert "$prio" "$host $job $verdict${archive:+: archive $archive}${bytes:+, transferred $bytes bytes}${message:+; $message}"
	[[ "$outcome" == error ]] && exit 2
	[[ "$outcome" == skipped ]] && exit 3
	exit 0
}
trap finish EXIT
trap 'message="stopped by SIGTERM"; exit 143' TERM

# end the job as an error with this message
fail() {
	message="$*"
	exit 2
}

# borg_run <args...> : borg with its exit code in borg_rc; a lock held for all of --lock-wait
# ends the run as skipped (the next scheduled run catches up)
borg_run() {
	borg_rc=0
	{ borg "$@" || borg_rc=$?; } 2> >(tee "$work/borg.err" >&2)
	wait $! || true
	if ((borg_rc == 2)) && grep -q "Failed to create/acquire the lock" "$work/borg.err"; then
		outcome=skipped
		message="the repository stayed locked by another job for ${lock_wait} s; the cloud copy to $target runs again at its next schedule"
		exit 3
	fi
}

# rclone with the root-only config and bounded waits: an unreachable endpoint fails in minutes,
# not after rclone's default of hours of retries. Its log (JSON lines) goes to $work/rclone.log.
# The statistics go to the log once, at the end (--stats-log-level NOTICE, one interval longer
# than any run), as a JSON object that cloud-copy.py bytes reads. --fast-list: one recursive
# listing instead of one per directory, fewer (billed) LIST requests on S3 and Azure
# (https://rclone.org/docs/#fast-list); s3rver also lists sub-prefixes only that way.
rc_opts=(--config "$rclone_conf" --fast-list --contimeout 20s --timeout 5m --retries 3 --low-level-retries 5
	--use-json-log --log-level INFO --stats 1000h --stats-log-level NOTICE --log-file "$work/rclone.log")
rc_run() {
	rclone "${rc_opts[@]}" "$@"
}

# rclone_error : the last error lines of rclone's log, in one line, with what they mean
rclone_error() {
	local text hint=""
	text="$(run_py cloud-copy.py errors "$work/rclone.log")"
	case "$text" in
	*"no such host"* | *"connection refused"* | *"i/o timeout"* | *"network is unreachable"* | *"context deadline exceeded"* | *"TLS handshake timeout"* | *"no route to host"*)
		hint="the endpoint is unreachable"
		;;
	*InvalidAccessKeyId* | *SignatureDoesNotMatch* | *AuthenticationFailed* | *AccessDenied* | *"status code: 403"* | *"403 Forbidden"* | *InvalidAuthenticationInfo*)
		hint="the credentials are wrong or lack permission"
		;;
	*NoSuchBucket* | *ContainerNotFound* | *"directory not found"* | *"bucket does not exist"*)
		hint="the bucket or container does not exist (create it, with the settings docs/backups-cloud.md lists)"
		;;
	esac
	printf '%s%s' "${hint:+$hint: }" "$text"
}

# target_reachable : list the remote's bucket once, so that an unreachable endpoint, wrong
# credentials or a missing bucket fail with a sentence that names the target, before anything
# is read from the repository
target_reachable() {
	[[ -n "$bucket" ]] || fail "the remote $remote names no bucket or container"
	if ! rc_run lsf --max-depth 1 --retries 1 "$target:$bucket" >/dev/null 2>"$work/lsf.err"; then
		cat "$work/lsf.err" >>"$work/rclone.log"
		fail "cloud target $target ($remote): $(rclone_error); nothing was copied, the local repository is unchanged"
	fi
}

# bucket_versioned : the S3 bucket keeps versions (GetBucketVersioning says Enabled), or the job
# fails naming the target: a sync relies on those versions to keep what it overwrites or deletes
bucket_versioned() {
	local state
	if ! state="$(rc_run backend versioning --retries 1 "$target:$bucket" 2>"$work/versioning.err")"; then
		cat "$work/versioning.err" >>"$work/rclone.log"
		fail "cloud target $target ($remote): its protection is versioning, but the bucket's versioning could not be read: $(rclone_error); nothing was copied (the key needs s3:GetBucketVersioning)"
	fi
	state="$(tr -d '"[:space:]' <<<"$state")"
	[[ "$state" == Enabled ]] ||
		fail "cloud target $target ($remote): its protection is versioning, but the bucket's versioning is ${state:-not reported}: a sync would delete or overwrite the objects of the last copy for good, so nothing was copied. Enable versioning on $bucket, or set the target's protection to backup-dir (docs/backups-cloud.md)"
}

# transferred : the bytes rclone moved (its final statistics)
transferred() {
	run_py cloud-copy.py bytes "$work/rclone.log"
}

# checked_since : the start (Unix time) of the last passing `borg check` of the repository (the
# weekly check job's record, or the monthly --verify-data one's), or nothing
checked_since() {
	run_py cloud-copy.py checked-since "$status_dir/check.json" "$status_dir/check-verify-data.json"
}

# locked_sync <since> : `rclone sync` of the repository while `borg with-lock` holds its lock, but
# only when no committed part of the repository was written at or after <since>, the start of a
# passing check (cloud-copy.py exec-if-unchanged says how it tells). borg_rc 75: something was,
# the repository is no longer what was checked. The lock
# (https://borgbackup.readthedocs.io/en/1.2-maint/usage/lock.html) keeps create, prune and
# compact from changing a file between that test and the end of the transfer; the lock files
# themselves are not copied, or the copy would open as locked ("borg with-lock", same page).
locked_sync() {
	local PY_ARGV
	py_argv cloud-copy.py
	borg_run with-lock --lock-wait "$lock_wait" "$BORG_REPO" "${PY_ARGV[@]}" exec-if-unchanged "$BORG_REPO" "$1" \
		rclone "${rc_opts[@]}" sync "$BORG_REPO" "$remote" --exclude "/lock.exclusive/**" --exclude /lock.roster "${keep[@]}"
}

run_copy() {
	local backup_dir="" versioned="" stamp since attempt checked=""
	if [[ "${1:-}" == --backup-dir && $# -eq 2 ]]; then
		[[ "${2:-}" == "$target:"* ]] || fail "--backup-dir must be on the target's remote ($target:...), got '${2:-}'"
		backup_dir="$2"
	elif [[ "${1:-}" == --versioned && $# -eq 1 ]]; then
		versioned=yes
	elif [[ $# -gt 0 ]]; then
		fail "usage: cloud-copy.sh ... copy <target> <remote> [--backup-dir <remote> | --versioned]"
	fi
	[[ -d "$BORG_REPO" && -f "$BORG_REPO/config" ]] || fail "the local repository $repo does not exist"
	[[ "$DRY_RUN" != 1 ]] || {
		log "dry run: would check $repo and sync it to $remote${backup_dir:+ (replaced objects to $backup_dir/<date>)}${versioned:+ (once the bucket reports its versioning Enabled)}"
		return 0
	}
	local -a keep=()
	if [[ -n "$backup_dir" ]]; then
		stamp="$(date -u +%Y-%m-%dT%H%M%SZ)"
		keep=(--backup-dir "$backup_dir/$stamp")
	fi
	# A repository that fails its check is never copied: the cloud keeps the last good copy.
	# The unit runs when the weekly check job succeeds (its OnSuccess=); when nothing was written
	# to the repository since that check started, the copy is of exactly what it checked and runs
	# no check of its own. Otherwise (run by hand, or a create committed in between) it checks the
	# repository itself first, and copies when nothing was written since that check started.
	# first of all (before a check that may read for hours, before the repository is locked): an
	# unreachable endpoint, wrong credentials or a missing bucket fail now, naming the target
	target_reachable
	[[ -z "$versioned" ]] || bucket_versioned
	since="$(checked_since)"
	for attempt in 1 2 3 4; do
		if [[ -n "$since" ]]; then
			locked_sync "$since"
			((borg_rc == 75)) || break
		fi
		((attempt < 4)) || break
		since="$(date +%s.%N)" # to the nanosecond: the with-lock of the attempt before committed just now
		checked=yes
		borg_run check --lock-wait "$lock_wait"
		((borg_rc == 0)) || fail "borg check of $repo found errors (exit $borg_rc): not copied to cloud target $target; its last copy is left as it was. See the journal (tag dgx-backup)"
		borg_rc=75
	done
	if ((borg_rc == 75)); then
		outcome=skipped
		message="the repository changed after each of three checks (other backup jobs kept committing); not copied to cloud target $target, the next run catches up"
		exit 3
	fi
	bytes="$(transferred)"
	((borg_rc == 0)) || fail "cloud target $target ($remote): the sync failed (exit $borg_rc): $(rclone_error); the next run catches up"
	local how="as the check job checked it"
	[[ -z "$checked" ]] || how="checked by this job"
	message="synced $repo ($how) to $remote${backup_dir:+, replaced objects kept in $backup_dir/$stamp}${versioned:+, replaced objects kept as noncurrent versions by the bucket}"
	outcome=ok
}

run_drill() {
	local dir="${1:-}" sample=200 series=daily latest report same changed nbad
	[[ "$dir" == /* && "$dir" != *..* ]] || fail "usage: cloud-copy.sh ... drill <target> <remote> <scratch dir> [--sample N] [--series S]"
	shift
	while [[ $# -gt 0 ]]; do
		case "$1" in
		--sample)
			[[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || fail "--sample needs a positive number"
			sample="$2"
			;;
		--series)
			[[ "${2:-}" =~ ^[a-z][a-z0-9-]*$ ]] || fail "--series needs a series name"
			series="$2"
			;;
		*) fail "unknown drill option $1" ;;
		esac
		shift 2
	done
	[[ "$DRY_RUN" != 1 ]] || {
		log "dry run: would fetch $remote into $dir, check it and compare $sample files of its latest $series archive"
		return 0
	}
	target_reachable
	scratch="${ROOT}${dir}/run-$$"
	rm -rf "${ROOT}${dir}"/run-*
	mkdir -p "$scratch/borg"
	chmod 0700 "${ROOT}${dir}" "$scratch"
	rc_run copy "$remote" "$scratch/repo" || fail "cloud target $target ($remote): fetching the copy failed: $(rclone_error)"
	bytes="$(transferred)"
	[[ -f "$scratch/repo/config" ]] || fail "cloud target $target ($remote): holds no borg repository"
	# the fetched copy is a repository borg has not seen here: its own security dir and cache, so
	# the local repository's (same id, other path) are neither consulted nor changed
	export BORG_REPO="$scratch/repo" BORG_BASE_DIR="$scratch/borg"
	borg_run check
	((borg_rc == 0)) || fail "restore drill from cloud target $target: borg check of the fetched copy found errors (exit $borg_rc): the cloud copy is damaged"
	borg_run list --glob-archives "${host}-${series}-*" --sort-by timestamp --last 1 --format '{archive}{NL}' >"$work/latest"
	((borg_rc == 0)) || fail "restore drill from cloud target $target: borg list failed (exit $borg_rc)"
	latest="$(head -n1 "$work/latest")"
	[[ -n "$latest" ]] || fail "restore drill from cloud target $target: no archive ${host}-${series}-* in the cloud copy"
	archive="$latest"
	borg_run list --json-lines "::$latest" >"$work/contents.jsonl"
	run_py borg-run.py drill-sample "$work/contents.jsonl" "$sample" "$latest" >"$work/sample"
	[[ -s "$work/sample" ]] || fail "restore drill from cloud target $target: the archive $latest holds no files"
	local -a sample_paths
	mapfile -t sample_paths <"$work/sample"
	mkdir -p "$scratch/restore"
	(cd "$scratch/restore" && borg extract "::$latest" "${sample_paths[@]}") || fail "restore drill from cloud target $target: extracting from $latest failed"
	report="$(run_py borg-run.py drill-compare "$work/contents.jsonl" "$work/sample" "$scratch/restore")" || fail "the drill's comparison failed"
	read -r same changed nbad <<<"$(head -n1 <<<"$report")"
	if ((nbad > 0)); then
		fail "restore drill from cloud target $target, $latest: $nbad of $((same + nbad)) unchanged files differ after restore: $(tail -n +2 <<<"$report" | tr '\n' ' ')"
	fi
	if ((same == 0)); then
		message="restore drill from cloud target $target, $latest: none of the sampled files is unchanged since the archive; nothing could be compared"
		outcome=warning
		return 0
	fi
	message="restore drill from cloud target $target, $latest: $same files identical by sha256, $changed skipped (changed since the archive)"
	outcome=ok
}

# not scheduled: the operator's way back to the repository as it was before one sync
run_restore_point() {
	local run="${1:-}" dest="${2:-}"
	[[ "$run" == "$target:"* && "$dest" == /* && $# -eq 2 ]] || fail "usage: cloud-copy.sh ... restore-point <target> <remote> <backup-dir run> <dest>"
	dest="${ROOT}${dest}"
	[[ ! -e "$dest" ]] || fail "$dest exists: give a new directory"
	rc_run copy "$remote" "$dest" || fail "cloud target $target: fetching $remote failed: $(rclone_error)"
	rc_run copy "$run" "$dest" || fail "cloud target $target: fetching $run failed: $(rclone_error)"
	run_py cloud-copy.py rewind "$dest" || fail "could not rewind $dest to the transaction kept in $run"
	bytes="$(transferred)"
	message="the repository as it was before the sync of $run is in ${dest#"$ROOT"}"
	outcome=ok
}

case "$command" in
copy) job="cloud-copy-$target" ;;
drill) job="cloud-drill-$target" ;;
restore-point) job="" ;;
*) die "unknown command '$command'; $usage" ;;
esac
[[ -f "$rclone_conf" ]] || fail "the rclone config ${rclone_conf#"$ROOT"} does not exist (the stack writes it from the secret cloudCredentials)"
"run_${command//-/_}" "$@"
