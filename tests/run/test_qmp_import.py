"""`machinedesc import-qmp`: a board from a QMP file, with a coverage report (machinedesc.plan.qmpimport)."""

from __future__ import annotations

from pathlib import Path

from harness import Sandbox, patched_qemu

from machinedesc.plan import qmpdialect
from machinedesc.plan.pipeline import load_plan
from machinedesc.plan.qmpfile import parse
from machinedesc.plan.qmpimport import import_qmp

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
    assert "  cpus-hart${i}: {count: 1, type: sifive-e31-riscv-cpu, parent: cpus, props: {mhartid: \"${i}\"}}" in yaml
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
    import pytest

    from machinedesc.errors import QmpFileError

    with pytest.raises(QmpFileError) as err:
        _imported("device_add driver=riscv.sifive.test id=u\nsysbus-mmio-map device=u addr=notanumber\n")
    assert str(err.value).startswith("f.qmp:2:1: x-sysbus-mmio-map: cannot import this command: invalid literal")
    assert err.value.exit_code == 2


def test_a_file_that_adds_no_device_gives_a_board_that_validates(tmp_path: Path) -> None:
    from machinedesc.plan.pipeline import load_board

    yaml, _ = _imported("# only a comment\n")
    assert "components: {}" in yaml
    (tmp_path / "b.yaml").write_text(yaml, encoding="utf-8")
    assert load_board(tmp_path / "b.yaml").components == ()
