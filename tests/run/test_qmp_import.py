"""`machinedesc import-qmp`: a board from a QMP file, with a coverage report (machinedesc.plan.qmpimport)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness import Sandbox, patched_qemu

from machinedesc.errors import QmpFileError
from machinedesc.plan import qmpdialect
from machinedesc.plan.pipeline import load_plan
from machinedesc.plan.qmpfile import parse
from machinedesc.plan.qmpfold import SAME, CompT, WireEntry, WireT, fold_components, fold_wires
from machinedesc.plan.qmpimport import import_qmp
from machinedesc.plan.render import render_qmp

REPO = Path(__file__).resolve().parents[2]
SOC_V4 = REPO / "tests" / "data" / "qmp-v4" / "soc-v4.qmp"


def _imported(text: str, ram: int | None = None) -> tuple[str, list[str]]:
    qmp = parse(text, "f.qmp")
    if qmpdialect.detect(qmp).name == qmpdialect.V4:
        qmp = qmpdialect.translate(qmp, ram)
    result = import_qmp(qmp, "riscv64", "b")
    return result.yaml, result.report


def test_runs_of_wires_fold_into_ranges_and_dotted_ids_are_renamed(tmp_path: Path) -> None:
    lines = ["device_add driver=riscv.hart_array id=cpus cpu-type=sifive-e31-riscv-cpu num-harts=1",
             "device_add driver=riscv.aclint.swi id=clint.swi num-harts=1",
             "sysbus-mmio-map device=clint.swi addr=0x2000000",
             "qom-set path=clint.swi property=unnamed-gpio-out[0] value=cpus/harts[0]/unnamed-gpio-in[3]",
             "device_add driver=or-irq id=gate num-lines=8",
             "device_add driver=split-irq id=fan num-lines=8"]
    lines += [f"qom-set path=fan property=unnamed-gpio-out[{k}] value=gate/unnamed-gpio-in[{k}]" for k in range(8)]
    lines += ["device_add driver=loader file=/fw.elf cpu-num=0", "qom-set path=/machine property=foo value=1"]
    yaml, report = _imported("\n".join(lines) + "\n")
    assert "  clint-swi: {type: riscv.aclint.swi, props: {num-harts: 1}, mmio: 0x2000000}" in yaml
    # A one-hart array: a plain CPU entry (a count: of one would only be longer).
    assert "  cpus-hart0: {type: sifive-e31-riscv-cpu, parent: cpus, props: {mhartid: 0}}" in yaml
    assert '  fan-gate: {from: "fan.unnamed-gpio-out[0..7]", to: "gate.unnamed-gpio-in[0..7]"}' in yaml
    assert '  clint-swi-cpus-hart0: {from: "clint-swi.unnamed-gpio-out[0]", to: "cpus-hart0.unnamed-gpio-in[3]"}' \
        in yaml
    assert report[0] == "import-qmp: f.qmp: 17 commands"  # the 16 lines and the x-machine-init the dialect adds
    assert "     9 wires (qom-set of an output line)" in report
    assert "     1 commands kept as raw qmp: entries" in report  # the qom-set of /machine foo: never dropped
    assert any("line 15: loader of /fw.elf kept as a raw qmp: entry" in ln for ln in report)
    assert "  id clint.swi renamed clint-swi: a wire's line names its component before the first dot" in report
    board = tmp_path / "b.yaml"
    board.write_text(yaml)
    plan = load_plan(board)  # the board validates and plans (raises BoardError otherwise)
    assert sum(s.command == "qom-set" and "unnamed-gpio-out" in str(s.arguments.get("property")) for s in plan.steps) \
        == 9


def test_imported_v4_board_applies_and_runs_the_demo_firmware(sandbox: Sandbox, firmware: Path) -> None:
    qemu = patched_qemu("riscv64")
    board = sandbox.base / "soc-imported.yaml"
    res = sandbox.call(sandbox.argv_cli("import-qmp", str(SOC_V4), "-o", str(board), "--ram-size", "128M"))
    assert res.rc == 0, res.stderr
    assert "1 hart arrays (each a cluster with count: CPUs)" in res.stderr
    res = sandbox.call(sandbox.argv_cli("apply", str(board), "--qemu", str(qemu),
                                        "--firmware", str(firmware / "riscv64-hello.elf")))
    assert res.rc == 0, res.stderr
    assert res.stdout.split() == "hello from hart 0 hello from hart 1 hello from timer interrupt".split()


def test_a_command_that_cannot_become_yaml_is_an_error_at_its_line() -> None:
    """A v4 map whose address is not a number: exit 2 at that line, not a traceback (adversarial pass)."""
    from machinedesc.errors import QmpFileError

    with pytest.raises(QmpFileError) as err:
        _imported("device_add driver=riscv.sifive.test id=u\nsysbus-mmio-map device=u addr=notanumber\n")
    # The command as the file wrote it (the v4 name), not the one the dialect translated it to.
    assert str(err.value).startswith("f.qmp:2:1: sysbus-mmio-map: cannot import this command: "
                                     "addr='notanumber' is not an integer")
    assert err.value.exit_code == 2


def test_a_file_that_adds_no_device_gives_a_board_that_validates(tmp_path: Path) -> None:
    from machinedesc.plan.pipeline import load_board

    yaml, _ = _imported("# only a comment\n")
    assert "components: {}" in yaml
    (tmp_path / "b.yaml").write_text(yaml, encoding="utf-8")
    assert load_board(tmp_path / "b.yaml").components == ()


# ---- folding runs (plan.qmpfold): the imported board plans the file's very steps ----------------------

ROUND_TRIP = ["a72-dma", "arm64-virt", "fe310", "riscv-virt", "seed-a72", "soc", "soc-4core"]


def _steps(steps: Any) -> list[tuple[str, dict[str, Any]]]:
    """Commands and arguments of a plan's (or a file's) steps: what QEMU receives, without comments."""
    return [(s.command, dict(s.arguments)) for s in getattr(steps, "steps", steps)]


def _lines(text: str) -> int:
    return sum(1 for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#"))


def _plan_of_import(tmp_path: Path, qmp_text: str, name: str = "f.qmp") -> tuple[Any, str]:
    qmp = parse(qmp_text, name)
    yaml = import_qmp(qmp, None, "b").yaml
    (tmp_path / "b.yaml").write_text(yaml, encoding="utf-8")
    return load_plan(tmp_path / "b.yaml"), yaml


@pytest.mark.parametrize("board", ROUND_TRIP)
def test_a_plan_file_imports_to_a_board_with_the_same_plan(tmp_path: Path, board: str) -> None:
    """A catalog board's plan (a QMP file we write), imported and planned again: the same commands, in order."""
    original = load_plan(REPO / "boards" / f"{board}.yaml")
    text = render_qmp(original)
    plan, yaml = _plan_of_import(tmp_path, text, f"{board}.qmp")
    assert _steps(plan) == _steps(original)
    assert _lines(yaml) < _lines(text)


def test_links_set_by_device_add_or_qom_set_become_links(tmp_path: Path) -> None:
    """mutual-links' plan: eth0 links eth1 when it is created, eth1 links eth0 by a qom-set once both exist."""
    original = load_plan(REPO / "boards" / "mutual-links.yaml")
    plan, yaml = _plan_of_import(tmp_path, render_qmp(original), "mutual-links.qmp")
    assert 'links: {phy-consumer: "eth${i}"}' in yaml and "qmp:" not in yaml
    # Which of the two is created unrealized follows the board's order: eth0 now, eth1 in the catalog board.
    assert [s for s in _steps(plan) if "phy-consumer" in str(s)] == [
        ("device_add", {"driver": "imx.enet", "id": "eth1", "phy-num": 1, "phy-connected": False,
                        "phy-consumer": "/machine/peripheral/eth0"}),
        ("qom-set", {"path": "/machine/peripheral/eth0", "property": "phy-consumer",
                     "value": "/machine/peripheral/eth1"})]

    def rest(steps: Any) -> list[str]:
        """The other commands, without the link and realize arguments, in any order."""
        return sorted(str((c, {k: v for k, v in a.items() if k not in ("realized", "phy-consumer")}))
                      for c, a in _steps(steps) if a.get("property") not in ("phy-consumer", "realized"))
    assert rest(plan) == rest(original)


def _harts_file(harts: int) -> str:
    """A QMP file of our own, in the order the planner sends: harts in a cluster, an ACLINT pair, a PLIC with
    M and S contexts, a UART; one wire per hart from each to the harts' mip lines."""
    out = ["x-machine-init", "device_add driver=cpu-cluster id=cluster0 cluster-id=0 realized=false"]
    out += [f"device_add driver=rv64-riscv-cpu id=hart{h} parent=/machine/peripheral/cluster0 mhartid={h} "
            f"resetvec=2147483648 realized=false" for h in range(harts)]
    out += ["qom-set path=/machine/peripheral/cluster0 property=realized value=true"]
    out += [f"qom-set path=/machine/peripheral/cluster0/hart{h} property=realized value=true" for h in range(harts)]
    out += [f"device_add driver=riscv.aclint.swi id=mswi hartid-base=0 num-harts={harts}",
            "x-sysbus-mmio-map device=mswi addr=33554432",
            f"device_add driver=riscv.aclint.mtimer id=mtimer hartid-base=0 num-harts={harts} timecmp-base=0 "
            "time-base=32760 aperture-size=32768 timebase-freq=10000000",
            "x-sysbus-mmio-map device=mtimer addr=33570816",
            f"device_add driver=riscv.sifive.plic id=plic hart-config={','.join(['MS'] * harts)} hartid-base=0 "
            "num-sources=96 num-priorities=7 priority-base=0 pending-base=4096 enable-base=8192 enable-stride=128 "
            f"context-base=2097152 context-stride=4096 aperture-size={0x200000 + harts * 0x2000}",
            "x-sysbus-mmio-map device=plic addr=201326592",
            "device_add driver=serial-mm id=uart0 chardev=serial0 regshift=0 baudbase=115200",
            "x-sysbus-mmio-map device=uart0 addr=268435456"]
    for dev, out_base, mip in (("mswi", 0, 3), ("mtimer", 0, 7), ("plic", 0, 9), ("plic", harts, 11)):
        out += [f"qom-set path=/machine/peripheral/{dev} property=unnamed-gpio-out[{out_base + h}] "
                f"value=/machine/peripheral/cluster0/hart{h}/unnamed-gpio-in[{mip}]" for h in range(harts)]
    out += ["qom-set path=/machine/peripheral/uart0 property=sysbus-irq[0] "
            "value=/machine/peripheral/plic/unnamed-gpio-in[10]"]
    # The planner maps after everything else (docs/plan.md): the maps go last, in the board's order.
    maps = [line for line in out if line.startswith("x-sysbus-mmio-map")]
    out = [line for line in out if line not in maps] + maps + ["x-exit-preconfig"]
    return "# system: riscv64\n" + "\n".join(out) + "\n"


@pytest.mark.parametrize("harts", [2, 8])
def test_one_wire_per_hart_folds_into_one_count_entry(tmp_path: Path, harts: int) -> None:
    text = _harts_file(harts)
    plan, yaml = _plan_of_import(tmp_path, text)
    assert _steps(plan) == _steps(parse(text, "f.qmp").commands)  # the file's own steps, in its order
    assert f'  hart${{i}}: {{count: {harts}, type: rv64-riscv-cpu, parent: cluster0, props: {{mhartid: "${{i}}", ' \
        'resetvec: 0x80000000}}' in yaml
    assert f'  mswi-hart: {{count: {harts}, from: "mswi.unnamed-gpio-out[${{i}}]", ' \
        'to: "hart${i}.unnamed-gpio-in[3]"}' in yaml
    assert f'  plic-hart-2: {{count: {harts}, from: "plic.unnamed-gpio-out[${{{harts} + i}}]", ' \
        'to: "hart${i}.unnamed-gpio-in[11]"}' in yaml
    # Whatever the hart count, the board is the same size: 4 wire entries for the harts, 1 CPU entry.
    assert _lines(yaml) == 19
    assert _lines(text) == 13 + 6 * harts


def test_runs_fold_only_where_every_number_steps_by_one_constant() -> None:
    wires: list[WireT] = [
        ("cpu0", "unnamed-gpio-out", 0, "gic", "unnamed-gpio-in", 286),   # count: cpu${i}, 286 + 32 * i
        ("cpu1", "unnamed-gpio-out", 0, "gic", "unnamed-gpio-in", 318),
        ("cpu2", "unnamed-gpio-out", 0, "gic", "unnamed-gpio-in", 350),
        ("a", "x", 7, "b", "y", 0),                                        # a descending run: 7 - i
        ("a", "x", 6, "b", "y", 1),
        ("s", "o", 0, "t", "i", 5),                                        # irregular: no run
        ("s", "o", 1, "t", "i", 7),
        ("s", "o", 3, "t", "i", 8),
        ("f", "o", 0, "g", "i", 0),                                        # one output fanned out: a range
        ("f", "o", 0, "g", "i", 1),
        ("h01", "o", 0, "k", "i", 0),                                      # ids with a leading zero
        ("h02", "o", 0, "k", "i", 1),
        ("d", "o", 0, "e", "i", 0),                                        # the same wire twice: kept as is
        ("d", "o", 0, "e", "i", 0),
    ]
    folded = [e if isinstance(e, WireEntry) else f"{e[0]}.{e[1]}[{e[2]}] -> {e[3]}.{e[4]}[{e[5]}]"
              for e in fold_wires(wires)]
    assert folded == [
        WireEntry("cpu-gic", "cpu${i}.unnamed-gpio-out[0]", "gic.unnamed-gpio-in[${286 + 32 * i}]", 3, 3),
        WireEntry("a-b", "a.x[${7 - i}]", "b.y[${i}]", 2, 2),
        WireEntry("s-t", "s.o[${i}]", "t.i[${5 + 2 * i}]", 2, 2),
        "s.o[3] -> t.i[8]",
        WireEntry("f-g", "f.o[0]", "g.i[0..1]", None, 2),
        WireEntry("h0-k", "h0${1 + i}.o[0]", "k.i[${i}]", 2, 2),
        "d.o[0] -> e.i[0]", "d.o[0] -> e.i[0]"]


def test_components_fold_only_when_their_values_follow_their_ids() -> None:
    def comp(props: dict[str, Any], addr: int | None = None) -> CompT:
        return CompT("unimplemented-device", props, None, () if addr is None else ((0, addr, 0),))

    comps: list[tuple[str, CompT | None]] = [
        ("pwm0", comp({"name": "pwm0", "size": 4096}, 0x10015000)),
        ("pwm1", comp({"name": "pwm1", "size": 4096}, 0x10025000)),
        ("pwm2", comp({"name": "pwm2", "size": 4096}, 0x10035000)),
        ("pwm3", comp({"name": "other", "size": 4096}, 0x10045000)),   # its name breaks the run
        ("cpu0", comp({"start-powered-off": False})),
        ("cpu1", comp({"start-powered-off": True})),
        ("cpu2", comp({"start-powered-off": True})),
        ("x0", None),                                                   # not foldable (a hart array's CPUs)
        ("x1", comp({})),
        ("y0", comp({"size": 1})),                                      # 1, 2, 4: no constant step
        ("y1", comp({"size": 2})),
        ("y2", comp({"size": 4})),
    ]
    assert fold_components(comps) == [
        ("pwm${i}", 3, ["pwm${i}", SAME, "${0x10015000 + 0x10000 * i}"]),
        ("pwm3", None, None),
        ("cpu${i}", 3, ["${i != 0}"]),
        ("x0", None, None), ("x1", None, None),
        ("y${i}", 2, ["${1 + i}"]),
        ("y2", None, None)]


def test_windows_of_look_alike_components_keep_their_offsets_and_sizes(tmp_path: Path) -> None:
    """A run of components with windows folds only as far as offset and size follow the ids, too: the
    board plans the file's steps (the fold once kept the first window's offset and size for every copy)."""
    maps = [(4096, 0, 16), (8192, 32, 16), (12288, 64, 128), (16384, 96, 128)]
    out = ["x-machine-init"]
    out += [f"device_add driver=sysbus-memory id=d{k} size=8192" for k in range(len(maps))]
    out += [f"x-sysbus-mmio-map device=d{k} addr={addr} offset={offset} size={size}"
            for k, (addr, offset, size) in enumerate(maps)]  # maps last, as the planner orders them
    text = "# system: riscv64\n" + "\n".join([*out, "x-exit-preconfig"]) + "\n"
    plan, yaml = _plan_of_import(tmp_path, text)
    assert _steps(plan) == _steps(parse(text, "f.qmp").commands)
    assert 'offset: "${0x20 * i}", size: 0x10' in yaml


def test_folding_components_is_linear_in_their_number(monkeypatch: pytest.MonkeyPatch) -> None:
    """Look-alike ids whose values follow no pattern beyond two copies (runs of two): each copy is looked at
    a bounded number of times (the fold once rescanned the rest of the ids from every copy: 8,000 UARTs of
    random baud rates took 97 s to import, now 0.6 s)."""
    import random

    from machinedesc.plan import qmpfold

    calls = 0
    shape = qmpfold._shape

    def counted(comp: CompT) -> Any:
        nonlocal calls
        calls += 1
        return shape(comp)

    monkeypatch.setattr(qmpfold, "_shape", counted)
    rng = random.Random(1)
    n = 1000
    comps: list[tuple[str, CompT | None]] = [
        (f"u{k}", CompT("serial-mm", {"baudbase": rng.randrange(1 << 30)}, None, ((0, 0x10000000 + 0x100 * k, 0),)))
        for k in range(n)]
    folded = fold_components(comps)
    assert sum(count or 1 for _, count, _ in folded) == n
    assert calls <= 4 * n


def test_ids_ending_in_thousands_of_digits_fold_without_a_traceback(tmp_path: Path) -> None:
    """The number at the end of an id is its last 18 digits at most (int() refuses 4,300 and more)."""
    digits = "1" * 5000
    text = "\n".join([
        "# system: riscv64", "x-machine-init",
        *(f"device_add driver=serial-mm id=u{digits}{k} regshift=0" for k in (1, 2)),
        f"device_add driver=riscv.sifive.plic id=p{digits}",
        *(f"qom-set path=/machine/peripheral/u{digits}{k} property=sysbus-irq[0] "
          f"value=/machine/peripheral/p{digits}/unnamed-gpio-in[{k}]" for k in (1, 2))]) + "\n"
    yaml = import_qmp(parse(text, "f.qmp"), None, "b").yaml
    assert f'u{digits[:-17]}${{{"1" * 18} + i}}: {{count: 2' in yaml


@pytest.mark.parametrize(("arguments", "message"), [
    ("addr=4096 offset=-5 size=16", "offset=-5 is out of range (0 to 18446744073709551615)"),
    ("addr=4096 mmio=-1", "mmio=-1 is out of range (0 to 4294967295)"),
    ("addr=4096 priority=2147483648", "priority=2147483648 is out of range (-2147483648 to 2147483647)"),
    ("addr=4096 offset=0 size=abc", "size='abc' is not an integer"),
    ("addr=18446744073709551616", "addr=18446744073709551616 is out of range (0 to 18446744073709551615)"),
])
def test_mmio_arguments_qemu_refuses_are_errors_at_their_line(arguments: str, message: str) -> None:
    """What x-sysbus-mmio-map's QMP types refuse is refused at the command (a negative offset became the
    board text "-0x5", which the board then refused as not a size)."""
    text = f"x-machine-init\ndevice_add driver=sysbus-memory id=d size=8192\nx-sysbus-mmio-map device=d {arguments}\n"
    with pytest.raises(QmpFileError) as err:
        import_qmp(parse(text, "f.qmp"), "riscv64", "b")
    assert (str(err.value.location), err.value.message) == \
        ("f.qmp:3:1", f"x-sysbus-mmio-map: cannot import this command: {message}")


def test_entry_names_made_unique_in_linear_time() -> None:
    """N wire entries of one name (one pair of stems, targets that follow no pattern) are a-b, a-b-2, ...
    a-b-N, each number tried once (every name retried from 2: 50,000 wires took 40 s to import, now 5 s)."""
    from machinedesc.plan.qmpimport import _unique

    class Counted(set[str]):
        lookups = 0

        def __contains__(self, item: object) -> bool:
            Counted.lookups += 1
            return super().__contains__(item)

    used, last = Counted({"a-b-3"}), {}  # a name taken already is skipped
    names = [_unique("a-b", used, last) for _ in range(2000)]
    assert names[:4] == ["a-b", "a-b-2", "a-b-4", "a-b-5"] and len(set(names)) == 2000
    assert Counted.lookups <= 3 * 2000


@pytest.mark.parametrize("cid", ['"a: {type: x}, b"', "x${i}", "1abc", "a:b", "true"])
def test_an_id_qemu_refuses_is_an_error_at_its_line(cid: str) -> None:
    """Ids were written as board keys unquoted: "a: {type: x}, b" became YAML of its own (a syntax error in
    the board, or another component), x${i} an expression; QEMU refuses them all."""
    text = f"x-machine-init\ndevice_add driver=serial-mm id={cid} regshift=0\n"
    with pytest.raises(QmpFileError) as err:
        import_qmp(parse(text, "f.qmp"), "riscv64", "b")
    assert str(err.value.location) == "f.qmp:2:1"
    assert "is not an id QEMU takes (a letter, then letters, digits, '_', '.', '-')" in err.value.message


def test_a_chardev_name_is_a_quoted_key() -> None:
    """chardevs: keys were written as they came: chardev="x: {y: 1}" made the board a YAML syntax error."""
    text = 'x-machine-init\ndevice_add driver=serial-mm id=u chardev="x: {y: 1}" regshift=0\n'
    yaml = import_qmp(parse(text, "f.qmp"), "riscv64", "b").yaml
    assert 'chardevs:\n  "x: {y: 1}": stdio\n' in yaml


def test_a_line_index_of_thousands_of_digits_stays_a_raw_command() -> None:
    """int() refuses 4,300 digits and more: such a qom-set was "cannot import" with Python's words; an index
    of more than 18 digits names no line, and the command is kept as it is (QEMU says what it thinks)."""
    text = ("x-machine-init\ndevice_add driver=sysbus-memory id=d size=8192\n"
            f"qom-set path=/machine/peripheral/d property=unnamed-gpio-out[{'1' * 5000}] "
            "value=/machine/peripheral/d/x[0]\n")
    result = import_qmp(parse(text, "f.qmp"), "riscv64", "b")
    assert "     1 commands kept as raw qmp: entries" in result.report
