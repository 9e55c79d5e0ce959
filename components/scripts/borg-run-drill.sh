#!/usr/bin/env bash
# borg-run.sh ... drill <series> [--sample N]: restore drill on the latest archive of a series.
# The globals (repo, host, job, outcome, message, borg_rc, work, status_dir, LOCK_WAIT, ...) are
# set by borg-run.sh, which sources this file.
# shellcheck disable=SC2034,SC2154
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

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
