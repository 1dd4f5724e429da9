#!/bin/bash
# Install the cross toolchains that firmware/build.sh needs (Debian 12, root).
#
#   gcc-riscv64-unknown-elf     riscv64 bare-metal gcc (+ binutils)
#   binutils-aarch64-linux-gnu  aarch64 as/ld (the aarch64 image is assembly)
set -euo pipefail

pkgs=(gcc-riscv64-unknown-elf binutils-aarch64-linux-gnu)
missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "firmware/install-deps.sh: already installed: ${pkgs[*]}"
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# apt may be busy with another installer for a moment; retry a few times.
for attempt in 1 2 3 4 5 6; do
    if $sudo apt-get install -y --no-install-recommends "${missing[@]}"; then
        exit 0
    fi
    if [ "$attempt" -eq 1 ]; then
        $sudo apt-get update || true
    fi
    sleep 5
done
echo "firmware/install-deps.sh: could not install ${missing[*]}" >&2
exit 1
