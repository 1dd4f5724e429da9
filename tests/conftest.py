"""Shared fixtures: the repository root, and running tests from it (messages name paths relative to it)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test with the repository root as working directory."""
    monkeypatch.chdir(ROOT)
    return ROOT
