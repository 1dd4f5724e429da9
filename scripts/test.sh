#!/bin/bash
# Install everything (scripts/install.sh), then run the whole test suite against
# the real patched QEMU, stock QEMU and the real firmware.
#
#   bash scripts/test.sh [pytest options...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install.sh
exec "$root/.venv/bin/python" -m pytest -W error -ra "$@"
