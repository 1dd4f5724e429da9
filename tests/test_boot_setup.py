"""Boot placement without QEMU: where images go, what is refused and where the error points."""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
from pathlib import Path

import pytest
from boot_dts import arm64_mini_dts, compile_dts, riscv_mini_dts

from machinedesc.boot import fdt
from machinedesc.errors import BoardError
from machinedesc.plan.pipeline import load_plan
from machinedesc.plan.qmpfile import parse as parse_qmp_text
from machinedesc.plan.render import render_qmp

DATA = Path(__file__).parent / "data" / "boot"
RISCV = DATA / "riscv-mini.yaml"
ARM = DATA / "arm64-mini.yaml"
REPO_BOARDS = Path(__file__).parents[1] / "boards"
EM_RISCV, EM_AARCH64 = 243, 183
MiB = 1 << 20


def make_elf(path: Path, machine: int, segments: list[tuple[int, int]], entry: int | None = None) -> Path:
    """A little-endian ELF64 executable with one PT_LOAD per (paddr, size), each filled with zeros."""
    phoff, phnum = 64, len(segments)
    data_off = phoff + 56 * phnum
    header = struct.pack("<4sBBBBB7sHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, b"\0" * 7, 2, machine, 1,
                         entry if entry is not None else segments[0][0], phoff, 0, 0, 64, 56, phnum, 64, 0, 0)
    phdrs, body = b"", b""
    for paddr, size in segments:
        phdrs += struct.pack("<IIQQQQQQ", 1, 5, data_off + len(body), paddr, paddr, size, size, 8)
        body += b"\0" * size
    path.write_bytes(header + phdrs + body)
    return path


def arm64_image(path: Path, size: int = 64 * 1024, text_offset: int = 0, image_size: int = 2 * MiB) -> Path:
    """A fake arm64 Linux Image: the 64-byte header (booting.rst) and zeros."""
    head = struct.pack("<IIQQQQQQ4sI", 0x14000000, 0, text_offset, image_size, 0xA, 0, 0, 0, b"ARM\x64", 0)
    path.write_bytes(head + b"\0" * (size - len(head)))
    return path


@pytest.fixture
def rv_dtb(tmp_path: Path) -> Path:
    return compile_dts(riscv_mini_dts(2), tmp_path / "rv.dtb")


@pytest.fixture
def arm_dtb(tmp_path: Path) -> Path:
    return compile_dts(arm64_mini_dts(2), tmp_path / "arm.dtb")


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MACHINEDESC_CACHE", str(tmp_path / "cache"))


def notes(plan_text: str) -> dict[str, str]:
    return {line.split(":", 1)[0][len("# boot-"):]: line.split(":", 1)[1].strip()
            for line in plan_text.splitlines() if line.startswith("# boot-")}


def loaders(plan_text: str) -> list[str]:
    return [line for line in plan_text.splitlines() if line.startswith("device_add driver=loader")]


def test_riscv_raw_firmware_and_kernel_placed_as_virt(tmp_path: Path, rv_dtb: Path) -> None:
    bios = tmp_path / "fw.bin"
    bios.write_bytes(b"\x13" * 272448)
    kernel = tmp_path / "k.bin"
    kernel.write_bytes(b"\x13" * 4096)
    plan = load_plan(RISCV, boot={"bios": str(bios), "kernel": str(kernel), "dtb": str(rv_dtb)})
    text = render_qmp(plan)
    n = notes(text)
    assert "at [0x80000000, 0x80042840)" in n["bios"]
    assert "at [0x80200000, 0x80201000)" in n["kernel"]  # firmware end rounded up to 2 MiB
    size = os.path.getsize(rv_dtb)
    dtb_at = (0x90000000 - size) // (2 * MiB) * (2 * MiB)  # end of 256 MiB RAM minus the DTB, 2 MiB down
    assert f"at {dtb_at:#x}" in n["dtb"]
    assert f"a1 = {dtb_at:#x}" in n["reset"] and "jump to 0x80000000" in n["reset"]
    assert "resetvec=4096" in text and text.count("resetvec=4096") == 2
    assert any(f"file={bios.resolve()} addr=2147483648 force-raw=true" in ln for ln in loaders(text))
    # A plan file reads back with its boot headers (one of each kind).
    parsed = parse_qmp_text(text, "p.qmp")
    assert parsed.header["boot-reset"].startswith("88 bytes at 0x1000")


def test_plans_are_deterministic(tmp_path: Path, rv_dtb: Path) -> None:
    bios = make_elf(tmp_path / "fw.elf", EM_RISCV, [(0x80000000, 4096)])
    one = render_qmp(load_plan(RISCV, boot={"bios": str(bios), "dtb": str(rv_dtb), "append": "x=1"}))
    two = render_qmp(load_plan(RISCV, boot={"bios": str(bios), "dtb": str(rv_dtb), "append": "x=1"}))
    assert one == two


def test_aarch64_elf_on_a_riscv_board_is_refused_at_the_option(tmp_path: Path, rv_dtb: Path) -> None:
    elf = make_elf(tmp_path / "a64.elf", EM_AARCH64, [(0x40000000, 4096)])
    with pytest.raises(BoardError) as err:
        load_plan(RISCV, boot={"bios": str(elf), "dtb": str(rv_dtb)})
    text = str(err.value)
    assert f"--bios: bios {elf} is an AArch64 64-bit ELF, but the board's CPUs run RISC-V 64-bit code" \
        in text, text


def test_arm64_image_on_a_riscv_board_is_refused(tmp_path: Path, rv_dtb: Path) -> None:
    image = arm64_image(tmp_path / "Image")
    with pytest.raises(BoardError, match="is an arm64 Linux Image, but the board's system is riscv64"):
        load_plan(RISCV, boot={"kernel": str(image), "dtb": str(rv_dtb)})


def test_segment_outside_memory_names_file_and_range(tmp_path: Path, rv_dtb: Path) -> None:
    elf = make_elf(tmp_path / "fw.elf", EM_RISCV, [(0x80000000, 4096), (0x20000000, 0x100)])
    with pytest.raises(BoardError) as err:
        load_plan(RISCV, boot={"bios": str(elf), "dtb": str(rv_dtb)})
    assert (f"bios {elf}: segment [0x20000000, 0x20000100) is not in the board's memory "
            "(memories: ram ram [0x80000000, 0x90000000))") in str(err.value)


def test_boot_section_errors_point_at_the_board(tmp_path: Path) -> None:
    board = tmp_path / "b.yaml"
    board.write_text(RISCV.read_text() + "\nboot:\n  bios: missing.bin\n  dtb: none\n")
    with pytest.raises(BoardError) as err:
        load_plan(board)
    line = len(RISCV.read_text().splitlines()) + 3  # after a blank line and "boot:"
    assert str(err.value).splitlines()[0] == (
        f"{board}:{line}:9: boot.bios: bios {tmp_path}/missing.bin cannot read: No such file or directory")


def test_boot_section_files_are_relative_to_the_board(tmp_path: Path) -> None:
    board = tmp_path / "b.yaml"
    make_elf(tmp_path / "fw.elf", EM_RISCV, [(0x80000000, 4096)])
    board.write_text(RISCV.read_text() + "\nboot:\n  bios: fw.elf\n  dtb: none\n")
    text = render_qmp(load_plan(board))
    assert f"file={tmp_path / 'fw.elf'}" in text


def test_initrd_needs_a_kernel(tmp_path: Path, rv_dtb: Path) -> None:
    bios = make_elf(tmp_path / "fw.elf", EM_RISCV, [(0x80000000, 4096)])
    initrd = tmp_path / "initrd"
    initrd.write_bytes(b"x" * 100)
    with pytest.raises(BoardError, match="--initrd: initrd needs a kernel"):
        load_plan(RISCV, boot={"bios": str(bios), "initrd": str(initrd), "dtb": str(rv_dtb)})


def test_arm64_kernel_initrd_dtb_as_virt(tmp_path: Path, arm_dtb: Path) -> None:
    image = arm64_image(tmp_path / "Image")
    initrd = tmp_path / "initrd"
    initrd.write_bytes(b"x" * 5000)
    text = render_qmp(load_plan(ARM, boot={"kernel": str(image), "initrd": str(initrd), "dtb": str(arm_dtb),
                                           "append": "console=ttyAMA0"}))
    n = notes(text)
    assert "at [0x40200000, 0x40400000)" in n["kernel"]  # text_offset 0 -> +2 MiB; image_size 2 MiB
    assert "at [0x48000000, 0x48001388)" in n["initrd"]  # RAM + min(RAM/2, 128 MiB)
    assert "at 0x48200000" in n["dtb"]  # after the initrd, 2 MiB aligned
    assert "x0 = 0x48200000 (DTB)" in n["reset"] and "branch to 0x40200000" in n["reset"]
    assert "rvbar=1073741824 start-powered-off=false" in text and "start-powered-off=true" in text


def test_gzip_image_is_unpacked(tmp_path: Path, arm_dtb: Path) -> None:
    raw = arm64_image(tmp_path / "Image")
    packed = tmp_path / "vmlinuz"
    packed.write_bytes(gzip.compress(raw.read_bytes(), mtime=0))
    n = notes(render_qmp(load_plan(ARM, boot={"kernel": str(packed), "dtb": str(arm_dtb)})))
    assert "unpacked from gzip" in n["kernel"] and "at [0x40200000," in n["kernel"]


def test_arm_raw_firmware_goes_to_flash_and_dtb_to_ram_base(tmp_path: Path, arm_dtb: Path) -> None:
    bios = tmp_path / "u-boot.bin"
    bios.write_bytes(b"\0" * 8192)
    text = render_qmp(load_plan(ARM, boot={"bios": str(bios), "dtb": str(arm_dtb)}))
    n = notes(text)
    assert "at [0x0, 0x2000)" in n["bios"] and "at 0x40000000" in n["dtb"]
    assert "rvbar = 0x0" in n["cpus"] and "reset" not in n


def fdtget(dtb: Path, node: str, prop: str, kind: str = "s") -> str:
    """What fdtget (device-tree-compiler) reads from ``dtb``: the tools' own reader, not machinedesc's."""
    out = subprocess.run(["fdtget", "-t", kind, str(dtb), node, prop], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_append_and_initrd_land_in_chosen(tmp_path: Path, arm_dtb: Path) -> None:
    data = fdt.set_chosen(arm_dtb.read_bytes(), "-console=ttyAMA0 quiet", (0x48000000, 0x148001000))
    out = subprocess.run(["dtc", "-I", "dtb", "-O", "dts", "-"], input=data, capture_output=True, check=True)
    dts = out.stdout.decode()
    assert 'bootargs = "-console=ttyAMA0 quiet";' in dts   # a leading "-" is a value, not an option
    assert "linux,initrd-start = <0x00 0x48000000>;" in dts and "linux,initrd-end = <0x01 0x48001000>;" in dts
    assert 'model = "arm64-mini";' in dts  # the rest is kept
    edited = tmp_path / "edited.dtb"
    edited.write_bytes(data)
    assert fdtget(edited, "/chosen", "bootargs") == "-console=ttyAMA0 quiet"
    assert fdtget(edited, "/chosen", "linux,initrd-end", "x") == "1 48001000"
    assert fdtget(edited, "/chosen", "stdout-path") == "/pl011@9000000"
    assert fdt.set_chosen(arm_dtb.read_bytes()) == arm_dtb.read_bytes()  # nothing to set: unchanged


def test_chosen_of_generated_and_given_trees_read_back(tmp_path: Path) -> None:
    """--append and --initrd reach /chosen of the DTB the plan loads, generated (set in the source before dtc
    compiles it) or given (fdtput on a copy), and the generated source compiles without a warning."""
    image = arm64_image(tmp_path / "Image")
    initrd = tmp_path / "initrd"
    initrd.write_bytes(b"x" * 5000)
    board = REPO_BOARDS / "arm64-virt.yaml"
    boot = {"kernel": str(image), "initrd": str(initrd), "append": "console=ttyAMA0 root=/dev/vda"}
    generated = _loaded_dtb(render_qmp(load_plan(board, boot=boot)))
    given = tmp_path / "given.dtb"
    given.write_bytes(generated.read_bytes())
    again = _loaded_dtb(render_qmp(load_plan(board, boot={**boot, "append": "quiet", "dtb": str(given)})))
    for dtb, args in ((generated, "console=ttyAMA0 root=/dev/vda"), (again, "quiet")):
        assert fdtget(dtb, "/chosen", "bootargs") == args
        assert fdtget(dtb, "/chosen", "linux,initrd-start", "x") == "0 44000000"  # RAM + 64 MiB
        assert fdtget(dtb, "/chosen", "linux,initrd-end", "x") == "0 44001388"
        assert fdtget(dtb, "/chosen", "stdout-path") == "/pl011@9000000"
    check = subprocess.run(["dtc", "-I", "dtb", "-O", "dts", "-o", "/dev/null", str(generated)],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr


def _loaded_dtb(plan_text: str) -> Path:
    (line,) = [ln for ln in loaders(plan_text) if "id=boot-dtb" in ln]
    return Path(line.split(" file=", 1)[1].split(" ", 1)[0])


def test_not_a_dtb_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "x.dtb"
    bogus.write_bytes(b"not a device tree at all, but long enough for a header")
    bios = make_elf(tmp_path / "fw.elf", EM_RISCV, [(0x80000000, 4096)])
    with pytest.raises(BoardError) as err:
        load_plan(RISCV, boot={"bios": str(bios), "dtb": str(bogus), "append": "a"})
    assert f"--dtb: dtb {bogus} is not a device tree: dtc says: Blob has incorrect magic number" in str(err.value)
    truncated = tmp_path / "cut.dtb"
    truncated.write_bytes(compile_dts(riscv_mini_dts(1), tmp_path / "ok.dtb").read_bytes()[:200])
    with pytest.raises(BoardError, match="is not a device tree: dtc says: "):
        load_plan(RISCV, boot={"bios": str(bios), "dtb": str(truncated)})
    big = tmp_path / "big.dtb"
    big.write_bytes(bytes(fdt.MAX_DTB + 1))
    with pytest.raises(BoardError, match="is larger than 2 MiB"):
        load_plan(RISCV, boot={"bios": str(bios), "dtb": str(big)})


def test_missing_fdtput_is_an_install_error(tmp_path: Path, arm_dtb: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from machinedesc.errors import InstallError

    which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "fdtput" else which(name))
    with pytest.raises(InstallError, match=r"fdtput \(from device-tree-compiler\) is not installed; install dtc: "
                                           "apt-get install device-tree-compiler"):
        fdt.set_chosen(arm_dtb.read_bytes(), "quiet")


def test_a_changed_image_is_planned_again(tmp_path: Path, rv_dtb: Path) -> None:
    bios = tmp_path / "fw.bin"
    bios.write_bytes(b"\x13" * 4096)
    first = load_plan(RISCV, boot={"bios": str(bios), "dtb": str(rv_dtb)}, cache=True)
    assert load_plan(RISCV, boot={"bios": str(bios), "dtb": str(rv_dtb)}, cache=True) == first
    bios.write_bytes(b"\x13" * 8192)  # same name, other contents: the cache entry is stale
    again = load_plan(RISCV, boot={"bios": str(bios), "dtb": str(rv_dtb)}, cache=True)
    assert "at [0x80000000, 0x80002000)" in notes(render_qmp(again))["bios"]


def test_a_fifo_is_refused_as_an_image(tmp_path: Path) -> None:
    from machinedesc.cli import main

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(SystemExit) as exit_:
        main(["plan", str(RISCV), "--kernel", str(fifo)])
    assert exit_.value.code == 2


def test_rom_overlapping_a_device_is_refused_at_boot_rom(tmp_path: Path) -> None:
    board = tmp_path / "b.yaml"
    make_elf(tmp_path / "fw.elf", EM_RISCV, [(0x80000000, 4096)])
    board.write_text(RISCV.read_text() + "\nboot:\n  bios: fw.elf\n  dtb: none\n  rom: 0x100000\n")
    with pytest.raises(BoardError) as err:
        load_plan(board)
    line = len(RISCV.read_text().splitlines()) + 5
    assert (f"b.yaml:{line}:8: boot.rom: the boot ROM for the reset code [0x100000, 0x101000) overlaps test "
            "region 0 [0x100000, 0x101000)") in str(err.value)


def test_default_rom_overlapping_a_region_of_the_type_datas_size_is_refused_at_the_region(tmp_path: Path) -> None:
    # An SRAM at 0 whose size comes from its props (no size: in the mapping) holds 0x1000, where the
    # RISC-V reset code goes by default: the error is at the SRAM's mapping, with what to write.
    board = tmp_path / "b.yaml"
    make_elf(tmp_path / "fw.elf", EM_RISCV, [(0x80000000, 4096)])
    text = RISCV.read_text().replace("components:\n", "components:\n  sram: {type: sysbus-memory, "
                                      "props: {size: 64 KiB}, mmio: 0x0}\n", 1)
    board.write_text(text + "\nboot:\n  bios: fw.elf\n  dtb: none\n")
    with pytest.raises(BoardError) as err:
        load_plan(board)
    line = text.splitlines().index("components:") + 2
    col = text.splitlines()[line - 1].index("0x0}") + 1
    assert str(err.value) == (
        f"{board}:{line}:{col}: components.sram.mmio: the boot ROM for the reset code [0x1000, 0x2000) overlaps "
        "sram region 0 [0x0, 0x10000)\n  hint: give the board a free address for it: boot: {rom: ADDR}, "
        "4 KiB outside every region (docs/boot.md)")


def test_firmware_elf_of_another_architecture_is_refused(tmp_path: Path) -> None:
    elf = make_elf(tmp_path / "a64.elf", EM_AARCH64, [(0x40000000, 4096)])
    with pytest.raises(BoardError) as err:
        load_plan(REPO_BOARDS / "soc.yaml", firmware=[elf])
    assert str(err.value) == (f"--firmware {elf}: is an AArch64 64-bit ELF, but the board's CPUs run "
                              "RISC-V 64-bit code\n  hint: give the board an image built for its architecture")


def test_plan_command_line_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from machinedesc.cli import main

    elf = make_elf(tmp_path / "fw.elf", EM_RISCV, [(0x80000000, 4096)], entry=0x80000010)
    with pytest.raises(SystemExit) as exit_:
        main(["plan", str(RISCV), "--bios", str(elf), "--dtb", "none"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert f"# boot-bios: {elf} (ELF, entry 0x80000010) [0x80000000, 0x80001000)" in out
    assert "a1 = 0x0 (DTB)" in out and "jump to 0x80000010" in out
    assert f"device_add driver=loader id=boot-bios file={elf}\n" in out


def test_an_rv32_elf_fits_a_riscv64_board_of_rv32_harts(tmp_path: Path) -> None:
    """qemu-system-riscv64 runs RV32 CPUs (an FE310's E31): their ELF class is 32, the system's name aside."""
    from machinedesc.boot.images import image_system

    assert image_system("riscv64", ["sifive-e31-riscv-cpu"]) == "riscv32"
    assert image_system("riscv64", ["sifive-e31-riscv-cpu", "rv64-riscv-cpu"]) == "riscv64"
    assert image_system("riscv64", []) == "riscv64"
    assert image_system("aarch64", ["cortex-a57-arm-cpu"]) == "aarch64"


def test_firmware_no_cpu_starts_in_is_a_note_at_the_first_cpu(tmp_path: Path) -> None:
    # riscv-mini's harts keep QEMU's default resetvec (0x1000): the note is at their props.
    elf = make_elf(tmp_path / "fw.elf", EM_RISCV, [(0x80000000, 4096)])
    notes = load_plan(RISCV, firmware=[elf]).notes
    assert notes == (
        "note: tests/data/boot/riscv-mini.yaml:24:7: --firmware: no hart starts inside the firmware: hart0 starts "
        "at 0x1000 (resetvec, the default), the ELF entry is 0x80000000 and QEMU's loader sets no PC",
        "  hint: set the harts' resetvec to the entry (props: {resetvec: ...}), or give the board a boot: section "
        "(docs/boot.md)")
    board = tmp_path / "b.yaml"
    board.write_text(RISCV.read_text().replace("      mhartid: ${i}\n", "      mhartid: ${i}\n      resetvec: 0x80000000\n"))
    assert load_plan(board, firmware=[elf]).notes == ()


def test_an_arm_cpu_starts_at_rvbar_0_by_default(tmp_path: Path) -> None:
    # The type database has no default for rvbar: QEMU's (0, target/arm/cpu.c) is used.
    elf = make_elf(tmp_path / "fw.elf", EM_AARCH64, [(0x40000000, 4096)])
    notes = load_plan(ARM, firmware=[elf]).notes
    assert len(notes) == 2 and "no CPU starts inside the firmware: cpu0 starts at 0x0 (rvbar, the default)" \
        in notes[0], notes
    low = make_elf(tmp_path / "low.elf", EM_AARCH64, [(0x0, 4096), (0x40000000, 4096)])
    assert load_plan(ARM, firmware=[low]).notes == ()  # a segment holds the reset vector


def test_firmware_no_hart_starts_in_is_a_note(tmp_path: Path) -> None:
    # soc.yaml's harts start at the start of RAM (resetvec), where this ELF is.
    inside = make_elf(tmp_path / "in.elf", EM_RISCV, [(0x80000000, 4096)])
    assert not [n for n in load_plan(REPO_BOARDS / "soc.yaml", firmware=[inside], cache=False).notes
                if "no hart starts" in n]
    # Linked elsewhere: QEMU's loader (no cpu-num) sets no PC, the harts run RAM's zeros.
    elsewhere = make_elf(tmp_path / "out.elf", EM_RISCV, [(0x80200000, 4096)], entry=0x80200000)
    notes = load_plan(REPO_BOARDS / "soc.yaml", firmware=[elsewhere], cache=False).notes
    assert any("--firmware: no hart starts inside the firmware: " in n and "the ELF entry is 0x80200000" in n
               for n in notes), notes
    # A boot set-up places reset code of its own: no note.
    notes = load_plan(REPO_BOARDS / "soc.yaml", firmware=[elsewhere], cache=False,
                      boot={"bios": str(inside)}).notes
    assert not [n for n in notes if "no hart starts" in n]
