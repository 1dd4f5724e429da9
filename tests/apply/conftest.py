"""Fixtures for the apply tests (shares tests/run/harness.py and run_fixtures.py): QEMU binaries, firmware."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "run"))

from run_fixtures import firmware, sandbox, stock_riscv  # noqa: E402
from harness import patched_qemu  # noqa: E402

__all__ = ["firmware", "sandbox", "stock_riscv"]


@pytest.fixture(scope="session")
def patched_riscv64() -> Path:
    return patched_qemu("riscv64")


@pytest.fixture(scope="session")
def patched_aarch64() -> Path:
    return patched_qemu("aarch64")
