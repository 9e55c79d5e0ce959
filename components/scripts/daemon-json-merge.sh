#!/usr/bin/env bash
# Merge the keys this project manages into /etc/docker/daemon.json without touching the others.
#
#   daemon-json-merge.sh apply '<json object of managed keys>'
#   daemon-json-merge.sh remove
#
# apply:
#   - keeps every key it does not manage (NVIDIA's "runtimes" / "default-runtime" above all);
#   - refuses to write a key that dockerd already receives as a command-line flag from its
#     systemd unit, a drop-in or /etc/default/docker: dockerd will not start when a directive
#     is given both ways ("the following directives are specified both as a flag and in the
#     configuration file"). Same value: the key is left out of the file, with a notice.
#     Different value: an error naming the unit file, nothing written;
#   - an invalid existing file stops the run and is left exactly as it was;
#   - remembers, per managed key, what the file held before this project first managed it, so
#     that a key dropped from the stack config (and `remove`, on `pulumi destroy`) restores it;
#   - backs the old file up, validates the new one (a JSON parse, and `dockerd --validate`
#     where dockerd has it, Docker >= 23), then renames it into place atomically;
#   - does not restart dockerd: docker-restart.sh does that, as its own step.
# Prints one line per changed key and "daemon.json: changed|unchanged sha256=<hex>".
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

mode="${1:-}"
case "$mode" in
apply)
	[[ $# -eq 2 ]] || die "usage: daemon-json-merge.sh apply '<json object>'"
	desired="$2"
	;;
remove)
	[[ $# -eq 1 ]] || die "usage: daemon-json-merge.sh remove"
	desired='{}'
	;;
*) die "usage: daemon-json-merge.sh apply '<json object>' | remove" ;;
esac

require_cmd python3
file="${ROOT}/etc/docker/daemon.json"
state="${STATE_DIR}/daemon-json.state.json"
mkdir -p "$(dirname "$file")"
if [[ "$DRY_RUN" != 1 ]]; then
	mkdir -p "$STATE_DIR"
	chmod 0700 "$STATE_DIR"
fi

validate_cmd=""
# a here-string: `dockerd --help | grep -q` can fail under pipefail when grep exits early (SIGPIPE)
if [[ -z "$ROOT" ]] && command -v dockerd >/dev/null 2>&1 && grep -q -- '--validate' <<<"$(dockerd --help 2>&1)"; then
	validate_cmd="dockerd --validate --config-file"
fi

# the merge result is computed outside /etc/docker: an unchanged run writes nothing there
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tmp="$work/daemon.json"

# The merge itself: python3's json module is on every DGX OS / Ubuntu / Debian host; jq is not.
set +e
run_py daemon-json-merge.py "$mode" "$desired" "$file" "$state" "$tmp" "$ROOT"
rc=$?
set -e
case "$rc" in
0) verdict=unchanged ;;
10) verdict=changed ;;
*) exit "$rc" ;;
esac

if [[ "$verdict" == changed ]]; then
	if [[ -n "$validate_cmd" ]]; then
		$validate_cmd "$tmp" >/dev/null || die "dockerd --validate rejected the merged daemon.json; nothing was changed"
	fi
	if [[ "$DRY_RUN" == 1 ]]; then
		log "dry run: daemon.json would change"
	else
		# the state first: if we stop between the two renames, the next run finds the originals
		# already recorded and finishes the job
		install_content "$state" 0600 <"$tmp.state" >/dev/null
		backup="$(backup_file "$file")"
		[[ -n "$backup" ]] && log "previous daemon.json saved as ${backup#"$ROOT"}"
		install_content "$file" 0644 <"$tmp" >/dev/null
	fi
elif [[ "$DRY_RUN" != 1 ]]; then
	install_content "$state" 0600 <"$tmp.state" >/dev/null
fi
if [[ "$mode" == remove && "$DRY_RUN" != 1 ]]; then
	rm -f "$state"
fi
echo "daemon.json: ${verdict} sha256=$(sha256_of "$file")"
