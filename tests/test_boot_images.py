"""Damaged boot images are refused at their option or board line, and the boot cache stays bounded."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest

from machinedesc.boot import dtb
from machinedesc.cli import main
from machinedesc.errors import BoardError
from machinedesc.plan.pipeline import load_plan

FIRMWARE = Path(__file__).parents[1] / "tests" / "data" / "boot"
RISCV = FIRMWARE / "riscv-mini.yaml"
EM_RISCV = 243


def _elf(path: Path, size: int = 4096, phoff: int = 64) -> Path:
    """A RISC-V ELF64 with one PT_LOAD of ``size`` bytes at 0x80000000 (data at file offset 0x1000)."""
    header = struct.pack("<4sBBBBB7sHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, b"\0" * 7, 2, EM_RISCV, 1,
                         0x80000000, phoff, 0, 0, 64, 56, 1, 64, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0x1000, 0x80000000, 0x80000000, size, size, 8)
    body = (header + phdr).ljust(0x1000, b"\0") + b"\x13" * size
    path.write_bytes(body)
    return path


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MACHINEDESC_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _plan_fails(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(["plan", str(RISCV), "--dtb", "none", *args])
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert "Traceback" not in err
    return err


def test_a_truncated_elf_is_refused_at_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    elf = _elf(tmp_path / "fw.elf")
    elf.write_bytes(elf.read_bytes()[:0x1000 + 100])
    err = _plan_fails(capsys, "--bios", str(elf))
    assert err.startswith(f"--bios: bios {elf} is a truncated ELF file: loadable segment 0 needs bytes "
                          f"[0x1000, 0x2000) of the file, which has 4,196 bytes\n  hint: "), err


def test_a_cut_program_header_table_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    elf = _elf(tmp_path / "fw.elf")
    elf.write_bytes(elf.read_bytes()[:80])
    err = _plan_fails(capsys, "--bios", str(elf))
    assert "is a truncated ELF file: its program header table (e_phoff 0x40, 1 entry) ends beyond " \
           "the file's 80 bytes" in err, err


def test_a_corrupt_phoff_in_the_board_is_an_error_at_its_line(tmp_path: Path) -> None:
    _elf(tmp_path / "fw.elf", phoff=0xFFFFFFFF00)
    board = tmp_path / "b.yaml"
    board.write_text(RISCV.read_text() + "\nboot:\n  bios: fw.elf\n  dtb: none\n")
    with pytest.raises(BoardError) as err:
        load_plan(board)
    line = len(RISCV.read_text().splitlines()) + 3
    assert str(err.value).splitlines()[0] == (
        f"{board}:{line}:9: boot.bios: bios {tmp_path}/fw.elf is a corrupt ELF file: its program header table "
        "(e_phoff 0xffffffff00, 1 entry) ends beyond the file's 8,192 bytes")


def test_a_bad_elf_class_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    elf = tmp_path / "fw.elf"
    elf.write_bytes(b"\x7fELF\x07\x01" + b"\0" * 100)
    assert "is a corrupt ELF file: its class or byte order (e_ident) is not valid" in \
        _plan_fails(capsys, "--bios", str(elf))


@pytest.mark.parametrize("data", [
    pytest.param(gzip.compress(bytes(range(256)) * 256, mtime=0)[:200], id="truncated"),
    pytest.param(gzip.compress(b"", mtime=0), id="empty"),
])
def test_a_refused_gzip_leaves_nothing_in_the_cache(tmp_path: Path, _cache: Path, data: bytes,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    packed = tmp_path / "vmlinuz"
    packed.write_bytes(data)
    err = _plan_fails(capsys, "--bios", str(packed))
    assert f"--bios: bios {packed} is a " in err
    assert "truncated gzip file" in err or "unpacks to nothing" in err
    assert not list((_cache / "boot").glob("*")) if (_cache / "boot").exists() else True


def test_the_dtb_cache_keeps_the_most_recent_trees(_cache: Path) -> None:
    first = dtb.cached_dtb(b"tree 0")
    paths = [dtb.cached_dtb(f"tree {n}".encode()) for n in range(1, dtb.KEEP_DTBS + 8)]
    kept = sorted((_cache / "boot").glob("*.dtb"))
    assert len(kept) == dtb.KEEP_DTBS
    assert not first.exists() and all(p.exists() for p in paths[-dtb.KEEP_DTBS:])
    # Reuse refreshes an entry: it survives the next new tree.
    oldest = min(kept, key=lambda p: p.stat().st_mtime_ns)
    again = dtb.cached_dtb(oldest.read_bytes())
    dtb.cached_dtb(b"one more")
    assert again.exists()
