#!/usr/bin/env bash
# Persist kernel parameters in one file under /etc/sysctl.d, apply them, read them back.
#
#   sysctl-apply.sh apply <file> <content>
#   sysctl-apply.sh remove <file>
#
# apply: writes <file> when its content differs, runs `sysctl --system` when the file changed
#   or a live value differs, then reads every parameter back with `sysctl -n`; a value that
#   does not hold (a later file in /etc/sysctl.d overrides it, or the kernel refuses it) fails
#   the command and names the parameter, the wanted and the live value.
#   The live value each parameter had before this project first set it is remembered.
# remove: deletes <file> and puts the remembered values back.
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

mode="${1:-}"
dest="${ROOT}${2:-}"
[[ "$mode" == apply && $# -eq 3 ]] || [[ "$mode" == remove && $# -eq 2 ]] ||
	die "usage: sysctl-apply.sh apply <file> <content> | remove <file>"
[[ "${2:-}" == /etc/sysctl.d/*.conf ]] || die "the file must be /etc/sysctl.d/<name>.conf, got '${2:-}'"
orig="${STATE_DIR}/sysctl.original"

proc_path() { echo "${ROOT}/proc/sys/${1//.//}"; }
live_value() {
	local p
	p="$(proc_path "$1")"
	[[ -r "$p" ]] || die "kernel parameter '$1' does not exist on $(hostname) ($p)"
	# sysctl -n prints multi-value parameters separated by tabs; normalise to single spaces
	tr -s ' \t' ' ' <"$p" | sed 's/ *$//'
}
set_value() {
	if [[ -z "$ROOT" ]]; then sysctl -q -w "$1=$2"; else printf '%s\n' "$2" >"$(proc_path "$1")"; fi
}
reload_all() {
	# tests (ROOT set) have no kernel to reload: write the file's values directly
	if [[ -z "$ROOT" ]]; then
		sysctl --system >/dev/null
	else
		local k v
		while IFS='=' read -r k v; do set_value "$k" "$v"; done < <(pairs <"$dest")
	fi
}
# pairs < file : "key=value" lines of a sysctl.d file, comments and blanks dropped
pairs() {
	sed -e 's/[#;].*$//' -e '/^[[:space:]]*$/d' |
		sed -E 's/^[[:space:]]*-?([^=[:space:]]+)[[:space:]]*=[[:space:]]*(.*[^[:space:]])[[:space:]]*$/\1=\2/'
}

if [[ "$mode" == remove ]]; then
	if [[ "$DRY_RUN" == 1 ]]; then
		log "dry run: would remove ${dest#"$ROOT"} and restore the original values"
		exit 0
	fi
	rm -f "$dest"
	if [[ -f "$orig" ]]; then
		while IFS='=' read -r k v; do
			set_value "$k" "$v" && log "$k restored to $v"
		done <"$orig"
		rm -f "$orig"
	fi
	log "removed ${dest#"$ROOT"}"
	exit 0
fi

content="$3"
mapfile -t wanted < <(printf '%s' "$content" | pairs)
((${#wanted[@]} > 0)) || die "no parameters in the content for ${dest#"$ROOT"}"

# every parameter must exist before anything is written
for kv in "${wanted[@]}"; do
	[[ -r "$(proc_path "${kv%%=*}")" ]] || die "kernel parameter '${kv%%=*}' does not exist on $(hostname); nothing was changed"
done

# remember the values from before this project, once per parameter
if [[ "$DRY_RUN" != 1 ]]; then
	mkdir -p "$STATE_DIR"
	chmod 0700 "$STATE_DIR"
	[[ -f "$orig" ]] || : >"$orig"
	for kv in "${wanted[@]}"; do
		k="${kv%%=*}"
		grep -q "^${k}=" "$orig" || printf '%s=%s\n' "$k" "$(live_value "$k")" >>"$orig"
	done
fi

mkdir -p "$(dirname "$dest")"
verdict="$(printf '%s' "$content" | install_content "$dest" 0644)"
drift=0
for kv in "${wanted[@]}"; do
	[[ "$(live_value "${kv%%=*}")" == "${kv#*=}" ]] || drift=1
done
if [[ "$DRY_RUN" == 1 ]]; then
	log "dry run: ${dest#"$ROOT"} ${verdict}; live values $([[ $drift == 1 ]] && echo differ || echo match)"
	exit 0
fi
if [[ "$verdict" == changed || "$drift" == 1 ]]; then
	reload_all
	log "${dest#"$ROOT"} ${verdict}; parameters reloaded"
else
	log "${dest#"$ROOT"} unchanged; live values already match"
fi

bad=0
for kv in "${wanted[@]}"; do
	k="${kv%%=*}" want="${kv#*=}"
	got="$(live_value "$k")"
	if [[ "$got" == "$want" ]]; then
		log "$k = $got"
	else
		printf '%s: error: %s is %s after reload, wanted %s: a later file overrides it or the kernel refused it (grep -rn %s /etc/sysctl.d /run/sysctl.d /usr/lib/sysctl.d /etc/sysctl.conf)\n' \
			"$SCRIPT_NAME" "$k" "$got" "$want" "$k" >&2
		bad=1
	fi
done
exit "$bad"
