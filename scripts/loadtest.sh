#!/usr/bin/env bash
# Runs the k6 load tests in loadtest/k6 (what `make loadtest` runs).
#
# With BASE_URL unset it brings up a gateway of its own first: a throwaway
# redis-server (no persistence) on a free loopback port, the bench upstream,
# and bin/asyncgw with loadtest/asyncgw.yaml; it waits for /readyz, runs
# accept.js, e2e.js and spike.js in turn (letting the queues drain in
# between), and stops everything it started when it exits.
#
# With BASE_URL set it only runs the scripts against that gateway (pass
# API_KEY too when it checks keys).
#
# Every variable the scripts read (RATE, DURATION, P99_MS, ...) is passed
# through and so reaches all three; these reach one only:
#   ACCEPT_RATE, ACCEPT_P99_MS   accept.js's RATE and P99_MS
#   E2E_RATE                     e2e.js's RATE
#   SPIKE_P99_MS                 spike.js's P99_MS
# and these steer the run:
#   LOADTEST_SCRIPTS  which scripts, in order (accept e2e spike)
#   DRAIN_TIMEOUT     seconds to wait for the queues to empty between
#                     scripts, local runs only (60)
#   K6                the k6 binary (bin/k6, else k6 v1.8.x on PATH)
#   BENCH             a built bench binary for the upstream (else built
#                     from ./loadtest/bench into bin/bench)
#   LOADTEST_KEEP=1   keep the temporary directory with the logs
#
# It fails when any k6 run fails (a threshold missed or an error).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

SCRIPTS=${LOADTEST_SCRIPTS:-accept e2e spike}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-60}
GO=${GO:-go}

log() { printf 'loadtest: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# --- k6 ---------------------------------------------------------------------
if [ -z "${K6:-}" ]; then
	if [ -x bin/k6 ]; then
		K6=$ROOT/bin/k6
	elif command -v k6 >/dev/null 2>&1 && k6 version 2>/dev/null | grep -q '^k6 v1\.8\.'; then
		K6=$(command -v k6)
	else
		die "k6 not found; install it with: GOBIN=$ROOT/bin go install go.k6.io/k6@v1.8.1 (make loadtest does)"
	fi
fi
"$K6" version >&2
# No usage report to the k6 project from load runs.
export K6_NO_USAGE_REPORT=true

for s in $SCRIPTS; do
	[ -f "loadtest/k6/$s.js" ] || die "no script loadtest/k6/$s.js (LOADTEST_SCRIPTS=$SCRIPTS)"
done

# --- local gateway ----------------------------------------------------------
TMP=""
PIDS=() # started processes, stopped in reverse order
NAMES=()
LOCAL=0

stop_all() {
	local i pid n
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		pid=${PIDS[$i]}
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			for ((n = 0; n < 100; n++)); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			if kill -0 "$pid" 2>/dev/null; then
				log "${NAMES[$i]} (pid $pid) did not stop in 10s; killing it"
				kill -KILL "$pid" 2>/dev/null || true
			fi
		fi
		wait "$pid" 2>/dev/null || true
	done
	PIDS=()
	NAMES=()
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_all
	if [ -n "$TMP" ]; then
		if [ "$rc" -ne 0 ] && [ -s "$TMP/gateway.log" ]; then
			log "last lines of the gateway's log:"
			tail -n 20 "$TMP/gateway.log" >&2 || true
		fi
		if [ "${LOADTEST_KEEP:-}" = 1 ]; then
			log "logs kept in $TMP"
		else
			rm -rf "$TMP"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# started NAME PID: remember a process to stop on exit.
started() {
	NAMES+=("$1")
	PIDS+=("$2")
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port prints a loopback TCP port nothing listens on (below the usual
# ephemeral range, so that outgoing connections do not take it meanwhile).
free_port() {
	local p n
	for ((n = 0; n < 200; n++)); do
		p=$((20000 + RANDOM % 12000))
		if ! port_busy "$p"; then
			echo "$p"
			return 0
		fi
	done
	die "no free port found"
}

alive() {
	local i
	for i in "${!PIDS[@]}"; do
		if [ "${NAMES[$i]}" = "$1" ]; then
			kill -0 "${PIDS[$i]}" 2>/dev/null
			return
		fi
	done
	return 1
}

start_local() {
	LOCAL=1
	./scripts/ensure-redis.sh >/dev/null
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/asyncgw-loadtest.XXXXXX")

	log "building bin/asyncgw"
	"$GO" build -o bin/asyncgw ./cmd/asyncgw
	if [ -z "${BENCH:-}" ]; then
		log "building bin/bench"
		"$GO" build -o bin/bench ./loadtest/bench
		BENCH=$ROOT/bin/bench
	fi

	# Redis: in the temporary directory, no RDB, no AOF.
	local rport n
	for ((n = 0; ; n++)); do
		rport=$(free_port)
		redis-server --bind 127.0.0.1 --port "$rport" --dir "$TMP" \
			--save '' --appendonly no --maxmemory-policy noeviction \
			--daemonize no --logfile "$TMP/redis.log" &
		started redis $!
		local i
		for ((i = 0; i < 50; i++)); do
			redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG && break
			alive redis || break
			sleep 0.1
		done
		if redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG; then
			break
		fi
		stop_all
		[ "$n" -lt 3 ] || die "redis-server did not start; see $TMP/redis.log"
	done
	log "redis-server on 127.0.0.1:$rport"

	# The upstream, on a port of its choosing: it prints "listening on ADDR".
	"$BENCH" upstream -listen 127.0.0.1:0 >"$TMP/upstream.log" 2>&1 &
	started upstream $!
	local upaddr=""
	for ((n = 0; n < 100; n++)); do
		upaddr=$(sed -n 's/^listening on //p' "$TMP/upstream.log" | head -n 1)
		[ -n "$upaddr" ] && break
		alive upstream || break
		sleep 0.1
	done
	[ -n "$upaddr" ] || { cat "$TMP/upstream.log" >&2; die "the upstream did not start"; }
	log "upstream on $upaddr"

	# The gateway, with the configuration's upstream moved to that address.
	sed "s#http://127.0.0.1:9001/#http://$upaddr/#" loadtest/asyncgw.yaml >"$TMP/asyncgw.yaml"
	grep -q "http://$upaddr/" "$TMP/asyncgw.yaml" || die "loadtest/asyncgw.yaml has no upstream at http://127.0.0.1:9001/"
	local gport
	gport=$(free_port)
	ASYNCGW_REDIS_URL="redis://127.0.0.1:$rport/0" ASYNCGW_LISTEN="127.0.0.1:$gport" \
		bin/asyncgw --config "$TMP/asyncgw.yaml" >"$TMP/gateway.log" 2>&1 &
	started gateway $!
	BASE_URL="http://127.0.0.1:$gport"
	for ((n = 0; n < 300; n++)); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE_URL/readyz")" = 200 ] && break
		alive gateway || { cat "$TMP/gateway.log" >&2; die "the gateway exited"; }
		sleep 0.1
	done
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE_URL/readyz")" = 200 ] ||
		die "the gateway was not ready in 30s: $(curl -s "$BASE_URL/readyz")"
	log "gateway on $BASE_URL"
}

# backlog prints the jobs the gateway's queues still hold (pending, active,
# retrying, scheduled), from the admin API.
backlog() {
	curl -sf "$BASE_URL/admin/v1/queues" |
		grep -oE '"(pending|active|retry|scheduled)":[0-9]+' |
		awk -F: '{ n += $2 } END { print n + 0 }'
}

# drain waits until the queues are empty, so that one script's jobs do not
# weigh on the next one's numbers.
drain() {
	local left start=$SECONDS
	left=$(backlog) || { log "could not read /admin/v1/queues; not waiting for the queues"; return 0; }
	[ "$left" -eq 0 ] && return 0
	log "waiting for $left queued jobs to run"
	while [ "$left" -gt 0 ]; do
		if [ $((SECONDS - start)) -ge "$DRAIN_TIMEOUT" ]; then
			log "the queues still hold $left jobs after ${DRAIN_TIMEOUT}s; going on"
			return 0
		fi
		sleep 0.5
		left=$(backlog) || return 0
	done
	log "queues empty after $((SECONDS - start))s"
}

if [ -z "${BASE_URL:-}" ]; then
	start_local
else
	BASE_URL=${BASE_URL%/}
	log "running against $BASE_URL"
fi
export BASE_URL

# --- the runs ---------------------------------------------------------------
declare -A RESULT
failed=0
first=1
for s in $SCRIPTS; do
	if [ "$LOCAL" = 1 ]; then
		[ "$first" = 1 ] || drain
		alive gateway || die "the gateway is no longer running"
	fi
	first=0
	args=()
	case $s in
	accept)
		[ -z "${ACCEPT_RATE:-}" ] || args+=(-e "RATE=$ACCEPT_RATE")
		[ -z "${ACCEPT_P99_MS:-}" ] || args+=(-e "P99_MS=$ACCEPT_P99_MS")
		;;
	e2e)
		[ -z "${E2E_RATE:-}" ] || args+=(-e "RATE=$E2E_RATE")
		;;
	spike)
		[ -z "${SPIKE_P99_MS:-}" ] || args+=(-e "P99_MS=$SPIKE_P99_MS")
		;;
	esac
	log "k6 run loadtest/k6/$s.js ${args[*]:-}"
	if "$K6" run --quiet "${args[@]}" "loadtest/k6/$s.js"; then
		RESULT[$s]=passed
	else
		rc=$?
		RESULT[$s]="FAILED (k6 exit $rc)"
		failed=1
	fi
done

if [ "$LOCAL" = 1 ]; then
	alive gateway || { log "the gateway exited during the run"; failed=1; }
	problems=$(grep -cE 'level=(ERROR|WARN)' "$TMP/gateway.log" || true)
	# The durability warning is expected: this Redis keeps nothing on disk.
	problems=$((problems - $(grep -c 'REDIS MAY NOT BE DURABLE' "$TMP/gateway.log" || true)))
	if [ "$problems" -gt 0 ]; then
		log "the gateway logged $problems warnings or errors; the first ones:"
		grep -E 'level=(ERROR|WARN)' "$TMP/gateway.log" | grep -v 'REDIS MAY NOT BE DURABLE' | head -n 10 >&2
	fi
fi

log "results:"
for s in $SCRIPTS; do
	printf '  %-8s %s\n' "$s" "${RESULT[$s]}" >&2
done
exit "$failed"
