"""Every plan file `machinedesc plan` writes reads back (qmpfile) as exactly the plan's steps."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from machinedesc.plan.pipeline import load_plan
from machinedesc.plan.qmpfile import parse
from machinedesc.plan.render import render_qmp

REPO = Path(__file__).resolve().parents[2]
BOARDS = sorted((REPO / "boards").glob("*.yaml"))


@pytest.mark.parametrize("board", BOARDS, ids=[b.name for b in BOARDS])
@pytest.mark.parametrize("firmware", [(), ("/tmp/fw dir/it's \"quoted\".elf", "/plain/fw.elf")],
                         ids=["no-firmware", "odd-firmware-paths"])
def test_plan_file_round_trips(board: Path, firmware: tuple[str, ...]) -> None:
    plan = load_plan(board, {}, [Path(f) for f in firmware])
    text = render_qmp(plan)
    qmp = parse(text, "plan.qmp")
    assert [(c.command, dict(c.arguments)) for c in qmp.commands] == \
        [(s.command, dict(s.arguments)) for s in plan.steps]
    assert [c.phase for c in qmp.commands] == [s.phase for s in plan.steps]
    assert qmp.system == plan.system
    argv = qmp.qemu_argv
    assert argv is not None
    assert argv[0] == plan.binary
    assert [a for a in argv[1:] if a != "-preconfig"] == list(plan.qemu_args)
    # The header line is a shell command line: quoting survives a round trip through shlex.
    assert shlex.split(shlex.join(argv)) == argv
    if firmware:
        files = [c.arguments["file"] for c in qmp.commands if c.arguments.get("driver") == "loader"]
        assert files == [str(Path(f).resolve()) for f in firmware]
