#!/usr/bin/env bash
# borg-run.sh ... create <series> [--sqlite <db>]... <path>...: archive <host>-<series>-<time> of the paths.
# The globals (repo, host, job, outcome, message, borg_rc, work, status_dir, LOCK_WAIT, ...) are
# set by borg-run.sh, which sources this file.
# shellcheck disable=SC2034,SC2154
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

run_create() {
	[[ $# -ge 2 ]] || fail "usage: borg-run.sh ... create <series> [--sqlite <db>]... <path>..."
	archive_into "$@"
	count_archives "${host}-${1}-*"
	[[ "$outcome" == warning ]] || outcome=ok
}
