"""The bad-QMP-file corpus: every tests/data/invalid-qmp/<case>.qmp gives exactly <case>.err.

Each case runs as ``machinedesc run --qemu /bin/false tests/data/invalid-qmp/<case>.qmp``
from the repository root, in a subprocess with a time bound (a hang is a
failure, as the tokenizer's backtracking once was): exit 2, nothing on
stdout, no traceback, the expected message on stderr, before any QEMU starts.
Regenerate after an intended wording change with
``MACHINEDESC_UPDATE_INVALID=1 python -m pytest tests/run/test_invalid_qmp.py``
and review the diff.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "invalid-qmp"
CASES = sorted(p.stem for p in CORPUS.glob("*.qmp"))


def test_every_case_has_expected_output() -> None:
    assert len(CASES) >= 12
    missing = [c for c in CASES if not (CORPUS / f"{c}.err").exists()]
    orphans = sorted(p.name for p in CORPUS.glob("*.err") if p.stem not in CASES)
    if os.environ.get("MACHINEDESC_UPDATE_INVALID"):
        missing = []
    assert not missing and not orphans, (missing, orphans)


@pytest.mark.parametrize("case", CASES)
def test_invalid_qmp_file(case: str) -> None:
    out = subprocess.run([sys.executable, "-m", "machinedesc.cli", "run", "--qemu", "/bin/false",
                          f"tests/data/invalid-qmp/{case}.qmp"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    expected = CORPUS / f"{case}.err"
    if os.environ.get("MACHINEDESC_UPDATE_INVALID"):
        expected.write_text(out.stderr, encoding="utf-8")
    assert "Traceback" not in out.stderr
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr == expected.read_text(encoding="utf-8")
