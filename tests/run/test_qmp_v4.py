"""`run` reads the v4 dialect of the QMP-configuration series (machinedesc.plan.qmpdialect).

The dialect files are our own (tests/data/qmp-v4/): GreenSocs' published
files carry no license.
"""

from __future__ import annotations

import signal
import struct
from pathlib import Path

import pytest
from harness import Sandbox, patched_qemu, read_until

from machinedesc.errors import QmpFileError, UsageError
from machinedesc.plan import qmpdialect
from machinedesc.plan.qmpfile import parse

REPO = Path(__file__).resolve().parents[2]
SOC_V4 = REPO / "tests" / "data" / "qmp-v4" / "soc-v4.qmp"


def _read(text: str) -> list[tuple[int, str, dict[str, object]]]:
    qmp = parse(text, "f.qmp")
    size, _ = qmpdialect.ram_size(["-m", "size=64K"])
    out = qmpdialect.translate(qmp, size)
    return [(s.location.line if s.location else 0, s.command, dict(s.arguments)) for s in out.commands]


def test_the_soc_file_is_detected_as_v4_at_its_ram_addr_line() -> None:
    found = qmpdialect.detect(parse(SOC_V4.read_text(), "soc-v4.qmp"))
    assert (found.name, found.why) == ("v4", "line 5: ram-addr of /machine")


def test_a_plan_file_is_machinedesc_dialect() -> None:
    found = qmpdialect.detect(parse("x-machine-init\ndevice_add driver=serial-mm id=u\nx-exit-preconfig\n", "p"))
    assert found.name == "machinedesc"


def test_translation_of_each_v4_form() -> None:
    got = _read("qom-set path=/machine property=ram-addr value=0x80000000\n"
                "device_add driver=riscv.hart_array id=cpus cpu-type=sifive-e31-riscv-cpu num-harts=1\n"
                "device_add driver=riscv.sifive.plic id=plic num-sources=0x35 aperture-size=0x4000000\n"
                "sysbus-mmio-map device=plic addr=0xc000000\n"
                "qom-set path=plic property=unnamed-gpio-out[1] value=cpus/harts[0]/unnamed-gpio-in[11]\n")
    assert got == [
        (2, "x-machine-init", {}),
        (1, "device_add", {"driver": "sysbus-memory", "id": "ram", "size": 65536}),
        (1, "x-sysbus-mmio-map", {"device": "ram", "addr": 0x80000000}),
        (2, "device_add", {"driver": "riscv.hart_array", "id": "cpus", "cpu-type": "sifive-e31-riscv-cpu",
                           "num-harts": 1}),
        (3, "device_add", {"driver": "riscv.sifive.plic", "id": "plic", "num-sources": 53,
                           "aperture-size": 0x4000000}),
        (4, "x-sysbus-mmio-map", {"device": "plic", "addr": 0xc000000}),
        (5, "qom-set", {"path": "/machine/peripheral/plic", "property": "unnamed-gpio-out[1]",
                        "value": "/machine/peripheral/cpus/harts[0]/unnamed-gpio-in[11]"}),
    ]


def test_relative_paths_to_unknown_objects_stay_as_written() -> None:
    got = _read("device_add driver=serial-mm id=u\nqom-set path=other property=x value=a/b\n")
    assert got[-1] == (2, "qom-set", {"path": "other", "property": "x", "value": "a/b"})


def test_a_ram_id_taken_by_the_file_moves_aside() -> None:
    got = _read("qom-set path=/machine property=ram-addr value=0\ndevice_add driver=sysbus-memory id=ram size=1\n")
    assert got[1][2]["id"] == "ram-1"


def test_the_alias_form_is_the_alias_form_of_x_sysbus_mmio_map() -> None:
    got = _read("device_add driver=sysbus-memory id=m size=0x4000\n"
                "sysbus-mmio-map device=m addr=0x80000000\n"
                "sysbus-mmio-map device=m addr=0x1000 alias=true offset=0x2000 size=0x1000 priority=1\n"
                "sysbus-mmio-map device=m addr=0x20000000 mmio=0 alias=True size=0x800\n"
                "sysbus-mmio-map device=m addr=0x30000000 alias=false\n")
    assert got[2:] == [
        (2, "x-sysbus-mmio-map", {"device": "m", "addr": 0x80000000}),
        (3, "x-sysbus-mmio-map", {"device": "m", "addr": 0x1000, "offset": 0x2000, "size": 0x1000, "priority": 1}),
        # offset defaults to 0, as in the v4 series.
        (4, "x-sysbus-mmio-map", {"device": "m", "addr": 0x20000000, "mmio": 0, "size": 0x800, "offset": 0}),
        (5, "x-sysbus-mmio-map", {"device": "m", "addr": 0x30000000}),
    ]


@pytest.mark.parametrize(("text", "line", "col", "message"), [
    ("device_add driver=sysbus-memory id=m size=4096\nsysbus-mmio-map device=m addr=0 alias=true offset=0\n",
     2, 1, "sysbus-mmio-map alias=true: size= is missing"),
    ("device_add driver=sysbus-memory id=m size=4096\nsysbus-mmio-map device=m addr=0 offset=0 size=16\n",
     2, 1, "offset= and size= map a window of the region only with alias=true"),
    ("device_add driver=sysbus-memory id=m size=4096\nsysbus-mmio-map device=m addr=0 alias=maybe size=16\n",
     2, 1, "alias must be true or false, got 'maybe'"),
    ("device_add driver=arm-cpus id=cpus\n", 1, 1, "device type 'arm-cpus' exists only in GreenSocs' QEMU fork"),
    ("device_add driver=x id=a\nsysbus-mmio-map device=a addr=0 region=1\n", 2, 1,
     "sysbus-mmio-map: unknown argument 'region'"),
    ("qom-set path=/machine property=ram-addr value=0\n", 1, 1, "no device_add follows"),
    # Set once the machine is initialized: it would have been left out (no RAM), silently.
    ("device_add driver=x id=a\nqom-set path=/machine property=ram-addr value=0\n", 2, 1,
     "ram-addr is set after the machine was initialized (by line 1)"),
    ("x-machine-init\nqom-set path=/machine property=ram-addr value=0\ndevice_add driver=x id=a\n", 2, 1,
     "ram-addr is set after the machine was initialized (by line 1)"),
])
def test_what_cannot_be_mapped_is_named_at_its_line(text: str, line: int, col: int, message: str) -> None:
    with pytest.raises(QmpFileError) as exc:
        _read(text)
    assert (exc.value.location.line, exc.value.location.col) == (line, col)
    assert message in str(exc.value)


def test_ram_addr_before_an_explicit_x_machine_init_places_the_ram_there() -> None:
    """A v4 file that initializes the machine itself: the RAM follows its x-machine-init (it was left out)."""
    assert _read("qom-set path=/machine property=ram-addr value=0x80000000\nx-machine-init\n"
                 "device_add driver=x id=a\n") == [
        (2, "x-machine-init", {}),
        (1, "device_add", {"driver": "sysbus-memory", "id": "ram", "size": 65536}),
        (1, "x-sysbus-mmio-map", {"device": "ram", "addr": 0x80000000}),
        (3, "device_add", {"driver": "x", "id": "a"})]


def test_ram_addr_without_m_is_an_error_at_its_line() -> None:
    with pytest.raises(QmpFileError, match="no -m SIZE") as exc:
        qmpdialect.translate(parse("qom-set path=/machine property=ram-addr value=0\n", "f"), None)
    assert exc.value.location.line == 1


@pytest.mark.parametrize(("args", "size"), [(["-m", "64K"], 65536), (["-m", "size=128M"], 128 << 20),
                                            (["-m", "2"], 2 << 20), (["-smp", "2"], None)])
def test_ram_size_reads_qemus_m(args: list[str], size: int | None) -> None:
    assert qmpdialect.ram_size(args) == (size, [a for a in args if a not in ("-m",) and args[0] != "-m"])


def test_ram_size_refuses_what_it_cannot_map() -> None:
    with pytest.raises(UsageError):
        qmpdialect.ram_size(["-m", "1G,slots=2,maxmem=4G"])


def test_v4_file_runs_the_demo_firmware(sandbox: Sandbox, firmware: Path) -> None:
    qemu = patched_qemu("riscv64")
    f = sandbox.base / "soc-v4.qmp"
    loader = f"device_add driver=loader file={firmware / 'riscv64-hello.elf'}\n"
    f.write_text(SOC_V4.read_text().replace("x-exit-preconfig\n", loader + "x-exit-preconfig\n"))
    res = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(qemu), "--", "-m", "128M", "-smp", "2",
                                        "-nodefaults", "-chardev", "stdio,id=serial0"))
    assert res.rc == 0, res.stderr
    assert "hello from timer interrupt" in res.stdout
    assert f"reading {f} in the v4 dialect (line 5: ram-addr of /machine)" in res.stderr
    # As the file is, with the firmware on run's command line (docs/apply.md, "Dialects").
    res = sandbox.call(sandbox.argv_run(str(SOC_V4), "--qemu", str(qemu), "--", "-m", "128M", "-smp", "2",
                                        "-nodefaults", "-chardev", "stdio,id=serial0",
                                        "-device", f"loader,file={firmware / 'riscv64-hello.elf'}"))
    assert res.rc == 0, res.stderr
    assert "hello from timer interrupt" in res.stdout


def test_a_refused_v4_map_names_the_command_the_file_wrote(sandbox: Sandbox) -> None:
    f = sandbox.base / "bad-v4.qmp"
    f.write_text(SOC_V4.read_text().replace("x-exit-preconfig\n", "sysbus-mmio-map device=nosuch addr=0x1000\n"
                                                                  "x-exit-preconfig\n"))
    line = f.read_text().splitlines().index("sysbus-mmio-map device=nosuch addr=0x1000") + 1
    res = sandbox.call(sandbox.argv_run(str(f), "--qemu", str(patched_qemu("riscv64")), "--", "-m", "128M",
                                        "-smp", "2", "-nodefaults", "-chardev", "stdio,id=serial0"))
    assert res.rc == 4, res.stderr
    lines = res.stderr.splitlines()
    at = next(k for k, text in enumerate(lines) if text.startswith(f"{f}:{line}:1: step "))
    assert lines[at + 1] == "  x-sysbus-mmio-map device=nosuch addr=4096"
    assert lines[at + 2] == "  (the file's sysbus-mmio-map, sent as x-sysbus-mmio-map)"
    assert "Device 'nosuch' not found" in res.stderr
    sandbox.assert_clean()


def test_forcing_the_machinedesc_dialect_says_so(sandbox: Sandbox) -> None:
    qemu = patched_qemu("riscv64")
    res = sandbox.call(sandbox.argv_run(str(SOC_V4), "--dialect", "machinedesc", "--qemu", str(qemu)))
    assert "in the machinedesc dialect (--dialect)" in res.stderr
    assert res.rc == 3, res.stderr
    assert "missing QMP commands: sysbus-mmio-map" in res.stderr


WINDOWS_V4 = REPO / "tests" / "data" / "qmp-v4" / "windows-v4.qmp"
# RISC-V code: write 'X' through the window at 0x20000000 (region offset 0x1000) and 'Y' through the
# one at 0x30000000 (offset 0x1400), then print the region's byte 0x1000 (at 0x60001000) and byte
# 0x1400 read back through the first window (0x20000400): "XY" if both windows show the region.
WINDOWS_CODE = struct.pack("<13I", 0x100003B7, 0x200002B7, 0x05800E13, 0x01C28023, 0x30000337, 0x05900E13,
                           0x01C30023, 0x60001EB7, 0x000ECF03, 0x01E38023, 0x4002CF03, 0x01E38023, 0x0000006F)


def _riscv_elf(entry: int, code: bytes) -> bytes:
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header += struct.pack("<HHIQQQIHHHHHH", 2, 243, 1, entry, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    return header + struct.pack("<IIQQQQQQ", 1, 5, 120, entry, entry, len(code), len(code), 4) + code


def test_a_v4_file_with_windows_runs_and_the_guest_sees_them(sandbox: Sandbox) -> None:
    """The alias form (alias=true) through run on the patched QEMU: the guest reads the region through both windows."""
    qemu = patched_qemu("riscv64")
    elf = sandbox.base / "windows.elf"
    elf.write_bytes(_riscv_elf(0x80000000, WINDOWS_CODE))
    f = sandbox.base / "windows-v4.qmp"
    f.write_text(WINDOWS_V4.read_text() + f"device_add driver=loader file={elf} cpu-num=0\nx-exit-preconfig\n")
    proc = sandbox.start(sandbox.argv_run(str(f), "--qemu", str(qemu), "--", "-m", "64K",
                                          "-nodefaults", "-chardev", "stdio,id=serial0"))
    try:
        assert proc.stdout is not None
        out = read_until(proc.stdout.fileno(), b"XY", timeout=20)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert b"XY" in out, err.decode(errors="replace")
    assert b"in the v4 dialect (line 5: ram-addr of /machine)" in err
    sandbox.assert_clean()


def test_a_v4_file_with_windows_imports_as_a_board_with_windows(tmp_path: Path) -> None:
    from machinedesc.plan.pipeline import load_plan
    from machinedesc.plan.qmpimport import import_qmp

    qmp = qmpdialect.translate(parse(WINDOWS_V4.read_text(), "windows-v4.qmp"), 65536)
    result = import_qmp(qmp, "riscv64", "windows")
    assert ("  data: {type: sysbus-memory, props: {size: 0x2000}, mmio: [{addr: 0x60000000}, "
            "{addr: 0x20000000, offset: 0x1000, size: 0x1000}, "
            "{addr: 0x30000000, priority: 1, offset: 0x1400, size: 0x800}]}") in result.yaml
    assert "     2 MMIO windows (alias form, into the components' mmio with offset and size)" in result.report
    board = tmp_path / "windows.yaml"
    board.write_text(result.yaml, encoding="utf-8")
    maps = [s.arguments for s in load_plan(board).steps if s.command == "x-sysbus-mmio-map"]
    assert {"device": "data", "addr": 0x30000000, "priority": 1, "offset": 0x1400, "size": 0x800} in maps


def test_import_errors_name_the_v4_command_the_file_wrote() -> None:
    """The dialect translates sysbus-mmio-map; an import error still names what is in the user's file."""
    from machinedesc.plan.qmpimport import import_qmp

    text = ("device_add driver=riscv.sifive.plic id=plic num-sources=53\n"
            "sysbus-mmio-map device=plic addr=0xc000000 priority=0x80000000\n")
    qmp = qmpdialect.translate(parse(text, "f.qmp"), None)
    with pytest.raises(QmpFileError) as err:
        import_qmp(qmp, "riscv64", "f")
    assert str(err.value).startswith("f.qmp:2:1: sysbus-mmio-map: cannot import this command: priority=2147483648 "
                                     "is out of range"), str(err.value)
