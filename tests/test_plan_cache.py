"""The plan cache: reused while nothing it depends on changes, never stale."""

from __future__ import annotations

from pathlib import Path

import pytest
from needs import missing

from machinedesc.plan import pipeline
from machinedesc.plan.render import render_qmp

BASE = "machinedesc: 1\nsystem: vendor\nparams: {n: 1}\ncomponents:\n  dev${i}: {type: vendor-dev, count: '${n}'}\n"


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


def test_an_edit_that_keeps_size_and_mtime_is_seen(tmp_path: Path, counted: list[int]) -> None:
    """cp -p, tar and coarse clocks keep mtime (and an edit may keep the size): the content decides."""
    import os

    board = tmp_path / "board.yaml"
    board.write_text(BASE)
    os.utime(board, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    pipeline.load_plan(board, cache=True)
    board.write_text(BASE.replace("n: 1", "n: 2"))  # the same size
    os.utime(board, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    changed = pipeline.load_plan(board, cache=True)
    assert len(counted) == 2
    assert render_qmp(changed).count("driver=vendor-dev") == 2


def test_an_edit_of_machinedesc_itself_that_keeps_size_and_mtime_is_seen(tmp_path: Path, counted: list[int],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """machinedesc's own files are stamped by status (size, mtime, ctime, inode; pipeline._package_stamp):
    an edit sets the ctime, which cp -p or tar cannot set back, a file replaced by rename is a new inode,
    and a file changed within the file system's clock tick is stamped by content too."""
    import os

    package = tmp_path / "package"
    (package / "plan").mkdir(parents=True)
    module = package / "plan" / "planner.py"
    module.write_text("RULE = 1\n")
    os.utime(module, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    monkeypatch.setattr(pipeline, "_PACKAGE", package)
    board = tmp_path / "board.yaml"
    board.write_text(BASE)
    pipeline.load_plan(board, cache=True)
    pipeline.load_plan(board, cache=True)
    assert len(counted) == 1
    module.write_text("RULE = 2\n")  # the same size, the same mtime
    os.utime(module, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    pipeline.load_plan(board, cache=True)
    assert len(counted) == 2
    replacement = package / "planner.new"
    replacement.write_text("RULE = 3\n")
    os.utime(replacement, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    replacement.rename(module)
    pipeline.load_plan(board, cache=True)
    assert len(counted) == 3
    (package / "plan" / "wires.py").write_text("")  # a new module
    pipeline.load_plan(board, cache=True)
    assert len(counted) == 4


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


def test_entries_are_json_data_and_a_planted_pickle_runs_nothing(tmp_path: Path, counted: list[int]) -> None:
    """A cache entry is read as JSON: a pickle planted under any name is never unpickled."""
    import pickle

    board = tmp_path / "board.yaml"
    board.write_text(BASE)
    pipeline.load_plan(board, cache=True)
    entries = list((tmp_path / "cache" / "plans").iterdir())
    assert [e.suffix for e in entries] == [".json"]
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (marker.touch, ())  # type: ignore[return-value]

    for entry in entries:
        entry.write_bytes(pickle.dumps(Evil()))
        entry.with_suffix(".pickle").write_bytes(pickle.dumps(Evil()))
    assert render_qmp(pipeline.load_plan(board, cache=True)).count("driver=vendor-dev") == 1
    assert not marker.exists()
    assert len(counted) == 2
    # The pickles (an older machinedesc's entries) are removed when a plan is written, not kept forever.
    assert sorted(e.suffix for e in (tmp_path / "cache" / "plans").iterdir()) == [".json"]


def test_cache_directories_are_private(tmp_path: Path, counted: list[int]) -> None:
    board = tmp_path / "board.yaml"
    board.write_text(BASE)
    pipeline.load_plan(board, cache=True)
    for directory in (tmp_path / "cache", tmp_path / "cache" / "plans"):
        assert directory.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("victim", ["cache", "cache/plans"])
def test_a_directory_others_can_write_is_ignored_with_a_warning(
        tmp_path: Path, counted: list[int], capsys: pytest.CaptureFixture[str], victim: str) -> None:
    board = tmp_path / "board.yaml"
    board.write_text(BASE)
    first = pipeline.load_plan(board, cache=True)
    (tmp_path / victim).chmod(0o777)
    again = pipeline.load_plan(board, cache=True)
    assert render_qmp(first) == render_qmp(again)
    assert len(counted) == 2, "an entry in a world-writable directory must not be used"
    err = capsys.readouterr().err
    assert f"ignoring cache directory {tmp_path / victim}: writable by group or others" in err
    assert err.count("\n") == 1


def test_a_directory_of_another_user_is_ignored(tmp_path: Path, counted: list[int],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    import os

    if os.geteuid() != 0:
        missing("giving a directory to another user needs root")
    board = tmp_path / "board.yaml"
    board.write_text(BASE)
    pipeline.load_plan(board, cache=True)
    os.chown(tmp_path / "cache" / "plans", 65534, 65534)
    pipeline.load_plan(board, cache=True)
    assert len(counted) == 2
    assert "owned by uid 65534, not by you" in capsys.readouterr().err


def test_machinedesc_cache_holds_every_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One cache-dir helper: MACHINEDESC_CACHE moves the plan and probe caches and the prefix memo alike."""
    from machinedesc import storage

    monkeypatch.setenv("MACHINEDESC_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert pipeline.plan_cache_dir() == tmp_path / "c" / "plans"
    assert storage.cache_dir("probe", create=True) == tmp_path / "c" / "probe"
    monkeypatch.delenv("MACHINEDESC_CACHE")
    assert storage.cache_dir("probe", create=True) == tmp_path / "xdg" / "machinedesc" / "probe"


CATALOG = Path(__file__).resolve().parents[1] / "boards"


@pytest.mark.parametrize("board", sorted(p.name for p in CATALOG.glob("*.yaml")))
def test_the_data_form_round_trips_every_catalog_plan(board: str) -> None:
    import json

    from machinedesc.plan.steps import plan_from_data, plan_to_data

    plan = pipeline.load_plan(CATALOG / board, firmware=[Path("/fw.elf")])
    again = plan_from_data(json.loads(json.dumps(plan_to_data(plan))))
    assert again == plan
    assert render_qmp(again) == render_qmp(plan)


@pytest.mark.parametrize("data", [None, [], {"board": 1}, {"board": "b", "name": "n", "system": "s", "qemu_args": [],
                                                         "steps": [["nope", "raw", "c", {}, None, "", None]],
                                                         "components": [], "links": [], "chardevs": {}}])
def test_malformed_data_is_refused(data: object) -> None:
    from machinedesc.plan.steps import plan_from_data

    with pytest.raises((TypeError, KeyError, ValueError)):
        plan_from_data(data)
