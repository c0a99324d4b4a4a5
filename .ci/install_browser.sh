#!/usr/bin/env bash
# Install Debian's chromium for the report's browser test (tests/browser/); root only.
# A no-op (exit 0) when chromium is already installed. Quiet unless something fails.
set -euo pipefail

PACKAGES=(chromium)

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install_browser.sh: must run as root to install ${PACKAGES[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# `apt-get update` only when the package lists do not offer chromium (fresh containers ship
# without lists).
if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt-get update -qq >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
fi
# Recommends left out: the headless test needs no desktop integration or extra fonts.
apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >"$log" 2>&1 \
    || { echo "install_browser.sh: apt-get install failed:" >&2; cat "$log" >&2; exit 1; }
command -v chromium >/dev/null || { echo "install_browser.sh: chromium still missing" >&2; exit 1; }
