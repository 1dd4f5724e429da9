"""Component fragments (use:) and range wiring: what they expand to (the errors are in tests/data/invalid/)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from machinedesc.errors import BoardError
from machinedesc.plan.pipeline import load_board

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "boards" / "lib", tmp_path / "lib")
    return tmp_path


def _board(catalog: Path, body: str) -> Path:
    path = catalog / "b.yaml"
    path.write_text("machinedesc: 1\nsystem: riscv64\nparams: {base: 0x10000000}\n" + body)
    return path


def test_a_fragment_used_twice_gives_two_blocks_with_their_own_parameters(catalog: Path) -> None:
    board = load_board(_board(catalog, """
chardevs: {serial0: stdio, serial1: "null"}
components:
  gate: {type: or-irq, props: {num-lines: 2}}
  uart0: {use: lib/ns16550.yaml, with: {addr: "${base}", intc: gate, irq: 0}}
  uart1:
    use: lib/ns16550.yaml
    with: {addr: "${base + 0x1000}", chardev: serial1, intc: gate, irq: 1}
"""))
    comps = board.by_id
    assert [c.id for c in board.components] == ["gate", "uart0", "uart1"]  # in the entries' places
    assert [(m.addr) for m in comps["uart1"].mmio] == [0x10001000]
    assert comps["uart1"].props == {"chardev": "serial1", "regshift": 0, "baudbase": 115200}
    assert [(w.name, w.sources[0].text, w.targets[0].text) for w in board.wires] == [
        ("uart0.irq", "uart0.sysbus-irq[0]", "gate.unnamed-gpio-in[0]"),
        ("uart1.irq", "uart1.sysbus-irq[0]", "gate.unnamed-gpio-in[1]")]
    # Positions: the fragment's own line, reached through the board's use entry.
    loc = comps["uart1"].location
    assert loc is not None and loc.file.endswith("lib/ns16550.yaml")
    assert [site.line for site in loc.chain] == [10]  # uart1's own use entry, not uart0's


def test_the_clint_fragment_wires_every_hart(catalog: Path) -> None:
    board = load_board(_board(catalog, """
components:
  cluster0: {type: cpu-cluster, props: {cluster-id: 0}}
  clint: {use: lib/riscv-aclint.yaml, with: {harts: 3, hart: cpu}}
  cpu${i}: {count: 3, type: rv64-riscv-cpu, parent: cluster0, props: {mhartid: "${i}"}}
"""))
    assert [c.id for c in board.components] == ["cluster0", "clint-swi", "clint-mtimer", "cpu0", "cpu1", "cpu2"]
    assert {c.id: c.mmio[0].addr for c in board.components if c.id.startswith("clint")} == \
        {"clint-swi": 0x2000000, "clint-mtimer": 0x2004000}
    assert [w.targets[0].text for w in board.wires] == [
        *(f"cpu{i}.unnamed-gpio-in[3]" for i in range(3)), *(f"cpu{i}.unnamed-gpio-in[7]" for i in range(3))]


@pytest.mark.parametrize(("contexts", "config", "inputs"), [(1, "M,M,M", [11]), (2, "MS,MS,MS", [9, 11])])
def test_the_plic_fragment_wires_m_and_optionally_s_contexts(catalog: Path, contexts: int, config: str,
                                                             inputs: list[int]) -> None:
    board = load_board(_board(catalog, f"""
components:
  cluster0: {{type: cpu-cluster, props: {{cluster-id: 0}}}}
  cpu${{i}}: {{count: 3, type: rv64-riscv-cpu, parent: cluster0, props: {{mhartid: "${{i}}"}}}}
  plic: {{use: lib/sifive-plic.yaml, with: {{harts: 3, hart: cpu, contexts: {contexts}}}}}
"""))
    assert board.by_id["plic"].props["hart-config"] == config
    # S-mode outputs are out[0..harts), M-mode ones out[harts..2 * harts) (hw/intc/sifive_plic.c).
    first = {9: 0, 11: 3}
    assert [(w.name, w.sources[0].text, w.targets[0].text) for w in board.wires] == [
        (f"plic.{'seip' if n == 9 else 'meip'}[{h}]", f"plic.unnamed-gpio-out[{first[n] + h}]",
         f"cpu{h}.unnamed-gpio-in[{n}]") for n in inputs for h in range(3)]


def test_ranges_expand_in_parallel_and_a_single_end_fans_out(catalog: Path) -> None:
    board = load_board(_board(catalog, """
components:
  a: {type: split-irq, props: {num-lines: 4}}
  b: {type: or-irq, props: {num-lines: 4}}
  c: {type: or-irq, props: {num-lines: 4}}
wiring:
  par: {from: "a.unnamed-gpio-out[0..1]", to: "b.unnamed-gpio-in[2..3]"}
  fan: {from: "a.unnamed-gpio-out[2]", to: "c.unnamed-gpio-in[0..1]"}
"""))
    assert [(w.name, w.sources[0].text, w.targets[0].text) for w in board.wires] == [
        ("par[0]", "a.unnamed-gpio-out[0]", "b.unnamed-gpio-in[2]"),
        ("par[1]", "a.unnamed-gpio-out[1]", "b.unnamed-gpio-in[3]"),
        ("fan[0]", "a.unnamed-gpio-out[2]", "c.unnamed-gpio-in[0]"),
        ("fan[1]", "a.unnamed-gpio-out[2]", "c.unnamed-gpio-in[1]")]


def test_a_range_into_one_input_is_still_two_drivers(catalog: Path) -> None:
    with pytest.raises(BoardError, match="driven"):
        load_board(_board(catalog, """
components:
  a: {type: split-irq, props: {num-lines: 4}}
  b: {type: or-irq, props: {num-lines: 4}}
wiring:
  w: {from: "a.unnamed-gpio-out[0..1]", to: "b.unnamed-gpio-in[0]"}
"""))


def test_the_gicv3_fragment_wires_every_cpu_both_ways(catalog: Path) -> None:
    path = _board(catalog, """
chardevs: {serial0: stdio}
components:
  cluster0: {type: cpu-cluster, props: {cluster-id: 0}}
  core${i}: {count: 3, type: cortex-a57-arm-cpu, parent: cluster0, props: {has_el3: false, has_el2: false}}
  gic: {use: lib/arm-gicv3.yaml, with: {cpus: 3, cpu: core, spis: 64}}
  uart0: {use: lib/pl011.yaml, with: {irq: 5}}
""")
    path.write_text(path.read_text().replace("system: riscv64", "system: aarch64"))
    board = load_board(path)
    assert board.by_id["gic"].props["num-irq"] == 96 and board.by_id["gic"].props["redist-region-count"] == [3]
    ends = [(w.sources[0].text, w.targets[0].text) for w in board.wires]
    assert len(ends) == 10 * 3 + 1
    assert ends[3:6] == [(f"gic.sysbus-irq[{3 + c}]", f"core{c}.unnamed-gpio-in[1]") for c in range(3)]  # FIQ
    # CPU 2's physical timer on its PPI 14: SPIs, then 32 inputs per CPU, 16 SGIs first.
    assert ("core2.unnamed-gpio-out[0]", f"gic.unnamed-gpio-in[{64 + 32 * 2 + 16 + 14}]") in ends
    assert ends[-1] == ("uart0.sysbus-irq[0]", "gic.unnamed-gpio-in[5]")


def test_a_board_outside_the_catalog_is_told_where_the_fragments_are(tmp_path: Path) -> None:
    # use: is relative to the board: a board written elsewhere (a user's own directory)
    # does not see boards/lib; the hint names the checkout's copy and how to copy it.
    board = _board(tmp_path, "components:\n  plic: {use: lib/sifive-plic.yaml}\n")
    with pytest.raises(BoardError) as err:
        load_board(board)
    text = str(err.value)
    assert "components.plic.use: 'lib/sifive-plic.yaml' not found" in text
    assert f"cp -r {REPO / 'boards' / 'lib'} {tmp_path}/" in text, text
    # Inside the catalog (or with a close name beside the board) there is no such hint.
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "sifive-plik.yaml").write_text("machinedesc: 1\n")
    with pytest.raises(BoardError) as err:
        load_board(board)
    assert "did you mean 'lib/sifive-plik.yaml'?" in str(err.value) and "cp -r" not in str(err.value)


def test_the_gicv2_fragment_wires_every_cpu_without_a_maintenance_interrupt(catalog: Path) -> None:
    path = _board(catalog, """
chardevs: {serial0: stdio}
components:
  cluster0: {type: cpu-cluster, props: {cluster-id: 0}}
  core${i}: {count: 2, type: cortex-a53-arm-cpu, parent: cluster0, props: {has_el3: false, has_el2: false}}
  gic: {use: lib/arm-gicv2.yaml, with: {cpus: 2, cpu: core, spis: 64}}
""")
    path.write_text(path.read_text().replace("system: riscv64", "system: aarch64"))
    board = load_board(path)
    gic = board.by_id["gic"]
    assert gic.type == "arm_gic" and gic.props == {"revision": 2, "num-cpu": 2, "num-irq": 96}
    ends = [(w.sources[0].text, w.targets[0].text) for w in board.wires]
    assert len(ends) == 9 * 2  # IRQ, FIQ, VIRQ, VFIQ; four timers; the PMU
    assert ("gic.sysbus-irq[3]", "core1.unnamed-gpio-in[1]") in ends  # CPU 1's FIQ
    assert ("core1.pmu-interrupt[0]", f"gic.unnamed-gpio-in[{64 + 32 + 16 + 7}]") in ends
    assert not any("maintenance" in src for src, _ in ends)


def test_fragment_requires_turn_a_bad_use_into_one_error_each() -> None:
    # riscv-virt with no hart: the ACLINT and PLIC fragments say what they need, at the
    # board's use lines; no follow-on errors from components built for zero harts.
    from machinedesc.plan.pipeline import load_plan

    with pytest.raises(BoardError) as err:
        load_plan(REPO / "boards" / "riscv-virt.yaml", {"harts": "0"}, cache=False)
    lines = [ln for ln in str(err.value).splitlines() if not ln.startswith("  ")]
    assert [ln.split(": ", 2)[1:] for ln in lines] == [
        ["components.mswi.with", "harts is 1 to 4095 (RISCV_ACLINT_MAX_HARTS, include/hw/intc/riscv_aclint.h)"],
        ["components.mtimer.with", "harts is 1 to 4095 (RISCV_ACLINT_MAX_HARTS, include/hw/intc/riscv_aclint.h)"],
        ["components.plic.with", "a PLIC needs at least one hart"],
    ]
