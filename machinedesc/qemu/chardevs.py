"""QEMU's ``-chardev`` options on a command line: find the stdio ones, point the console elsewhere (--serial)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

#: Bytes in sockaddr_un's sun_path, with its terminating NUL (Linux: <sys/un.h>).
SUN_PATH_MAX = 108

#: What --serial takes (docs/apply.md); ``log`` and ``relay`` are machinedesc's own.
_USER_KINDS = ("stdio", "file", "socket", "none")


def parse_serial(spec: str, *, internal: bool = False) -> tuple[str, str]:
    """``spec`` (``stdio``, ``none``, ``file:PATH``, ``socket:PATH``) as (kind, target); ``internal``
    also accepts ``log`` and ``relay``.

    Raises ValueError with the user's message: an unknown kind, a missing
    path, or a socket path that does not fit sun_path (SUN_PATH_MAX bytes).
    """
    kind, sep, target = spec.partition(":")
    kinds = (*_USER_KINDS, "log", "relay") if internal else _USER_KINDS
    if kind not in kinds or (kind in ("file", "socket")) != bool(target) or (sep and not target):
        raise ValueError(f"invalid --serial '{spec}': use stdio, file:PATH, socket:PATH or none")
    if kind == "socket" and len(os.fsencode(target)) >= SUN_PATH_MAX:
        raise ValueError(f"--serial socket:{target}: a UNIX socket path must be shorter than {SUN_PATH_MAX} "
                         "bytes (sockaddr_un's sun_path); choose a shorter path")
    return kind, target


def rewrite_chardevs(args: Sequence[str], ids: Sequence[str], spec: str, workdir: Path) -> list[str]:
    """Point the ``-chardev`` options whose id is in ``ids`` at ``spec``.

    ``spec`` is ``stdio`` (unchanged: stdio is relayed), ``file:PATH``,
    ``socket:PATH`` (a listening unix socket), ``none``, or the internal
    ``log`` (a file ``ID.log`` in ``workdir``, used by --detach) or the
    internal ``relay`` (QEMU's stdout, which machinedesc copies to a file).
    Raises ValueError for an unknown spec (parse_serial).
    """
    kind, target = parse_serial(spec, internal=True)
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-chardev", "--chardev") and i + 1 < len(args):
            cid = _option(args[i + 1], "id")
            if cid is not None and cid in ids and kind != "stdio":
                out += [arg, _chardev(kind, target, cid, workdir)]
                i += 2
                continue
        out.append(arg)
        i += 1
    return out


def _option(optstr: str, key: str) -> str | None:
    for part in optstr.split(","):
        k, sep, v = part.partition("=")
        if sep and k == key:
            return v
    return None


def _chardev(kind: str, target: str, cid: str, workdir: Path) -> str:
    if kind == "none":
        return f"null,id={cid}"
    if kind == "relay":
        return f"stdio,id={cid}"
    if kind == "log":
        return f"file,id={cid},path={_qemu_opt(str(workdir / (cid + '.log')))}"
    path = _qemu_opt(str(Path(target).expanduser().absolute()))
    if kind == "file":
        return f"file,id={cid},path={path}"
    return f"socket,id={cid},path={path},server=on,wait=off"


def _qemu_opt(value: str) -> str:
    # QEMU's option syntax escapes a comma by doubling it.
    return value.replace(",", ",,")


def stdio_chardevs(args: Sequence[str]) -> list[str]:
    """The ids of the ``-chardev stdio,...`` options in ``args``."""
    ids: list[str] = []
    for i, arg in enumerate(args[:-1]):
        if arg in ("-chardev", "--chardev"):
            spec = args[i + 1]
            if spec.split(",", 1)[0] == "stdio" or _option(spec, "backend") == "stdio":
                cid = _option(spec, "id")
                if cid:
                    ids.append(cid)
    return ids
