#!/usr/bin/env bash
# migrate.sh's shared part: the arguments both subcommands take, the paths as the kernel reaches
# them, the lock on the source, the migration's marker (its state file) and small helpers.
# migrate.sh sources this file; the globals it sets (mode, name, container, src, dst, S, D,
# state_dir, marker) are read by migrate-run.sh and migrate-finalize.sh.
# shellcheck disable=SC2034,SC2154
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

migrate_lib_loaded() { :; }

# migrate_args ARGS... : the subcommand, its number of arguments and the migration's name; sets
# mode, name, container, src and dst
migrate_args() {
	mode="${1:-}"
	case "$mode" in
	run) [[ $# -eq 9 ]] || die "usage: migrate.sh run <name> <new container|-> <source> <destination> <mount|-> <margin%> <health-timeout-s> <none|borg>" ;;
	finalize) [[ $# -eq 6 ]] || die "usage: migrate.sh finalize <name> <container|-> <source> <destination> <health-timeout-s>" ;;
	*) die "usage: migrate.sh run ... | finalize ..." ;;
	esac
	name="$2" container="$3" src="$4" dst="$5"
	[[ "$name" =~ ^[a-z][a-z0-9-]*$ ]] || die "the migration name must be lower-case letters, digits and '-', got '$name'"
}

# shown RESOLVED GIVEN : the path as given, and where it leads when that is elsewhere
shown() { [[ "$1" == "${ROOT}${2}" ]] && echo "$2" || echo "$2 (that is ${1#"$ROOT"})"; }

# migrate_paths : the source and the destination checked, resolved (S, D) and the source locked;
# sets state_dir and marker. Nothing is changed before these pass.
migrate_paths() {
	local p
	for p in "$src" "$dst"; do
		[[ "$p" == /* ]] || die "'$p' is not an absolute path; nothing was touched"
		[[ "$p" != */ && "$p" != *//* && "$p" != */./* && "$p" != */../* && "$p" != */. && "$p" != */.. ]] ||
			die "'$p' is not a normalised path; nothing was touched"
	done
	[[ "$src" != "$dst" ]] || die "source and destination are the same path ($src); nothing was touched"
	[[ "$dst/" != "$src/"* ]] || die "the destination $dst is inside the source $src; nothing was touched"
	[[ "$src/" != "$dst/"* ]] || die "the source $src is inside the destination $dst; nothing was touched"
	require_cmd rsync python3
	[[ -d "${ROOT}${src}" ]] || die "the source $src does not exist or is not a directory; nothing was touched"
	# The paths as the kernel reaches them: a symlink on the way (the destination itself, or a parent
	# such as /mnt -> /home/x/data) must not lead the copy into the source, nor the other way round.
	S="$(realpath -e -- "${ROOT}${src}")" D="$(realpath -m -- "${ROOT}${dst}")"
	[[ "$S" != "$D" ]] || die "the destination $(shown "$D" "$dst") is the source $(shown "$S" "$src"); nothing was touched"
	[[ "$D/" != "$S/"* ]] || die "the destination $(shown "$D" "$dst") is inside the source $(shown "$S" "$src"); nothing was touched"
	[[ "$S/" != "$D/"* ]] || die "the source $(shown "$S" "$src") is inside the destination $(shown "$D" "$dst"); nothing was touched"
	# One run per source at a time: a lock on the source directory itself (nothing is written for
	# it), held by this shell and its rsyncs, let go when they exit however they end.
	exec 9<"$S"
	flock -n 9 || die "another run of migrate.sh is working on $src (a migration of it is under way); not starting a second one"
	state_dir="${STATE_DIR}/migrations"
	marker="${state_dir}/${name}.json"
}

# marker_get KEY : a field of the migration's state file (migrate-state.py), empty when unset
marker_get() { run_py migrate-state.py get "$marker" "$1" 9<&-; }
# marker_set KEY=VALUE... : update fields (values are strings; KEY= removes KEY)
marker_set() {
	mkdir -p "$state_dir"
	chmod 0700 "$STATE_DIR" "$state_dir"
	run_py migrate-state.py --metrics-dir "${ROOT}${DGX_TEXTFILE_DIR}" set "$marker" "$@" 9<&-
}
now() { date +%s.%N; }
# elapsed START [END] : seconds from START to END (default: now), one decimal
elapsed() { awk -v a="$1" -v b="${2:-$(now)}" 'BEGIN { printf "%.1f\n", b - a }'; }
human() { numfmt --to=iec-i --suffix=B "$1" 2>/dev/null || echo "$1 bytes"; }

has_container() { [[ "$container" != - ]]; }
