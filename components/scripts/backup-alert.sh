#!/usr/bin/env bash
# The alert of every backup job (borg-run.sh's and cloud-copy.sh's), sourced by both. Globals:
# webhook_file, job.
# shellcheck disable=SC2154
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

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
