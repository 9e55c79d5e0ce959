#!/usr/bin/env bash
# Install, load and remove the host firewall: the nftables table `inet dgx-storage` (ruleset
# written by components/render/firewall.ts) and the unit that loads it at boot.
#
#   firewall.sh apply '<ruleset>' '<unit>'
#   firewall.sh remove
#
# apply: checks the ruleset with `nft -c -f` before anything is written (a bad one changes
#   nothing); writes $DGX_ETC_DIR/firewall.nft and /etc/systemd/system/dgx-storage-firewall.service
#   when they differ; enables the unit (loaded at every boot); loads the ruleset when the file
#   changed or the live table is not the one this script last loaded (absent, flushed or edited by
#   hand). The load replaces the table in one transaction. A second run changes nothing.
# remove: deletes the table, disables and deletes the unit and the file.
#
# ROOT (tests): files under ROOT, no systemctl, the kernel's ruleset left alone (the syntax check
# still runs: `nft -c` needs no change of the ruleset).
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

mode="${1:-}"
[[ "$mode" == apply && $# -eq 3 ]] || [[ "$mode" == remove && $# -eq 1 ]] ||
	die "usage: firewall.sh apply '<ruleset>' '<unit>' | remove"
table="dgx-storage"
unit_name="dgx-storage-firewall.service"
file="${ROOT}${DGX_ETC_DIR}/firewall.nft"
unit="${ROOT}/etc/systemd/system/${unit_name}"
state="${STATE_DIR}/firewall.state"
live=1
[[ -z "$ROOT" ]] || live=0

sys() {
	if ((live)); then systemctl "$@"; else log "(ROOT) systemctl $*"; fi
}
# live_table : the table as the kernel has it (empty when absent or in a test)
live_table() {
	((live)) || return 0
	nft list table inet "$table" 2>/dev/null || true
}
table_hash() { live_table | sha256sum | cut -d' ' -f1; }

if [[ "$mode" == remove ]]; then
	if [[ "$DRY_RUN" == 1 ]]; then
		log "dry run: would delete table inet $table, $unit_name and ${file#"$ROOT"}"
		exit 0
	fi
	if ((live)) && nft list table inet "$table" >/dev/null 2>&1; then
		nft delete table inet "$table"
		log "deleted table inet $table"
	fi
	if [[ -f "$unit" ]]; then
		sys disable "$unit_name" >/dev/null 2>&1 || true
		rm -f "$unit"
		sys daemon-reload
		log "removed $unit_name"
	fi
	rm -f "$file" "$state"
	log "firewall removed"
	exit 0
fi

ruleset="$2" unit_text="$3"
require_cmd nft
# the check parses the ruleset against the kernel's capabilities without committing it
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf '%s' "$ruleset" >"$work/firewall.nft"
if ! out="$(nft -c -f "$work/firewall.nft" 2>&1)"; then
	die "nft refused the ruleset; nothing was changed:
$out"
fi

mkdir -p "$(dirname "$file")" "$(dirname "$unit")"
file_verdict="$(printf '%s' "$ruleset" | install_content "$file" 0644)"
unit_verdict="$(printf '%s' "$unit_text" | install_content "$unit" 0644)"
if [[ "$DRY_RUN" == 1 ]]; then
	log "dry run: ${file#"$ROOT"} $file_verdict, $unit_name $unit_verdict"
	exit 0
fi
[[ "$unit_verdict" == unchanged ]] || sys daemon-reload
if ((live)); then
	systemctl is-enabled --quiet "$unit_name" || {
		systemctl enable "$unit_name" >/dev/null 2>&1 || die "systemctl enable $unit_name failed: $(systemctl status "$unit_name" --no-pager 2>&1 | tail -5)"
		log "enabled $unit_name (loads the ruleset at boot)"
	}
else
	log "(ROOT) systemctl enable $unit_name"
fi

reload=0
[[ "$file_verdict" == changed ]] && reload=1
# the table as last loaded, by its listing's hash: absent, flushed or edited by hand differs
((live)) && [[ "$(table_hash)" != "$(state_get "$state" table)" ]] && reload=1
if ((reload)); then
	if ((live)); then
		nft -f "$file"
		# the unit reports what is loaded: active from now on, without loading a second time
		systemctl is-active --quiet "$unit_name" || systemctl start "$unit_name"
		log "loaded table inet $table (${file#"$ROOT"} $file_verdict)"
	else
		log "(ROOT) nft -f ${file#"$ROOT"}"
	fi
	mkdir -p "$STATE_DIR"
	chmod 0700 "$STATE_DIR"
	state_write "$state" "table=$(table_hash)"
else
	log "table inet $table is loaded as declared; nothing to do"
fi
