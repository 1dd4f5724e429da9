#!/bin/bash
# Install what qemu/build.sh needs to build the patched QEMU on Debian 12 (run as root).
#
# Usage: qemu/install-build-deps.sh
# Enables bookworm-backports with deb-src (for `apt-get source qemu`), installs
# the compiler, ninja and the libraries QEMU's configure requires (meson
# comes from the project's .venv, see the end of this file).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

bash "$here/enable-backports.sh" --src
export DEBIAN_FRONTEND=noninteractive
bash "$here/../scripts/apt-get.sh" install -y --no-install-recommends \
    build-essential ca-certificates dpkg-dev git patch xz-utils bzip2 \
    ninja-build pkg-config flex bison \
    python3 python3-venv python3-pip python3-setuptools \
    libglib2.0-dev libpixman-1-dev zlib1g-dev libfdt-dev

# meson (>= 1.5) and pycotap, which QEMU's configure needs from Python, are
# not installed here: they are locked in requirements/lock.txt and live in the
# project's .venv/, whose python configure runs (scripts/install.sh puts
# .venv/bin first on PATH for qemu/build.sh).
