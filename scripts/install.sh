#!/bin/bash
# Install everything machinedesc's main job and tests need on Debian 12 (as root),
# then build (or reuse from the cache) the patched QEMU and the demo firmware.
# Idempotent: a second run takes seconds.
#
#   apt: QEMU build dependencies (qemu/install-build-deps.sh, which enables
#        bookworm-backports from the machine's own apt mirror), Debian's stock
#        QEMU 10.0 from bookworm-backports (the capability-probe tests), the
#        cross toolchains for the firmware (firmware/install-deps.sh)
#   pip: machinedesc itself (editable) with its test extras
#   build: qemu/build.sh (cache keyed by the patch series), firmware/build.sh
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
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        -t bookworm-backports qemu-system-riscv qemu-system-arm
    echo "$want" > "$stamp"
fi

python3 -m pip install --quiet --disable-pip-version-check -e ".[test]"
bash qemu/build.sh
bash firmware/build.sh "$root/build/firmware"
