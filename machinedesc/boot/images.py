"""Guest image files: ELF or raw (gzip-compressed raw is unpacked), checked against the board's architecture.

An ELF's loadable segments (``p_paddr``, ``p_memsz``: where QEMU's ELF
loader puts them) are read with pyelftools; a raw image is placed by
``boot.virt`` and may carry a Linux Image header (arm64: magic ``ARM\\x64``
at 0x38, ``text_offset`` at 8, ``image_size`` at 16; RISC-V: ``RSC\\x05`` at
0x34), which says both its architecture and how much memory it needs.

Sources: Linux ``Documentation/arch/arm64/booting.rst`` and
``Documentation/arch/riscv/boot-image-header.rst``; QEMU 10.0 ``hw/arm/boot.c``
``load_aarch64_image`` (gzip unpacked by the loader, at most 256 MiB).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..storage import FileProblem, cache_dir, check_regular, keep_newest, read_regular, write_file

#: The largest unpacked gzip image (QEMU's LOAD_IMAGE_MAX_GUNZIP_BYTES).
MAX_GUNZIP = 256 << 20
#: The largest gzip file read (it is read whole to be unpacked).
MAX_GZIP_FILE = 256 << 20

#: How many unpacked gzip images ``boot/`` keeps (the most recently used; each up to 256 MiB).
KEEP_UNPACKED = 8

#: ELF e_machine (pyelftools' names) and class each QEMU system runs.
ELF_MACHINES: dict[str, tuple[str, int]] = {
    "riscv64": ("EM_RISCV", 64),
    "riscv32": ("EM_RISCV", 32),
    "aarch64": ("EM_AARCH64", 64),
    "arm": ("EM_ARM", 32),
}
#: RISC-V CPU types whose XLEN is 32 (QEMU 10.0 target/riscv/cpu.c: the DEFINE_*_CPU entries with
#: MXL_RV32); qemu-system-riscv64 runs them too, and their guests are RV32 ELFs.
RV32_CPU_TYPES = frozenset({
    "rv32-riscv-cpu", "rv32i-riscv-cpu", "rv32e-riscv-cpu", "max32-riscv-cpu", "lowrisc-ibex-riscv-cpu",
    "sifive-e31-riscv-cpu", "sifive-e34-riscv-cpu", "sifive-u34-riscv-cpu",
})


def image_system(system: str, cpu_types: Iterable[str]) -> str:
    """The ``ELF_MACHINES`` key images for a board must match: ``riscv32`` for a riscv64 board
    whose CPUs are all RV32 (an FE310's E31), else ``system``."""
    types = set(cpu_types)
    if system == "riscv64" and types and types <= RV32_CPU_TYPES:
        return "riscv32"
    return system


_MACHINE_NAMES = {"EM_RISCV": "RISC-V", "EM_AARCH64": "AArch64", "EM_ARM": "Arm (32-bit)", "EM_X86_64": "x86-64",
                  "EM_386": "x86 (32-bit)"}


class ImageError(Exception):
    """An image that cannot go into this board; ``message`` says of the file what is wrong."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Segment:
    """One loadable ELF segment: [addr, addr + memsz) in guest physical memory."""

    addr: int
    memsz: int
    filesz: int

    @property
    def end(self) -> int:
        return self.addr + self.memsz


@dataclass(frozen=True)
class Image:
    """A guest image as the loader will put it in memory.

    ``path`` is the file the ``loader`` device reads (for a gzip file: its
    unpacked copy in the cache); ``source`` the file the user named.
    ``size`` is the raw image's file size in bytes; ``footprint`` the memory
    it needs from its load address (an Image header's ``image_size``, which
    includes the kernel's BSS, else ``size``). ``text_offset`` is an arm64
    Image header's load offset from a 2 MiB boundary.
    """

    source: Path
    path: Path
    elf: bool
    size: int
    entry: int | None = None
    segments: tuple[Segment, ...] = ()
    footprint: int = 0
    text_offset: int | None = None
    gzip: bool = False

    @property
    def low(self) -> int:
        """An ELF's lowest loaded address."""
        return min(s.addr for s in self.segments)

    @property
    def high(self) -> int:
        """An ELF's end (the highest segment end)."""
        return max(s.end for s in self.segments)


def load_image(path: Path, system: str) -> Image:
    """``path`` read and checked for ``system`` (e.g. ``riscv64``); raises ImageError or FileProblem."""
    st = check_regular(path)
    with path.open("rb") as f:
        head = f.read(4096)
    if head[:4] == b"\x7fELF":
        return _elf(path, system)
    if head[:2] == b"\x1f\x8b":
        unpacked = _gunzip(path)
        with unpacked.open("rb") as f:
            image = _raw(unpacked, unpacked.stat().st_size, f.read(4096), system)
        return Image(path, unpacked, False, image.size, footprint=image.footprint, text_offset=image.text_offset,
                     gzip=True)
    return _raw(path, st.st_size, head, system)


def _raw(path: Path, size: int, head: bytes, system: str) -> Image:
    if size == 0:
        raise ImageError("is empty")
    footprint, text_offset = size, None
    if len(head) >= 0x40 and head[0x38:0x3C] == b"ARM\x64":
        if system != "aarch64":
            raise ImageError(f"is an arm64 Linux Image, but the board's system is {system}",
                             "give the board an image built for its architecture")
        text_offset, image_size = struct.unpack_from("<QQ", head, 8)
        if image_size:
            footprint = max(size, image_size)
        else:
            text_offset = None  # before Linux 3.17: no valid text_offset (QEMU loads at 0x80000)
    elif len(head) >= 0x40 and head[0x34:0x38] == b"RSC\x05":
        if not system.startswith("riscv"):
            raise ImageError(f"is a RISC-V Linux Image, but the board's system is {system}",
                             "give the board an image built for its architecture")
        image_size = struct.unpack_from("<Q", head, 16)[0]
        footprint = max(size, image_size)
    return Image(path, path, False, size, footprint=footprint, text_offset=text_offset)


def _elf(path: Path, system: str) -> Image:
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    want = ELF_MACHINES.get(system)
    size = path.stat().st_size
    _check_elf_header(path, size)
    try:
        with path.open("rb") as f:
            elf = ELFFile(f)
            machine, klass = str(elf.header["e_machine"]), int(elf.elfclass)
            if want is not None and (machine, klass) != want:
                got = f"{_MACHINE_NAMES.get(machine, machine)} {klass}-bit"
                need = f"{_MACHINE_NAMES.get(want[0], want[0])} {want[1]}-bit"
                article = "an" if got[0] in "AEIOU" else "a"
                raise ImageError(f"is {article} {got} ELF, but the board's CPUs run {need} code",
                                 "give the board an image built for its architecture")
            loads = [s.header for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
            entry = int(elf.header["e_entry"])
    except (ELFError, struct.error, ValueError) as err:
        # pyelftools' words ("expected 4, found 0") name no field: say what QEMU cannot do, keep them after.
        raise ImageError(f"is a corrupt ELF file: its headers cannot be read ({err})", _ELF_HINT) from None
    segments = []
    for n, ph in enumerate(loads):
        offset, filesz, memsz = int(ph["p_offset"]), int(ph["p_filesz"]), int(ph["p_memsz"])
        if offset + filesz > size:
            raise ImageError(f"is a truncated ELF file: loadable segment {n} needs bytes [{offset:#x}, "
                             f"{offset + filesz:#x}) of the file, which has {size:,} bytes", _ELF_HINT)
        if filesz > memsz:
            raise ImageError(f"is a corrupt ELF file: loadable segment {n} has more bytes in the file "
                             f"({filesz:#x}) than in memory ({memsz:#x})", _ELF_HINT)
        if memsz:
            segments.append(Segment(int(ph["p_paddr"]), memsz, filesz))
    if not segments:
        raise ImageError("is an ELF without loadable segments")
    return Image(path, path, True, size, entry, tuple(segments),
                 max(s.end for s in segments) - min(s.addr for s in segments))


_ELF_HINT = "the file is damaged or was cut short (an interrupted copy or download?): build or fetch it again"


def _check_elf_header(path: Path, size: int) -> None:
    """The ELF header and program header table lie inside the file (QEMU's load_elf reads both whole)."""
    with path.open("rb") as f:
        head = f.read(64)
    klass, order = head[4:5], head[5:6]
    if klass not in (b"\x01", b"\x02") or order not in (b"\x01", b"\x02"):
        raise ImageError("is a corrupt ELF file: its class or byte order (e_ident) is not valid", _ELF_HINT)
    wide = klass == b"\x02"
    ehsize, phentsize = (64, 56) if wide else (52, 32)
    if size < ehsize:
        raise ImageError(f"is a truncated ELF file: {size} bytes, shorter than its {ehsize}-byte header",
                         _ELF_HINT)
    endian = "<" if order == b"\x01" else ">"
    phoff = struct.unpack_from(endian + ("Q" if wide else "I"), head, 32 if wide else 28)[0]
    entsize, phnum = struct.unpack_from(endian + "HH", head, 54 if wide else 42)
    if phnum and entsize != phentsize:
        raise ImageError(f"is a corrupt ELF file: its program headers are {entsize} bytes each "
                         f"(e_phentsize), not {phentsize}", _ELF_HINT)
    if phoff + phnum * phentsize > size:
        entries = "1 entry" if phnum == 1 else f"{phnum} entries"
        raise ImageError(f"is {'a truncated' if phoff < size else 'a corrupt'} ELF file: its program header "
                         f"table (e_phoff {phoff:#x}, {entries}) ends beyond the file's {size:,} bytes",
                         _ELF_HINT)


def _gunzip(path: Path) -> Path:
    """The unpacked copy of gzip file ``path`` in the cache (``boot/<sha256>.img``), made once."""
    data = read_regular(path, MAX_GZIP_FILE, FileProblem(f"is larger than {MAX_GZIP_FILE >> 20} MiB"))
    digest = hashlib.sha256(data).hexdigest()[:32]
    directory = cache_dir("boot", create=True)
    if directory is None:
        raise ImageError("is gzip-compressed and the cache directory for its unpacked copy is not usable",
                         "unpack it yourself (gunzip) and give the unpacked file")
    out = directory / f"{digest}.img"
    if out.is_file():
        with contextlib.suppress(OSError):
            out.touch()  # recently used: kept by keep_newest
        return out
    try:
        d = zlib.decompressobj(wbits=31)
        unpacked = d.decompress(data, MAX_GUNZIP)
        if d.unconsumed_tail:
            raise ImageError(f"unpacks to more than {MAX_GUNZIP >> 20} MiB (QEMU's limit too)")
        unpacked += d.flush()
    except (zlib.error, gzip.BadGzipFile) as err:
        raise ImageError(f"is not a valid gzip file: {err}") from None
    if not d.eof:
        raise ImageError(f"is a truncated gzip file: its compressed data ends after {len(data):,} bytes, "
                         "before the end of the stream", _ELF_HINT.replace("build or fetch", "fetch"))
    if not unpacked:
        raise ImageError("is a gzip file that unpacks to nothing")
    write_file(out, unpacked, mode=0o600)
    keep_newest(directory, ".img", KEEP_UNPACKED)
    return out
