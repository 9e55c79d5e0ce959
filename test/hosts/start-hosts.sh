#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Starts the two dgx test hosts, dgxtest-sark and dgxtest-clu: containers with
# systemd as PID 1, sshd and their own docker engine, on the private network
# dgxtest-net, each with sshd published on 127.0.0.1:<random port>.
#
#   test/hosts/start-hosts.sh <workdir>
#
# Writes into <workdir> (created if missing):
#   id_ed25519, id_ed25519.pub   client key pair, root's authorized key on both hosts
#   known_hosts                  "[127.0.0.1]:PORT ssh-ed25519 ..." of both hosts
#   hosts.json                   addresses, ports, host keys, internal addresses
#   hostkeys/<host>/             the hosts' ed25519 host key pairs
# Removes the hosts of an earlier run first. Set KEEP_ON_FAILURE=1 to keep the
# containers of a failed start for debugging (stop-hosts.sh removes them).
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BOOT_TIMEOUT=${BOOT_TIMEOUT:-180}    # s, systemd to reach running/degraded
SSH_TIMEOUT=${SSH_TIMEOUT:-60}       # s, sshd to accept the client key
DOCKER_TIMEOUT=${DOCKER_TIMEOUT:-90} # s, inner dockerd to answer

[[ $# -eq 1 && -n $1 ]] || die "usage: $0 <workdir>"
require_root
require_docker
if ! command -v ssh >/dev/null || ! command -v ssh-keygen >/dev/null; then
  die "ssh and ssh-keygen are needed (apt-get install -y openssh-client)"
fi
command -v ss >/dev/null || die "ss is needed (apt-get install -y iproute2)"

mkdir -p "$1"
WORKDIR="$(cd "$1" && pwd)"
START=$SECONDS

"$HOSTS_DIR/build-image.sh"
"$HOSTS_DIR/build-standin.sh"
IMAGE="$(image_name)"
TESTBOX_TAR="$(testbox_tar)"
STANDIN_TAR="$(standin_tar)"

# A clean slate: hosts, volumes and network of an earlier run, and the iptables rules of one
# whose engine state was lost before it was stopped (lib.sh).
"$HOSTS_DIR/stop-hosts.sh" --quiet
remove_orphan_subnet_rules ||
  die "orphaned iptables rules for $SUBNET are left (above): the hosts could not reach each other"

STARTED=0
on_exit() {
  local rc=$?
  if [[ $rc -ne 0 && $STARTED -eq 0 ]]; then
    printf 'ERROR: start-hosts.sh failed (exit %s)\n' "$rc" >&2
    local name ctr
    for name in "${HOST_NAMES[@]}"; do
      ctr="$(container_name "$name")"
      docker inspect "$ctr" >/dev/null 2>&1 || continue
      printf -- '--- %s: failed units and last journal lines ---\n' "$ctr" >&2
      timeout 20 docker exec "$ctr" systemctl --failed --no-pager >&2 2>&1 || true
      timeout 20 docker exec "$ctr" journalctl -b --no-pager -n 40 >&2 2>&1 || true
    done
    if [[ ${KEEP_ON_FAILURE:-0} == 1 ]]; then
      printf 'KEEP_ON_FAILURE=1: containers kept; remove them with %s/stop-hosts.sh\n' \
        "$HOSTS_DIR" >&2
    else
      "$HOSTS_DIR/stop-hosts.sh" --quiet || true
    fi
  fi
  exit "$rc"
}
trap on_exit EXIT

save_outer_sysctls

# Keys of this run: the client key pair and one ed25519 host key per host.
umask 077
rm -f "$WORKDIR/id_ed25519" "$WORKDIR/id_ed25519.pub" "$WORKDIR/known_hosts" "$WORKDIR/hosts.json"
rm -rf "$WORKDIR/hostkeys"
ssh-keygen -q -t ed25519 -N '' -C "dgxtest-client" -f "$WORKDIR/id_ed25519"
for name in "${HOST_NAMES[@]}"; do
  mkdir -p "$WORKDIR/hostkeys/$name"
  ssh-keygen -q -t ed25519 -N '' -C "" -f "$WORKDIR/hostkeys/$name/ssh_host_ed25519_key"
  chmod 0644 "$WORKDIR/hostkeys/$name/ssh_host_ed25519_key.pub"
done
chmod 0644 "$WORKDIR/id_ed25519.pub"
umask 022

# A device that still has an address in $SUBNET (a bridge left by an engine whose state was lost,
# or somebody else's network) would route the subnet beside the new bridge: refuse, naming it.
taken="$(devices_on_subnet)"
[[ -z $taken ]] || die "$SUBNET is already on this machine: $taken; remove it (ip link del <device>) and start again"
log "creating network $NETWORK ($SUBNET)"
docker network create --driver bridge --subnet "$SUBNET" \
  --label dgxtest=1 "$NETWORK" >/dev/null

# A random free port on 127.0.0.1 for sshd, chosen here rather than by docker
# (-p 127.0.0.1::22) because docker picks a new one on every container restart,
# and a reboot inside a host (systemctl reboot) restarts its container.
# 20000-32767 is below the kernel's ephemeral range, where docker's own picks land.
pick_port() {
  local i p
  for i in $(seq 1 50); do
    p=$((20000 + RANDOM % 12768))
    if [[ -z $(ss -Hltn "sport = :$p" 2>/dev/null) ]]; then
      echo "$p"
      return 0
    fi
  done
  die "no free port on 127.0.0.1 found in 20000-32767 (tried $i)"
}

declare -A PORT HOSTKEY
for name in "${HOST_NAMES[@]}"; do
  ctr="$(container_name "$name")"
  vol="$(volume_name "$name")"
  docker volume create --label dgxtest=1 "$vol" >/dev/null
  for attempt in 1 2 3 4 5; do
    port="$(pick_port)"
    log "creating $ctr (hostname $name, ${HOST_IP[$name]}, ssh on 127.0.0.1:$port)"
    # Flags (see README.md): --privileged fails on this docker (a capability is not
    # in the bounding set), so: all capabilities but SYS_RESOURCE, no seccomp or
    # apparmor profile, writable /proc/sys (systempaths=unconfined, for sysctl -w),
    # the host's cgroup tree for systemd, tmpfs /run, the loop devices, and
    # /var/lib/docker on a volume so the inner dockerd can use overlay2.
    # --restart on-failure: `systemctl reboot` inside ends the container with
    # exit code 129, docker starts it again: a reboot.
    docker create \
      --name "$ctr" --hostname "$name" \
      --label dgxtest=1 \
      --network "$NETWORK" --ip "${HOST_IP[$name]}" --network-alias "$name" \
      --cap-add ALL --cap-drop SYS_RESOURCE \
      --security-opt seccomp=unconfined \
      --security-opt apparmor=unconfined \
      --security-opt systempaths=unconfined \
      --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
      --tmpfs /run --tmpfs /run/lock \
      --device-cgroup-rule 'b 7:* rmw' --device-cgroup-rule 'c 10:237 rmw' \
      -v "$vol:/var/lib/docker" \
      -p "127.0.0.1:$port:22" \
      --stop-signal SIGRTMIN+3 --stop-timeout 20 \
      --restart on-failure \
      "$IMAGE" >/dev/null
    # Host key and root's authorized key go in before the first boot, so sshd
    # never runs with a key made anywhere else (the image has none).
    docker cp "$WORKDIR/hostkeys/$name/ssh_host_ed25519_key" "$ctr:/etc/ssh/ssh_host_ed25519_key"
    docker cp "$WORKDIR/hostkeys/$name/ssh_host_ed25519_key.pub" "$ctr:/etc/ssh/ssh_host_ed25519_key.pub"
    docker cp "$WORKDIR/id_ed25519.pub" "$ctr:/root/.ssh/authorized_keys"
    if [[ $name == clu ]]; then
      # clu has the NVIDIA GPU: a stand-in nvidia-container-runtime-hook on PATH before dockerd
      # first starts, so that dockerd registers its "nvidia" device driver (it looks the hook up
      # once, at start: moby daemon/nvidia_linux.go) and a container with a GPU device request
      # starts. No GPU is attached: the hook reads the OCI state and does nothing (README.md).
      docker cp "$HOSTS_DIR/nvidia-container-runtime-hook" "$ctr:/usr/local/bin/nvidia-container-runtime-hook"
    fi
    if docker start "$ctr" >/dev/null; then
      PORT[$name]=$port
      break
    fi
    log "$ctr: start failed (port $port taken meanwhile?); attempt $attempt of 5"
    docker rm -f "$ctr" >/dev/null 2>&1 || true
  done
  [[ -n ${PORT[$name]:-} ]] || die "$ctr: could not be started"
  HOSTKEY[$name]="$(cut -d' ' -f1,2 "$WORKDIR/hostkeys/$name/ssh_host_ed25519_key.pub")"
done

# known_hosts and hosts.json.
{
  for name in "${HOST_NAMES[@]}"; do
    printf '[127.0.0.1]:%s %s\n' "${PORT[$name]}" "${HOSTKEY[$name]}"
  done
} >"$WORKDIR/known_hosts"
{
  printf '{\n  "privateKeyPath": "%s",\n  "knownHostsPath": "%s",\n  "hosts": {\n' \
    "$WORKDIR/id_ed25519" "$WORKDIR/known_hosts"
  sep=""
  for name in "${HOST_NAMES[@]}"; do
    printf '%s    "%s": {"address": "127.0.0.1", "port": %s, "user": "root", "hostKey": "%s", "internalAddress": "%s", "container": "%s"}' \
      "$sep" "$name" "${PORT[$name]}" "${HOSTKEY[$name]}" "${HOST_IP[$name]}" "$(container_name "$name")"
    sep=$',\n'
  done
  printf '\n  }\n}\n'
} >"$WORKDIR/hosts.json"

ssh_host() { # ssh_host <name> <command...>: strict host key checking, test key only
  local name=$1
  shift
  ssh -F /dev/null -i "$WORKDIR/id_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o UserKnownHostsFile="$WORKDIR/known_hosts" -o StrictHostKeyChecking=yes \
    -o ConnectTimeout=5 -o LogLevel=ERROR -p "${PORT[$name]}" root@127.0.0.1 "$@"
}

# Wait for systemd, sshd and the inner docker engine; every wait is bounded.
for name in "${HOST_NAMES[@]}"; do
  ctr="$(container_name "$name")"
  state="$(timeout "$BOOT_TIMEOUT" docker exec "$ctr" systemctl is-system-running --wait 2>/dev/null || true)"
  case "$state" in
  running) log "$ctr: systemd $state" ;;
  degraded)
    log "$ctr: systemd degraded; failed units:"
    docker exec "$ctr" systemctl --failed --no-pager --plain --no-legend >&2 || true
    ;;
  *) die "$ctr: systemd did not come up within ${BOOT_TIMEOUT}s (state: '${state:-none}')" ;;
  esac

  deadline=$((SECONDS + SSH_TIMEOUT))
  until ssh_host "$name" true 2>/dev/null; do
    ((SECONDS < deadline)) || {
      ssh_host "$name" true || true # show the error
      die "$ctr: no ssh login on 127.0.0.1:${PORT[$name]} within ${SSH_TIMEOUT}s"
    }
    sleep 1
  done
  log "$ctr: ssh root@127.0.0.1 -p ${PORT[$name]} works"

  deadline=$((SECONDS + DOCKER_TIMEOUT))
  until timeout 15 docker exec "$ctr" docker info >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$ctr: inner docker engine not up within ${DOCKER_TIMEOUT}s"
    sleep 1
  done
  driver="$(docker exec "$ctr" docker info --format '{{.Driver}}')"
  log "$ctr: inner docker engine up (storage driver $driver)"

  timeout 120 docker exec -i "$ctr" docker load -q <"$TESTBOX_TAR" >/dev/null ||
    die "$ctr: docker load of $TESTBOX_TAR failed"
  log "$ctr: loaded $TESTBOX_IMAGE"
  timeout 120 docker exec -i "$ctr" docker load -q <"$STANDIN_TAR" >/dev/null ||
    die "$ctr: docker load of $STANDIN_TAR failed"
  log "$ctr: loaded $STANDIN_IMAGE"
done

STARTED=1
log "hosts up in $((SECONDS - START)) s; $WORKDIR/hosts.json:"
cat "$WORKDIR/hosts.json"
