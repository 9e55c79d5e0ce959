#!/usr/bin/env bash
# Measure a storage performance baseline with fio (phase 1.2 of the plan) on one data path.
#
#   fio-baseline.sh <dir> <size> <runtime-seconds> <out.json>
#   fio-baseline.sh summarize <fio-output.json>
#
# Runs four jobs one after the other (stonewall) on one test file in <dir>, direct I/O, libaio:
#   randread-4k-qd1    4 KiB random read, queue depth 1   (latency)
#   randread-4k-qd32   4 KiB random read, queue depth 32  (IOPS; the alert check's baseline)
#   read-1m            1 MiB sequential read, queue depth 8
#   write-1m           1 MiB sequential write, queue depth 8
# Each job runs <runtime-seconds> (time based) over a file of <size> (fio syntax: 1G, 512M).
# The test file is removed afterwards, also on failure. The summary (IOPS, bandwidth in bytes/s,
# latency mean and p50/p99/p99.9 in microseconds per job) is written to <out.json> and printed on
# stdout (messages go to stderr); fio's own JSON is kept beside it as <out>.fio.json. Every run measures again: whether
# to run at all is the caller's decision (a trigger), not this script's.
# summarize: prints the summary of an existing fio JSON output (the same code path).
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

# The summary is computed in one place (fio-summary.py), so that `summarize` and a real run
# cannot disagree.
if [[ "${1:-}" == summarize ]]; then
	[[ $# -eq 2 ]] || die "usage: fio-baseline.sh summarize <fio-output.json>"
	require_cmd python3
	run_py fio-summary.py "$2"
	exit 0
fi

[[ $# -eq 4 ]] || die "usage: fio-baseline.sh <dir> <size> <runtime-seconds> <out.json>"
dir_arg="$1" size="$2" runtime="$3" out_arg="$4"
[[ "$dir_arg" == /* ]] || die "the directory must be an absolute path, got '$dir_arg'"
[[ "$out_arg" == /*.json ]] || die "the output must be an absolute path ending in .json, got '$out_arg'"
[[ "$size" =~ ^[1-9][0-9]*[KMGkmg]?$ ]] || die "the size must be a number with an optional K, M or G suffix (fio syntax), got '$size'"
[[ "$runtime" =~ ^[1-9][0-9]*$ ]] || die "the runtime must be a whole number of seconds, got '$runtime'"
dir="${ROOT}${dir_arg}" out="${ROOT}${out_arg}"
[[ -d "$dir" ]] || die "$dir_arg is not a directory"

# bytes the test file needs, checked against the free space before fio lays it out
case "${size: -1}" in
K | k) bytes=$((${size%?} * 1024)) ;;
M | m) bytes=$((${size%?} * 1024 * 1024)) ;;
G | g) bytes=$((${size%?} * 1024 * 1024 * 1024)) ;;
*) bytes=$size ;;
esac
test_file="${dir%/}/.dgx-storage-fio.tmp"
jobs=(
	--name=randread-4k-qd1 --rw=randread --bs=4k --iodepth=1 --stonewall
	--name=randread-4k-qd32 --rw=randread --bs=4k --iodepth=32 --stonewall
	--name=read-1m --rw=read --bs=1m --iodepth=8 --stonewall
	--name=write-1m --rw=write --bs=1m --iodepth=8 --stonewall
)
if [[ "$DRY_RUN" == 1 ]]; then
	log "dry run: would run fio (4 jobs, ${runtime}s each, ${size} file) in $dir_arg and write $out_arg" >&2
	exit 0
fi
require_cmd fio python3
free="$(df -B1 --output=avail -- "$dir" | tail -n 1 | tr -d ' ')"
((free > bytes + 1024 * 1024 * 1024)) ||
	die "$dir_arg has $((free / 1024 / 1024)) MiB free; the ${size} test file plus 1 GiB headroom does not fit"

rm -f -- "$test_file" # a leftover of an interrupted run
trap 'rm -f -- "$test_file"' EXIT
mkdir -p "$(dirname "$out")"
raw="${out%.json}.fio.json"
log "running fio in $dir_arg: 4 jobs x ${runtime}s on a ${size} file (removed afterwards)" >&2
# --output keeps fio's JSON out of stdout, which carries only the summary
if ! err="$(fio --output-format=json --output="$raw.tmp" --filename="$test_file" --size="$size" \
	--direct=1 --ioengine=libaio --time_based --runtime="$runtime" --ramp_time=0 \
	--percentile_list=50:99:99.9 "${jobs[@]}" 2>&1)"; then
	rm -f -- "$raw.tmp"
	die "fio failed in $dir_arg (a filesystem without O_DIRECT support, e.g. an old tmpfs, cannot be measured): $err"
fi
mv -f -- "$raw.tmp" "$raw"
summary="$(run_py fio-summary.py "$raw" "$dir_arg" "$size" "$runtime" "$(date -u +%Y-%m-%dT%H:%M:%SZ)")"
printf '%s\n' "$summary" | install_content "$out" 0644 >/dev/null
log "summary written to $out_arg (fio's output: ${raw#"$ROOT"})" >&2
printf '%s\n' "$summary"
