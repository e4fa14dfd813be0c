#!/bin/sh
# Installs the Debian packages that cairn's build, tests, fuzzers and benchmarks need.
# Idempotent and non-interactive: does nothing when every package is present.
set -eu

PACKAGES="
build-essential
clang
libclang-rt-dev
meson
ninja-build
pkg-config
libssl-dev
libsodium-dev
libcmocka-dev
liblmdb-dev
libsqlite3-dev
libcurl4-openssl-dev
libmicrohttpd-dev
nginx-light
openssl
time
wrk
curl
btrfs-progs
xfsprogs
e2fsprogs
"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
	SUDO="sudo"
fi

echo "install-deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists; an old list may name versions that are gone.
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
