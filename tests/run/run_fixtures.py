"""Fixtures shared by the run and apply tests: a sandboxed machinedesc, stock QEMU, the demo firmware."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Sandbox, build_firmware, stock_qemu


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A TMPDIR for machinedesc; whatever the test left running from it is ended after the test."""
    box = Sandbox(tmp_path)
    yield box
    box.close()


@pytest.fixture(scope="session")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory with the demo firmware ELFs, built from source for this session."""
    return build_firmware(tmp_path_factory.mktemp("firmware"))


@pytest.fixture(scope="session")
def stock_riscv() -> Path:
    return stock_qemu("riscv64")
