#!/usr/bin/env bash
# Shared helpers for the dgx-storage host scripts. The program sends each script as
# `bash -c '<lib.sh><script>' <name> <args...>`; run from a checkout, a script sources this file.
#
# Environment (for tests only; the program never sets them):
#   ROOT     prefix for every host path (default: empty, i.e. the real /)
#   DRY_RUN  1 = say what would change, change nothing
set -euo pipefail

dgx_lib_loaded() { :; }

ROOT="${ROOT:-}"
DRY_RUN="${DRY_RUN:-0}"
STATE_DIR="${ROOT}/var/lib/dgx-storage"
SCRIPT_NAME="${SCRIPT_NAME:-$(basename "$0" .sh)}"
# shellcheck disable=SC2034,SC2016 # used by the scripts that write host files; backticks are text
MANAGED_HEADER='# Managed by dgx-storage (Pulumi). Do not edit: the next `pulumi up` overwrites it.'

log() { printf '%s: %s\n' "$SCRIPT_NAME" "$*"; }
warn() { printf '%s: warning: %s\n' "$SCRIPT_NAME" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2
	exit 1
}

# require_cmd NAME... : fail clearly when a tool the script needs is missing.
require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || die "'$c' is not installed on $(hostname); install it first"
	done
}

# run_py FILE ARGS... : python3 running FILE, a .py file that travels with the script. In a bundle
# (components/render/command.ts) its text is in DGX_PY_<FILE with [^A-Za-z0-9] as _>; run from a
# checkout, it is the file beside lib.sh.
run_py() {
	local file="$1" var
	shift
	var="DGX_PY_${file//[^A-Za-z0-9]/_}"
	if [[ -n "${!var:-}" ]]; then
		python3 -c "${!var}" "$@"
	else
		python3 "$(dirname "${BASH_SOURCE[0]}")/$file" "$@"
	fi
}

# sha256_of FILE : hex digest, or "absent".
sha256_of() {
	if [[ -f "$1" ]]; then sha256sum "$1" | cut -d' ' -f1; else echo absent; fi
}

# install_content DEST MODE < content : atomically replace DEST with stdin when it differs.
# Prints "changed" or "unchanged". Nothing at all is written when DEST already has that content
# and mode (not even a temporary file, which would bump the directory's mtime). Otherwise the
# temporary file lives beside DEST, so the final rename is atomic on the same filesystem.
install_content() {
	local dest="$1" mode="$2" content tmp
	content="$(
		cat
		printf x
	)"
	content="${content%x}" # keep trailing newlines
	mode="$(printf '%o' "$((8#$mode))")"
	if [[ -f "$dest" ]] && cmp -s "$dest" <(printf '%s' "$content"); then
		if [[ "$(stat -c '%a' "$dest")" == "$mode" ]]; then
			echo unchanged
			return 0
		fi
		[[ "$DRY_RUN" == 1 ]] || chmod "$mode" "$dest"
		echo changed
		return 0
	fi
	if [[ "$DRY_RUN" == 1 ]]; then
		echo changed
		return 0
	fi
	tmp="$(mktemp "$(dirname "$dest")/.$(basename "$dest").XXXXXX")"
	printf '%s' "$content" >"$tmp"
	chmod "$mode" "$tmp"
	mv -f "$tmp" "$dest"
	echo changed
}

# backup_file FILE : copy FILE into the state dir's backups, keep the newest 10. Prints the copy.
backup_file() {
	local src="$1" dir="${STATE_DIR}/backups" copy
	[[ -f "$src" ]] || return 0
	mkdir -p "$dir"
	chmod 0700 "$dir"
	copy="${dir}/$(basename "$src").$(date -u +%Y%m%dT%H%M%SZ).$$"
	cp -p "$src" "$copy"
	# shellcheck disable=SC2012 # names are ours: no newlines or odd characters
	ls -1t "${dir}/$(basename "$src")".* 2>/dev/null | tail -n +11 | xargs -r rm -f --
	echo "$copy"
}
