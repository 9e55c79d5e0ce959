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
if ! declare -F borg_run_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/borg-run-lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/borg-run-lib.sh"
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
# node_exporter's textfile directory: each run's metrics, when it exists
metrics_dir="${ROOT}${DGX_TEXTFILE_DIR}"
# the dead-man's-switch URL (healthchecks-style): pinged after each successful run, when set
heartbeat_file="${ROOT}${DGX_ETC_DIR}/heartbeat-url"
# How long borg waits for the repository lock (--lock-wait, seconds). borg's default of 1 s fails
# whenever two jobs meet; the units pass a share of the job's own period, so a job waits out a
# long daily, check or verify-data run but never into its own next run. Still locked after that:
# the run is skipped with a warning (not an error), and the next one catches up.
LOCK_WAIT="$lock_wait"

job="" outcome=error message="" borg_rc="" bytes_added="" archive="" create_json="" archives_json="" archives_glob="" started="$(date +%s)"
work="$(mktemp -d)"
trap finish EXIT
trap 'message="stopped by SIGTERM"; exit 143' TERM
case "$command" in
create | prune | drill) name="${command}-${1:-}" ;;
check) name=check ;;
copy-offsite) name="copy-offsite" ;;
watch) name=watch ;;
*) die "unknown command '$command'; $usage" ;;
esac
[[ "$name" =~ ^[a-z][a-z0-9-]*[a-z0-9]$ ]] || die "the series must be lower-case letters, digits and '-'; $usage"
job="$name"
# each command is a file of its own, borg-run-<command>.sh, defining run_<command> (in a bundle,
# components/render/command.ts carries them all, so the function is already defined)
if ! declare -F "run_${command//-/_}" >/dev/null; then
	# shellcheck source=/dev/null
	. "$(dirname "${BASH_SOURCE[0]}")/borg-run-${command}.sh"
fi
"run_${command//-/_}" "$@"
