#!/usr/bin/env bash
# Makes sure redis-server and redis-sentinel are on PATH, installing them
# from Debian/Ubuntu packages (redis-server, redis-sentinel) if they are not.
# The tests start their own redis-server and redis-sentinel processes on free
# ports; they never use a system service.
set -euo pipefail

# The packages of the programs that are missing.
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
if [ ${#missing[@]} -eq 0 ]; then
	redis-server --version
	exit 0
fi

manual() {
	cat >&2 <<'MSG'
ensure-redis: redis-server or redis-sentinel is not on PATH and could not be
installed. Install them yourself and run the tests again, for example:
  Debian/Ubuntu: sudo apt-get install redis-server redis-sentinel
  Fedora/RHEL:   sudo dnf install redis   (redis-sentinel is part of it)
  macOS:         brew install redis       (redis-sentinel is part of it)
The tests start their own redis-server and redis-sentinel processes (the
Sentinel tests use redis-server --sentinel if redis-sentinel is missing).
Tests that share one
server can use an existing Redis instead:
  ASYNCGW_TEST_REDIS_URL=redis://127.0.0.1:6379/0 make test
MSG
	exit 1
}

if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-redis: apt-get not found" >&2
	manual
fi

if [ "$(id -u)" -eq 0 ]; then
	as_root() { "$@"; }
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	as_root() { sudo -n "$@"; }
else
	echo "ensure-redis: not root, and sudo is missing or needs a password" >&2
	manual
fi

install_redis() {
	as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

echo "ensure-redis: installing ${missing[*]} with apt-get" >&2
# Refresh the package lists first only if they do not know the packages, and
# once more if installing from them fails (they may be stale).
if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
	as_root apt-get update -qq || manual
fi
if ! install_redis; then
	as_root apt-get update -qq || manual
	# The package may be unpacked even if its service could not be started
	# (as in containers without an init system); the tests do not need the
	# service, so only the binary matters.
	install_redis || echo "ensure-redis: apt-get reported an error" >&2
fi

# If the package started a system service on port 6379, leave it alone: the
# tests neither use it nor collide with it.
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-sentinel >/dev/null 2>&1; then
	manual
fi
redis-server --version
