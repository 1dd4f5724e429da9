#!/bin/bash
# Refresh requirements/lock.txt: exact versions, with hashes, of every Python
# package that machinedesc, its tests and the QEMU build use, resolved for the
# Python that runs this script (CI and the README's set-up use Python 3.11).
#
#   bash scripts/lock.sh            # resolve from pyproject.toml's ranges
#   bash scripts/lock.sh --upgrade  # move every pin to the newest allowed
#
# scripts/install.sh installs exactly this file into .venv/. pyproject.toml
# keeps honest ranges for people who pip-install the package themselves.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet --disable-pip-version-check 'pip==25.3' 'pip-tools==7.5.2'
cd "$root"
"$tmp/venv/bin/pip-compile" --quiet --no-header --generate-hashes --allow-unsafe --no-emit-index-url --no-emit-find-links \
    --strip-extras --extra test --extra qemu-build --all-build-deps "$@" \
    --output-file requirements/lock.txt pyproject.toml
echo "scripts/lock.sh: wrote requirements/lock.txt ($(grep -c '^[a-z]' requirements/lock.txt) packages)"
