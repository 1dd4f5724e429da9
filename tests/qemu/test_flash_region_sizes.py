"""The CFI flash region sizes of qemu/data/qemu_types.yaml against QEMU's memory tree (patched aarch64).

Each flash is added with its properties, mapped at 0 and measured in the
flat view (``info mtree -f``): from the first range's start to the last
one's end (with ``mappings``, one range per copy of the chip).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from qemu_fixtures import QemuInstance, flat_ranges

from machinedesc.board.checks_mmio import region_size
from machinedesc.plan.pipeline import load_board

FLASHES: list[tuple[str, dict[str, Any]]] = [
    ("cfi.pflash02", {"num-blocks": 16, "sector-length": 0x10000, "width": 2}),
    ("cfi.pflash02", {"num-blocks": 8, "sector-length": 0x1000, "width": 1, "mappings": 4}),
    ("cfi.pflash02", {"num-blocks": 2, "sector-length": 0x20000, "width": 2, "mappings": 1}),
    ("cfi.pflash01", {"num-blocks": 4, "sector-length": 0x40000, "width": 4}),
    ("cfi.pflash01", {"num-blocks": 2, "sector-length": 0x10000, "width": 1}),
]


def machinedesc_size(tmp_path: Path, driver: str, props: dict[str, Any]) -> int | None:
    """The size machinedesc gives the flash's region 0 (the type table's expression)."""
    path = tmp_path / "flash.yaml"
    path.write_text("machinedesc: 1\nsystem: aarch64\ncomponents:\n"
                    f"  flash: {{type: {driver}, props: {json.dumps({'name': 'f', **props})}, mmio: 0x0}}\n",
                    encoding="utf-8")
    return region_size(load_board(path).by_id["flash"], 0)


def qemu_size(vm: QemuInstance, driver: str, props: dict[str, Any]) -> int:
    """The span QEMU maps for the flash's region 0 at address 0."""
    vm.cmd("x-machine-init")
    # "name" is a QMP argument of cmd() too: the arguments go as one dict.
    reply = vm.qmp.cmd_raw("device_add", {"driver": driver, "id": "flash", "name": "f", **props})
    assert "error" not in reply, reply
    vm.cmd("x-sysbus-mmio-map", device="flash", addr=0)
    vm.cmd("x-exit-preconfig")
    spans = [(int(a, 16), int(b, 16)) for line in flat_ranges(vm)
             for a, b in re.findall(r"^([0-9a-f]+)-([0-9a-f]+) ", line)]
    assert min(a for a, _ in spans) == 0, spans
    return max(b for _, b in spans) + 1


@pytest.mark.parametrize(("driver", "props"), FLASHES, ids=[f"{d}-{json.dumps(p)}" for d, p in FLASHES])
def test_the_type_tables_size_is_qemus(qmp_aarch64: QemuInstance, tmp_path: Path, driver: str,
                                       props: dict[str, Any]) -> None:
    assert machinedesc_size(tmp_path, driver, props) == qemu_size(qmp_aarch64, driver, props)
