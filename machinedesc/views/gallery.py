"""The pictures of the catalog in docs/boards/: ``python -m machinedesc.views.gallery`` rewrites them.

For every ``boards/*.yaml``: ``docs/boards/NAME.svg`` (the machine) and
``docs/boards/NAME.memory-map.svg``, laid out by Graphviz's ``dot``. Each SVG
carries, in a comment after its XML header, the SHA-256 of the DOT source it
was drawn from, so ``tests/test_views.py`` can tell a stale picture from a
current one on any machine, whichever Graphviz version it has; where ``dot``
is the same version as the one that drew it, the test also compares the bytes.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

from ..plan.pipeline import load_board
from .catalog import read_catalog, render_table
from .picture import machine_dot, memory_map_dot, render

ROOT = Path(__file__).resolve().parents[2]
BOARDS = ROOT / "boards"
OUT = ROOT / "docs" / "boards"
DOC = ROOT / "docs" / "inspect.md"
#: docs/inspect.md from this line on is the picture index, written by ``main``.
INDEX_MARK = "<!-- The sections below are written by python -m machinedesc.views.gallery. -->\n"
_STAMP = re.compile(r"<!-- machinedesc: drawn from DOT sha256 ([0-9a-f]{64}) -->")


def stamp(dot: str) -> str:
    """The comment that ties an SVG to the DOT source it was drawn from."""
    return f"<!-- machinedesc: drawn from DOT sha256 {hashlib.sha256(dot.encode()).hexdigest()} -->"


def stamp_of(svg: str) -> str | None:
    """The DOT hash an SVG of the gallery was drawn from, or None."""
    match = _STAMP.search(svg)
    return match[1] if match else None


def pictures() -> dict[str, str]:
    """File name in docs/boards/ -> the DOT source of that picture, for every catalog board, by name."""
    out: dict[str, str] = {}
    for path in sorted(BOARDS.glob("*.yaml"), key=lambda p: (p.stem, p.name)):
        board = load_board(path)  # pictures name no files: the working directory does not matter
        out[f"{path.stem}.svg"] = machine_dot(board)
        out[f"{path.stem}.memory-map.svg"] = memory_map_dot(board)
    return out


def draw(dot: str) -> str:
    """The stamped SVG of ``dot``."""
    svg = render(dot, "svg").decode("utf-8")
    head, sep, rest = svg.partition("?>\n")
    return f"{head}{sep}{stamp(dot)}\n{rest}" if sep else f"{stamp(dot)}\n{svg}"


def documented(doc: str, names: list[str], table: str) -> str:
    """``doc`` (docs/inspect.md) with its ``list`` example set to ``table`` and one picture section per board."""
    head, mark, _ = doc.partition(INDEX_MARK)
    head = re.sub(r"```\nNAME .*?```\n", lambda _m: f"```\n{table}```\n", head, count=1, flags=re.S)
    sections = "".join(f"\n### {n}\n\n![{n}](boards/{n}.svg)\n\n![{n}: memory map](boards/{n}.memory-map.svg)\n"
                       for n in names)
    return head + (mark or INDEX_MARK) + sections


def main() -> None:
    """Rewrite docs/boards/ (run from anywhere): every picture, and no picture of a board that is gone;
    and docs/inspect.md's ``list`` example and picture index."""
    OUT.mkdir(parents=True, exist_ok=True)
    wanted = pictures()
    for stale in sorted(set(p.name for p in OUT.glob("*.svg")) - set(wanted)):
        (OUT / stale).unlink()
    for name, dot in wanted.items():
        (OUT / name).write_text(draw(dot), encoding="utf-8")
    names = sorted({name.split(".")[0] for name in wanted})
    DOC.write_text(documented(DOC.read_text(encoding="utf-8"), names, render_table(read_catalog(BOARDS))),
                   encoding="utf-8")
    print(f"wrote {len(wanted)} pictures to {OUT}, and the index of {DOC.name}", file=sys.stderr)


if __name__ == "__main__":
    main()
