"""machinedesc's own QMP connection: connected before QEMU starts, one greeting, every time.

A monitor that accepts its first client while QEMU starts sometimes greets
twice or never (a race between QEMU's main loop and its monitor I/O thread;
machinedesc/qemu/process.py, ``QemuProcess``). These tests pin the way around it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from qemu.qmp import QMPClient

from machinedesc.qemu.process import QemuProcess
from machinedesc.qemu.session import connect, disconnect

ARGS = ["-M", "none", "-nodefaults", "-display", "none", "-preconfig"]


def _chardev_options(argv: list[str], chardev_id: str) -> list[str]:
    """The comma-separated options of the ``-chardev`` whose id is ``chardev_id``."""
    for flag, value in zip(argv, argv[1:], strict=False):
        options = value.split(",")
        if flag == "-chardev" and f"id={chardev_id}" in options:
            return options
    raise AssertionError(f"no -chardev with id={chardev_id} in {argv}")


def test_machinedescs_monitor_is_a_connected_socket(qemu_binary: Callable[[str], Path]) -> None:
    """machinedesc's monitor is a client-mode fd chardev; only the user's monitor listens."""
    with QemuProcess(qemu_binary("riscv64"), ARGS, console=None) as qemu:
        own = _chardev_options(qemu.argv, "machinedesc-qmp")
        assert own[0] == "socket" and any(o.startswith("fd=") for o in own)
        assert not any(o.startswith(("server", "wait", "path")) for o in own), own
        user = _chardev_options(qemu.argv, "machinedesc-user-qmp")
        assert "server=on" in user


def test_every_start_negotiates_at_once(qemu_binary: Callable[[str], Path]) -> None:
    """Back-to-back starts, each connected the moment QEMU is spawned: all negotiate and answer."""
    binary = qemu_binary("riscv64")

    async def one() -> str:
        qemu = QemuProcess(binary, ARGS, console=None)
        client = QMPClient("test")
        try:
            await connect(client, qemu.qmp_socket, 20.0, qemu)
            phase = await client.execute("query-machine-phase")
            return str(phase["phase"])  # type: ignore[index]
        finally:
            await disconnect(client)
            qemu.cleanup()

    async def many() -> list[str]:
        return [await one() for _ in range(60)]

    assert asyncio.run(many()) == ["late-backends-created"] * 60


def test_user_monitor_answers_after_machinedesc(qemu_binary: Callable[[str], Path]) -> None:
    """The listening monitor (--paused, --detach) serves a second client while machinedesc is connected."""

    async def both() -> tuple[str, str]:
        qemu = QemuProcess(qemu_binary("riscv64"), ARGS, console=None)
        ours, theirs = QMPClient("machinedesc"), QMPClient("user")
        try:
            await connect(ours, qemu.qmp_socket, 20.0, qemu)
            await connect(theirs, qemu.qmp_address, 20.0, qemu)
            a = await ours.execute("query-machine-phase")
            b = await theirs.execute("query-machine-phase")
            return str(a["phase"]), str(b["phase"])  # type: ignore[index]
        finally:
            await disconnect(theirs)
            await disconnect(ours)
            qemu.cleanup()

    assert asyncio.run(both()) == ("late-backends-created", "late-backends-created")
