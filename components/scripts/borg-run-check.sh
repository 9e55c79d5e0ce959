#!/usr/bin/env bash
# borg-run.sh ... check [--verify-data]: `borg check` (--verify-data reads every chunk).
# The globals (repo, host, job, outcome, message, borg_rc, work, status_dir, LOCK_WAIT, ...) are
# set by borg-run.sh, which sources this file.
# shellcheck disable=SC2034,SC2154
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

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
