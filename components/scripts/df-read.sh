#!/usr/bin/env bash
# Read the live usage of data mounts, for the capacity projection (plan phase 6). Read-only.
#
#   df-read.sh <mount>...
#
# Prints "# measured YYYY-MM-DD" (UTC), then `df -P -B1` for every argument that exists
# (header line, then one line per mount; the last field is the argument itself: a directory
# reports the filesystem it is on). An argument that does not exist (a disk not attached yet) is
# reported on stderr and left out; it does not fail the command, so a missing backup disk does
# not block a deploy. No argument existing at all is an error.
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

(($# > 0)) || die "usage: df-read.sh <mount>..."
require_cmd df
present=()
for m in "$@"; do
	[[ "$m" == /* ]] || die "'$m' is not an absolute path"
	if [[ -d "${ROOT}${m}" ]]; then present+=("$m"); else warn "$m does not exist on $(hostname): no live reading"; fi
done
((${#present[@]} > 0)) || die "none of the mounts exists on $(hostname): $*"
echo "# measured $(date -u +%F)"
printf '%s\n' "Filesystem 1-blocks Used Available Capacity Mounted-on"
for m in "${present[@]}"; do
	# one df per path, its own line with the path we were given as the last field
	line="$(LC_ALL=C df -P -B1 -- "${ROOT}${m}" | tail -n 1)"
	read -r fs size used avail pct _ <<<"$line"
	printf '%s %s %s %s %s %s\n' "$fs" "$size" "$used" "$avail" "$pct" "$m"
done
