#!/usr/bin/env bash
# borg-run.sh ... prune <series> --keep-<unit>=N...: prune that series alone, then `borg compact`.
# The globals (repo, host, job, outcome, message, borg_rc, work, status_dir, LOCK_WAIT, ...) are
# set by borg-run.sh, which sources this file.
# shellcheck disable=SC2034,SC2154
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

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
	count_archives "${host}-${series}-*"
	[[ "$outcome" == warning ]] || outcome=ok
}
