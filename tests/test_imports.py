"""What a command loads: each command imports what it uses when it runs (machinedesc.commands).

Start-up is most of `machinedesc apply`'s time to the guest's first byte
(docs/api.md, "Speed"): `--help` and the light commands must load none of
the heavy libraries, and `apply` of a board whose plan is cached none of the
planner's. Each case runs the command in a fresh interpreter and reads
``sys.modules`` after it; an import put back at the top of a module fails
here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Runs ``machinedesc ARGS`` (argv[2:]) and writes the names in sys.modules to argv[1]; imports nothing itself.
PROBE = """\
import sys
from machinedesc.cli import main
try:
    main(sys.argv[2:])
except SystemExit as exit:
    status = exit.code
with open(sys.argv[1], "w") as f:
    f.write(f"{status}\\n" + "\\n".join(sorted(sys.modules)))
"""

#: The third-party libraries of the front half and of the engine, by their top-level package.
LIBRARIES = ("networkx", "jsonschema", "ruamel", "elftools", "asyncio", "qemu", "graphviz", "pexpect")
#: What only computing a plan needs: YAML, the schema, the step graph, the device tree, ELF files.
PLANNER = ("networkx", "jsonschema", "ruamel", "elftools", "machinedesc.board", "machinedesc.boot",
           "machinedesc.devicetree.generate", "machinedesc.plan.graph", "machinedesc.plan.planner")
#: What no apply needs: the QMP file syntax (plan, run), the build script, the views, the API.
NOT_APPLY = ("machinedesc.plan.render", "machinedesc.plan.qmpfile", "machinedesc.qemu.build", "machinedesc.views",
             "machinedesc.api", "machinedesc.live")


def loaded(args: Sequence[str], tmp_path: Path, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    """The exit status of ``machinedesc ARGS`` and the modules it loaded."""
    out = tmp_path / "modules.txt"
    subprocess.run([sys.executable, "-c", PROBE, str(out), *args], cwd=ROOT, capture_output=True, timeout=300,
                   env={**os.environ, **(env or {})}, check=False)
    status, *modules = out.read_text().split("\n")
    return int(status) if status != "None" else 0, set(modules)


def among(modules: set[str], names: Iterable[str]) -> list[str]:
    """The ``names`` that are loaded, as modules or as the package of a loaded module."""
    return [n for n in names if n in modules or any(m.startswith(n + ".") for m in modules)]


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["apply", "--help"], ["plan", "--help"],
                                  ["qemu", "--help"]], ids=" ".join)
def test_help_loads_click_and_the_command_table_only(args: list[str], tmp_path: Path) -> None:
    status, modules = loaded(args, tmp_path)
    assert status == 0
    assert among(modules, (*LIBRARIES, "machinedesc.board", "machinedesc.plan", "machinedesc.apply",
                           "machinedesc.views", "machinedesc.devicetree", "machinedesc.boot", "machinedesc.qemu",
                           "machinedesc.live", "machinedesc.api", "machinedesc.storage")) == []


@pytest.mark.parametrize("args", [["schema"], ["qemu", "path", "riscv64"]], ids=" ".join)
def test_light_commands_load_no_heavy_library(args: list[str], tmp_path: Path) -> None:
    status, modules = loaded(args, tmp_path)
    assert status in (0, 3)  # qemu path: 3 when the patched QEMU is not built
    assert among(modules, LIBRARIES) == []


def test_validate_loads_neither_the_engine_nor_elf(tmp_path: Path) -> None:
    status, modules = loaded(["validate", "boards/soc.yaml"], tmp_path,
                             {"MACHINEDESC_CACHE": str(tmp_path / "cache")})
    assert status == 0
    assert among(modules, ("asyncio", "qemu", "elftools", "machinedesc.apply", "machinedesc.views",
                           "machinedesc.plan.render", "machinedesc.qemu.build")) == []


def test_apply_of_a_planned_board_loads_none_of_the_planner(tmp_path: Path) -> None:
    # /bin/false as QEMU: the command goes down the whole apply path, then QEMU exits before QMP (5).
    args = ["apply", "boards/soc.yaml", "--qemu", "/bin/false"]
    env = {"MACHINEDESC_CACHE": str(tmp_path / "cache")}
    status, first = loaded(args, tmp_path, env)
    assert status == 5
    assert among(first, ("machinedesc.apply.engine", "asyncio", "qemu.qmp")) == ["machinedesc.apply.engine",
                                                                                "asyncio", "qemu.qmp"]
    assert among(first, ("networkx", "jsonschema", "ruamel")) == ["networkx", "jsonschema", "ruamel"]  # planned
    assert among(first, ("elftools", *NOT_APPLY)) == []  # no --firmware: no ELF read
    status, again = loaded(args, tmp_path, env)  # the plan comes from the cache
    assert status == 5 and "machinedesc.apply.engine" in again
    assert among(again, (*PLANNER, *NOT_APPLY)) == []
