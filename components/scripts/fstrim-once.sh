#!/usr/bin/env bash
# Trim the data mount points once (plan phase 5.1, "Enable TRIM for SSD optimization").
#
#   fstrim-once.sh <mount>...
#
# Every argument must be a mount point (checked for all of them before any is trimmed).
# Each is trimmed with `fstrim -v`; a filesystem or device that does not support discard
# (fstrim: "the discard operation is not supported", e.g. tmpfs, some RAID or virtual disks) is
# reported and skipped, not a failure. Any other fstrim failure is. Trimming again is harmless:
# a second run only tells the SSD about blocks freed since. The weekly trim is util-linux's
# fstrim.timer, enabled by the monitoring unit set.
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

(($# > 0)) || die "usage: fstrim-once.sh <mount>..."
require_cmd fstrim mountpoint
for m in "$@"; do
	[[ "$m" == /* ]] || die "'$m' is not an absolute path"
	[[ -d "${ROOT}${m}" ]] || die "$m does not exist on $(hostname)"
	mountpoint -q -- "${ROOT}${m}" || die "$m is not a mount point on $(hostname) (fstrim trims whole filesystems: give the mount point, see findmnt -T $m)"
done

failed=0
for m in "$@"; do
	if [[ "$DRY_RUN" == 1 ]]; then
		log "dry run: would run fstrim -v $m"
		continue
	fi
	if out="$(fstrim -v -- "${ROOT}${m}" 2>&1)"; then
		log "${out/#"${ROOT}"/}"
	elif grep -qiE 'not supported|operation not supported|discard operation' <<<"$out"; then
		log "$m: not trimmed, its filesystem or device does not support discard (fstrim: ${out##*: })"
	else
		warn "fstrim -v $m failed: $out"
		failed=1
	fi
done
((failed == 0)) || die "trimming failed on at least one mount (see above)"
