"""The guest console of a live machine as a stream: ``expect(pattern, timeout)`` and ``write(text)``.

The matching is pexpect's own (``pexpect.spawnbase.SpawnBase``: regular
expressions or exact strings, lists of them, ``pexpect.EOF`` and
``pexpect.TIMEOUT`` as patterns, ``before``/``after``/``match``); only the
transport is machinedesc's. QEMU's stdout (the board's ``stdio`` chardev) is
copied by ``QemuProcess``'s relay thread into ``ConsoleSink``, an in-memory
buffer: the guest never blocks on a reader that is not expecting anything,
and everything it printed stays available (``text``) for failure messages.
Input goes to QEMU's stdin (``QemuProcess.feed``).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pexpect
from pexpect.spawnbase import SpawnBase

from ..errors import ConsoleExpectError

#: What ``expect`` takes: a regular expression (str or compiled), pexpect.EOF / TIMEOUT, or a list of them.
Pattern = str | re.Pattern[str] | type[pexpect.EOF] | type[pexpect.TIMEOUT]


class ConsoleSink:
    """Written to by QEMU's console relay thread (``write``); read by ``Console``. Thread-safe."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._data = bytearray()
        self._read = 0
        self._closed = False

    # The BinaryIO part QemuProcess uses.
    def write(self, chunk: bytes) -> int:
        with self._cond:
            self._data += chunk
            self._cond.notify_all()
        return len(chunk)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        """No more output will come (QEMU exited and the relay drained)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def all_bytes(self) -> bytes:
        with self._cond:
            return bytes(self._data)

    def take(self, size: int, timeout: float | None, alive: Callable[[], bool]) -> bytes | None:
        """Up to ``size`` unread bytes, waiting up to ``timeout`` s; b'' at end of output; None on timeout.

        ``alive()`` is asked (outside the lock: it may wait for the relay
        thread, which needs the lock to write) whenever nothing is buffered:
        False means QEMU exited and its output is all here.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._cond:
                if self._read < len(self._data):
                    chunk = bytes(self._data[self._read:self._read + size])
                    self._read += len(chunk)
                    return chunk
                if self._closed:
                    return b""
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                # Wake up now and then to notice a QEMU that exited.
                self._cond.wait(0.05 if left is None else min(left, 0.05))
                pending = self._read < len(self._data) or self._closed
            if not pending and not alive():
                with self._cond:
                    if self._read >= len(self._data):
                        self._closed = True


class _Spawn(SpawnBase):  # type: ignore[misc]  # pexpect has no type hints
    """pexpect's matching over a ConsoleSink instead of a file descriptor."""

    def __init__(self, sink: ConsoleSink, alive: Callable[[], bool], send: Callable[[bytes], None],
                 timeout: float) -> None:
        super().__init__(timeout=timeout, encoding="utf-8", codec_errors="replace")
        self._sink = sink
        self._alive = alive
        self._send_bytes = send

    def read_nonblocking(self, size: int = 1, timeout: float | None = -1) -> str:
        if timeout == -1:
            timeout = self.timeout
        chunk = self._sink.take(size, timeout, self._alive)
        if chunk is None:
            raise pexpect.TIMEOUT("Timeout exceeded.")
        if not chunk:
            self.flag_eof = True
            raise pexpect.EOF("QEMU exited: end of the console")
        text: str = self._decoder.decode(chunk, final=False)
        self._log(text, "read")
        return text

    def send(self, s: str | bytes) -> int:
        data = self._encoder.encode(s, final=False) if isinstance(s, str) else s
        self._log(s, "send")
        self._send_bytes(data)
        return len(data)


class Console:
    """The guest's console: ``expect`` what it prints, ``write`` what it reads (pexpect's API, narrowed).

    ``expect`` returns the index of the pattern that matched (0 for a single
    pattern); ``before``, ``after`` and ``match`` are set as in pexpect. When
    nothing matches in time (or QEMU exits first) it raises
    ``ConsoleExpectError`` - an ``AssertionError``, so pytest shows it as a
    failed check - with the console's last lines and QEMU's stderr tail,
    unless ``pexpect.TIMEOUT`` / ``pexpect.EOF`` is among the patterns.
    """

    def __init__(self, sink: ConsoleSink, alive: Callable[[], bool], send: Callable[[bytes], None],
                 stderr_tail: Callable[[], str], timeout: float = 30.0) -> None:
        self._sink = sink
        self._stderr_tail = stderr_tail
        self.spawn = _Spawn(sink, alive, send, timeout)

    def expect(self, pattern: Pattern | Sequence[Pattern], timeout: float | None = -1) -> int:
        """Wait until the console prints ``pattern`` (a regular expression, or a list of them); its index."""
        return self._run(self.spawn.expect, pattern, timeout)

    def expect_exact(self, text: str | Sequence[str], timeout: float | None = -1) -> int:
        """Like ``expect`` with plain strings instead of regular expressions."""
        return self._run(self.spawn.expect_exact, text, timeout)

    def _run(self, how: Callable[..., int], pattern: Any, timeout: float | None) -> int:
        try:
            return how(pattern, timeout=timeout)
        except (pexpect.TIMEOUT, pexpect.EOF) as exc:
            waited = self.spawn.timeout if timeout == -1 else timeout
            why = ("QEMU exited before it appeared" if isinstance(exc, pexpect.EOF)
                   else f"not seen within {waited:g} s")
            raise ConsoleExpectError(f"machinedesc: console: {_describe(pattern)}: {why}",
                                     console_tail=self.tail(), stderr_tail=self._stderr_tail()) from None

    def write(self, text: str | bytes) -> None:
        """Send ``text`` to the guest's console input (the chardev's stdin side)."""
        self.spawn.send(text)

    def sendline(self, text: str = "") -> None:
        """``write(text + "\\n")``."""
        self.write(text + "\n")

    @property
    def before(self) -> str:
        """What the console printed before the last match (pexpect's ``before``)."""
        return str(self.spawn.before or "")

    @property
    def after(self) -> str:
        """The text the last match matched."""
        return self.spawn.after if isinstance(self.spawn.after, str) else ""

    @property
    def match(self) -> re.Match[str] | None:
        """The last regular-expression match, or None."""
        return self.spawn.match if isinstance(self.spawn.match, re.Match) else None

    @property
    def text(self) -> str:
        """Everything the guest printed so far (decoded as UTF-8, errors replaced)."""
        return self._sink.all_bytes().decode("utf-8", errors="replace")

    def tail(self, lines: int = 20) -> str:
        """The console's last ``lines`` lines."""
        return "\n".join(self.text.rstrip().splitlines()[-lines:])


def _describe(pattern: Any) -> str:
    items = pattern if isinstance(pattern, list | tuple) else [pattern]
    shown = [p.pattern if isinstance(p, re.Pattern) else getattr(p, "__name__", p) for p in items]
    return "expected " + " or ".join(repr(s) for s in shown)
