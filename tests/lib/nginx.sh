# nginx.sh: a real nginx for tests that need an HTTP server, sourced (bash).
#
#   nginx_start WORK ROOT [SERVER_LINES]
#
# serves ROOT on a free loopback port (tried at random, 20 times), with
# SERVER_LINES (locations...) added to its server block and its files (config,
# pid, logs, temporary paths) in WORK; access.log lines are
# "<connection> <status> <method> <uri> "<range>"". Sets nginx_pid, port and
# base (http://127.0.0.1:PORT); returns 1 with the error log on stderr when
# it cannot start. nginx_stop stops it (call it from the test's EXIT trap).
# NGINX names the binary (default: nginx on PATH, else /usr/sbin/nginx);
# nginx_found tells whether there is one, so a test can exit 77 without it.

NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
nginx_pid=
port=
base=

nginx_found () { [ -x "$NGINX" ]; }

nginx_stop () {
	if [ -n "$nginx_pid" ]; then
		kill "$nginx_pid" 2>/dev/null || true
		wait "$nginx_pid" 2>/dev/null || true
		nginx_pid=
	fi
}

# One try on port $1; 1 if nginx did not come up (the port in use, say).
nginx_try () {
	local p=$1 work=$2 root=$3 lines=$4
	mkdir -p "$work/tmp"
	cat >"$work/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log info;
events { worker_connections 256; }
http {
	log_format conn '\$connection \$status \$request_method \$uri "\$http_range"';
	access_log $work/access.log conn;
	client_body_temp_path $work/tmp/body;
	proxy_temp_path $work/tmp/proxy;
	fastcgi_temp_path $work/tmp/fastcgi;
	uwsgi_temp_path $work/tmp/uwsgi;
	scgi_temp_path $work/tmp/scgi;
	default_type application/octet-stream;
	keepalive_requests 100000;
	keepalive_timeout 60s;
	server {
		listen 127.0.0.1:$p;
		root $root;
		$lines
	}
}
CONF
	: >"$work/error.log"
	"$NGINX" -p "$work" -c "$work/nginx.conf" -e "$work/error.log" &
	nginx_pid=$!
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$nginx_pid" 2>/dev/null; then
			wait "$nginx_pid" 2>/dev/null || true
			nginx_pid=
			return 1
		fi
		sleep 0.05
	done
	return 1
}

nginx_start () {
	local work=$1 root=$2 lines=${3:-} p
	for _ in $(seq 20); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		if nginx_try "$p" "$work" "$root" "$lines"; then
			port=$p
			base=http://127.0.0.1:$p
			echo "# nginx $("$NGINX" -v 2>&1 | sed 's/.*\///') on port $port"
			return 0
		fi
		nginx_stop
		if ! grep -q "in use" "$work/error.log"; then
			cat "$work/error.log" >&2
			echo "nginx did not start" >&2
			return 1
		fi
	done
	echo "nginx: no free port after 20 tries" >&2
	return 1
}
