# serve.sh: a `cairn serve` daemon for tests, sourced (POSIX sh: dash or bash).
#
#   serve_start LOG CAIRN [ARGS...]
#
# runs `CAIRN serve ARGS...` in the background (pass --listen 127.0.0.1:0 for
# a free port), its stdout and stderr in LOG, and waits until it is up: its
# store's api and token files written (the store: --repo DIR or -r DIR in
# ARGS, else $CAIRN_PATH, else ~/.cairn, as cairn finds it; environment
# assignments before the call reach the daemon). When an api file was already
# there (left by a daemon killed -9), it waits for the daemon's own "on port"
# line in LOG too. Waits at most SERVE_TIMEOUT seconds (default 60: an ASan
# build starts slowly), never a fixed sleep. Sets serve_pid, serve_repo,
# serve_log, serve_api (the multiaddr in the api file), serve_port and
# serve_base (http://127.0.0.1:PORT); returns 1 with the daemon's log on
# stderr when it exits or is not up in time (then it is killed).
#
# serve_stop [PID] sends SIGTERM to PID (default $serve_pid) and waits for it,
# at most SERVE_STOP_TIMEOUT seconds (default 60; then kill -9 and status 1);
# returns the daemon's exit status. serve_kill [PID] is kill -9 and wait, for
# a test's EXIT trap. Both clear serve_pid when they stop that one.
# serve_alive PID tells whether the process still runs (not a zombie).

serve_pid=
serve_repo=
serve_log=
serve_api=
serve_port=
serve_base=

serve_alive () {
	if [ -d /proc/self ]; then
		read -r _serve_stat 2>/dev/null <"/proc/$1/stat" || return 1
		# the state after "PID (COMM) ": Z or X once it has exited
		case ${_serve_stat##*) } in
		Z* | X*) return 1 ;;
		esac
		return 0
	fi
	kill -0 "$1" 2>/dev/null
}

serve_kill () {
	_serve_p=${1:-$serve_pid}
	[ -n "$_serve_p" ] || return 0
	kill -9 "$_serve_p" 2>/dev/null || true
	wait "$_serve_p" 2>/dev/null || true
	if [ "$_serve_p" = "$serve_pid" ]; then
		serve_pid=
	fi
	return 0
}

serve_stop () {
	_serve_p=${1:-$serve_pid}
	[ -n "$_serve_p" ] || return 0
	kill -TERM "$_serve_p" 2>/dev/null || true
	_serve_end=$(($(date +%s) + ${SERVE_STOP_TIMEOUT:-60}))
	_serve_late=
	while serve_alive "$_serve_p"; do
		if [ "$(date +%s)" -ge "$_serve_end" ]; then
			echo "FAIL - cairn serve (pid $_serve_p) still running ${SERVE_STOP_TIMEOUT:-60} s after SIGTERM: killed" >&2
			kill -9 "$_serve_p" 2>/dev/null || true
			_serve_late=1
			break
		fi
		sleep 0.05
	done
	wait "$_serve_p" && _serve_rc=0 || _serve_rc=$?
	if [ "$_serve_p" = "$serve_pid" ]; then
		serve_pid=
	fi
	[ -z "$_serve_late" ] || return 1
	return "$_serve_rc"
}

# serve_up: whether the daemon started by serve_start is up.
serve_up () {
	[ -s "$serve_repo/api" ] && [ -s "$serve_repo/token" ] || return 1
	[ -z "$_serve_stale" ] || grep -q '^cairn serve: .* on port ' "$serve_log"
}

serve_start () {
	serve_log=$1
	_serve_cairn=$2
	shift 2
	serve_repo=${CAIRN_PATH:-${HOME:-}/.cairn}
	_serve_next=
	for _serve_a in "$@"; do
		if [ -n "$_serve_next" ]; then
			serve_repo=$_serve_a
			_serve_next=
			continue
		fi
		case $_serve_a in
		--repo | -r) _serve_next=1 ;;
		--repo=*) serve_repo=${_serve_a#--repo=} ;;
		esac
	done
	_serve_stale=
	if [ -e "$serve_repo/api" ]; then
		_serve_stale=1
	fi
	# emptied here, not only in the background: no earlier daemon's line
	: >"$serve_log"
	"$_serve_cairn" serve "$@" >"$serve_log" 2>&1 &
	serve_pid=$!
	serve_api=
	serve_port=
	serve_base=
	_serve_end=$(($(date +%s) + ${SERVE_TIMEOUT:-60}))
	until serve_up; do
		if ! serve_alive "$serve_pid"; then
			wait "$serve_pid" && _serve_rc=0 || _serve_rc=$?
			serve_pid=
			echo "FAIL - cairn serve exited (status $_serve_rc) before it was up on $serve_repo; its log ($serve_log):" >&2
			cat "$serve_log" >&2
			return 1
		fi
		if [ "$(date +%s)" -ge "$_serve_end" ]; then
			echo "FAIL - cairn serve not up on $serve_repo after ${SERVE_TIMEOUT:-60} s (api and token files); its log ($serve_log):" >&2
			cat "$serve_log" >&2
			serve_kill "$serve_pid"
			return 1
		fi
		sleep 0.05
	done
	serve_api=$(cat "$serve_repo/api")
	serve_port=$(echo "$serve_api" | cut -d/ -f5)
	case $serve_api in
	/ip6/*) serve_base=http://[$(echo "$serve_api" | cut -d/ -f3)]:$serve_port ;;
	*) serve_base=http://$(echo "$serve_api" | cut -d/ -f3):$serve_port ;;
	esac
	echo "# cairn serve on port $serve_port (pid $serve_pid, store $serve_repo)"
	return 0
}
