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
#   guest: Debian's OpenSBI and U-Boot for QEMU (apt: opensbi, u-boot-qemu),
#        and Debian's arm64 cloud kernel, downloaded from the machine's own apt
#        sources as a foreign-architecture package (arm64 is added to dpkg's
#        architectures) and unpacked into build/guest/ (not installed);
#        build/guest/vmlinuz-cloud-arm64 points at it (docs/boot.md).
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
    # dtc, fdtput, fdtget: the guest's DTB, the plan's hash, /chosen of a --dtb FILE (docs/devicetree.md).
    bash scripts/apt-get.sh install -y --no-install-recommends device-tree-compiler
    # The firmware the boot tests and the README's examples run (docs/boot.md).
    bash scripts/apt-get.sh install -y --no-install-recommends opensbi u-boot-qemu
    echo "$want" > "$stamp"
fi

# Debian's arm64 kernel, unpacked (never installed) into build/guest/. The
# stamp names the package it holds; a new kernel in the archive replaces it.
guest="$root/build/guest"
kernel_meta=linux-image-cloud-arm64:arm64
fetch_guest_kernel() {
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        need_root
        dpkg --add-architecture arm64
        bash scripts/apt-get.sh update
    fi
    # The metapackage depends on the current kernel, e.g. linux-image-6.1.0-57-cloud-arm64.
    local pkg
    pkg=$(apt-cache depends "$kernel_meta" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
    if [ -z "$pkg" ]; then
        need_root
        bash scripts/apt-get.sh update
        pkg=$(apt-cache depends "$kernel_meta" | awk '/Depends: linux-image-/ {print $2; exit}')
    fi
    [ -n "$pkg" ] || { echo "scripts/install.sh: apt knows no $kernel_meta" >&2; exit 1; }
    pkg=${pkg%:arm64}
    local version
    version=$(apt-cache policy "$pkg:arm64" | awk '/Candidate:/ {print $2}')
    if [ "$(cat "$guest/.stamp" 2>/dev/null)" = "$pkg $version" ] && [ -e "$guest/vmlinuz-cloud-arm64" ]; then
        return
    fi
    local tmp
    tmp=$(mktemp -d)
    chown _apt "$tmp" 2>/dev/null || true  # apt downloads as its own user, _apt
    (cd "$tmp" && apt-get download -q "$pkg:arm64=$version")
    rm -rf "$guest"
    mkdir -p "$guest"
    dpkg-deb -x "$tmp"/*.deb "$guest"
    rm -rf "$tmp" "$guest/lib" "$guest/usr"  # the kernel's modules and docs: not booted here
    local image
    image=$(cd "$guest" && ls boot/vmlinuz-* | head -n 1)
    ln -sfn "$image" "$guest/vmlinuz-cloud-arm64"
    echo "$pkg $version" > "$guest/.stamp"
}
fetch_guest_kernel

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
