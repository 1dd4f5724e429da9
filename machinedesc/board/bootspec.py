"""The board's ``boot:`` section: which images boot the machine (docs/boot.md).

Values may use ``${...}`` like any other; file names are relative to the
file that writes them (a base board's ``boot:`` names files next to it).
The files themselves are read by ``machinedesc.boot``, above the board layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..source import SourceLocation
from .located import LMap, entry_location

if TYPE_CHECKING:
    from .builder_values import Builder

#: The entries that name files, resolved against their file's directory.
FILE_ENTRIES = ("bios", "kernel", "initrd")


@dataclass(frozen=True)
class BootEntry:
    """One ``boot:`` entry: its value (a path resolved to its file's directory, for files) and where it is."""

    value: str
    location: SourceLocation | None


@dataclass(frozen=True)
class BootSpec:
    """The ``boot:`` section, entry by entry (missing entries are absent)."""

    entries: Mapping[str, BootEntry]
    rom: int | None = None
    rom_location: SourceLocation | None = None


def boot_spec(b: Builder, env: Mapping[str, Any]) -> BootSpec | None:
    """The board's BootSpec, or None without a ``boot:`` section; problems go to ``b``."""
    section = b.tree.get("boot")
    if not isinstance(section, LMap):
        return None
    entries: dict[str, BootEntry] = {}
    for key in ("bios", "kernel", "initrd", "append", "dtb"):
        if key not in section:
            continue
        value = b.value(section[key], env, ("boot", key))
        if value is None:
            continue
        loc = entry_location(section, key)
        text = str(value)
        if key in FILE_ENTRIES or (key == "dtb" and text not in ("auto", "none")):
            text = _resolve(text, loc)
        entries[key] = BootEntry(text, loc)
    rom = b.integer(section["rom"], env, ("boot", "rom"), "rom") if "rom" in section else None
    return BootSpec(entries, rom, entry_location(section, "rom") if "rom" in section else None)


def _resolve(text: str, loc: SourceLocation | None) -> str:
    path = Path(text)
    if path.is_absolute() or loc is None:
        return text
    return str(Path(loc.file).parent / path)
