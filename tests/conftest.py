"""Shared fixtures: the repository root, and running tests from it (messages name paths relative to it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shell_parser import close_shell

ROOT = Path(__file__).resolve().parent.parent


def _plugin_installed() -> bool:
    from importlib.metadata import entry_points

    return any(ep.value == "machinedesc.pytest_plugin" for ep in entry_points(group="pytest11"))


# The machinedesc plugin (machine, machine_factory) is registered by the installed package's
# pytest11 entry point; a checkout whose install predates the plugin loads it here.
pytest_plugins = [] if _plugin_installed() else ["machinedesc.pytest_plugin"]


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test with the repository root as working directory."""
    monkeypatch.chdir(ROOT)
    return ROOT


@pytest.fixture(scope="session", autouse=True)
def _close_qmp_shell() -> Iterator[None]:
    yield
    close_shell()
