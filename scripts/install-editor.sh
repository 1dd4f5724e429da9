#!/bin/bash
# Install the YAML language server that tests/test_editor.py drives (and that
# docs/editors.md sets editors up with) into build/node/, at the exact versions
# of tools/editor/package-lock.json (`npm ci`: integrity-checked, nothing else).
# Called by scripts/install.sh; idempotent: a second run takes well under a second.
#
#   apt: Node.js and npm from Debian (nodejs, npm), only when `node` or `npm`
#        is not on PATH already (a Node.js that bundles its own npm is kept)
#   npm: build/node/node_modules/.bin/yaml-language-server
#
# To move the pin: change the version in tools/editor/package.json, run
# `npm install --package-lock-only` in tools/editor/ and commit both files.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "scripts/install-editor.sh: installing Node.js and npm needs root (or sudo)" >&2
        exit 1
    fi
    pkgs=()
    command -v node >/dev/null || pkgs+=(nodejs)
    command -v npm >/dev/null || pkgs+=(npm)
    bash scripts/apt-get.sh install -y --no-install-recommends "${pkgs[@]}"
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
    echo "scripts/install-editor.sh: Node.js $(node --version) is too old; the YAML language server needs 18 or newer" >&2
    exit 1
fi

# build/node/ is rebuilt when the lock changes (a stamp inside it records the
# hash of the package files), so an upgrade never leaves an old package behind.
dest="$root/build/node"
want=$(cat tools/editor/package.json tools/editor/package-lock.json tools/editor/.npmrc | sha256sum | cut -c1-16)
if [ "$(cat "$dest/.machinedesc-lock" 2>/dev/null)" != "$want" ] \
        || [ ! -x "$dest/node_modules/.bin/yaml-language-server" ]; then
    rm -rf "$dest"
    mkdir -p "$dest"
    cp tools/editor/package.json tools/editor/package-lock.json tools/editor/.npmrc "$dest/"
    (cd "$dest" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$dest/.machinedesc-lock"
fi
