# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are used by the scripts that source this file
# Common settings of the dgx test hosts; sourced by the scripts in test/hosts/.

HOSTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_DIR="$HOSTS_DIR/.cache"

SUITE=bookworm
MIRROR=http://deb.debian.org/debian

NETWORK=dgxtest-net
SUBNET=172.31.250.0/24
# name -> fixed address on $NETWORK
HOST_NAMES=(sark clu)
declare -A HOST_IP=([sark]=172.31.250.10 [clu]=172.31.250.11)
CONTAINER_PREFIX=dgxtest-
VOLUME_SUFFIX=-docker

TESTBOX_IMAGE=testbox:1
# the stand-in services (standin.py), built by build-standin.sh
STANDIN_IMAGE=standin:1

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}

# The packages of the image: packages.txt without comments and blank lines.
package_list() {
  sed -e 's/#.*//' -e 's/[[:space:]]//g' "$HOSTS_DIR/packages.txt" | grep -v '^$'
}

# Short hash of what determines the image: the build script and the package list.
image_hash() {
  cat "$HOSTS_DIR/build-image.sh" "$HOSTS_DIR/packages.txt" | sha256sum | cut -c1-12
}

image_name() { printf 'dgx-testhost:%s-%s\n' "$SUITE" "$(image_hash)"; }
testbox_tar() { printf '%s/testbox-%s.tar\n' "$CACHE_DIR" "$(image_hash)"; }

standin_tar() {
  printf '%s/standin-%s.tar\n' "$CACHE_DIR" \
    "$({
      cat "$HOSTS_DIR/build-standin.sh" "$HOSTS_DIR/standin.py"
      image_name
    } | sha256sum | cut -c1-12)"
}

container_name() { printf '%s%s\n' "$CONTAINER_PREFIX" "$1"; }
volume_name() { printf '%s%s%s\n' "$CONTAINER_PREFIX" "$1" "$VOLUME_SUFFIX"; }

require_docker() {
  command -v docker >/dev/null || die "docker CLI not found"
  docker info >/dev/null 2>&1 ||
    die "docker engine not reachable (start it: nohup dockerd >/var/log/dockerd.log 2>&1 &)"
}

require_root() {
  [[ $(id -u) -eq 0 ]] || die "must run as root"
}

# vm.* sysctls are not namespaced: what a test host writes (e.g. vm.swappiness via
# `sysctl --system`) is the value of this whole machine's kernel, and of the other
# host. start-hosts.sh saves them here, stop-hosts.sh puts them back.
OUTER_SYSCTL_SNAPSHOT=/run/dgxtest-outer-sysctl.conf

save_outer_sysctls() {
  [[ -e $OUTER_SYSCTL_SNAPSHOT ]] && return 0 # keep the oldest (pre-test) values
  sysctl -e vm 2>/dev/null >"$OUTER_SYSCTL_SNAPSHOT.tmp" || true
  mv "$OUTER_SYSCTL_SNAPSHOT.tmp" "$OUTER_SYSCTL_SNAPSHOT"
}

restore_outer_sysctls() {
  [[ -s $OUTER_SYSCTL_SNAPSHOT ]] || {
    rm -f "$OUTER_SYSCTL_SNAPSHOT"
    return 0
  }
  local pass line key value now changed=()
  # Two passes: some values are coupled (vm.dirty_bytes / vm.dirty_ratio).
  for pass in 1 2; do
    while IFS= read -r line; do
      key="${line%% = *}"
      value="${line#* = }"
      [[ $key == "$line" ]] && continue
      now="$(sysctl -n "$key" 2>/dev/null)" || continue
      [[ $now == "$value" ]] && continue
      if sysctl -q -w "$key=$value" >/dev/null 2>&1 && [[ $pass -eq 1 ]]; then
        changed+=("$key=$value")
      fi
    done <"$OUTER_SYSCTL_SNAPSHOT"
  done
  if [[ ${#changed[@]} -gt 0 ]]; then
    log "restored sysctls of this machine changed inside the hosts: ${changed[*]}"
  fi
  rm -f "$OUTER_SYSCTL_SNAPSHOT"
}

# iptables rules for $SUBNET that name a bridge which no longer exists. Docker writes them for
# dgxtest-net (br-<network id>) and removes them with the network; when the engine's state is lost
# first (dockerd killed and /var/lib/docker emptied before stop-hosts.sh ran), they stay in the
# kernel and nothing removes them. The harmful one is nat POSTROUTING
# "-s $SUBNET ! -o br-OLD -j MASQUERADE": it matches the next run's traffic between the hosts too
# (br_netfilter passes bridged frames through iptables), so each host sees the other as the
# bridge's gateway address: `docker swarm join` times out and the overlay network carries nothing.
# Only rules that mention $SUBNET and name a br-* link that does not exist are removed.
# Prints one line per rule removed; exits 1 when one could not be removed.
remove_orphan_subnet_rules() {
  command -v iptables >/dev/null || return 0
  local table rule bridge rc=0
  local -a args
  for table in nat filter; do
    while IFS= read -r rule; do
      [[ $rule == "-A "* && " $rule " == *" $SUBNET "* ]] || continue
      bridge="$(grep -oE 'br-[0-9a-f]{12}' <<<"$rule" | head -n 1)" || true
      [[ -n $bridge ]] || continue
      ip link show "$bridge" >/dev/null 2>&1 && continue
      read -ra args <<<"${rule#-A }"
      if iptables -t "$table" -D "${args[@]}"; then
        log "removed an orphaned iptables rule (bridge $bridge no longer exists): -t $table $rule"
      else
        log "ERROR: could not remove the orphaned iptables rule -t $table $rule"
        rc=1
      fi
    done < <(iptables -t "$table" -S)
  done
  return "$rc"
}

# The devices with an IPv4 address in $SUBNET, as "br-9b37d7490f9d (172.31.250.1/24), ...";
# empty when there is none.
devices_on_subnet() {
  ip -o -4 addr show to "$SUBNET" | awk '{printf "%s%s (%s)", (NR > 1 ? ", " : ""), $2, $4}'
}
