#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds the docker image of the dgx test hosts (Debian bookworm, systemd as PID 1,
# sshd, docker.io, borgbackup, ...) with debootstrap, and the tiny busybox image
# "testbox:1" that runs inside the hosts' own docker engines.
#
#   test/hosts/build-image.sh          # build, or reuse the cached image
#
# Image: dgx-testhost:bookworm-<hash>, <hash> = sha256 of this script + packages.txt.
# Caches (gitignored) in test/hosts/.cache/: debs/ (downloaded .debs, so a rebuild
# after a change here does not download again) and testbox-<hash>.tar.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_root
require_docker

IMAGE="$(image_name)"
TESTBOX_TAR="$(testbox_tar)"

if docker image inspect "$IMAGE" >/dev/null 2>&1 && [[ -s $TESTBOX_TAR ]]; then
  log "reusing image $IMAGE and $TESTBOX_TAR"
  exit 0
fi

mkdir -p "$CACHE_DIR/debs"

# One build at a time.
exec 9>"$CACHE_DIR/build.lock"
flock -w 1800 9 || die "another build-image.sh holds $CACHE_DIR/build.lock"
if docker image inspect "$IMAGE" >/dev/null 2>&1 && [[ -s $TESTBOX_TAR ]]; then
  log "reusing image $IMAGE and $TESTBOX_TAR (built by a concurrent run)"
  exit 0
fi

if ! command -v debootstrap >/dev/null; then
  log "installing debootstrap"
  timeout 600 apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq debootstrap >/dev/null ||
    die "apt-get install debootstrap failed"
fi

START=$SECONDS
WORK="$(mktemp -d /var/tmp/dgx-testhost-build.XXXXXX)"
ROOTFS="$WORK/rootfs"
TESTBOX="$WORK/testbox"

cleanup() {
  local rc=$?
  # debootstrap mounts proc/sys inside the target; never rm -rf through a mount.
  local m
  while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done < <(awk -v w="$WORK" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r)
  rm -rf --one-file-system "$WORK"
  if [[ $rc -ne 0 ]]; then
    printf 'ERROR: build-image.sh failed (exit %s); see the output above\n' "$rc" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT

PACKAGES="$(package_list | paste -sd, -)"
log "debootstrap $SUITE from $MIRROR into $ROOTFS (this takes a few minutes)"
timeout 1800 debootstrap --variant=minbase --include="$PACKAGES" --cache-dir="$CACHE_DIR/debs" \
  "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
  tail -n 40 "$WORK/debootstrap.log" >&2
  die "debootstrap failed"
}

log "configuring the root filesystem"

# apt: same sources as this machine; no lists or debs in the image.
rm -f "$ROOTFS/etc/apt/sources.list"
cat >"$ROOTFS/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR}-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin
find "$ROOTFS/var/cache/apt/archives" -name '*.deb' -delete
rm -f "$ROOTFS/usr/sbin/policy-rc.d"

# sshd: host keys are made per run by start-hosts.sh and copied in before the
# first boot, so remove the ones openssh-server's postinst generated; root by key only.
rm -f "$ROOTFS"/etc/ssh/ssh_host_*
cat >"$ROOTFS/etc/ssh/sshd_config.d/10-testhost.conf" <<'EOF'
# dgx test host: only the per-run ed25519 host key, root by key only.
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
EOF
install -d -m 0700 "$ROOTFS/root/.ssh"

# docker: no daemon.json (tests write /etc/docker/daemon.json themselves; with none,
# dockerd picks overlay2 on the ext4 volume mounted at /var/lib/docker).
rm -f "$ROOTFS/etc/docker/daemon.json"

# no locales package: C.UTF-8 (built into libc); also quiets pam_env on each ssh login
echo 'LANG=C.UTF-8' >"$ROOTFS/etc/default/locale"

# systemd: a fresh machine-id per container (empty file = generated at boot).
: >"$ROOTFS/etc/machine-id"
rm -f "$ROOTFS/var/lib/dbus/machine-id"
: >"$ROOTFS/etc/fstab"

systemctl --root="$ROOTFS" enable ssh.service docker.service containerd.service >/dev/null 2>&1
# Units that have nothing to do (or fail) in a container: consoles, udev (no
# writable /sys, the devices come from docker), kernel-facing mounts and services.
systemctl --root="$ROOTFS" mask \
  getty@.service serial-getty@.service console-getty.service getty.target \
  systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
  systemd-udev-trigger.service systemd-udev-settle.service \
  systemd-modules-load.service systemd-remount-fs.service systemd-firstboot.service \
  sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
  sys-fs-fuse-connections.mount dev-hugepages.mount dev-mqueue.mount \
  proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \
  systemd-binfmt.service e2scrub_reap.service e2scrub_all.timer \
  apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1

# Loop devices: udev is not there to make /dev/loopN, so systemd-tmpfiles makes
# the nodes at boot (start-hosts.sh allows them with --device-cgroup-rule).
{
  echo '# dgx test host: loop device nodes (no udev in the container)'
  echo 'c! /dev/loop-control 0660 root disk - 10:237'
  for i in $(seq 0 31); do
    echo "b! /dev/loop$i 0660 root disk - 7:$i"
  done
} >"$ROOTFS/etc/tmpfiles.d/testhost-loop.conf"

log "importing $IMAGE"
tar -C "$ROOTFS" --numeric-owner -cf - . |
  docker import \
    --change 'ENV container=docker' \
    --change 'CMD ["/sbin/init"]' \
    --message "dgx test host, built by test/hosts/build-image.sh" \
    - "$IMAGE" >/dev/null

log "building $TESTBOX_IMAGE (busybox only)"
install -d "$TESTBOX/usr/bin" "$TESTBOX/usr/sbin" "$TESTBOX/etc" "$TESTBOX/root" \
  "$TESTBOX/proc" "$TESTBOX/sys" "$TESTBOX/dev"
install -d -m 1777 "$TESTBOX/tmp"
ln -s usr/bin "$TESTBOX/bin"
ln -s usr/sbin "$TESTBOX/sbin"
install -m 0755 "$ROOTFS/usr/bin/busybox" "$TESTBOX/usr/bin/busybox"
# What `busybox --install -s` would make, without having to run it in a chroot.
while read -r applet; do
  case "$applet" in
  bin/busybox | usr/bin/busybox) continue ;;
  esac
  [[ -e "$TESTBOX/$applet" || -L "$TESTBOX/$applet" ]] && continue
  mkdir -p "$TESTBOX/$(dirname "$applet")"
  ln -s /usr/bin/busybox "$TESTBOX/$applet"
done < <("$ROOTFS/usr/bin/busybox" --list-full)
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
  >"$TESTBOX/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$TESTBOX/etc/group"
OLD_TESTBOX_ID="$(docker image inspect -f '{{.Id}}' "$TESTBOX_IMAGE" 2>/dev/null || true)"
tar -C "$TESTBOX" --numeric-owner -cf - . |
  docker import --change 'CMD ["/bin/sh"]' - "$TESTBOX_IMAGE" >/dev/null
docker save -o "$TESTBOX_TAR.tmp" "$TESTBOX_IMAGE"
mv "$TESTBOX_TAR.tmp" "$TESTBOX_TAR"
# Images and tarballs of other hashes are of no use any more (an image still used
# by a container stays).
find "$CACHE_DIR" -maxdepth 1 -name 'testbox-*.tar' ! -name "$(basename "$TESTBOX_TAR")" -delete
if [[ -n $OLD_TESTBOX_ID ]]; then
  docker rmi "$OLD_TESTBOX_ID" >/dev/null 2>&1 || true
fi
# Of the images of other hashes the three newest stay: other checkouts of the project (git
# worktrees) on this machine may be using them.
docker images --format '{{.CreatedAt}}|{{.Repository}}:{{.Tag}}' dgx-testhost | sort -r | cut -d'|' -f2 |
  { grep -vxF "$IMAGE" || true; } | tail -n +4 |
  while read -r old; do docker rmi "$old" >/dev/null 2>&1 || true; done

log "built $IMAGE and $TESTBOX_TAR in $((SECONDS - START)) s"
