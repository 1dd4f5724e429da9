#!/bin/bash
# Build machinedesc's demo firmware ELFs into OUTDIR (default: firmware/build).
#
#   firmware/build.sh [OUTDIR]
#
# Outputs (see firmware/README.md):
#   riscv64-hello.elf             2 harts, timer interrupt, powers off
#   riscv64-hello-nopoweroff.elf  same, parks instead of powering off
#   riscv64-hello-4harts.elf      4 harts, powers off
#   riscv32-fe310-hello.elf       boards/fe310.yaml's E31 hart: UART, PLIC, CLINT; powers off
#   aarch64-hello.elf             2 CPUs, PSCI SYSTEM_OFF at the end
#   aarch64-hello-nopoweroff.elf  same, parks instead of powering off
# Idempotent: an output newer than its sources and this script is kept.
# Tools: riscv64-unknown-elf-gcc and aarch64-linux-gnu-{as,ld}
# (firmware/install-deps.sh installs them); override with RISCV_CC,
# AARCH64_AS, AARCH64_LD.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/build}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

RISCV_CC="${RISCV_CC:-riscv64-unknown-elf-gcc}"
AARCH64_AS="${AARCH64_AS:-aarch64-linux-gnu-as}"
AARCH64_LD="${AARCH64_LD:-aarch64-linux-gnu-ld}"

for tool in "$RISCV_CC" "$AARCH64_AS" "$AARCH64_LD"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "firmware/build.sh: '$tool' not found; run firmware/install-deps.sh" >&2
        exit 1
    fi
done

# up_to_date OUTPUT SOURCE... : true if OUTPUT exists and is newer than all
up_to_date() {
    local target="$1" src
    shift
    [ -e "$target" ] || return 1
    for src in "$@" "$here/build.sh"; do
        [ "$target" -nt "$src" ] || return 1
    done
}

build_riscv() {
    local name="$1"
    shift
    local target="$out/$name"
    if up_to_date "$target" "$here/riscv64-hello.S" "$here/riscv64.ld"; then
        return
    fi
    "$RISCV_CC" "$@" -march=rv64imac_zicsr -mabi=lp64 -mcmodel=medany \
        -nostdlib -nostartfiles -static \
        -Wl,--no-relax,--no-warn-rwx-segments,--build-id=none \
        -T "$here/riscv64.ld" -o "$target.tmp" "$here/riscv64-hello.S"
    mv "$target.tmp" "$target"
}

build_fe310() {
    local name="$1"
    shift
    local target="$out/$name"
    if up_to_date "$target" "$here/riscv32-fe310-hello.S" "$here/riscv32-fe310.ld"; then
        return
    fi
    "$RISCV_CC" "$@" -march=rv32imac_zicsr -mabi=ilp32 \
        -nostdlib -nostartfiles -static \
        -Wl,--no-relax,--no-warn-rwx-segments,--build-id=none \
        -T "$here/riscv32-fe310.ld" -o "$target.tmp" "$here/riscv32-fe310-hello.S"
    mv "$target.tmp" "$target"
}

build_aarch64() {
    local name="$1"
    shift
    local target="$out/$name"
    if up_to_date "$target" "$here/aarch64-hello.s" "$here/aarch64.ld"; then
        return
    fi
    "$AARCH64_AS" "$@" -o "$target.o" "$here/aarch64-hello.s"
    "$AARCH64_LD" -nostdlib -static --no-warn-rwx-segments --build-id=none \
        -T "$here/aarch64.ld" -o "$target.tmp" "$target.o"
    rm -f "$target.o"
    mv "$target.tmp" "$target"
}

build_riscv riscv64-hello.elf -DNHARTS=2 -DPOWEROFF=1
build_riscv riscv64-hello-nopoweroff.elf -DNHARTS=2 -DPOWEROFF=0
build_riscv riscv64-hello-4harts.elf -DNHARTS=4 -DPOWEROFF=1
build_fe310 riscv32-fe310-hello.elf -DPOWEROFF=1
build_aarch64 aarch64-hello.elf --defsym NCPUS=2 --defsym POWEROFF=1
build_aarch64 aarch64-hello-nopoweroff.elf --defsym NCPUS=2 --defsym POWEROFF=0

for f in riscv64-hello.elf riscv64-hello-nopoweroff.elf riscv64-hello-4harts.elf riscv32-fe310-hello.elf \
         aarch64-hello.elf aarch64-hello-nopoweroff.elf; do
    echo "$out/$f"
done
