#!/usr/bin/env bash
# Install the smartd configuration (plan phase 2.2) and make smartd use it.
#
#   smartd-config.sh apply <file> <content> [--allow-missing-devices]
#   smartd-config.sh remove <file>
#
# <file> is smartd's configuration file (/etc/smartd.conf on Debian and Ubuntu).
# apply:
#   - checks <content> with smartd itself before writing anything: `smartd -q onecheck -c -`
#     parses the file, registers every device and checks it once. Exit 2 (syntax) or any other
#     failure is an error and nothing is written. smartd has no parse-only mode: a device that is
#     not present (exit 16: cannot register, 17: no device to monitor) is an error too, unless
#     --allow-missing-devices is given (hosts without NVMe, such as test machines): then the
#     syntax is checked ("Configuration file ... parsed"), the file is written, and smartd is not
#     restarted, because it would exit on a configuration with no device;
#   - keeps the distribution's file once, as $STATE_DIR/smartd.conf.original;
#   - writes <file> only when it differs, then reloads smartd (SIGHUP re-reads the file) if it
#     runs, or starts it if it does not; unchanged: only starts smartd when it is not running.
# remove: puts the distribution's file back (or deletes <file> if there was none) and reloads.
# Install smartmontools first (the plan's `apt install install smartmontools iostat sysstat`
# names a package "iostat" that does not exist: iostat is in sysstat).
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

mode="${1:-}" allow_missing=0
if [[ "$mode" == apply && $# -eq 4 && "$4" == --allow-missing-devices ]]; then
	allow_missing=1
elif ! { [[ "$mode" == apply && $# -eq 3 ]] || [[ "$mode" == remove && $# -eq 2 ]]; }; then
	die "usage: smartd-config.sh apply <file> <content> [--allow-missing-devices] | remove <file>"
fi
[[ "$2" == /*smartd.conf ]] || die "the file must be an absolute path ending in smartd.conf, got '$2'"
dest="${ROOT}$2"
orig="${STATE_DIR}/smartd.conf.original"
have_systemd=0
[[ -z "$ROOT" ]] && command -v systemctl >/dev/null 2>&1 && have_systemd=1

# Debian/Ubuntu name the unit smartmontools.service (alias smartd.service, which exists only
# once the unit is enabled); other distributions call it smartd.service.
unit=smartd.service
if ((have_systemd)) && systemctl cat smartmontools.service >/dev/null 2>&1; then unit=smartmontools.service; fi

# make_active VERB : reload or start smartd and check that it runs
make_active() {
	if ((!have_systemd)); then
		log "(no systemd) would systemctl $1 $unit"
		return 0
	fi
	systemctl "$1" "$unit" || true
	if systemctl is-active --quiet "$unit"; then
		log "smartd ($unit) ${1}ed and running"
	elif [[ "$(systemctl show -p ConditionResult --value "$unit")" == no ]]; then
		# smartmontools.service has ConditionVirtualization=no: smartd does not run in a VM
		log "smartd ($unit) not started: a condition of the unit is not met on this host (e.g. ConditionVirtualization=no in a VM)"
	else
		die "smartd ($unit) is not running after '$1': $(journalctl -u "$unit" -n 8 --no-pager 2>&1)"
	fi
}

if [[ "$mode" == remove ]]; then
	if [[ "$DRY_RUN" == 1 ]]; then
		log "dry run: would restore the distribution's ${2} and reload smartd"
		exit 0
	fi
	if [[ -f "$orig" ]]; then
		cp -p "$orig" "$dest"
		rm -f "$orig"
		log "$2 restored from the distribution's copy"
	elif [[ -f "${orig}.absent" ]]; then
		rm -f "$dest" "${orig}.absent"
		log "$2 deleted (there was none before)"
	else
		log "nothing to restore for $2"
		exit 0
	fi
	if ((have_systemd)) && systemctl is-active --quiet "$unit"; then systemctl reload "$unit"; fi
	exit 0
fi

content="$3"
[[ -n "$content" ]] || die "the content for $2 is empty"
require_cmd smartd
set +e
check="$(printf '%s' "$content" | smartd -q onecheck -c - 2>&1)"
rc=$?
set -e
no_devices=0
case "$rc" in
0) log "smartd checked the configuration and every device in it" ;;
16 | 17)
	grep -q 'Configuration file .* parsed' <<<"$check" ||
		die "smartd did not report the configuration as parsed (exit $rc); nothing was written: $check"
	if ((allow_missing)); then
		no_devices=1
		warn "the configuration parses, but smartd cannot monitor its devices on $(hostname) (exit $rc, --allow-missing-devices given): $(grep -E 'Device|Unable' <<<"$check" | tr '\n' ' ')"
	else
		die "a device in the configuration is not present or not readable on $(hostname) (smartd exit $rc); nothing was written: $(grep -E 'Device|Unable' <<<"$check" | tr '\n' ' ')"
	fi
	;;
*) die "smartd rejected the configuration (exit $rc); nothing was written: $check" ;;
esac

mkdir -p "$(dirname "$dest")"
if [[ "$DRY_RUN" != 1 ]]; then
	mkdir -p "$STATE_DIR"
	chmod 0700 "$STATE_DIR"
	# the distribution's file, once: a file that already carries our header is not theirs
	if [[ ! -f "$orig" && ! -f "${orig}.absent" ]]; then
		if [[ -f "$dest" ]] && ! grep -q '^# Managed by dgx-storage' <<<"$(head -n 1 "$dest")"; then
			cp -p "$dest" "$orig"
			log "kept the distribution's $2 as ${orig#"$ROOT"}"
		elif [[ ! -f "$dest" ]]; then
			: >"${orig}.absent"
		fi
	fi
fi
verdict="$(printf '%s' "$content" | install_content "$dest" 0644)"
log "$2 $verdict"
if [[ "$DRY_RUN" == 1 ]]; then
	log "dry run: smartd would be $([[ $verdict == changed ]] && echo reloaded || echo left as it is)"
	exit 0
fi
if ((no_devices)); then
	log "smartd not (re)started: none of the configured devices is present on $(hostname)"
elif [[ "$verdict" == changed ]]; then
	if ((have_systemd)) && systemctl is-active --quiet "$unit"; then make_active reload; else make_active restart; fi
elif ((have_systemd)) && ! systemctl is-active --quiet "$unit"; then
	make_active start
fi
