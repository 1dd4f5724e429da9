"""Instantiate device types in throwaway patched QEMUs: GPIO lines after realize, MMIO region sizes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def probe_types(binary: Path, types: dict[str, dict[str, Any]], *, jobs: int = 2,
                progress: Callable[[str], None] | None = None) -> None:
    """Add ``creatable``, ``lines_after``, ``mmio`` and ``note`` to the JSON entries in ``types``."""
