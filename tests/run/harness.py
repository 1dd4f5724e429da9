"""Test harness for apply/run: machinedesc in a subprocess, real QEMU, leftover checks.

machinedesc runs as a child process (so Ctrl-C can be sent to it) with
TMPDIR pointing at a directory of the test: every private QEMU directory is
created there, and every QEMU it starts has that path on its command line
(``-pidfile``), so "no QEMU left, no socket directory left" is checkable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from needs import missing
from qemu.qmp import QMPClient

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).resolve().parent / "driver.py"


def stock_qemu(system: str) -> Path:
    """Debian's stock qemu-system-SYSTEM (QEMU 10.0 from bookworm-backports)."""
    bindir = Path(os.environ.get("MACHINEDESC_STOCK_QEMU_BINDIR", "/usr/bin"))
    path = bindir / f"qemu-system-{system}"
    if not os.access(path, os.X_OK):
        missing(f"stock QEMU not installed: no {path} (qemu/enable-backports.sh; apt-get install "
                "-t bookworm-backports --no-install-recommends qemu-system-riscv qemu-system-arm)")
    return path


def patched_qemu(system: str) -> Path:
    """The patched qemu-system-SYSTEM (env MACHINEDESC_QEMU_<SYSTEM>, else the build cache)."""
    override = os.environ.get(f"MACHINEDESC_QEMU_{system.upper()}")
    if override:
        path: Path | None = Path(override)
    else:
        from machinedesc.qemu.build import patched_binary
        try:
            path = patched_binary(system)
        except Exception as exc:  # the build script itself may be missing
            missing(f"cannot locate the patched QEMU: {exc}")
            raise
    if path is None or not os.access(path, os.X_OK):
        missing(f"patched qemu-system-{system} not built (run `machinedesc qemu build` / qemu/build.sh)")
        raise AssertionError("unreachable")
    return path


def build_firmware(out: Path) -> Path:
    """Build the demo firmware into ``out`` (firmware/build.sh); skip/fail if tools are missing."""
    res = subprocess.run(["bash", str(REPO / "firmware" / "build.sh"), str(out)],
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        if "not found" in res.stderr:
            missing(f"cannot build firmware: {res.stderr.strip()} (firmware/install-deps.sh)")
        pytest.fail(f"firmware/build.sh failed:\n{res.stdout}{res.stderr}")
    return out


@dataclass
class Outcome:
    rc: int
    stdout: str
    stderr: str


class Sandbox:
    """Runs machinedesc (apply or run) in a subprocess whose TMPDIR is ``self.tmp``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.tmp = base / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ)
        self.env["TMPDIR"] = str(self.tmp)
        self.env["PYTHONPATH"] = str(REPO) + os.pathsep + self.env.get("PYTHONPATH", "")
        self.env.pop("MACHINEDESC_QEMU", None)
        self._started: list[subprocess.Popen[bytes]] = []

    def argv_run(self, *args: str) -> list[str]:
        """``machinedesc run ARGS...`` through the real CLI entry point."""
        return [sys.executable, str(DRIVER), "cli", "run", *args]

    def argv_cli(self, *args: str) -> list[str]:
        """``machinedesc ARGS...`` through the real CLI entry point."""
        return [sys.executable, str(DRIVER), "cli", *args]

    def argv_plan(self, plan: Any, **options: Any) -> list[str]:
        from machinedesc.plan.steps import plan_to_data

        path = self.base / f"plan-{time.monotonic_ns()}.json"
        path.write_text(json.dumps({"plan": plan_to_data(plan), "options": options}))
        return [sys.executable, str(DRIVER), "plan", str(path)]

    def start(self, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        """Start machinedesc; ``close()`` kills it (if still running) and closes its pipes."""
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env, cwd=str(self.base))
        self._started.append(proc)
        return proc

    def close(self) -> None:
        """End what the test left running: its machinedesc processes (and their pipes), then QEMUs."""
        for proc in self._started:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
        self._started.clear()
        self.kill_qemus()

    def call(self, argv: Sequence[str], timeout: float = 60.0) -> Outcome:
        proc = self.start(argv)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            self.kill_qemus()
            raise AssertionError(f"machinedesc did not finish in {timeout} s:\n{err.decode()}") from None
        return Outcome(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))

    def qemu_pids(self) -> list[int]:
        """QEMU processes started from this sandbox (their -pidfile lies in it)."""
        pids = []
        me = str(self.tmp)
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            # A zombie is not a leftover QEMU: it already exited (its parent reaps it).
            if me in cmdline and "qemu-system" in cmdline and ") Z " not in stat:
                pids.append(int(entry))
        return pids

    def wait_qemu(self, timeout: float = 15.0) -> int:
        """The pid of the (single) QEMU of this sandbox, once it runs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.qemu_pids()
            if pids:
                return pids[0]
            time.sleep(0.01)
        raise AssertionError("no QEMU process appeared")

    def kill_qemus(self) -> None:
        for pid in self.qemu_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def assert_clean(self) -> None:
        """No QEMU process left and no private directory (socket, stderr) left behind."""
        leftovers = self.qemu_pids()
        self.kill_qemus()
        entries = sorted(p.name for p in self.tmp.iterdir())
        assert not leftovers, f"QEMU processes left behind: {leftovers}"
        assert not entries, f"left in TMPDIR: {entries}"


class StderrWatcher:
    """Reads a child's stderr in a thread so a test can wait for a line while it runs."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        self._stream = proc.stderr
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                chunk = os.read(self._stream.fileno(), 65536)
            except (OSError, ValueError):  # the sandbox closed the pipe at teardown
                chunk = b""
            with self._cond:
                if not chunk:
                    self._cond.notify_all()
                    return
                self._buf += chunk
                self._cond.notify_all()

    def wait_for(self, text: str, count: int = 1, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._buf.decode(errors="replace").count(text) < count:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    raise AssertionError(f"{text!r} x{count} not seen on stderr: {self.text[-2000:]}")
                self._cond.wait(left)

    @property
    def text(self) -> str:
        return self._buf.decode(errors="replace")

    def finish(self) -> str:
        self._thread.join(10)
        self._stream.close()
        return self.text


def qom_tree(socket_path: str) -> dict[str, str]:
    """Every QOM object under /machine as {path: type}, read over QMP from a running QEMU."""
    async def walk() -> dict[str, str]:
        client = QMPClient("qom-tree")
        await client.connect(socket_path)
        tree: dict[str, str] = {}
        try:
            todo = ["/machine"]
            while todo:
                path = todo.pop()
                props = await client.execute("qom-list", {"path": path})
                assert isinstance(props, list)
                for prop in props:
                    ptype = str(prop["type"])
                    if ptype.startswith("child<"):
                        child = f"{path}/{prop['name']}"
                        tree[child] = ptype[6:-1]
                        todo.append(child)
        finally:
            await client.disconnect()
        return tree
    return asyncio.run(walk())


def qmp_cont(socket_path: str, expect_status: str | None = None) -> None:
    """Start the CPUs of a paused QEMU over QMP (``query-status`` first must say ``expect_status``).

    A guest may power off the moment it runs: QEMU can then be gone before we
    hang up, which is not an error here.
    """
    async def cont() -> None:
        client = QMPClient("user")
        await client.connect(socket_path)
        try:
            if expect_status is not None:
                status = await client.execute("query-status")
                assert isinstance(status, dict) and status["status"] == expect_status, status
            await client.execute("cont")
        finally:
            with contextlib.suppress(EOFError, ConnectionResetError):
                await client.disconnect()
    asyncio.run(cont())


def qmp_quit(socket_path: str) -> None:
    """Ask a QEMU to quit over QMP (it may close the connection before replying)."""
    async def quit() -> None:
        client = QMPClient("quit")
        await client.connect(socket_path)
        try:
            await client.execute("quit")
        except Exception:
            pass
        try:
            await client.disconnect()
        except Exception:
            pass
    asyncio.run(quit())


def read_until(fd: int, marker: bytes, timeout: float = 20.0) -> bytes:
    """Read ``fd`` until ``marker`` appears, EOF, or ``timeout`` seconds pass; all that was read."""
    got = b""
    deadline = time.monotonic() + timeout
    while marker not in got and time.monotonic() < deadline:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        got += chunk
    return got


def wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return
        if ") Z " in stat:
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} still running")
