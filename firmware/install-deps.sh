#!/bin/bash
# Install the cross toolchains that firmware/build.sh needs (Debian 12, root).
#
#   firmware/install-deps.sh [--with-stock-qemu]
#
#   gcc-riscv64-unknown-elf     riscv64 bare-metal gcc (+ binutils)
#   binutils-aarch64-linux-gnu  aarch64 as/ld (the aarch64 image is assembly)
# --with-stock-qemu also installs Debian's stock QEMU 10.0 from
# bookworm-backports (qemu-system-riscv qemu-system-arm; enabled through
# qemu/enable-backports.sh), which the -M virt firmware smoke tests and the
# "stock QEMU lacks the API" tests run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
stock_qemu=0
for arg in "$@"; do
    case "$arg" in
    --with-stock-qemu) stock_qemu=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "install-deps.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

# apt_install [apt-get options...] PACKAGE...: waits while apt is busy.
apt_install() {
    bash "$here/../scripts/apt-get.sh" install -y --no-install-recommends "$@"
}

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

if [ "$stock_qemu" -eq 1 ]; then
    if ! installed qemu-system-riscv || ! installed qemu-system-arm \
       || ! qemu-system-riscv64 --version 2>/dev/null | grep -q 'version 10\.0'; then
        # Enable backports only when apt cannot see 10.0 yet: the script
        # rewrites its sources file, and a deb-src entry that
        # qemu/install-build-deps.sh added must not be dropped.
        if ! apt-cache policy qemu-system-riscv 2>/dev/null | grep -q 'Candidate: 1:10\.0'; then
            $sudo bash "$here/../qemu/enable-backports.sh"
        fi
        apt_install -t bookworm-backports qemu-system-riscv qemu-system-arm
    fi
fi

pkgs=(gcc-riscv64-unknown-elf binutils-aarch64-linux-gnu)
missing=()
for p in "${pkgs[@]}"; do
    installed "$p" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "firmware/install-deps.sh: already installed: ${pkgs[*]}"
    exit 0
fi
apt_install "${missing[@]}"
