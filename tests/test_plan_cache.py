"""The plan cache: reused while nothing it depends on changes, never stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from machinedesc import pipeline
from machinedesc.render import render_qmp

BASE = "machinedesc: 1\nsystem: riscv64\nparams: {n: 1}\ncomponents:\n  dev${i}: {type: vendor-dev, count: '${n}'}\n"


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[int]:
    """Count the plans actually computed; the cache lives in tmp_path."""
    monkeypatch.setenv("MACHINEDESC_CACHE", str(tmp_path / "cache"))
    calls: list[int] = []
    real = pipeline._plan

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "_plan", spy)
    return calls


def test_reused_until_an_included_file_changes(tmp_path: Path, counted: list[int]) -> None:
    (tmp_path / "base.yaml").write_text(BASE)
    board = tmp_path / "board.yaml"
    board.write_text("machinedesc: 1\nextends: base.yaml\n")
    first = pipeline.load_plan(board, cache=True)
    again = pipeline.load_plan(board, cache=True)
    assert len(counted) == 1 and render_qmp(first) == render_qmp(again)
    # Editing the base (not the board named on the command line) invalidates it.
    (tmp_path / "base.yaml").write_text(BASE.replace("n: 1", "n: 3") + "\n")
    changed = pipeline.load_plan(board, cache=True)
    assert len(counted) == 2
    assert render_qmp(changed).count("driver=vendor-dev") == 3


def test_options_are_part_of_the_key(tmp_path: Path, counted: list[int]) -> None:
    board = tmp_path / "board.yaml"
    board.write_text(BASE)
    one = pipeline.load_plan(board, {"n": "2"}, cache=True)
    two = pipeline.load_plan(board, {"n": "4"}, cache=True)
    assert len(counted) == 2
    assert render_qmp(one).count("driver=vendor-dev") == 2
    assert render_qmp(two).count("driver=vendor-dev") == 4


def test_errors_are_not_cached_and_a_broken_entry_is_ignored(tmp_path: Path, counted: list[int]) -> None:
    board = tmp_path / "board.yaml"
    board.write_text(BASE)
    pipeline.load_plan(board, cache=True)
    for entry in (tmp_path / "cache" / "plans").iterdir():
        entry.write_bytes(b"not a pickle")
    assert render_qmp(pipeline.load_plan(board, cache=True)).count("driver=vendor-dev") == 1
    assert len(counted) == 2


def test_off_by_default(tmp_path: Path, counted: list[int]) -> None:
    board = tmp_path / "board.yaml"
    board.write_text(BASE)
    pipeline.load_plan(board)
    pipeline.load_plan(board)
    assert len(counted) == 2
    assert not (tmp_path / "cache").exists()
