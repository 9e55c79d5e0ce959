#!/usr/bin/env bash
# The attachable overlay network the services share, on the swarm manager: created when missing,
# used as it is when one with the same options exists (made by hand, or by an earlier apply), an
# error when one with other options holds the name.
#
#   network-ensure.sh <name> <encrypted: 0|1>
#
# A command rather than a Docker provider resource: the provider creates, it never adopts, and
# the daemon refuses a second network of the same name, so a network made by hand could only be
# taken over by `pulumi import` with an id known on the host alone. No delete step: removing the
# network would disconnect every service (as `docker swarm leave` is the operator's decision,
# so is this).
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

[[ $# -eq 2 && "$2" =~ ^[01]$ ]] || die "usage: network-ensure.sh <name> <encrypted: 0|1>"
name="$1" encrypted="$2"
[[ "$name" =~ ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$ ]] || die "'$name' is not a network name"
require_cmd docker

verdict="$(overlay_network_check "$name" "$encrypted")"
case "$verdict" in
match) log "the overlay network $name exists with the declared options; nothing to do" ;;
absent)
	opts=(--driver overlay --attachable --label managed-by=dgx-storage)
	[[ "$encrypted" == 1 ]] && opts+=(--opt encrypted)
	if [[ "$DRY_RUN" == 1 ]]; then
		log "dry run: would run docker network create ${opts[*]} $name"
		exit 0
	fi
	docker network create "${opts[@]}" "$name" >/dev/null
	log "created the overlay network $name (attachable, $([[ $encrypted == 1 ]] && echo encrypted || echo not encrypted))"
	;;
*) die "$verdict" ;;
esac
