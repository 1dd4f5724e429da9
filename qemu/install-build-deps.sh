#!/bin/bash
# Install what qemu/build.sh needs to build the patched QEMU on Debian 12 (run as root).
#
# Usage: qemu/install-build-deps.sh
# Enables bookworm-backports with deb-src (for `apt-get source qemu`), installs
# the compiler, ninja, the libraries QEMU's configure requires, and meson>=1.5
# (QEMU 10 needs a newer meson than Debian 12 ships) from PyPI.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

bash "$here/enable-backports.sh" --src
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends \
    build-essential ca-certificates dpkg-dev git patch xz-utils bzip2 \
    ninja-build pkg-config flex bison \
    python3 python3-venv python3-pip python3-setuptools \
    libglib2.0-dev libpixman-1-dev zlib1g-dev libfdt-dev

# QEMU's configure builds a venv from the `python3` found on PATH (with its
# site-packages), so install into that interpreter: meson for configure and
# pycotap, which configure also checks for.
py=$(command -v python3)
if ! "$py" -c 'import sys, mesonbuild.coredata as c; sys.exit(0 if tuple(int(x) for x in c.version.split(".")[:2]) >= (1, 5) else 1)' 2>/dev/null \
   || ! "$py" -c 'import pycotap' 2>/dev/null; then
    "$py" -m pip install --break-system-packages 'meson>=1.5' 'pycotap>=1.1' 2>/dev/null \
        || "$py" -m pip install 'meson>=1.5' 'pycotap>=1.1'
fi
"$py" -m mesonbuild.mesonmain --version
