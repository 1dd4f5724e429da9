"""The pytest plugin: docs/api.md's example run as written, failure reports, indirect parameters, xdist."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def plugin_installed() -> bool:
    """Whether the installed package registers the plugin (pytest11); a checkout installed before does not."""
    from importlib.metadata import entry_points

    return any(ep.value == "machinedesc.pytest_plugin" for ep in entry_points(group="pytest11"))


def doc_example() -> str:
    """The first python block after "An example test" in docs/api.md."""
    doc = (REPO / "docs" / "api.md").read_text()
    after = doc[doc.index("An example test"):]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def project(tmp_path: Path, firmware: Path, tests: dict[str, str]) -> Path:
    """A test project: boards/soc.yaml, build/firmware/ (the demo ELFs), the given test files."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(REPO / "boards", root / "boards")  # soc.yaml and the fragments it uses
    (root / "build").mkdir()
    (root / "build" / "firmware").symlink_to(firmware)
    (root / "pytest.ini").write_text("[pytest]\n")
    for name, text in tests.items():
        (root / name).write_text(text)
    (root / "tmp").mkdir()
    return root


def run_pytest(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(root / "tmp"))
    env.pop("PYTEST_XDIST_WORKER", None)
    plugin = [] if plugin_installed() else ["-p", "machinedesc.pytest_plugin"]
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugin, *args],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_doc_example_runs_as_written(tmp_path: Path, firmware: Path, patched_riscv64: Path) -> None:
    example = doc_example()
    assert 8 <= len(example.strip().splitlines()) <= 12
    root = project(tmp_path, firmware, {"test_example.py": example})
    out = run_pytest(root, f"--machinedesc-qemu={patched_riscv64}")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout
    assert list((root / "tmp").iterdir()) == []


FAILING = '''
import pytest


@pytest.mark.machine("boards/soc.yaml", firmware=["build/firmware/riscv64-hello-nopoweroff.elf"])
def test_wrong_expectation(machine):
    machine.console.expect("hello from hart 1", timeout=10)
    machine.console.expect("login:", timeout=0.5)


@pytest.mark.machine("boards/soc.yaml", {"timebase_hz": 0})
def test_build_fails(machine):
    pass


@pytest.mark.parametrize("machine, running", [
    ("boards/soc.yaml", True),
    ({"board": "boards/soc.yaml", "sets": {"harts": 3}, "paused": True}, False),
], indirect=["machine"])
def test_indirect(machine, running):
    assert machine.qmp("query-status")["running"] is running


def test_without_marker(machine):
    pass
'''


def test_failures_show_console_and_stderr_tails(tmp_path: Path, firmware: Path, patched_riscv64: Path) -> None:
    root = project(tmp_path, firmware, {"test_failing.py": FAILING})
    out = run_pytest(root, f"--machinedesc-qemu={patched_riscv64}", "-rA")
    text = out.stdout
    assert out.returncode == 1, text + out.stderr
    assert re.search(r"1 failed, 2 passed, 2 errors", text), text
    # The expectation that failed, and the console as it was.
    assert "ConsoleExpectError: machinedesc: console: expected 'login:': not seen within 0.5 s" in text
    assert "machinedesc console of board 'soc' (boards/soc.yaml) (last lines)" in text
    assert re.search(r"-+ machinedesc console of board 'soc'.*\n(.*\n)*hello from hart 0\nhello from hart 1\n"
                     r"hello from timer interrupt", text), text
    assert "machinedesc QEMU stderr of board 'soc' (boards/soc.yaml) (last lines)" in text
    # A build failure is apply's message, at set-up (an error, not a failure).
    assert "ERROR test_failing.py::test_build_fails - machinedesc.errors.StepError" in text
    assert re.search(r"E +machinedesc.errors.StepError: .*\.yaml:\d+:3: step \d+/\d+ failed", text), text
    # The message, without machinedesc's own call stack (api, live, plan...).
    setup = text.split("ERROR at setup of test_build_fails", 1)[1].split("\n___", 1)[0]
    assert "step" in setup and not re.search(r"^\S*machinedesc/\S+\.py:\d+", setup, re.M), setup
    # The commands in flight behind the failed one got their replies: qemu.qmp logged none as dropped.
    assert "message dropped" not in setup, setup
    assert "included from boards/soc.yaml" in text
    assert "the `machine` fixture needs @pytest.mark.machine" in text
    assert list((root / "tmp").iterdir()) == []


@pytest.mark.skipif(os.cpu_count() == 1, reason="one core")
def test_under_xdist_each_worker_its_own_qemus(tmp_path: Path, firmware: Path, patched_riscv64: Path) -> None:
    many = "\n".join(doc_example().replace("def test_soc_says_hello", f"def test_hello_{i}")
                     for i in range(4))
    root = project(tmp_path, firmware, {"test_many.py": many})
    out = run_pytest(root, f"--machinedesc-qemu={patched_riscv64}", "-n", "2")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "4 passed" in out.stdout
    # xdist's workers keep their pytest-of-USER basetemp there; no QEMU directory is left.
    assert [p.name for p in (root / "tmp").glob("machinedesc-*")] == []


def test_doc_api_example_runs_as_written(tmp_path: Path, firmware: Path, patched_riscv64: Path) -> None:
    doc = (REPO / "docs" / "api.md").read_text()
    example = doc[doc.index("## What is public"):].split("```python\n", 1)[1].split("```", 1)[0]
    root = project(tmp_path, firmware, {"example.py": example})
    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(root / "tmp"),
               MACHINEDESC_QEMU_RISCV64=str(patched_riscv64))
    out = subprocess.run([sys.executable, "example.py"], cwd=root, env=env, capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert [p.name for p in (root / "tmp").glob("machinedesc-*")] == []
