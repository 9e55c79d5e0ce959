#!/usr/bin/env bash
# migrate.sh finalize <name> <container|-> <source> <destination> <health-timeout-s>: after the
# service's switch, the new container must run from <destination>, healthy; then the source is made
# read-only (a read-only bind mount, kept across reboots by a systemd mount unit) and the
# migration is recorded "complete" with the downtime.
# The globals (name, container, src, dst, marker, ...) are set by migrate-lib.sh's migrate_args
# and migrate_paths, which migrate.sh runs first.
# shellcheck disable=SC2034,SC2154
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

# migrate_finalize <health-timeout-s>
migrate_finalize() {
	health_timeout="$1"
	state="$(marker_get state)"
	case "$state" in
	complete)
		log "migration $name completed on $(marker_get completed_at); nothing to do"
		exit 0
		;;
	verified) ;;
	*) die "migration $name is not verified yet (state '${state:-none}'); the run step must succeed first" ;;
	esac
	if has_container; then
		require_cmd docker
		# here-strings, not `docker inspect | grep -q`: under pipefail a grep -q that exits at its
		# first match can fail the pipeline through SIGPIPE
		grep -qxF "$dst" <<<"$(docker inspect -f '{{range .Mounts}}{{.Source}}{{"\n"}}{{end}}' "$container" 2>/dev/null)" ||
			die "container $container does not mount $dst; it must be replaced with the destination mount before finalize"
		wait_healthy --give-up-unhealthy "$container" "$health_timeout" ||
			die "container $container is not healthy on $dst. The source $src is untouched: to go back, remove the migration from the stack config (the service then mounts the source again) and pulumi up"
	fi
	healthy_at="$(now)"
	# the source read-only, also after a reboot: a read-only bind mount of itself
	if [[ -z "$ROOT" ]] && command -v systemctl >/dev/null 2>&1; then
		unit="$(systemd-escape --path --suffix=mount "$src")"
		printf '%s\n' "$MANAGED_HEADER" "[Unit]" "Description=Read-only source of the completed migration $name ($src -> $dst)" \
			"" "[Mount]" "What=$src" "Where=$src" "Type=none" "Options=bind,ro" "" "[Install]" "WantedBy=local-fs.target" |
			install_content "/etc/systemd/system/$unit" 0644 >/dev/null
		systemctl daemon-reload
		systemctl enable --now "$unit" >/dev/null 2>&1 || die "could not mount $src read-only ($unit): $(systemctl status "$unit" --no-pager 2>&1 | tail -3)"
		log "source $src is now read-only ($unit); retire it on purpose when you no longer need it"
	else
		log "(no systemd) would make $src read-only"
	fi
	# the downtime: the writers stopped to the new container healthy (at the cut-over of run)
	stopped_at="$(marker_get stopped_at)" handover_at="$(marker_get handover_at)"
	downtime="$(elapsed "${stopped_at:-$healthy_at}" "${handover_at:-$healthy_at}")"
	marker_set state=complete completed_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)" downtime_s="$downtime"
	log "migration $name complete: $(marker_get bytes_copied) bytes copied, $(marker_get files_verified) files verified, downtime ${downtime} s (service stopped to healthy on $dst)"
	exit 0
}
