"""The invalid-input corpus: every tests/data/invalid/<case>.yaml gives exactly <case>.err.

Each case is run as ``machinedesc validate [ARGS...] tests/data/invalid/<case>.yaml``
from the repository root (messages name paths relative to the working
directory), in-process through ``machinedesc.cli.main``. ``<case>.args``, when
present, holds extra arguments, one per line. Helper files (includes) live in
``tests/data/invalid/_parts/``.

The expected output must be reviewed like code: it is the message a user
reads. After an intended change of wording, regenerate with
``MACHINEDESC_UPDATE_INVALID=1 python -m pytest tests/test_invalid.py`` and
review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from machinedesc.cli import main

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "invalid"
CASES = sorted(p.stem for p in CORPUS.glob("*.yaml"))
MIN_CASES = 45

#: Cases whose .err holds the intended output, which the core does not print yet
#: (each with the reason as its value); strict, so a fix makes them fail until the marker goes.
KNOWN_BUGS: dict[str, str] = {}


_CASE_PARAMS = [pytest.param(c, marks=pytest.mark.xfail(reason=KNOWN_BUGS[c], strict=True)) if c in KNOWN_BUGS else c
                for c in CASES]


def _args(case: str) -> list[str]:
    extra = CORPUS / f"{case}.args"
    if not extra.exists():
        return []
    return [line for line in extra.read_text(encoding="utf-8").splitlines() if line]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else 1), out, err


def test_corpus_size() -> None:
    assert len(CASES) >= MIN_CASES, f"only {len(CASES)} invalid cases, want at least {MIN_CASES}"


def test_every_case_has_expected_output() -> None:
    missing = [c for c in CASES if not (CORPUS / f"{c}.err").exists()]
    orphans = sorted(p.name for p in CORPUS.glob("*.err") if p.stem not in CASES)
    orphans += sorted(p.name for p in CORPUS.glob("*.args") if p.stem not in CASES)
    if os.environ.get("MACHINEDESC_UPDATE_INVALID"):
        missing = []
    assert not missing, f"cases without .err: {missing}"
    assert not orphans, f".err/.args files without a case: {orphans}"


def test_known_bugs_are_cases() -> None:
    assert set(KNOWN_BUGS) <= set(CASES)


@pytest.mark.parametrize("case", _CASE_PARAMS)
def test_invalid_case(case: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    board = f"tests/data/invalid/{case}.yaml"
    code, out, err = _run(["validate", *_args(case), board], capsys)
    expected_file = CORPUS / f"{case}.err"
    if os.environ.get("MACHINEDESC_UPDATE_INVALID") and case not in KNOWN_BUGS:
        expected_file.write_text(err, encoding="utf-8")
    assert "Traceback" not in err
    assert out == "", "an invalid board must print nothing on stdout"
    assert code == 2
    assert err == expected_file.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", _CASE_PARAMS)
def test_plan_reports_the_same_errors(case: str, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """``plan`` fails with the same messages as ``validate`` and writes no plan."""
    monkeypatch.chdir(ROOT)
    code, out, err = _run(["plan", *_args(case), f"tests/data/invalid/{case}.yaml"], capsys)
    assert "Traceback" not in err
    assert (code, out) == (2, "")
    assert err == (CORPUS / f"{case}.err").read_text(encoding="utf-8")


def test_validate_reports_every_board(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Several boards in one call: all their errors, in one sorted report, and ok lines for the good ones."""
    monkeypatch.chdir(ROOT)
    code, out, err = _run(["validate", "tests/data/invalid/mmio-overlap.yaml", "boards/soc.yaml",
                           "tests/data/invalid/chardev-missing.yaml"], capsys)
    assert code == 2
    assert out == "boards/soc.yaml: ok\n"
    expected = [(CORPUS / f"{c}.err").read_text(encoding="utf-8") for c in ("chardev-missing", "mmio-overlap")]
    assert err == "".join(expected)


def test_errors_of_all_stages_at_once(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """An undefined parameter must not hide an undeclared chardev elsewhere in the file."""
    monkeypatch.chdir(ROOT)
    code, out, err = _run(["validate", "tests/data/invalid/_parts/errors-across-stages.yaml"], capsys)
    assert (code, out) == (2, "")
    assert "'hart' is not defined" in err
    assert "chardev 'serail0' is not declared" in err


def test_no_follow_on_empty_cluster(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The cluster's CPUs are declared (their count is broken): no "has no CPUs" error (was B9)."""
    monkeypatch.chdir(ROOT)
    _, _, err = _run(["validate", "tests/data/invalid/_parts/errors-across-stages.yaml"], capsys)
    assert "has no CPUs" not in err
