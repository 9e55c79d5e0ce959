#!/usr/bin/env bash
# borg-run.sh ... copy-offsite <ssh-key> <known-hosts> [--sqlite <db>]... <path>...: the off-site archive.
# The globals (repo, host, job, outcome, message, borg_rc, work, status_dir, LOCK_WAIT, ...) are
# set by borg-run.sh, which sources this file.
# shellcheck disable=SC2034,SC2154
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

# The weekly off-site copy: a separate archive of the same paths into the repository on the
# other host. borg 1.2 cannot copy archives between repositories (`borg transfer` is borg 2), and
# a second `borg create` is as cheap: the far side only receives chunks it does not have. The
# far side forces `borg serve --append-only --restrict-to-path <repo>` for this key, so this
# host cannot delete its own off-site history; retention there is the receiving operator's job.
run_copy_offsite() {
	[[ $# -ge 3 ]] || fail "usage: borg-run.sh --repo ssh://... copy-offsite <ssh-key> <known-hosts> [--sqlite <db>]... <path>..."
	local key known_hosts out
	[[ "$BORG_REPO" == ssh://* ]] || fail "copy-offsite needs --repo ssh://<user>@<host>:<port>/<path>, got '$repo'"
	key="$(host_path "$1")" known_hosts="$(host_path "$2")"
	shift 2
	[[ -f "$key" ]] || fail "the off-site SSH key $key does not exist (borg-repo.sh ssh-key creates it)"
	[[ -f "$known_hosts" ]] || fail "the off-site host key file $known_hosts does not exist"
	# BORG_RSH from the environment wins: the tests use a local wrapper instead of ssh
	export BORG_RSH="${BORG_RSH:-ssh -i $key -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$known_hosts -o ServerAliveInterval=30}"
	# not borg_run: borg's message must be captured in $out to tell "does not exist" (init it) from other failures
	if [[ "$DRY_RUN" != 1 ]] && ! out="$(borg list --lock-wait "$LOCK_WAIT" --short --last 1 2>&1 >/dev/null)"; then
		[[ "$out" == *"does not exist"* ]] || {
			message="cannot open the off-site repository $repo: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
			exit 2
		}
		borg init --encryption=repokey "$BORG_REPO" >"$work/init.log" 2>&1 || {
			message="borg init of the off-site repository $repo failed: $(tail -n 3 "$work/init.log" | tr '\n' ' ')"
			exit 2
		}
		mkdir -p "${ROOT}${DGX_ETC_DIR}/borg"
		borg_do key export "$BORG_REPO" "$work/offsite.key"
		install_content "${ROOT}${DGX_ETC_DIR}/borg/${host}-offsite.key" 0600 <"$work/offsite.key" >/dev/null
		log "initialised the off-site repository $repo; its key is in ${DGX_ETC_DIR}/borg/${host}-offsite.key"
	fi
	archive_into offsite "$@"
	count_archives "${host}-offsite-*"
	[[ "$outcome" == warning ]] || outcome=ok
}
