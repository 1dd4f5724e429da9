"""Fixtures for the apply tests (shares tests/run/harness.py): sandbox, QEMU binaries, firmware."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "run"))

from harness import Sandbox, build_firmware, patched_qemu, stock_qemu  # noqa: E402


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A TMPDIR for machinedesc; any QEMU still running from it is killed after the test."""
    box = Sandbox(tmp_path)
    yield box
    box.kill_qemus()


@pytest.fixture(scope="session")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory with the demo firmware ELFs, built from source for this session."""
    return build_firmware(tmp_path_factory.mktemp("firmware"))


@pytest.fixture(scope="session")
def stock_riscv() -> Path:
    return stock_qemu("riscv64")


@pytest.fixture(scope="session")
def patched_riscv64() -> Path:
    return patched_qemu("riscv64")


@pytest.fixture(scope="session")
def patched_aarch64() -> Path:
    return patched_qemu("aarch64")
