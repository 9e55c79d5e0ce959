#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds "standin:1", the image of the stand-in services (standin.py: chroma, memory, vllm) that
# runs inside the test hosts' engines: busybox, and Debian's python3 with the libraries it loads,
# copied out of the dgx-testhost image (so nothing is pulled), plus /usr/local/bin/standin.
#
#   test/hosts/build-standin.sh        # build, or reuse .cache/standin-<hash>.tar
#
# <hash>: sha256 of this script, standin.py and the dgx-testhost image name (its own hash).
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_root
require_docker

IMAGE="$(image_name)"
TAR="$(standin_tar)"
[[ -s $TAR ]] && {
  log "reusing $TAR"
  exit 0
}
docker image inspect "$IMAGE" >/dev/null 2>&1 || die "$IMAGE is missing: run build-image.sh first"

exec 8>"$CACHE_DIR/standin.lock"
flock -w 600 8 || die "another build-standin.sh holds $CACHE_DIR/standin.lock"
[[ -s $TAR ]] && exit 0

START=$SECONDS
WORK="$(mktemp -d /var/tmp/dgx-standin.XXXXXX)"
trap 'rm -rf --one-file-system "$WORK"' EXIT
ROOT="$WORK/rootfs"
install -d "$ROOT/usr/bin" "$ROOT/usr/sbin" "$ROOT/usr/lib" "$ROOT/usr/lib64" "$ROOT/usr/local/bin" "$ROOT/etc" "$ROOT/root" "$ROOT/proc" "$ROOT/sys" "$ROOT/dev"
install -d -m 1777 "$ROOT/tmp"
ln -s usr/bin "$ROOT/bin"
ln -s usr/sbin "$ROOT/sbin"
ln -s usr/lib "$ROOT/lib"
ln -s usr/lib64 "$ROOT/lib64"

# python3 (the interpreter, its standard library, its C modules) and every shared library they
# load, as ldd inside the image lists them; busybox for a shell and the usual tools. tar -h
# stores the files that symlinks point to, so no link dangles in the smaller tree.
docker run --rm --network none --entrypoint /bin/sh "$IMAGE" -c '
set -e
py=$(readlink -f /usr/bin/python3)
libs=$(ldd "$py" /usr/lib/python3.*/lib-dynload/*.so | grep -o "/[^ ]*" | grep -v ":$" | sort -u)
tar -ch --exclude="__pycache__" --exclude="/usr/lib/python3.*/test" --exclude="/usr/lib/python3.*/idlelib" \
  --exclude="/usr/lib/python3.*/tkinter" --exclude="/usr/lib/python3.*/ensurepip" \
  "$py" /usr/lib/python3.* $libs /usr/bin/busybox 2>/dev/null
' | tar -C "$ROOT" --keep-directory-symlink -x
PY="$(cd "$ROOT/usr/bin" && ls python3.*)"
ln -s "$PY" "$ROOT/usr/bin/python3"
ln -s "$PY" "$ROOT/usr/bin/python"
while read -r applet; do
  case "$applet" in bin/busybox | usr/bin/busybox) continue ;; esac
  [[ -e "$ROOT/$applet" || -L "$ROOT/$applet" ]] && continue
  mkdir -p "$ROOT/$(dirname "$applet")"
  ln -s /usr/bin/busybox "$ROOT/$applet"
done < <("$ROOT/usr/bin/busybox" --list-full)
install -m 0755 "$HOSTS_DIR/standin.py" "$ROOT/usr/local/bin/standin"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$ROOT/etc/group"

# a check that it runs: every mode's imports and the python command
chroot "$ROOT" /usr/bin/python -c 'import sqlite3, http.server, json, argparse, urllib.request; print(sqlite3.sqlite_version)' >/dev/null ||
  die "the stand-in's python does not run"

tar -C "$ROOT" --numeric-owner -cf - . |
  docker import --change 'ENV PATH=/usr/local/bin:/usr/bin:/usr/sbin' --change 'CMD ["standin", "chroma"]' - "$STANDIN_IMAGE" >/dev/null
docker save -o "$TAR.tmp" "$STANDIN_IMAGE"
mv "$TAR.tmp" "$TAR"
find "$CACHE_DIR" -maxdepth 1 -name 'standin-*.tar' ! -name "$(basename "$TAR")" -delete
log "built $STANDIN_IMAGE ($TAR, $(du -h "$TAR" | cut -f1)) in $((SECONDS - START)) s"
