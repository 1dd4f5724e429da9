"""Progress on the terminal while apply sends steps, and the -v echo of every QMP message."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from typing import Any, TextIO

_ECHO_LIMIT = 400


class Reporter:
    """Progress on a terminal (one rewritten line), quiet in pipes; ``-v`` echoes commands and replies."""

    def __init__(self, stream: TextIO, verbose: bool) -> None:
        self.stream = stream
        self.verbose = verbose
        self.tty = stream.isatty() and not verbose
        self._shown = False

    def progress(self, n: int, total: int, phase: str | None, text: str) -> None:
        """``[phase] step n/N: command`` on one rewritten terminal line."""
        if self.tty:
            width = shutil.get_terminal_size((80, 24)).columns
            line = f"[{phase or '-'}] step {n}/{total}: {text}"
            self.stream.write("\r\x1b[K" + line[: max(10, width - 1)])
            self.stream.flush()
            self._shown = True

    def sent(self, message: Mapping[str, Any]) -> None:
        if self.verbose:
            self._echo("-> ", message)

    def received(self, reply: Mapping[str, Any]) -> None:
        if self.verbose:
            self._echo("<- ", reply)

    def _echo(self, arrow: str, message: Mapping[str, Any]) -> None:
        text = json.dumps(dict(message))
        if len(text) > _ECHO_LIMIT:
            # query-qmp-schema's reply alone is hundreds of kilobytes.
            text = f"{text[:_ECHO_LIMIT]}... ({len(text)} bytes)"
        self.stream.write(arrow + text + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """Erase the progress line, if one is shown."""
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False

    def say(self, text: str) -> None:
        """A status line, only on a terminal (or with -v)."""
        if self.tty or self.verbose:
            self.clear()
            self.stream.write(text + "\n")
            self.stream.flush()
