"""Golden plans: every catalog board's plan, compared byte for byte.

Regenerate after an intended change with MACHINEDESC_UPDATE_GOLDEN=1 and
review the diff like code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from machinedesc.plan.pipeline import load_plan
from machinedesc.plan.render import render_json, render_qmp
from shell_parser import qmp_shell_command

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
BOARDS = sorted((ROOT / "boards").glob("*.yaml"))


def _check(path: Path, text: str) -> None:
    if os.environ.get("MACHINEDESC_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path}: run with MACHINEDESC_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def test_catalog_is_not_empty() -> None:
    names = {b.stem for b in BOARDS}
    assert {"soc", "soc-4core", "seed-a72", "mutual-links"} <= names


@pytest.mark.parametrize("board", BOARDS, ids=lambda p: p.stem)
def test_golden_plan(board: Path, in_repo: Path) -> None:
    plan = load_plan(board.relative_to(ROOT))
    _check(GOLDEN / f"{board.stem}.qmp", render_qmp(plan))
    _check(GOLDEN / f"{board.stem}.jsonl", render_json(plan))


@pytest.mark.parametrize("board", BOARDS, ids=lambda p: p.stem)
def test_plan_is_deterministic(board: Path, in_repo: Path) -> None:
    first = render_qmp(load_plan(board.relative_to(ROOT)))
    second = render_qmp(load_plan(board.relative_to(ROOT)))
    assert first == second


@pytest.mark.parametrize("board", BOARDS, ids=lambda p: p.stem)
def test_qmp_shell_reads_every_command_back(board: Path, in_repo: Path) -> None:
    """qemu.qmp's own qmp-shell parser turns each command line into exactly our message."""
    plan = load_plan(board.relative_to(ROOT))
    commands = [line for line in render_qmp(plan).splitlines() if line and not line.startswith("#")]
    assert len(commands) == len(plan.steps)
    for line, step in zip(commands, plan.steps):
        expected = {"execute": step.command, "arguments": dict(step.arguments)}
        assert qmp_shell_command(line) == expected, line
