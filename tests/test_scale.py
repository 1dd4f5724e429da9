"""Planning stays near-linear in the size of a board: counted work, not time.

Timed tests are flaky on a shared machine, so these count the Python function
calls (``sys.setprofile``, deterministic) that validating and planning a board
makes, for N and 2N copies: linear work doubles, the quadratic searches this
replaced (one ``nx.has_path`` per CPU of a cluster, every pair of a group of
overlapping regions) quadruple. Figures in seconds live in bench/plan_scale.py.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from machinedesc.board import checks
from machinedesc.errors import BoardError
from machinedesc.plan.pipeline import load_plan

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from plan_scale import generate, generate_cluster, generate_overlap  # noqa: E402

#: Work may grow a little faster than N (sorting: N log N), far below the 4x of N².
MAX_RATIO = 2.5


def _calls(path: Path, overrides: dict[str, str] | None = None) -> int:
    """Python and C function calls made by load_plan(path): a measure of work that does not depend on load."""
    count = 0

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    load_plan(ROOT / "boards" / "soc.yaml")  # imports and caches outside the count
    sys.setprofile(profile)
    try:
        load_plan(path, overrides)
    except BoardError:
        pass
    finally:
        sys.setprofile(None)
    return count


def _ratio(make: Any, n: int, tmp_path: Path) -> float:
    counts = []
    for size in (n, 2 * n):
        board = tmp_path / f"b{size}.yaml"
        board.write_text(make(size), encoding="utf-8")
        counts.append(_calls(board))
    return counts[1] / counts[0]


def test_one_big_cluster_plans_in_linear_work(tmp_path: Path) -> None:
    """A cluster of N harts, each wired to a timer that finds them all when it realizes (issue 8)."""
    assert _ratio(generate_cluster, 300, tmp_path) < MAX_RATIO


def test_soc_with_many_harts_plans_in_linear_work() -> None:
    board = ROOT / "boards" / "soc.yaml"
    assert _calls(board, {"harts": "600"}) / _calls(board, {"harts": "300"}) < MAX_RATIO


def test_many_clusters_plan_in_linear_work(tmp_path: Path) -> None:
    assert _ratio(generate, 300, tmp_path) < MAX_RATIO


def test_one_big_overlap_group_is_checked_in_linear_work(tmp_path: Path) -> None:
    assert _ratio(generate_overlap, 300, tmp_path) < MAX_RATIO


def test_one_big_overlap_group_gives_a_bounded_report(tmp_path: Path) -> None:
    """N regions at one address: the first MAX_OVERLAPS_LISTED pairs, then one line with the count."""
    n = 2000
    board = tmp_path / "b.yaml"
    board.write_text(generate_overlap(n), encoding="utf-8")
    with pytest.raises(BoardError) as err:
        load_plan(board)
    problems = err.value.problems
    assert len(problems) == checks.MAX_OVERLAPS_LISTED + 1
    summary = [p.message for p in problems if "not listed" in p.message]
    pairs = n * (n - 1) // 2
    assert summary == [f"{pairs - checks.MAX_OVERLAPS_LISTED:,} more overlapping pairs at the same priority 0 "
                       f"are not listed, from m8 region 0 [0x1000, 0x1fff] on: {n:,} regions overlap in "
                       f"[0x1000, 0x1fff] ({pairs:,} pairs; only the first {checks.MAX_OVERLAPS_LISTED} of a "
                       f"group are listed)"]
    assert all(re.fullmatch(r"m\d+ region 0 \[0x1000, 0x1fff\] overlaps m\d+ region 0 \[0x1000, 0x1fff\] "
                            r"at the same priority 0", p.message) for p in problems if p.message not in summary)


def test_the_listed_overlaps_are_documented() -> None:
    text = (ROOT / "docs" / "format.md").read_text(encoding="utf-8")
    assert f"the first {checks.MAX_OVERLAPS_LISTED} pairs are listed" in " ".join(text.split())


@settings(max_examples=300, deadline=None)
@given(st.integers(2, 12).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n),
    st.integers(0, n - 1), st.lists(st.integers(0, n - 1), max_size=6))))
def test_the_shared_search_answers_as_has_path_does(case: tuple[int, list[tuple[int, int]], int, list[int]]) -> None:
    """first_reachable gives the first target nx.has_path reaches, on any graph (cycles included)."""
    import networkx as nx

    from machinedesc.plan.graph import Node
    from machinedesc.plan.reach import Steps, first_reachable
    from machinedesc.qemu.phases import Phase

    n, pairs, source, targets = case
    nodes = [Node("create", str(k)) for k in range(n)]
    steps = Steps({v: Phase.INITIALIZED for v in nodes}, [(nodes[u], nodes[v], "") for u, v in pairs if u != v])
    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    g.add_edges_from((nodes[u], nodes[v]) for u, v in pairs if u != v)
    wanted = [nodes[t] for t in targets if t != source]
    expected = next((t for t in wanted if nx.has_path(g, nodes[source], t)), None)
    assert first_reachable(steps, nodes[source], wanted) == expected
