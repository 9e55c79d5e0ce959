#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Removes the dgx test hosts: both containers, their /var/lib/docker volumes and
# the network, and puts back the vm.* sysctls of this machine that the hosts
# changed. Never fails because something is already gone.
#
#   test/hosts/stop-hosts.sh [--quiet]
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

QUIET=0
[[ ${1:-} == --quiet ]] && QUIET=1
say() { [[ $QUIET -eq 1 ]] || log "$@"; }

if ! docker info >/dev/null 2>&1; then
  log "WARNING: docker engine not reachable; nothing to remove"
  restore_outer_sysctls || true
  exit 0
fi

for name in "${HOST_NAMES[@]}"; do
  ctr="$(container_name "$name")"
  vol="$(volume_name "$name")"
  if docker container inspect "$ctr" >/dev/null 2>&1; then
    say "removing container $ctr"
    # stop first (SIGRTMIN+3: systemd shuts down cleanly), then remove
    timeout 60 docker stop -t 20 "$ctr" >/dev/null 2>&1 || true
    docker rm -f -v "$ctr" >/dev/null 2>&1 || true
  fi
  if docker volume inspect "$vol" >/dev/null 2>&1; then
    say "removing volume $vol"
    docker volume rm -f "$vol" >/dev/null 2>&1 || true
  fi
done

if docker network inspect "$NETWORK" >/dev/null 2>&1; then
  say "removing network $NETWORK"
  docker network rm "$NETWORK" >/dev/null 2>&1 || true
fi

# Anything that would still be there is an error worth telling, but not failing on.
for name in "${HOST_NAMES[@]}"; do
  if docker container inspect "$(container_name "$name")" >/dev/null 2>&1; then
    log "WARNING: container $(container_name "$name") is still there"
  fi
  if docker volume inspect "$(volume_name "$name")" >/dev/null 2>&1; then
    log "WARNING: volume $(volume_name "$name") is still there"
  fi
done
if docker network inspect "$NETWORK" >/dev/null 2>&1; then
  log "WARNING: network $NETWORK is still there"
fi

restore_outer_sysctls || true
exit 0
