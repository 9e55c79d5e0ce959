#!/usr/bin/env bash
# Installs what the tests, the end-to-end suite and the benchmarks need on a fresh Debian or
# Ubuntu machine: the packages of apt-packages.txt that dpkg does not report installed, then the
# exact npm dependencies of package-lock.json. Run as root (or through sudo); .ci/run runs it.
#
#   tools/install-deps.sh          apt packages and npm ci
#   tools/install-deps.sh --apt    apt packages only
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The package names of apt-packages.txt: the first word of each line, comments and blanks dropped.
packages() { sed -e 's/#.*//' apt-packages.txt | awk 'NF { print $1 }'; }

installed() { [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]; }

missing=()
while IFS= read -r p; do installed "$p" || missing+=("$p"); done < <(packages)
if ((${#missing[@]} > 0)); then
	[[ $(id -u) -eq 0 ]] || {
		echo "install-deps: run as root to install: ${missing[*]}" >&2
		exit 1
	}
	echo "install-deps: apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
	echo "install-deps: every package of apt-packages.txt is installed"
fi

if [[ ${1:-} != --apt ]]; then
	npm ci --no-audit --no-fund
fi
