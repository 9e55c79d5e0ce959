#!/usr/bin/env bash
# borg-run.sh ... watch <job>=<max-age-seconds>...: alert on a missed schedule.
# The globals (repo, host, job, outcome, message, borg_rc, work, status_dir, LOCK_WAIT, ...) are
# set by borg-run.sh, which sources this file.
# shellcheck disable=SC2034,SC2154
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

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
