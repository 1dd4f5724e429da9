"""list, show, graph and diff (machinedesc/views/): golden outputs for every catalog board, the facts
they rest on, git revisions, exit codes, and the pictures in docs/boards/ kept current.

Regenerate the golden files after an intended change with MACHINEDESC_UPDATE_GOLDEN=1 and review the
diff like code; the pictures with `python -m machinedesc.views.gallery`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from needs import missing

from machinedesc.cli import main
from machinedesc.plan.pipeline import load_board
from machinedesc.views import gallery, picture, show
from machinedesc.views.catalog import read_catalog, render_table
from machinedesc.views.diff import diff_boards
from machinedesc.views.machine import human_size, interrupt_routes, memory_map

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "views"
GATES = "tests/data/views/gates.yaml"
BOARDS = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "boards").glob("*.yaml"))]
#: Each catalog board is compared with another: a variant with its base, the others with a neighbour.
PARTNERS = {"boards/soc.yaml": "boards/soc-4core.yaml", "boards/soc-4core.yaml": "boards/soc.yaml",
            "boards/seed-a72.yaml": "boards/a72-dma.yaml", "boards/a72-dma.yaml": "boards/mutual-links.yaml",
            "boards/mutual-links.yaml": GATES, "boards/riscv-virt.yaml": "boards/soc.yaml",
            "boards/arm64-virt.yaml": "boards/seed-a72.yaml", "boards/fe310.yaml": "boards/soc.yaml"}


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("MACHINEDESC_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path}: run with MACHINEDESC_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def _need_dot() -> None:
    if shutil.which("dot") is None:
        missing("Graphviz's dot is not installed (apt-get install graphviz)")


# ------------------------------------------------------------------ golden outputs


def test_every_catalog_board_has_a_diff_partner() -> None:
    assert sorted(PARTNERS) == BOARDS


@pytest.mark.parametrize("board", [*BOARDS, GATES], ids=lambda p: Path(p).stem)
def test_golden_show_and_graph(board: str, in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stem = Path(board).stem
    for args, name in ((["show", board], f"{stem}.show.txt"), (["show", "--format", "json", board],
                                                                f"{stem}.show.json"),
                       (["graph", board], f"{stem}.dot"), (["graph", "--memory-map", board],
                                                           f"{stem}.memory-map.dot")):
        code, out, err = run(args, capsys)
        assert code == 0, err
        _check(name, out)


@pytest.mark.parametrize("board", BOARDS, ids=lambda p: Path(p).stem)
def test_golden_diff(board: str, in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["diff", board, PARTNERS[board]], capsys)
    assert (code, err) == (1, "")
    _check(f"{Path(board).stem}.diff.txt", out)


def test_golden_list(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["list"], capsys)
    assert code == 0
    _check("list.txt", out)
    code, out, _ = run(["list", "--format", "json", "boards"], capsys)
    assert code == 0
    _check("list.json", out)
    assert [row["name"] for row in json.loads(out)] == sorted(Path(b).stem for b in BOARDS)


@pytest.mark.parametrize("board", [*BOARDS, GATES], ids=lambda p: Path(p).stem)
def test_outputs_are_deterministic(board: str, in_repo: Path) -> None:
    first, second = load_board(Path(board)), load_board(Path(board))
    assert show.render_text(first) == show.render_text(second)
    assert picture.machine_dot(first) == picture.machine_dot(second)
    assert picture.memory_map_dot(first) == picture.memory_map_dot(second)


@pytest.mark.parametrize("board", ["boards/soc.yaml", GATES], ids=lambda p: Path(p).stem)
def test_dot_lays_out_the_same_svg_every_time(board: str, in_repo: Path) -> None:
    """Same DOT, same SVG bytes, from two separate runs of Graphviz's dot."""
    _need_dot()
    dot = picture.machine_dot(load_board(Path(board)))
    first, second = picture.render(dot, "svg"), picture.render(dot, "svg")
    assert first == second
    assert first.startswith(b"<?xml") and b"<svg" in first


# ------------------------------------------------------------------ the facts


def test_human_sizes() -> None:
    assert [human_size(n) for n in (0, 8, 4096, 0x8000, 128 << 20, 1 << 40, 1536, None)] == \
        ["0 B", "8 B", "4 KiB", "32 KiB", "128 MiB", "1 TiB", "1.50 KiB", "?"]
    # Rounded down: a size never looks bigger than it is.
    assert human_size((1 << 20) - 1) == "1023.99 KiB"
    # Exact (diff): the largest unit that divides the size, as a board writes it.
    assert [human_size(n, exact=True) for n in (1536, 1536 << 20, 0x801, 0)] == \
        ["1536 B", "1536 MiB", "2049 B", "0 B"]


def test_memory_map_shows_holes_overlaps_and_regions_mapped_twice(in_repo: Path) -> None:
    rows = memory_map(load_board(Path(GATES)))
    text = [(hex(r.start), r.component or "(hole)", r.notes) for r in rows]
    # QEMU's sysbus_mmio_map moves a region mapped again: the last mapping stays.
    assert text[:3] == [
        ("0x0", "rom", ("not mapped here in QEMU: a later mapping of the same region moves it to 0x100000",)),
        ("0x10000", "(hole)", ()),
        ("0x100000", "rom", ("also mapped at 0x0 before: QEMU keeps one mapping per region, this last one",))]
    patch, ram = rows[-2], rows[-1]
    assert (patch.component, patch.priority, ram.component) == ("patch", 1, "ram")
    assert patch.notes == ("overlaps ram region 0 (priority 0): wins where they overlap",)
    assert ram.notes == ("overlaps patch region 0 (priority 1): hidden by it where they overlap",)
    holes = [r for r in rows if r.is_hole]
    assert all(r.size == r.end - r.start + 1 for r in holes if r.end is not None and r.size is not None)


def test_unknown_sizes_leave_no_invented_hole(tmp_path: Path, in_repo: Path) -> None:
    # Made-up types on a system without a type database: nothing knows their sizes.
    board = tmp_path / "b.yaml"
    board.write_text("machinedesc: 1\nsystem: vendor\ncomponents:\n"
                     "  dma0: {type: vendor-dma, mmio: 0x0a000000}\n  iommu0: {type: vendor-iommu, mmio: 0x0a001000}\n")
    rows = memory_map(load_board(board))
    assert [(r.component, r.size) for r in rows] == [("dma0", None), ("iommu0", None)]
    # With the type database, mutual-links' imx.enet regions have their measured size, and the hole is real.
    rows = memory_map(load_board(Path("boards/mutual-links.yaml")))
    assert [(r.component, r.size) for r in rows] == [("eth1", 0x4000), ("", 0xD0000), ("eth0", 0x4000)]


def test_interrupts_go_through_the_inserted_gates(in_repo: Path) -> None:
    routes = interrupt_routes(load_board(Path(GATES)))
    split, or0, or1 = routes
    assert (split.gate_type, split.to) == ("split-irq", ("cpu0.unnamed-gpio-in[0]", "cpu1.unnamed-gpio-in[0]"))
    assert (or0.gate_type, or0.to, or0.joined) == ("or-irq", ("cpu0.unnamed-gpio-in[1]",), ("uart1.sysbus-irq[1]",))
    assert or1.gate == or0.gate


def test_show_follows_set(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["show", "boards/soc.yaml", "--set", "harts=3"], capsys)
    assert code == 0
    assert "CPUs: 3 x rv64-riscv-cpu" in out and "hart2.unnamed-gpio-in[7]" in out


def test_show_of_an_invalid_board_is_its_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    board = tmp_path / "bad.yaml"
    board.write_text("machinedesc: 1\nsystem: riscv64\ncomponents:\n  x: {type: serial-mm, parent: nope}\n")
    code, out, err = run(["show", str(board)], capsys)
    assert (code, out) == (2, "")
    assert f"{board}:4:" in err and "parent 'nope' is not a component" in err


# ------------------------------------------------------------------ list


def test_list_keeps_invalid_boards_with_their_first_error(tmp_path: Path, in_repo: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    for board in BOARDS:
        shutil.copy(board, tmp_path)
    shutil.copytree(Path(BOARDS[0]).parent / "lib", tmp_path / "lib")  # the fragments boards use
    (tmp_path / "broken.yaml").write_text("machinedesc: 1\nsystem: riscv64\ncomponents:\n"
                                          "  a: {type: serial-mm, parent: nope}\n  b: {type: nothing, parent: gone}\n")
    code, out, _ = run(["list", str(tmp_path)], capsys)
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("broken"))
    # The two references, and qemu-system-riscv64 has no type 'nothing'.
    assert f"INVALID: {tmp_path}/broken.yaml:4:" in line and "(and 2 more)" in line
    assert out.splitlines()[-1] == f"{len(BOARDS) + 1} boards, {len(BOARDS)} valid, 1 invalid"
    rows = read_catalog(tmp_path)
    assert [r.name for r in rows] == sorted([*(Path(b).stem for b in BOARDS), "broken"])
    assert render_table(rows) == out


def test_list_names_the_file_of_a_copy(tmp_path: Path, in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Two copies of one board have one name: the file tells the rows apart.
    soc = Path(BOARDS[0]).parent / "soc.yaml"
    shutil.copytree(soc.parent / "lib", tmp_path / "lib")
    shutil.copy(soc, tmp_path / "soc.yaml")
    shutil.copy(soc, tmp_path / "soc-mine.yaml")
    code, out, _ = run(["list", str(tmp_path)], capsys)
    assert code == 0
    names = [line.split("  ")[0] for line in out.splitlines()[1:-1]]
    assert names == ["soc", "soc (soc-mine.yaml)"]


def test_list_does_not_hang_on_what_is_not_a_board_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A FIFO, a directory and a symbolic link loop named *.yaml are rows with their error, read without blocking."""
    os.mkfifo(tmp_path / "fifo.yaml")
    (tmp_path / "dir.yaml").mkdir()
    (tmp_path / "loop.yaml").symlink_to(tmp_path / "loop.yaml")
    code, out, _ = run(["list", str(tmp_path)], capsys)
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[1:-1]] == ["dir", "fifo", "loop"]
    assert all("INVALID: " in line for line in out.splitlines()[1:-1])


def test_list_of_a_missing_directory_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["list", str(tmp_path / "nope")], capsys)
    assert code == 2 and "is not a directory" in err


# ------------------------------------------------------------------ graph


def test_graph_writes_svg_png_and_dot(tmp_path: Path, in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _need_dot()
    for suffix, magic in ((".svg", b"<?xml"), (".png", b"\x89PNG"), (".dot", b"digraph")):
        out = tmp_path / f"soc{suffix}"
        code, _, err = run(["graph", "boards/soc.yaml", "-o", str(out)], capsys)
        assert code == 0, err
        assert out.read_bytes().startswith(magic)
    assert (tmp_path / "soc.dot").read_text() == (GOLDEN / "soc.dot").read_text()


def test_graph_refuses_an_unknown_picture_format(tmp_path: Path, in_repo: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["graph", "boards/soc.yaml", "-o", str(tmp_path / "soc.jpeg")], capsys)
    assert code == 2 and "FILE.svg, FILE.png or FILE.dot" in err
    assert not (tmp_path / "soc.jpeg").exists()


def test_graph_without_dot_says_what_to_install(tmp_path: Path, in_repo: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on it
    code, _, err = run(["graph", "boards/soc.yaml", "-o", str(tmp_path / "soc.svg")], capsys)
    assert code == 1 and "apt-get install graphviz" in err and "Traceback" not in err
    code, _, err = run(["graph", "boards/soc.yaml", "-o", str(tmp_path / "soc.dot")], capsys)
    assert code == 0, err


def test_graph_escapes_what_the_board_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Quotes, backslashes and control characters in a type or a link path end up as text, not DOT."""
    _need_dot()
    board = tmp_path / "q.yaml"
    # A system without a type database, so that the made-up type is valid.
    board.write_text('machinedesc: 1\nsystem: vendor\ncomponents:\n'
                     '  ram: {type: sysbus-memory, props: {size: 4 KiB}, mmio: 0}\n'
                     '  odd: {type: "x\\"y\\\\<b>\\u202e", mmio: 0x1000, links: {l: "ram/a\\"b"}}\n')
    for args in (["graph", str(board)], ["graph", "--memory-map", str(board)]):
        code, out, err = run(args, capsys)
        assert code == 0, err
        assert "\u202e" not in out
        picture.render(out, "svg")  # dot reads it: no syntax error


# ------------------------------------------------------------------ docs/boards


def test_gallery_pictures_are_current() -> None:
    """docs/boards/ holds a picture of every catalog board, drawn from today's DOT."""
    wanted = gallery.pictures()
    have = {p.name for p in gallery.OUT.glob("*.svg")}
    assert have == set(wanted), "docs/boards/ is stale: run python -m machinedesc.views.gallery"
    for name, dot in wanted.items():
        svg = (gallery.OUT / name).read_text(encoding="utf-8")
        assert gallery.stamp(dot) in svg, f"docs/boards/{name} is stale: run python -m machinedesc.views.gallery"


def test_gallery_svgs_are_what_this_dot_draws() -> None:
    """Where dot is the version that drew them, the pictures are its exact bytes."""
    _need_dot()
    version = subprocess.run(["dot", "-V"], capture_output=True, text=True, check=True).stderr.split("version ")[1]
    for name, dot in gallery.pictures().items():
        svg = (gallery.OUT / name).read_text(encoding="utf-8")
        if f"Generated by graphviz version {version.split()[0]}" not in svg:
            pytest.skip(f"docs/boards/ was drawn by another Graphviz than {version.strip()}")
        assert gallery.draw(dot) == svg, name


def test_docs_show_every_picture() -> None:
    doc = (ROOT / "docs" / "inspect.md").read_text(encoding="utf-8")
    for name in gallery.pictures():
        assert f"(boards/{name})" in doc, name


# ------------------------------------------------------------------ diff


def test_diff_exit_codes(in_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["diff", "boards/soc.yaml", "boards/soc.yaml"], capsys)[:2] == (
        0, "--- boards/soc.yaml\n+++ boards/soc.yaml\nno difference in meaning\n")
    assert run(["diff", "boards/soc.yaml", "boards/soc-4core.yaml"], capsys)[0] == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("machinedesc: 1\nsystem: riscv64\ncomponents:\n  x: {type: serial-mm, parent: nope}\n")
    code, out, err = run(["diff", "boards/soc.yaml", str(bad)], capsys)
    assert (code, out) == (2, "") and "parent 'nope'" in err
    code, _, err = run(["diff", "boards/soc.yaml", str(tmp_path / "none.yaml")], capsys)
    assert code == 2


def test_diff_is_by_meaning_not_by_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Reordered keys, comments, an expression for a literal, count: for copies: no difference."""
    (tmp_path / "a.yaml").write_text(
        "machinedesc: 1\nsystem: riscv64\nname: x\ncomponents:\n"
        "  cluster0: {type: cpu-cluster, props: {cluster-id: 0}}\n"
        "  hart0: {type: rv64-riscv-cpu, parent: cluster0, props: {mhartid: 0}}\n"
        "  hart1: {type: rv64-riscv-cpu, parent: cluster0, props: {mhartid: 1}}\n"
        "  ram: {type: sysbus-memory, props: {size: 134217728}, mmio: 0x80000000}\n")
    (tmp_path / "b.yaml").write_text(
        "# the same machine, written otherwise\nmachinedesc: 1\nname: x\nsystem: riscv64\nparams: {n: 2}\n"
        "components:\n  ram: {mmio: '${1 << 31}', props: {size: 128 MiB}, type: sysbus-memory}\n"
        "  hart${i}: {count: '${n}', type: rv64-riscv-cpu, parent: cluster0, props: {mhartid: '${i}'}}\n"
        "  cluster0: {type: cpu-cluster, props: {cluster-id: 0}}\n")
    text, equal = diff_boards(str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"))
    # Only the parameter itself is new; the machine is the same, so is the plan.
    assert text.splitlines()[2:] == ["board:", f"  + params.n: 2  ({tmp_path}/b.yaml:5)"]
    assert not equal


def test_diff_shows_sizes_in_units_as_show_does(tmp_path: Path) -> None:
    """Sizes (MMIO sizes, size properties, parameters written with a unit) in the board's units, exactly;
    addresses and counts stay as they were."""
    base = ("machinedesc: 1\nsystem: riscv64\nname: x\nparams: {ram_size: 128 MiB, harts: 2}\ncomponents:\n"
            "  ram: {type: sysbus-memory, props: {size: '${ram_size}'}, mmio: 0x80000000}\n"
            "  rom: {type: sysbus-memory, props: {size: 0x1000, readonly: true}, "
            "mmio: [{addr: 0x1000, region: 0, size: 0x1000, offset: 0}]}\n")
    (tmp_path / "a.yaml").write_text(base)
    (tmp_path / "b.yaml").write_text(base.replace("128 MiB", "1536 MiB").replace("harts: 2", "harts: 3")
                                     .replace("size: 0x1000, offset", "size: 0x801, offset"))
    text, _ = diff_boards(str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"))
    assert "  ~ params.ram_size: 128 MiB -> 1536 MiB" in text
    assert "  ~ params.harts: 2 -> 3" in text
    assert "  ~ ram.props.size: 128 MiB -> 1536 MiB (from ${ram_size})" in text
    assert "  ~ rom region 0 window +0x0: 0x1000 size 4 KiB -> 0x1000 size 2049 B" in text


def test_diff_json(in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["diff", "--format", "json", "boards/seed-a72.yaml", "boards/a72-dma.yaml"], capsys)
    data = json.loads(out)
    assert code == 1 and data["equal"] is False
    added = [c for c in data["changes"] if c["section"] == "components"]
    assert added == [{"section": "components", "sign": "+", "text": "dma0 (pl080)", "old": None,
                      "new": "boards/a72-dma.yaml:14:3"}]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false",
                    *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with boards/base.yaml and boards/variant.yaml (extends base) in two commits."""
    if shutil.which("git") is None:
        missing("git is not installed")
    boards = tmp_path / "boards"
    boards.mkdir()
    shutil.copy(ROOT / "boards" / "soc.yaml", boards / "base.yaml")
    shutil.copytree(ROOT / "boards" / "lib", boards / "lib")  # the fragments soc.yaml uses
    (boards / "variant.yaml").write_text("machinedesc: 1\nextends: base.yaml\nname: variant\nparams: {harts: 3}\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "one")
    base = (boards / "base.yaml").read_text().replace("baudbase: 115200", "baudbase: 9600")
    (boards / "base.yaml").write_text(base)
    _git(tmp_path, "commit", "-qam", "two")
    return tmp_path


def test_diff_of_a_git_revision_reads_its_bases_at_that_revision(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """variant.yaml did not change, its base did: the diff finds the change through extends."""
    monkeypatch.chdir(repo)
    code, out, err = run(["diff", "boards/variant.yaml@HEAD~1", "boards/variant.yaml"], capsys)
    assert (code, err) == (1, "")
    assert out.splitlines() == [
        "--- HEAD~1:boards/variant.yaml", "+++ boards/variant.yaml", "components:",
        "  ~ uart0.props.baudbase: 115200 -> 9600  (was HEAD~1:boards/base.yaml:44, now boards/base.yaml:44)"]
    assert run(["diff", "boards/variant.yaml@HEAD", "boards/variant.yaml"], capsys)[0] == 0
    # From another directory, with the repository's board named through a relative path.
    monkeypatch.chdir(repo / "boards")
    code, out, _ = run(["diff", "variant.yaml@HEAD~1", "variant.yaml@HEAD"], capsys)
    assert code == 1 and out.startswith("--- HEAD~1:boards/variant.yaml\n+++ HEAD:boards/variant.yaml\n")


def test_diff_of_a_revision_names_its_errors_the_git_way(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(repo)
    (repo / "boards" / "base.yaml").write_text("machinedesc: 1\nsystem: riscv64\ncomponents: {x: {type: 7}}\n")
    _git(repo, "commit", "-qam", "broken")
    code, out, err = run(["diff", "boards/variant.yaml@HEAD", "boards/variant.yaml@HEAD~1"], capsys)
    assert (code, out) == (2, "")
    assert err.startswith("HEAD:boards/base.yaml:3:") and "machinedesc-diff-" not in err
    assert "included from HEAD:boards/variant.yaml:2:" in err


@pytest.mark.parametrize(("spec", "message"), [
    ("boards/variant.yaml@nope", "'nope' is not a revision"),
    ("boards/gone.yaml@HEAD", "boards/gone.yaml does not exist at HEAD"),
    ("boards/variant.yaml@--output=x", "is not a git revision"),
    ("boards/variant.yaml@", "write BOARD or BOARD@REVISION"),
])
def test_diff_refuses_what_it_cannot_read(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str], spec: str, message: str) -> None:
    monkeypatch.chdir(repo)
    code, out, err = run(["diff", spec, "boards/variant.yaml"], capsys)
    assert (code, out) == (2, "") and message in err, err


def test_diff_outside_a_repository(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(ROOT / "boards" / "soc.yaml", tmp_path)
    code, _, err = run(["diff", f"{tmp_path}/soc.yaml@HEAD", f"{tmp_path}/soc.yaml"], capsys)
    assert code == 2 and "is not inside a git repository" in err


def test_docs_examples_are_real_outputs() -> None:
    """Every example in docs/inspect.md is (a part of) a golden output: the docs cannot drift."""
    doc = (ROOT / "docs" / "inspect.md").read_text(encoding="utf-8")
    goldens = "\n".join(p.read_text(encoding="utf-8") for p in sorted(GOLDEN.glob("*.txt")))
    blocks = doc.split("```\n")[1::2]
    assert len(blocks) >= 5
    for block in blocks:
        assert block in goldens, f"docs/inspect.md example is not a real output:\n{block}"


def test_same_bytes_whatever_the_hash_seed(in_repo: Path) -> None:
    """Set and dict order never leaks into the output: two interpreters with different hash seeds agree."""
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        texts = []
        for args in (["show", GATES], ["graph", GATES], ["diff", "boards/soc.yaml", GATES], ["list"]):
            done = subprocess.run([sys.executable, "-c", "from machinedesc.cli import main; main()", *args],
                                  env=env, capture_output=True, text=True, check=False)
            assert done.stderr == ""
            texts.append(done.stdout)
        outputs.append(texts)
    assert outputs[0] == outputs[1]


def test_diff_of_a_revision_with_a_catalog_above_the_board(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """--catalog: includes from outside the board's directory are read at the revision too."""
    monkeypatch.chdir(repo)
    (repo / "common").mkdir()
    (repo / "common" / "uart.yaml").write_text("machinedesc: 1\ncomponents:\n  uart0:\n    props: {baudbase: 1}\n")
    (repo / "boards" / "variant.yaml").write_text(
        "machinedesc: 1\nextends: base.yaml\ninclude: ../common/uart.yaml\nname: variant\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "three")
    (repo / "common" / "uart.yaml").write_text("machinedesc: 1\ncomponents:\n  uart0:\n    props: {baudbase: 2}\n")
    code, out, err = run(["diff", "--catalog", ".", "boards/variant.yaml@HEAD", "boards/variant.yaml"], capsys)
    assert (code, err) == (1, "")
    assert out.splitlines()[2:] == [
        "components:", "  ~ uart0.props.baudbase: 1 -> 2  (was HEAD:common/uart.yaml:4, now common/uart.yaml:4)"]
    # Without --catalog the include leaves the board's directory: refused, at the revision too.
    code, _, err = run(["diff", "boards/variant.yaml@HEAD", "boards/variant.yaml"], capsys)
    assert code == 2 and err.startswith("HEAD:boards/variant.yaml:3:")


def test_show_writes_sizes_in_units_only_where_the_value_is_a_size(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """As diff decides: a size-typed property, a parameter written with a unit; not a hex one, not a uint32."""
    board = tmp_path / "b.yaml"
    board.write_text("machinedesc: 1\nsystem: riscv64\nparams: {ram_size: 2 MiB, rom_size: 0x10000, base: 0x80000000}\n"
                     "components:\n  hart0: {type: rv64-riscv-cpu}\n"
                     "  ram: {type: sysbus-memory, props: {size: '${ram_size}'}, mmio: '${base}'}\n"
                     "  rom: {type: sysbus-memory, props: {size: 1536, readonly: true}, mmio: 0x0}\n"
                     "  mtimer: {type: riscv.aclint.mtimer, props: {num-harts: 1, aperture-size: 0x8000}, "
                     "mmio: 0x2004000}\n", encoding="utf-8")
    code, out, err = run(["show", str(board)], capsys)
    assert code == 0, err
    assert "  params: ram_size=2 MiB, rom_size=0x10000, base=0x80000000\n" in out
    assert "size=2 MiB\n" in out and "size=1536 B readonly=true\n" in out  # exact: 1.50 KiB would hide bytes
    assert "aperture-size=32768" in out  # a uint32, not a size to QEMU
    code, out, err = run(["show", "--format", "json", str(board)], capsys)
    assert json.loads(out)["params"]["ram_size"] == 2 << 20
