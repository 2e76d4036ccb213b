#!/usr/bin/env bash
# Makes sure the Node tools the tests use are installed, at pinned versions,
# under bin/node-tools of the repository (ignored by git):
#   @redocly/cli  lints the OpenAPI document the gateway serves
#                 (gateway/openapi_lint_test.go).
# It needs node and npm on PATH and the npm registry within reach. Once the
# tools are there it does nothing, so the tests may call it every time.
# Prints the path of the installed redocly command.
set -euo pipefail

# Change the version here only; the test runs whatever this installs.
REDOCLY_VERSION=2.77.0

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/bin/node-tools"
redocly="$dir/node_modules/.bin/redocly"
stamp="$dir/.installed"
want="@redocly/cli@$REDOCLY_VERSION"

if [ -x "$redocly" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
	echo "$redocly"
	exit 0
fi

for tool in node npm; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		cat >&2 <<MSG
ensure-node-tools: $tool is not on PATH. Install Node.js 20.19 or later
(with npm), for example:
  Debian/Ubuntu: sudo apt-get install nodejs npm
  macOS:         brew install node
then run the tests again.
MSG
		exit 1
	fi
done

# What @redocly/cli $REDOCLY_VERSION declares it needs.
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 12) || (a === 20 && b >= 19) ? 0 : 1)'; then
	echo "ensure-node-tools: node $(node --version) is too old for $want: install Node.js 20.19+ or 22.12+" >&2
	exit 1
fi

mkdir -p "$dir"
# Tests of several packages may call this at once: one installs, the
# others wait for it and then find the tools in place.
exec 9>"$dir/.lock"
flock 9
if [ -x "$redocly" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
	echo "$redocly"
	exit 0
fi

echo "ensure-node-tools: installing $want into $dir" >&2
rm -f "$stamp"
if [ ! -f "$dir/package.json" ]; then
	echo '{"name": "asyncgw-node-tools", "private": true}' >"$dir/package.json"
fi
if ! npm install --prefix "$dir" --save-exact --no-audit --no-fund --loglevel=error "$want" >&2; then
	echo "ensure-node-tools: npm could not install $want (is the npm registry reachable?)" >&2
	exit 1
fi
if [ ! -x "$redocly" ]; then
	echo "ensure-node-tools: $want installed, but $redocly is missing" >&2
	exit 1
fi
echo "$want" >"$stamp"
echo "$redocly"
