"""Fixtures for the API and plugin tests: the demo firmware, the patched QEMU, a private TMPDIR."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "run"))

from run_fixtures import firmware  # noqa: E402
from harness import patched_qemu  # noqa: E402

__all__ = ["firmware"]


@pytest.fixture(scope="session")
def patched_riscv64() -> Path:
    return patched_qemu("riscv64")


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """machinedesc's QEMU directories go to a TMPDIR of this test's own (to check nothing is left)."""
    box = tmp_path / "tmp"
    box.mkdir()
    monkeypatch.setenv("TMPDIR", str(box))
    monkeypatch.setattr(tempfile, "tempdir", str(box))
    return box
