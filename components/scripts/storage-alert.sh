#!/usr/bin/env bash
# The storage alert check (plan phases 2.2 and 5.2, "Monitoring and Alerting"), run by
# dgx-storage-alert.timer; and the hook smartd calls for its warnings.
#
#   storage-alert.sh check <config.json>    measure, decide, alert
#   storage-alert.sh smartd <config.json>   alert from smartd's SMARTD_* variables (-M exec hook)
#   storage-alert.sh decide <config.json>   the decision alone: measurements JSON on stdin,
#                                           alerts JSON on stdout (no commands run, nothing sent)
#
# The config (written by the program, components/render/monitoring.ts) names the data mounts,
# the thresholds, the containers, the fio baselines and the webhook file. The checks:
#   usage      per data mount, used / (used + available) as df counts it:
#              above usage.warning % -> warning, above usage.critical % -> critical
#   iowait     CPU %iowait over iowait.sampleSeconds (the second report of `iostat -c N 2`; the
#              first one is the average since boot): above warning / critical
#   iops       a short fio probe (4k random read, QD32) at most every iops.everyMinutes per
#              target; below minFraction x the baseline's randread-4k-qd32 IOPS -> warning;
#              no baseline file yet -> an info line, no probe
#   containers each named container: exited, dead, restarting, unhealthy or missing -> critical;
#              paused or created -> warning; health "starting" -> info
# Every alert says what, where, the value and the threshold. All of them go to the journal
# (`logger -t storage-alert -p daemon.<crit|warning|info>`) on every run; warnings and critical
# alerts also go to the webhook (the URL in config.webhookFile, if that file exists) when new,
# when their severity changes, and again every repeatMinutes while they last; a cleared alert is
# sent once as resolved. State: $STATE_DIR/storage-alert.state.json.
# Commands come from PATH (df, iostat, docker, fio, logger), so tests put stubs first in PATH.
# A data source that fails is itself a warning (what "check"), not a failed unit.
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

mode="${1:-}"
[[ "$mode" =~ ^(check|smartd|decide)$ && $# -eq 2 ]] ||
	die "usage: storage-alert.sh check|smartd|decide <config.json>"
[[ "$2" == /* ]] || die "the config must be an absolute path, got '$2'"
[[ -f "${ROOT}$2" ]] || die "config file $2 does not exist"
require_cmd python3
if [[ "$mode" == decide ]]; then
	run_py storage-alert.py decide "$2" "$ROOT" /dev/null "$DRY_RUN"
	exit $?
fi
[[ "$DRY_RUN" == 1 ]] || require_cmd logger

# python prints "<priority>\t<text>" per journal line and one "summary\t..." line
status=0
while IFS=$'\t' read -r prio text; do
	case "$prio" in
	summary) log "$text" ;;
	failed)
		# the check itself failed (not an alert): the unit fails, the journal says why
		warn "the check did not complete (python exited $text)"
		status=1
		;;
	*)
		if [[ "$DRY_RUN" == 1 ]]; then
			log "dry run: would log (daemon.$prio) $text"
		else
			logger -t storage-alert -p "daemon.$prio" -- "$text"
		fi
		;;
	esac
done < <(run_py storage-alert.py "$mode" "$2" "$ROOT" "${STATE_DIR}/storage-alert.state.json" "$DRY_RUN" || printf 'failed\t%s\n' "$?")
exit "$status"
