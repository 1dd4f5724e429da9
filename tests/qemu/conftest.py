"""Pytest fixtures that find the patched QEMU and run it for QMP machine configuration.

Shared by the per-command tests (``test_qmp_*.py``) and the firmware boot tests
(``test_boot_*.py``).

Fixtures
--------
``qemu_prefix`` (session)
    :class:`pathlib.Path` of the patched build's install prefix, as printed by
    ``bash qemu/build.sh --print-prefix``; the environment variable
    ``MACHINEDESC_TEST_QEMU_PREFIX`` overrides it (a directory with
    ``bin/qemu-system-<system>``, e.g. a development build of the series).
``qemu_binary`` (session)
    Callable ``qemu_binary(system) -> Path`` returning
    ``<prefix>/bin/qemu-system-<system>`` (``system`` is e.g. ``"riscv64"`` or
    ``"aarch64"``).  When the binary is missing the test is skipped with a loud
    reason, or fails when the environment variable ``CI`` is set (build it with
    ``bash qemu/build.sh``).
``qemu_launcher`` (function)
    Factory ``qemu_launcher(system, maxcpus=1, extra_args=(), preconfig=True,
    machine="none") -> QemuInstance``.  It starts::

        qemu-system-<system> -M <machine> -smp 1,maxcpus=<maxcpus> -nodefaults
            -display none [-preconfig] <extra_args...>
            -chardev socket,id=test-qmp,fd=<one end of a socketpair> -mon chardev=test-qmp,mode=control

    with the working directory set to a private temporary directory
    (``QemuInstance.workdir``; relative paths in ``extra_args`` land there,
    e.g. ``-serial file:uart0.log``), and negotiates capabilities with
    ``qemu.qmp.legacy.QEMUMonitorProtocol`` on the other end of the pair: the
    socket is connected before QEMU starts, so there is nothing to wait for
    but the greeting (machinedesc/qemu/process.py, ``QemuProcess``, says why).
    At teardown every instance is killed and its directory removed, whether or
    not the test passed.
``qmp_riscv64`` / ``qmp_aarch64`` (function)
    A started ``-M none -preconfig`` instance with ``maxcpus=4``.

``QemuInstance`` (defined in ``qemu_fixtures.py``, with ``tiny_elf()`` and ``hmp()``;
test modules import from ``qemu_fixtures``, pytest puts this directory on sys.path)
    ``.qmp`` the connected monitor; ``.cmd(name, **args)`` runs a command and
    returns its ``return`` value (raises ``qemu.qmp.ExecuteError`` on error);
    ``.workdir``; ``.process`` (``subprocess.Popen``); ``.stderr_text()``;
    ``.wait_exit(timeout)``; ``.kill()``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from needs import missing
from qemu_fixtures import Launcher, QemuInstance

__all__ = ["Launcher", "QemuInstance"]

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "qemu" / "build.sh"


def _missing(reason: str) -> None:
    """Skip the test with a loud reason, or fail it under CI."""
    missing(f"the patched QEMU is not available: {reason} (build it: bash qemu/build.sh)")


@pytest.fixture(scope="session")
def qemu_prefix() -> Path:
    """Install prefix of the patched QEMU build (may not exist yet)."""
    override = os.environ.get("MACHINEDESC_TEST_QEMU_PREFIX")
    if override:
        return Path(override)
    try:
        out = subprocess.run(
            ["bash", str(BUILD_SCRIPT), "--print-prefix"],
            check=True, capture_output=True, text=True, timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        _missing(f"'qemu/build.sh --print-prefix' failed: {exc}")
        raise AssertionError("unreachable") from exc
    return Path(out.stdout.strip())


@pytest.fixture(scope="session")
def qemu_binary(qemu_prefix: Path) -> Callable[[str], Path]:
    """Return a function mapping a system name to its patched binary."""

    def find(system: str) -> Path:
        path = qemu_prefix / "bin" / f"qemu-system-{system}"
        if not os.access(path, os.X_OK):
            _missing(f"{path} does not exist")
        return path

    return find


@pytest.fixture
def qemu_launcher(qemu_binary: Callable[[str], Path]) -> Iterator[Launcher]:
    """Factory starting QEMU instances that are always killed at teardown."""
    instances: list[QemuInstance] = []
    workdirs: list[Path] = []

    def start(system: str, maxcpus: int = 1, extra_args: Sequence[str] = (),
              preconfig: bool = True, machine: str = "none") -> QemuInstance:
        binary = qemu_binary(system)
        workdir = Path(tempfile.mkdtemp(prefix=f"md-qemu-{system}-"))
        if len(str(workdir / "qmp.sock")) > 100:
            # A unix socket path is limited to 108 bytes: a deep $TMPDIR needs /tmp.
            workdir.rmdir()
            workdir = Path(tempfile.mkdtemp(prefix=f"md-qemu-{system}-", dir="/tmp"))
        workdirs.append(workdir)
        args = ["-M", machine, "-smp", f"1,maxcpus={maxcpus}", "-nodefaults",
                "-display", "none"]
        if preconfig:
            args.append("-preconfig")
        args.extend(extra_args)
        instance = QemuInstance(binary, args, workdir)
        instances.append(instance)
        return instance

    try:
        yield start
    finally:
        for instance in instances:
            instance.kill()
        for workdir in workdirs:
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def qmp_riscv64(qemu_launcher: Launcher) -> QemuInstance:
    """qemu-system-riscv64 -M none -preconfig, maxcpus=4, QMP connected."""
    return qemu_launcher("riscv64", maxcpus=4)


@pytest.fixture
def qmp_aarch64(qemu_launcher: Launcher) -> QemuInstance:
    """qemu-system-aarch64 -M none -preconfig, maxcpus=4, QMP connected."""
    return qemu_launcher("aarch64", maxcpus=4)
