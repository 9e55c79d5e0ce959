#!/usr/bin/env bash
# Install distribution packages that are missing (plan phase 2.2: smartmontools, sysstat; and fio
# for the baseline).
#
#   apt-ensure.sh <package>...
#
# Checks each package with `dpkg-query -W` first; only the missing ones go to
# `apt-get install -y --no-install-recommends`, so a second run changes nothing and needs no
# network. The package lists are refreshed (`apt-get update`) only when an install finds a
# package unknown to them. Prints which packages were installed and which were already there.
if ! declare -F dgx_lib_loaded >/dev/null; then
	# shellcheck source=components/scripts/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

(($# > 0)) || die "usage: apt-ensure.sh <package>..."

# "install ok installed" only: a package removed but not purged is "deinstall ok config-files"
installed() {
	[[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

missing=()
for p in "$@"; do
	[[ "$p" =~ ^[a-z0-9][a-z0-9.+-]+$ ]] || die "'$p' is not a Debian package name"
	installed "$p" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
	log "already installed: $*"
	exit 0
fi
if [[ "$DRY_RUN" == 1 ]]; then
	log "dry run: would install ${missing[*]}"
	exit 0
fi
require_cmd apt-get
export DEBIAN_FRONTEND=noninteractive
apt_install() {
	apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" 2>&1
}
if ! out="$(apt_install)"; then
	if grep -qE 'Unable to locate package|has no installation candidate' <<<"$out"; then
		log "refreshing the package lists (apt-get update): $(grep -oE 'Unable to locate package [^ ]+|Package [^ ]+ has no installation candidate' <<<"$out" | head -3 | tr '\n' ' ')"
		apt-get update -q >/dev/null 2>&1 || warn "apt-get update failed; trying the install anyway"
		out="$(apt_install)" || die "apt-get install ${missing[*]} failed on $(hostname):
$(tail -n 15 <<<"$out")"
	else
		die "apt-get install ${missing[*]} failed on $(hostname):
$(tail -n 15 <<<"$out")"
	fi
fi
for p in "${missing[@]}"; do
	installed "$p" || die "$p is still not installed after apt-get install"
done
log "installed ${missing[*]}"
