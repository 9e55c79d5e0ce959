#!/usr/bin/env bash
# Shared helpers for the dgx-storage host scripts. The program sends each script as
# `bash -c '<lib.sh><script>' <name> <args...>`; run from a checkout, a script sources this file.
#
# Host paths, set at the top of every bundle from their one definition
# (components/render/host-paths.ts); required:
#   DGX_ETC_DIR  configuration and secret files
#   DGX_LIB_DIR  installed copies of the scripts the units run
#   DGX_VAR_DIR  state kept across reboots
#   DGX_LOG_DIR  output of the detached runs
#   DGX_TEXTFILE_DIR  node_exporter's textfile directory: the jobs' metrics (written only when it exists)
# Environment (for tests only; the program never sets them):
#   ROOT     prefix for every host path (default: empty, i.e. the real /). A test that runs a
#            script from the checkout with ROOT set may leave the host paths out: the defaults
#            below apply (test/scripts/host-paths.test.ts checks they equal the definition).
#   DRY_RUN  1 = say what would change, change nothing
set -euo pipefail

dgx_lib_loaded() { :; }

ROOT="${ROOT:-}"
DRY_RUN="${DRY_RUN:-0}"
SCRIPT_NAME="${SCRIPT_NAME:-$(basename "$0" .sh)}"
# shellcheck disable=SC2034,SC2016 # used by the scripts that write host files; backticks are text
MANAGED_HEADER='# Managed by dgx-storage (Pulumi). Do not edit: the next `pulumi up` overwrites it.'

log() { printf '%s: %s\n' "$SCRIPT_NAME" "$*"; }
warn() { printf '%s: warning: %s\n' "$SCRIPT_NAME" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2
	exit 1
}

if [[ -n "$ROOT" ]]; then
	: "${DGX_ETC_DIR:=/etc/dgx-storage}" "${DGX_LIB_DIR:=/usr/local/lib/dgx-storage}"
	: "${DGX_VAR_DIR:=/var/lib/dgx-storage}" "${DGX_LOG_DIR:=/var/log/dgx-storage}"
	: "${DGX_TEXTFILE_DIR:=/var/lib/prometheus/node-exporter}"
fi
for _v in DGX_ETC_DIR DGX_LIB_DIR DGX_VAR_DIR DGX_LOG_DIR DGX_TEXTFILE_DIR; do
	[[ "${!_v:-}" == /?* ]] || die "$_v is not set to an absolute path (the program sets it at the top of the script's bundle)"
done
unset _v
STATE_DIR="${ROOT}${DGX_VAR_DIR}"

# require_cmd NAME... : fail clearly when a tool the script needs is missing.
require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || die "'$c' is not installed on $(hostname); install it first"
	done
}

# run_py FILE ARGS... : python3 running FILE, a .py file that travels with the script. In a bundle
# (components/render/command.ts) its text is in DGX_PY_<FILE with [^A-Za-z0-9] as _>; run from a
# checkout, it is the file beside lib.sh. exec_py: the same in place of this shell.
py_argv() {
	local var="DGX_PY_${1//[^A-Za-z0-9]/_}"
	if [[ -n "${!var:-}" ]]; then
		PY_ARGV=(python3 -c "${!var}")
	else
		PY_ARGV=(python3 "$(dirname "${BASH_SOURCE[0]}")/$1")
	fi
}
run_py() {
	local PY_ARGV
	py_argv "$1"
	"${PY_ARGV[@]}" "${@:2}"
}
exec_py() {
	local PY_ARGV
	py_argv "$1"
	exec "${PY_ARGV[@]}" "${@:2}"
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

# State records: one `key=value` line per field, values on one line (newlines refused), written
# atomically. Shell scripts read them without a JSON parser; the keys are documented where each
# record is written.

# state_write FILE KEY=VALUE... : replace FILE with these fields.
state_write() {
	local file="$1" kv
	shift
	mkdir -p "$(dirname "$file")"
	chmod 0700 "$(dirname "$file")"
	for kv in "$@"; do
		[[ "$kv" == *=* && "$kv" != *$'\n'* ]] || die "internal: bad state field '$kv'"
	done
	printf '%s\n' "$@" | install_content "$file" 0600 >/dev/null
}

# state_get FILE KEY : the value of KEY in FILE (empty when the file or the key is missing).
state_get() {
	[[ -f "$1" ]] || return 0
	local line
	while IFS= read -r line; do
		if [[ "${line%%=*}" == "$2" ]]; then
			printf '%s\n' "${line#*=}"
			return 0
		fi
	done <"$1"
}

# state_set FILE KEY=VALUE... : change or add these fields, keep the others.
state_set() {
	local file="$1" kv line key fields=() seen
	shift
	if [[ -f "$file" ]]; then
		while IFS= read -r line; do
			key="${line%%=*}"
			seen=0
			for kv in "$@"; do [[ "${kv%%=*}" == "$key" ]] && seen=1; done
			((seen)) || fields+=("$line")
		done <"$file"
	fi
	state_write "$file" "${fields[@]}" "$@"
}

# container_health ID : healthy, starting, unhealthy, none (no health check) or exited (also when
# there is no such container).
container_health() {
	local s
	s="$(docker container inspect --format '{{.State.Running}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$1" 2>/dev/null || true)"
	case "$s" in
	"true "*) echo "${s#true }" ;;
	*) echo exited ;;
	esac
}

# wait_healthy [--give-up-unhealthy] ID SECONDS : 0 once the container is healthy (or, without a
# health check, has run for 10 s); 1 when it stops running or SECONDS pass. Docker goes on probing
# an unhealthy container and marks it healthy again at the next passing probe (moby
# daemon/health.go, handleProbeResult), so "unhealthy" is waited out by default;
# --give-up-unhealthy returns 1 at the first "unhealthy" instead.
wait_healthy() {
	local give_up=0 id deadline up_since="" h
	if [[ "$1" == --give-up-unhealthy ]]; then
		give_up=1
		shift
	fi
	id="$1" deadline=$((SECONDS + $2))
	while ((SECONDS < deadline)); do
		h="$(container_health "$id")"
		case "$h" in
		healthy) return 0 ;;
		exited) return 1 ;;
		unhealthy) ((give_up == 0)) || return 1 ;;
		none)
			up_since="${up_since:-$SECONDS}"
			((SECONDS - up_since >= 10)) && return 0
			;;
		esac
		sleep 1
	done
	return 1
}

# overlay_network_check NAME ENCRYPTED(0|1) : prints "absent", "match", or a sentence saying how
# the existing network differs from an attachable swarm overlay network with that encryption.
overlay_network_check() {
	local have driver scope attachable keys enc=0
	have="$(docker network inspect --format '{{.Driver}}|{{.Scope}}|{{.Attachable}}|{{range $k, $v := .Options}}{{$k}};{{end}}' "$1" 2>/dev/null)" || {
		echo absent
		return 0
	}
	IFS='|' read -r driver scope attachable keys <<<"$have"
	[[ ";$keys" == *";encrypted;"* ]] && enc=1
	if [[ "$driver" == overlay && "$scope" == swarm && "$attachable" == true && "$enc" == "$2" ]]; then
		echo match
	else
		echo "network $1 exists as driver $driver, scope $scope, attachable $attachable, encrypted $enc, but the stack declares an attachable overlay network (scope swarm), encrypted $2; remove it by hand once no container uses it (docker network rm $1), or change swarm.network"
	fi
}

# should_detach : this run should move into a transient systemd unit (run_detached): it came as a
# bundle over SSH (BASH_EXECUTION_STRING holds it) to a host with systemd, and is not a test
# (ROOT) nor the unit itself.
should_detach() {
	[[ -z "$ROOT" && "${DGX_DETACHED:-0}" != 1 && -d /run/systemd/system && -n "${BASH_EXECUTION_STRING:-}" ]]
}

# run_detached UNIT ARGS... : runs this very script again, with ARGS, in the transient unit UNIT,
# streams its output, and returns its exit status. The unit goes on if the SSH session that
# started it ends (pulumi up killed, a dropped connection), so a step that stops a service
# completes or puts it back on its own. A second run waits for a unit of that name still running.
# The script runs from a file (systemd writes ExecStart= into a unit file, where the bundle's
# newlines cannot go): $DGX_LIB_DIR/<script>.sh, 0755, root's.
run_detached() {
	local unit="$1" copy out err runner rc=0
	shift
	copy="${DGX_LIB_DIR}/${SCRIPT_NAME}.sh"
	out="${DGX_LOG_DIR}/${unit}.log"
	err="${DGX_LOG_DIR}/${unit}.err"
	mkdir -p "$DGX_LOG_DIR" "$DGX_LIB_DIR"
	printf '%s' "$BASH_EXECUTION_STRING" | install_content "$copy" 0755 >/dev/null
	while systemctl is-active --quiet "$unit"; do
		log "$unit from an earlier apply is still running on this host; waiting for it"
		sleep 2
	done
	systemctl reset-failed "$unit" >/dev/null 2>&1 || true
	: >"$out"
	: >"$err"
	systemd-run --quiet --collect --wait --unit "$unit" --setenv DGX_DETACHED=1 \
		-p "StandardOutput=append:$out" -p "StandardError=append:$err" \
		/bin/bash "$copy" "$@" &
	runner=$!
	# the unit's output and errors as they come, each to its stream; each tail ends once
	# systemd-run has returned and its file is read out
	tail -n +1 -F --pid="$runner" "$err" >&2 2>/dev/null &
	tail -n +1 -F --pid="$runner" "$out" 2>/dev/null || true
	wait "$runner" || rc=$?
	wait
	return "$rc"
}
