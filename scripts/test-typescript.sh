#!/usr/bin/env bash
# Runs the TypeScript client's tests (clients/typescript): installs its
# pinned dev dependencies from the npm registry (npm ci, from
# package-lock.json), builds the asyncgw binary once, compiles the client
# and its tests with tsc, and runs them with Node's test runner against a
# real gateway, worker and redis-server that the tests start themselves;
# then runs the built client in a headless Chromium on another origin than
# the gateway's (clients/typescript/browsertest, a Go test that installs
# Chromium with scripts/ensure-chromium.sh when it is missing).
# It needs Node.js 20 or later with npm, the npm registry, Go and
# redis-server (scripts/ensure-redis.sh); without one of them it fails.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
pkg="$root/clients/typescript"
GO="${GO:-go}"

for tool in node npm "$GO" redis-server; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "test-typescript: $tool is not on PATH; the TypeScript client's tests need Node.js 20+ with npm, Go and redis-server (scripts/ensure-redis.sh)" >&2
		exit 1
	fi
done
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
	echo "test-typescript: node $(node --version) is too old: the client needs Node.js 20 or later" >&2
	exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cd "$pkg"
if ! npm ci --no-audit --no-fund --prefer-offline --loglevel=error >&2; then
	echo "test-typescript: npm ci failed in clients/typescript (is the npm registry reachable?)" >&2
	exit 1
fi
(cd "$root" && "$GO" build -o "$tmp/asyncgw" ./cmd/asyncgw)
npm run --silent build
npm run --silent build:test
ASYNCGW_BIN="$tmp/asyncgw" node --test --test-reporter=spec build-test/test/*.test.js
(cd "$root" && ASYNCGW_TS_DIST="$pkg/dist" "$GO" test -tags tsbrowser -count=1 ./clients/typescript/browsertest/)
