#!/usr/bin/env bash
# Makes sure a headless-capable Chromium is on PATH, installing Debian's
# chromium package if it is not. The browser tests (internal/browsertest)
# start their own headless Chromium against a gateway they start; they fail,
# never skip, when there is none. Prints the path of the browser.
set -euo pipefail

find_browser() {
	for b in chromium chromium-browser google-chrome-stable google-chrome; do
		if command -v "$b" >/dev/null 2>&1; then
			command -v "$b"
			return 0
		fi
	done
	return 1
}

if find_browser; then
	exit 0
fi

manual() {
	cat >&2 <<'MSG'
ensure-chromium: no Chromium on PATH, and it could not be installed. Install
it yourself and run the tests again, for example:
  Debian/Ubuntu: sudo apt-get install chromium
  Fedora/RHEL:   sudo dnf install chromium
  macOS:         brew install --cask chromium
or point ASYNCGW_TEST_CHROMIUM at a Chromium or Chrome binary.
MSG
	exit 1
}

command -v apt-get >/dev/null 2>&1 || manual
if [ "$(id -u)" -eq 0 ]; then
	as_root() { "$@"; }
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	as_root() { sudo -n "$@"; }
else
	echo "ensure-chromium: not root, and sudo is missing or needs a password" >&2
	manual
fi

# Tests of several packages may call this at once: one installs, the
# others wait for it (apt-get holds its own lock, but would fail rather
# than wait).
exec 9>/tmp/asyncgw-ensure-chromium.lock
flock 9
if find_browser; then
	exit 0
fi
echo "ensure-chromium: installing chromium with apt-get" >&2
install() {
	as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends chromium >/dev/null
}
if ! apt-cache show chromium >/dev/null 2>&1; then
	as_root apt-get update -qq || manual
fi
if ! install; then
	as_root apt-get update -qq || manual
	install || manual
fi
find_browser || manual
