#!/usr/bin/env bash
# Install a named set of systemd units (and the helper files they run), enable their timers.
#
#   install-units.sh apply <set> '<manifest json>'
#   install-units.sh remove <set>
#
# The manifest is {"files":[{"path","mode","content"}...],"enable":["x.timer",...]}.
# apply:
#   - refuses paths outside /etc/systemd/system, $DGX_LIB_DIR and $DGX_ETC_DIR;
#   - writes each file only when it differs (atomically): first the files the units run, then,
#     once `systemd-analyze verify` accepts the new unit files, the units; then
#     `systemctl daemon-reload` when a unit changed;
#   - removes (after disabling) the files an earlier version of this set installed and this
#     one no longer has;
#   - enables and starts each unit of "enable" that is not enabled and active yet, and
#     remembers the ones that were not enabled before, so that `remove` disables only those
#     (util-linux's fstrim.timer may have been on already).
# remove: disables what the set enabled, deletes its files, reloads systemd.
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

mode="${1:-}" set="${2:-}"
[[ "$mode" == apply && $# -eq 3 ]] || [[ "$mode" == remove && $# -eq 2 ]] ||
	die "usage: install-units.sh apply <set> '<manifest json>' | remove <set>"
[[ "$set" =~ ^[a-z][a-z0-9-]*$ ]] || die "the set name must be lower-case letters, digits and '-', got '$set'"
require_cmd python3
state_dir="${STATE_DIR}/units"
list="${state_dir}/${set}.files"
enabled_list="${state_dir}/${set}.enabled"
have_systemd=0
[[ -z "$ROOT" ]] && command -v systemctl >/dev/null 2>&1 && have_systemd=1

sys() {
	# systemctl on the real host; tests (ROOT set) have no systemd and print what would run
	if ((have_systemd)); then systemctl "$@"; else log "(no systemd) systemctl $*"; fi
}

disable_ours() {
	local u
	[[ -f "$enabled_list" ]] || return 0
	while IFS= read -r u; do
		[[ -n "$u" ]] || continue
		# a here-string, not `printf | grep -q`: under pipefail, grep -q exiting at its first match
		# can kill printf with SIGPIPE and turn a match into a failure
		if [[ $# -gt 0 ]] && grep -qxF -- "$u" <<<"$(printf '%s\n' "$@")"; then continue; fi
		sys disable --now "$u" >/dev/null 2>&1 || true
		log "disabled $u"
	done <"$enabled_list"
}

if [[ "$mode" == remove ]]; then
	[[ "$DRY_RUN" != 1 ]] || {
		log "dry run: would disable and delete the units of set $set"
		exit 0
	}
	disable_ours
	if [[ -f "$list" ]]; then
		while IFS= read -r f; do [[ -n "$f" ]] && rm -f "${ROOT}${f}" && log "deleted $f"; done <"$list"
	fi
	rm -f "$list" "$enabled_list"
	sys daemon-reload
	exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Split the manifest into files under $work (same relative paths), a list of paths and modes,
# and the units to enable. Paths are checked here, before anything is written.
run_py install-units.py "$3" "$work" "$DGX_LIB_DIR" "$DGX_ETC_DIR" || exit 1

mapfile -t entries <"$work/.files"
mapfile -t enable <"$work/.enable"

changed_units=0
declare -a paths=()
# install_entry "<path> <mode>" : write one file of the set when it differs
install_entry() {
	local p="${1% *}" m="${1##* }" verdict
	mkdir -p "$(dirname "${ROOT}${p}")"
	verdict="$(install_content "${ROOT}${p}" "$m" <"$work/root${p}")"
	if [[ "$verdict" == changed ]]; then
		log "$p changed"
		[[ "$p" == /etc/systemd/system/* ]] && changed_units=1
	fi
	return 0
}

# The files the units run first (scripts, configs): `systemd-analyze verify` checks that an
# ExecStart= program exists, so the units are verified once those are in place, and only then
# installed themselves. A unit that fails verification is never installed.
for e in "${entries[@]}"; do
	if [[ "${e% *}" != /etc/systemd/system/* ]]; then install_entry "$e"; fi
done

# systemd-analyze verify the new units as a set (a timer finds its service beside it)
units_dir="$work/root/etc/systemd/system"
if ((have_systemd)) && [[ -d "$units_dir" ]] && command -v systemd-analyze >/dev/null 2>&1; then
	mapfile -t new_units < <(find "$units_dir" -maxdepth 1 -type f \( -name '*.service' -o -name '*.timer' \) | sort)
	if ((${#new_units[@]} > 0)); then
		if ! out="$(cd "$units_dir" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "${new_units[@]}" 2>&1)"; then
			die "systemd-analyze verify rejected the units of set $set; nothing was installed:
$out"
		fi
	fi
fi

for e in "${entries[@]}"; do
	paths+=("${e% *}")
	if [[ "${e% *}" == /etc/systemd/system/* ]]; then install_entry "$e"; fi
done

# files an earlier version of the set installed and this one no longer has
if [[ -f "$list" ]]; then
	while IFS= read -r old; do
		[[ -n "$old" ]] || continue
		# here-string: see disable_ours (a SIGPIPE race deleted files that were still in the set)
		if ! grep -qxF -- "$old" <<<"$(printf '%s\n' "${paths[@]}")"; then
			[[ "$DRY_RUN" == 1 ]] && {
				log "dry run: would delete $old"
				continue
			}
			if [[ "$old" == /etc/systemd/system/* ]]; then sys disable --now "$(basename "$old")" >/dev/null 2>&1 || true; fi
			rm -f "${ROOT}${old}"
			log "deleted $old (no longer in set $set)"
			changed_units=1
		fi
	done <"$list"
fi
if [[ "$DRY_RUN" == 1 ]]; then
	log "dry run: set $set checked"
	exit 0
fi
mkdir -p "$state_dir"
chmod 0700 "$STATE_DIR" "$state_dir"
printf '%s\n' "${paths[@]}" | install_content "$list" 0600 >/dev/null
((changed_units)) && sys daemon-reload

[[ -f "$enabled_list" ]] || : >"$enabled_list"
disable_ours "${enable[@]}"
for u in "${enable[@]}"; do
	if ((have_systemd)); then
		# enabled, and running or refused by a condition of its own (util-linux's fstrim.timer has
		# ConditionVirtualization=!container): nothing to do
		if systemctl is-enabled --quiet "$u" &&
			{ systemctl is-active --quiet "$u" || [[ "$(systemctl show -p ConditionResult --value "$u")" == no ]]; }; then
			continue
		fi
		systemctl is-enabled --quiet "$u" || grep -qxF "$u" "$enabled_list" || echo "$u" >>"$enabled_list"
		systemctl enable --now "$u" >/dev/null 2>&1 || die "systemctl enable --now $u failed: $(systemctl status "$u" --no-pager 2>&1 | tail -5)"
		if [[ "$(systemctl show -p ConditionResult --value "$u")" == no ]]; then
			log "enabled $u; not started: a condition of the unit is not met on this host (e.g. ConditionVirtualization=!container)"
		else
			log "enabled and started $u"
		fi
	else
		grep -qxF "$u" "$enabled_list" || echo "$u" >>"$enabled_list"
		log "(no systemd) would enable --now $u"
	fi
done
# what the set enabled and no longer lists was disabled above; forget it
if [[ -s "$enabled_list" ]]; then
	keep="$(grep -xF -f <(printf '%s\n' "${enable[@]}") "$enabled_list" || true)"
	printf '%s' "${keep:+$keep$'\n'}" | install_content "$enabled_list" 0600 >/dev/null
fi
log "set $set: ${#paths[@]} files, ${#enable[@]} units enabled"
