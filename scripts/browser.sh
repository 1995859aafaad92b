#!/usr/bin/env bash
# A real headless browser for the carer-page browser test: Debian's own Chromium.
#
# Usage: scripts/browser.sh ensure
#   Installs the Debian packages chromium and chromium-driver (and a font) when
#   /usr/bin/chromium is missing (running apt-get update first only when the package lists
#   do not know them), then prints one line: the browser version and path. Idempotent; must run as root (or
#   with sudo available) when it has something to install.
#
# Playwright for Python drives this binary through executable_path; nothing here downloads
# a browser build of its own (never run `playwright install`). The Python package itself
# comes from the project's lock file.
set -euo pipefail

CHROMIUM="${TELECARE_CHROMIUM:-/usr/bin/chromium}"
PACKAGES=(chromium chromium-driver fonts-dejavu-core)  # a font, so screenshots show text

die() { echo "browser: ERROR: $*" >&2; exit 1; }

as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        die "need root to run: $*"
    fi
}

# True when apt's package lists have an installation candidate for every package.
apt_knows() {
    local p cand
    for p in "${PACKAGES[@]}"; do
        cand="$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')"
        [[ -n "$cand" && "$cand" != "(none)" ]] || return 1
    done
}

ensure() {
    if [[ ! -x "$CHROMIUM" ]]; then
        command -v apt-get >/dev/null 2>&1 || die "$CHROMIUM missing and no apt-get here"
        local log
        log="$(mktemp -t browser-apt.XXXXXX)"
        trap 'rm -f "$log"' RETURN
        if ! apt_knows; then
            as_root apt-get update -qq >"$log" 2>&1 || { cat "$log" >&2; die "apt-get update failed"; }
        fi
        apt_knows || die "apt has no candidate for ${PACKAGES[*]}"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${PACKAGES[@]}" >"$log" 2>&1 || { cat "$log" >&2; die "apt-get install failed"; }
        [[ -x "$CHROMIUM" ]] || die "installed ${PACKAGES[*]} but $CHROMIUM is still missing"
    fi
    local version
    version="$("$CHROMIUM" --headless --no-sandbox --version 2>/dev/null | head -n1 || true)"
    echo "browser: ${version:-chromium (version unknown)} at $CHROMIUM"
}

case "${1:-}" in
    ensure) ensure ;;
    *) echo "usage: $0 ensure" >&2; exit 2 ;;
esac
