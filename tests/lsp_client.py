"""A Language Server Protocol client for tests: a server process spoken to over stdio, as an editor does.

The base protocol (LSP 3.17): JSON-RPC 2.0 messages on the server's stdin and
stdout, each framed by a ``Content-Length: N`` header and a blank line. Used by
tests/test_editor.py to drive yaml-language-server.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Message = dict[str, Any]


class LanguageServer:
    """A language server process, spoken to over stdio as an editor does (LSP base protocol, JSON-RPC 2.0).

    ``argv`` is started in ``cwd`` with its stderr in the file ``log``. A reader
    thread turns its output into messages; ``request`` waits (``wait`` seconds at
    most) for the answer, meanwhile answering the server's own requests
    (``workspace/configuration`` from ``settings``, a mapping of section name to
    value such as ``{"yaml": {...}}``, as an editor hands over its configuration;
    anything else with null) and keeping its notifications in ``notifications``.
    ``close`` shuts it down as an editor does, and kills it if it lingers.
    """

    def __init__(self, argv: list[str], cwd: Path, log: Path, settings: dict[str, Any], wait: float) -> None:
        self.settings = settings
        self.notifications: list[Message] = []
        self._log = log.open("wb")
        self._proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._log)
        self._inbox: queue.Queue[Message | None] = queue.Queue()
        self._last_id = 0
        self._ended = False  # the server's output has ended: it exited or closed stdout
        self._logpath = log
        self.wait = wait
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        out = self._proc.stdout
        assert out is not None
        try:
            while True:
                headers: dict[str, str] = {}
                while (line := out.readline()) not in (b"\r\n", b"\n"):
                    if not line:
                        return
                    name, _, value = line.decode("ascii").partition(":")
                    headers[name.strip().lower()] = value.strip()
                self._inbox.put(json.loads(out.read(int(headers["content-length"]))))
        finally:
            self._inbox.put(None)

    def _send(self, message: Message) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        assert self._proc.stdin is not None
        self._proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self._proc.stdin.flush()

    def _receive(self, deadline: float, waiting_for: str) -> Message:
        if self._ended:
            raise EOFError(f"the language server has exited: {self._logpath.read_text(errors='replace')[-2000:]}")
        try:
            message = self._inbox.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"no {waiting_for} from the language server in {self.wait:g} s; "
                               f"its stderr: {self._logpath.read_text(errors='replace')[-2000:]}") from None
        if message is None:
            self._ended = True
            raise EOFError(f"the language server exited: {self._logpath.read_text(errors='replace')[-2000:]}")
        if "method" in message and "id" in message:
            self._answer(message)
        elif "method" in message:
            self.notifications.append(message)
        return message

    def _answer(self, request: Message) -> None:
        result: Any = None
        if request["method"] == "workspace/configuration":
            result = [self.settings.get(item.get("section", "")) for item in request["params"]["items"]]
        self._send({"id": request["id"], "result": result})

    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def request(self, method: str, params: Any) -> Any:
        self._last_id += 1
        ident = self._last_id
        self._send({"id": ident, "method": method, "params": params})
        deadline = time.monotonic() + self.wait
        while True:
            message = self._receive(deadline, f"answer to {method}")
            if message.get("id") == ident and "method" not in message:
                assert "error" not in message, f"{method}: {message['error']}"
                return message.get("result")

    def wait_for(self, method: str, match: Callable[[Any], bool]) -> Any:
        """The params of the first notification ``method`` whose params ``match``."""
        deadline = time.monotonic() + self.wait
        seen = 0
        while True:
            for note in self.notifications[seen:]:
                if note["method"] == method and match(note["params"]):
                    return note["params"]
            seen = len(self.notifications)
            self._receive(deadline, method)

    def close(self) -> None:
        """shutdown and exit, as an editor closing; killed if it has not gone after 5 s."""
        try:
            if self._ended or self._proc.poll() is not None:
                return
            self.request("shutdown", None)
            self.notify("exit", None)
            self._proc.wait(timeout=5)
        finally:
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            self._reader.join(timeout=5)
            for pipe in (self._proc.stdin, self._proc.stdout):
                if pipe is not None:
                    pipe.close()
            self._log.close()
