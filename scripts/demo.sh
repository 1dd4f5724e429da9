#!/bin/bash
# The main job: install what is needed, build (or reuse) the patched QEMU and the
# demo firmware, then build boards/soc.yaml in QEMU over QMP and run it. The
# firmware prints a line from each hart and powers the machine off.
#
#   bash scripts/demo.sh [BOARD] [machinedesc apply options...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install.sh >&2
board=${1:-boards/soc.yaml}
shift || true
exec "$root/.venv/bin/machinedesc" apply "$board" --firmware build/firmware/riscv64-hello.elf "$@"
