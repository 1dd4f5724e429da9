"""The package stays typed and simple: mypy --strict and ruff (pyflakes, pycodestyle, bugbear, C901) pass.

Both tools and their settings come from pyproject.toml and requirements/lock.txt,
so a failure here reads the same on every machine. C901's bound (15) is the one
docs/ and issue 9 promise for every function.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_mypy_strict() -> None:
    out = _run("mypy")
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff() -> None:
    out = _run("ruff", "check", "--no-cache", "machinedesc", "bench")
    assert out.returncode == 0, out.stdout + out.stderr
