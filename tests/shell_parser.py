"""qemu.qmp's own qmp-shell parser, for tests that check our plan files against it."""

from __future__ import annotations

import asyncio
from typing import Any

from qemu.qmp.qmp_shell import QMPShell

_shell: QMPShell | None = None


def qmp_shell_command(line: str) -> Any:
    """The QMP message qmp-shell builds from one command line (nothing is sent)."""
    global _shell  # noqa: PLW0603 - one parser for the session, closed by close_shell
    if _shell is None:
        _shell = QMPShell("/nonexistent.sock")
    return _shell._build_cmd(line)  # noqa: SLF001 - qmp-shell has no public parser


def close_shell() -> None:
    """Close the event loop qemu.qmp's legacy shim created (it never closes it itself)."""
    global _shell  # noqa: PLW0603
    if _shell is not None:
        _shell._aloop.close()  # noqa: SLF001
        asyncio.set_event_loop(None)
        _shell = None
