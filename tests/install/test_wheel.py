"""The package works where it is installed: a wheel in a fresh virtual environment, outside any checkout.

The wheel is built from a copy of the sources (offline: ``--no-build-isolation``,
the setuptools of this environment), installed into a new venv together with
the locked versions of its run-time dependencies (requirements/lock.txt,
hash-checked, as scripts/install.sh installs them), and then used as a new
user would, from a directory that is not a checkout: ``qemu path`` finds the
patched build in the cache through the patch series the wheel carries,
``apply`` boots the demo firmware on boards/soc.yaml, and pytest picks up the
plugin through its entry point and runs docs/api.md's example.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "api"))
sys.path.insert(0, str(REPO / "tests" / "run"))

from harness import build_firmware, patched_qemu  # noqa: E402
from test_plugin import doc_example  # noqa: E402

#: What the wheel is built from: everything pyproject.toml packages, nothing else.
SOURCES = ["pyproject.toml", "README.md", "machinedesc", "schemas", "qemu"]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_closure(extra: tuple[str, ...] = ("pytest",)) -> set[str]:
    """The distributions machinedesc needs at run time (plus ``extra``), by their metadata in this environment."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    todo = [Requirement(r) for r in [*project["dependencies"], *extra]]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        if _norm(req.name) in seen:
            continue
        seen.add(_norm(req.name))
        todo += [Requirement(r) for r in requires(req.name) or []]
    return seen


def locked(names: set[str]) -> str:
    """The blocks of requirements/lock.txt (pins with hashes) for ``names``; fails if one is not locked."""
    blocks = re.split(r"\n(?=\S)", (REPO / "requirements" / "lock.txt").read_text())
    chosen = {(_norm(b.split("==", 1)[0])): b for b in blocks if "==" in b.split("\n", 1)[0]}
    assert names <= chosen.keys(), f"not in requirements/lock.txt: {sorted(names - chosen.keys())}"
    return "\n".join(chosen[n].rstrip() for n in sorted(names)) + "\n"


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert out.returncode == 0, f"{argv}: {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel of these sources and the locked run-time dependencies."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy2)(
            REPO / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                        if (REPO / name).is_dir() else {}))
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    pip = [sys.executable, "-m", "pip"]
    run([*pip, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(src)],
        tmp, env)
    wheel = next((tmp / "dist").glob("machinedesc-*.whl"))
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp, env)
    (tmp / "requirements.txt").write_text(locked(runtime_closure()))
    target = ["--python", str(venv / "bin" / "python")]
    run([*pip, *target, "install", "--quiet", "--no-deps", "--require-hashes", "-r", str(tmp / "requirements.txt")],
        tmp, env, timeout=300)
    run([*pip, *target, "install", "--quiet", "--no-deps", "--no-index", str(wheel)], tmp, env)
    return venv


@pytest.fixture
def outside(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A directory that is not a checkout, and an environment that does not point into one."""
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTEST_XDIST_WORKER") and not k.startswith("MACHINEDESC_QEMU")}
    (tmp_path / "tmp").mkdir()
    env["TMPDIR"] = str(tmp_path / "tmp")
    return work, env


def test_the_wheel_carries_the_series_and_the_data(venv: Path, outside: tuple[Path, dict[str, str]]) -> None:
    work, env = outside
    py = str(venv / "bin" / "python")
    out = run([py, "-c", "import machinedesc, machinedesc.qemu.build as b, machinedesc.board.schema as s; "
                         "print(machinedesc.__file__); print(b.BUILD_SCRIPT); print(len(s.board_schema()))"],
              work, env)
    package, script, _ = out.stdout.splitlines()
    assert package.startswith(str(venv)), package
    assert script == str(Path(package).parent / "qemu" / "series" / "build.sh")
    shipped = sorted(p.name for p in (Path(script).parent / "patches").iterdir())
    assert shipped == sorted(p.name for p in (REPO / "qemu" / "patches").iterdir())


def test_qemu_path_apply_and_the_plugin_outside_a_checkout(venv: Path, outside: tuple[Path, dict[str, str]],
                                                           tmp_path_factory: pytest.TempPathFactory) -> None:
    work, env = outside
    cached = patched_qemu("riscv64")  # this checkout's view of the cache
    out = run([str(venv / "bin" / "machinedesc"), "qemu", "path", "riscv64"], work, env)
    assert out.stdout.strip() == str(cached)

    firmware = build_firmware(tmp_path_factory.mktemp("firmware"))
    shutil.copytree(REPO / "boards", work / "boards")  # soc.yaml and the fragments it uses
    (work / "build").mkdir()
    (work / "build" / "firmware").symlink_to(firmware)
    out = run([str(venv / "bin" / "machinedesc"), "apply", "boards/soc.yaml",
               "--firmware", "build/firmware/riscv64-hello.elf"], work, env)
    assert out.stdout.split() == "hello from hart 0 hello from hart 1 hello from timer interrupt".split()
    assert out.stderr == ""

    # The plugin comes with the package: no -p, no conftest.
    (work / "test_example.py").write_text(doc_example())
    (work / "pytest.ini").write_text("[pytest]\n")
    out = run([str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"], work, env)
    assert "1 passed" in out.stdout
    assert [p.name for p in Path(env["TMPDIR"]).glob("machinedesc-*")] == []
