#!/bin/sh
# install-peers.sh [DIR...]: `npm ci` in each JavaScript folder the tests and
# benchmarks use (default: ../shared/peers and ../shared/clients), once.
#
# Tests run in parallel and several need the same folder, so the install
# holds a lock, and a folder counts as installed only when npm has finished:
# npm writes node_modules/.package-lock.json last. A node_modules folder
# without it (an install still running, or one that was killed) is
# installed again. Exit 0 when every folder is ready, 1 when npm failed,
# 77 (skipped, for meson) without node and npm.
set -u

here=$(cd "$(dirname "$0")" && pwd)
if [ $# = 0 ]; then
	set -- "$here/../../shared/peers" "$here/../../shared/clients"
fi
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
	echo "install-peers: no node and npm: skipped" >&2
	exit 77
fi

for dir in "$@"; do
	dir=$(cd "$dir" 2>/dev/null && pwd) || {
		echo "install-peers: no folder $dir" >&2
		exit 1
	}
	[ -f "$dir/node_modules/.package-lock.json" ] && continue
	# One lock per folder, outside it (the folder may be read-only to
	# others); flock waits for an install another test started.
	lock=${TMPDIR:-/tmp}/cairn-npm-$(printf '%s' "$dir" | cksum | cut -d' ' -f1).lock
	(
		flock 9
		[ -f "$dir/node_modules/.package-lock.json" ] && exit 0
		echo "install-peers: npm ci in $dir" >&2
		cd "$dir" && npm ci --no-audit --no-fund >&2
	) 9>"$lock" || {
		echo "install-peers: npm ci failed in $dir" >&2
		exit 1
	}
done
exit 0
