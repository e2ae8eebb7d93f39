#!/bin/sh
# deps.sh -- install the Debian 12 packages kmemfs needs to build, run and test.
# Idempotent: does nothing when every package is already installed.
set -eu
PKGS="build-essential cmake pkg-config git
libfuse3-dev fuse3 libpmemobj-dev libpmem2-dev libpmem-dev libpmempool-dev
libdaxctl-dev libndctl-dev libnuma-dev libcmocka-dev liburing-dev libsodium-dev
attr acl util-linux coreutils findutils e2fsprogs psmisc procps jq $*"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "deps: installing$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
