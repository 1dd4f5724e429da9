#!/bin/bash
# Install everything machinedesc's main job and tests need on Debian 12 (as root),
# then build (or reuse from the cache) the patched QEMU and the demo firmware.
# Idempotent: a second run takes seconds.
#
#   apt: QEMU build dependencies (qemu/install-build-deps.sh, which enables
#        bookworm-backports from the machine's own apt mirror), Debian's stock
#        QEMU 10.0 from bookworm-backports (the capability-probe tests), the
#        cross toolchains for the firmware (firmware/install-deps.sh),
#        graphviz (`dot`, for `machinedesc graph` and docs/boards/)
#   pip: a project virtual environment, .venv/, holding exactly the versions
#        of requirements/lock.txt (hash-checked) and machinedesc itself
#        (editable); nothing goes into the interpreter's own site-packages.
#        Refresh the lock with `bash scripts/lock.sh`.
#   build: qemu/build.sh (cache keyed by the patch series; its configure runs
#        the venv's python, which has the locked meson), firmware/build.sh
#
# Afterwards `. .venv/bin/activate` puts `machinedesc` on PATH.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "scripts/install.sh: installing system packages needs root (or sudo)" >&2
        exit 1
    fi
}

stamp=/var/lib/machinedesc-install.stamp
want=$(cat qemu/install-build-deps.sh firmware/install-deps.sh "$0" | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    need_root
    bash qemu/install-build-deps.sh
    bash firmware/install-deps.sh
    bash scripts/apt-get.sh install -y --no-install-recommends \
        -t bookworm-backports qemu-system-riscv qemu-system-arm
    bash scripts/apt-get.sh install -y --no-install-recommends graphviz
    echo "$want" > "$stamp"
fi

# The venv is rebuilt when the lock changes (a stamp inside it records the
# lock's hash), so an upgrade never leaves an old package behind.
venv="$root/.venv"
lock_hash=$(cat requirements/lock.txt pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat "$venv/.machinedesc-lock" 2>/dev/null)" != "$lock_hash" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --require-hashes --no-deps -r requirements/lock.txt
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        --no-deps --no-build-isolation -e .
    echo "$lock_hash" > "$venv/.machinedesc-lock"
fi

# Editor support (docs/editors.md, tests/test_editor.py): Node.js and npm from
# Debian when missing, and the pinned YAML language server in build/node/.
bash scripts/install-editor.sh

PATH="$venv/bin:$PATH" bash qemu/build.sh
bash firmware/build.sh "$root/build/firmware"
