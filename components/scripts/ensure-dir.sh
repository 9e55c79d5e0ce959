#!/usr/bin/env bash
# Make sure a bind volume's device directory exists with the configured owner and mode.
#
#   ensure-dir.sh <absolute path> <uid:gid> <octal mode>
#
# Docker creates a `type=none,o=bind` volume even when its device directory is missing and only
# fails later, when a container mounts it; this runs first. It creates the directory (and its
# parents) when missing, and sets owner and mode on that directory alone (never recursively).
# It never empties, moves or deletes anything, so it has no delete step.
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

[[ $# -eq 3 ]] || die "usage: ensure-dir.sh <absolute path> <uid:gid> <octal mode>"
path="$1" owner="$2" mode="$3"
[[ "$path" == /* && "$path" != *..* ]] || die "the path must be absolute without '..', got '$path'"
[[ "$owner" =~ ^[0-9]+:[0-9]+$ ]] || die "the owner must be numeric uid:gid, got '$owner'"
[[ "$mode" =~ ^0?[0-7]{3,4}$ ]] || die "the mode must be octal such as 0755, got '$mode'"
dir="${ROOT}${path}"
want_mode="$(printf '%o' "$((8#$mode))")"

if [[ -e "$dir" && ! -d "$dir" ]]; then
	die "$path exists and is not a directory; not touching it"
fi
if [[ ! -d "$dir" ]]; then
	if [[ "$DRY_RUN" == 1 ]]; then
		log "dry run: would create $path ($owner, $want_mode)"
		exit 0
	fi
	mkdir -p "$dir"
	chown "$owner" "$dir"
	chmod "$want_mode" "$dir"
	log "created $path ($owner, mode $want_mode)"
	exit 0
fi

have_owner="$(stat -c '%u:%g' "$dir")"
have_mode="$(stat -c '%a' "$dir")"
if [[ "$have_owner" == "$owner" && "$have_mode" == "$want_mode" ]]; then
	log "$path exists ($owner, mode $want_mode); unchanged"
	exit 0
fi
if [[ "$DRY_RUN" == 1 ]]; then
	log "dry run: would set $path from $have_owner $have_mode to $owner $want_mode"
	exit 0
fi
[[ "$have_owner" == "$owner" ]] || chown "$owner" "$dir"
[[ "$have_mode" == "$want_mode" ]] || chmod "$want_mode" "$dir"
log "$path existed as $have_owner mode $have_mode; set to $owner mode $want_mode (this directory only, contents untouched)"
