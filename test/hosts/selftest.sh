#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The remote commands below are single-quoted on purpose: they expand on the host.
# shellcheck disable=SC2016
# Checks that the running dgx test hosts behave like the servers: ssh with strict
# host key checking, systemd, the inner docker engine (overlay2, no daemon.json,
# testbox:1), sysctl, loop devices, and a two-node swarm whose attachable overlay
# network carries traffic from clu to sark. Leaves the hosts as it found them
# (swarm left, test containers, networks and files removed).
#
#   test/hosts/start-hosts.sh <workdir> && test/hosts/selftest.sh <workdir>
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $# -eq 1 && -n $1 ]] || die "usage: $0 <workdir>"
WORKDIR="$(cd "$1" && pwd)"
[[ -s $WORKDIR/hosts.json ]] || die "$WORKDIR/hosts.json missing: run start-hosts.sh $1 first"
command -v jq >/dev/null || die "jq is needed (apt-get install -y jq)"

PASSED=0
FAILED=0
check() { # check <description> <command...>
  local what=$1
  shift
  if "$@"; then
    PASSED=$((PASSED + 1))
    log "ok   $what"
  else
    FAILED=$((FAILED + 1))
    log "FAIL $what"
  fi
}

port() { jq -r --arg h "$1" '.hosts[$h].port' "$WORKDIR/hosts.json"; }
internal() { jq -r --arg h "$1" '.hosts[$h].internalAddress' "$WORKDIR/hosts.json"; }

# on <host> <command...>: run over ssh exactly as the project does (strict host keys).
on() {
  local name=$1
  shift
  timeout 120 ssh -F /dev/null -o UserKnownHostsFile="$WORKDIR/known_hosts" \
    -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=5 \
    -o LogLevel=ERROR -i "$WORKDIR/id_ed25519" -p "$(port "$name")" root@127.0.0.1 "$@"
}

cleanup() {
  on clu 'docker rm -f t-clu >/dev/null 2>&1; docker swarm leave --force >/dev/null 2>&1; true' || true
  on sark 'docker rm -f t-sark >/dev/null 2>&1; docker network rm t-overlay >/dev/null 2>&1;
           docker swarm leave --force >/dev/null 2>&1; true' || true
  on sark 'rm -f /etc/sysctl.d/99-selftest.conf; umount /mnt/selftest 2>/dev/null;
           rm -rf /mnt/selftest /root/selftest.img; true' || true
}
trap cleanup EXIT

for h in "${HOST_NAMES[@]}"; do
  check "$h: ssh with StrictHostKeyChecking=yes and the test key" \
    ssh -F /dev/null -o UserKnownHostsFile="$WORKDIR/known_hosts" -o StrictHostKeyChecking=yes \
    -o BatchMode=yes -i "$WORKDIR/id_ed25519" -p "$(port "$h")" root@127.0.0.1 true
  check "$h: hostname is $h" test "$(on "$h" hostname)" = "$h"
  check "$h: systemd running" test "$(on "$h" systemctl is-system-running)" = running
  check "$h: sshd has only the per-run host key" \
    test "$(on "$h" 'ls /etc/ssh/ssh_host_*' | tr '\n' ' ')" = \
    "/etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub "
  check "$h: password login disabled" on "$h" 'sshd -T | grep -qx "passwordauthentication no"'
  check "$h: inner docker uses overlay2" test "$(on "$h" "docker info --format '{{.Driver}}'")" = overlay2
  check "$h: no /etc/docker/daemon.json" on "$h" '! test -e /etc/docker/daemon.json'
  check "$h: testbox:1 runs" test "$(on "$h" docker run --rm testbox:1 echo hello)" = hello
  check "$h: tools installed" on "$h" 'for t in borg rsync python3 sqlite3 smartctl iostat fio \
      setfacl getfattr findmnt ps ip fuser lsof modprobe sudo busybox; do
      command -v $t >/dev/null || { echo "missing $t"; exit 1; }; done'
done

check "sark reaches clu's sshd on the private network" \
  on sark "timeout 5 bash -c '</dev/tcp/$(internal clu)/22'"
check "clu resolves sark by name" on clu 'getent hosts sark | grep -q "^172\.31\.250\.10 "'

# sysctl as the project applies it (sysctl --system) and reads it back.
before="$(on sark 'sysctl -n vm.swappiness vm.vfs_cache_pressure' | paste -sd' ')"
check "sark: sysctl --system sets vm.swappiness=10 and vm.vfs_cache_pressure=50" on sark '
  printf "vm.swappiness = 10\nvm.vfs_cache_pressure = 50\n" >/etc/sysctl.d/99-selftest.conf &&
  sysctl --system >/dev/null &&
  test "$(sysctl -n vm.swappiness)" = 10 && test "$(sysctl -n vm.vfs_cache_pressure)" = 50'
read -r sw vfs <<<"$before"
on sark "rm -f /etc/sysctl.d/99-selftest.conf; sysctl -q -w vm.swappiness=$sw vm.vfs_cache_pressure=$vfs" || true

# A small loop-mounted ext4 filesystem.
check "sark: losetup + mkfs.ext4 + mount + fstrim on a loop device" on sark '
  set -e
  truncate -s 64M /root/selftest.img
  dev=$(losetup -f --show /root/selftest.img)
  trap "umount /mnt/selftest 2>/dev/null; losetup -d $dev" EXIT
  mkfs.ext4 -q "$dev"
  mkdir -p /mnt/selftest
  mount "$dev" /mnt/selftest
  echo data >/mnt/selftest/file
  setfacl -m u:nobody:r /mnt/selftest/file && getfacl -p /mnt/selftest/file | grep -q "user:nobody:r--"
  fstrim /mnt/selftest'

# Swarm of the two hosts and an attachable overlay network across them.
sark_ip="$(internal sark)"
clu_ip="$(internal clu)"
check "sark: docker swarm init" on sark "docker swarm init --advertise-addr $sark_ip >/dev/null"
token="$(on sark 'docker swarm join-token -q worker' || true)"
# The token goes over ssh's stdin, not into any argv on this machine.
check "clu: docker swarm join" on clu \
  "read -r t && docker swarm join --advertise-addr $clu_ip --token \"\$t\" $sark_ip:2377 >/dev/null" <<<"$token"
nodes_ready() {
  local deadline=$((SECONDS + 60))
  while ((SECONDS < deadline)); do
    [[ $(on sark "docker node ls --format '{{.Status}}' | grep -c Ready" || true) == 2 ]] && return 0
    sleep 2
  done
  return 1
}
check "docker node ls shows two Ready nodes" nodes_ready
check "sark: attachable overlay network" \
  on sark 'docker network create -d overlay --attachable t-overlay >/dev/null'
check "sark: container on the overlay network" \
  on sark 'docker run -d --name t-sark --network t-overlay testbox:1 sleep 600 >/dev/null'
t_sark_ip="$(on sark "docker inspect -f '{{(index .NetworkSettings.Networks \"t-overlay\").IPAddress}}' t-sark" || true)"
overlay_ping() {
  on clu "docker run --rm --name t-clu --network t-overlay testbox:1 \
    sh -c 'ping -c 3 -W 2 $t_sark_ip >/dev/null && ping -c 1 -W 2 t-sark >/dev/null'"
}
check "clu -> sark over the overlay network (by address $t_sark_ip and by name)" overlay_ping

cleanup
trap - EXIT
check "swarm left on both hosts" test \
  "$(on sark "docker info --format '{{.Swarm.LocalNodeState}}'")$(on clu "docker info --format '{{.Swarm.LocalNodeState}}'")" = inactiveinactive

# A reboot inside a host restarts its container: same port, same host key, docker back.
rebooted() {
  local ctr started deadline
  ctr="$(jq -r '.hosts.clu.container' "$WORKDIR/hosts.json")"
  started="$(docker inspect -f '{{.State.StartedAt}}' "$ctr")"
  on clu 'systemctl reboot' >/dev/null 2>&1 || true
  deadline=$((SECONDS + 90))
  while ((SECONDS < deadline)); do
    if [[ $(docker inspect -f '{{.State.StartedAt}}' "$ctr" 2>/dev/null) != "$started" ]] &&
      [[ $(on clu 'systemctl is-system-running --wait' 2>/dev/null) == running ]] &&
      on clu 'timeout 30 docker info >/dev/null 2>&1'; then
      return 0
    fi
    sleep 2
  done
  return 1
}
check "clu: systemctl reboot comes back (ssh on the same port, docker up)" rebooted

echo "selftest: $PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
