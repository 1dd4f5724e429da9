"""A board as it was at a git revision: ``boards/soc.yaml@HEAD~1`` for ``machinedesc diff``.

The board's catalog directory (the board's own directory, or ``--catalog``) is
copied out of the revision into a temporary directory, so that ``extends:``
and ``include:`` resolve to the files of that same revision, then loaded like
any board. Messages name those files git's way, ``HEAD~1:boards/soc.yaml``.

What is copied: the ``*.yaml`` and ``*.yml`` files under the catalog
directory at that revision (``git ls-tree``, then ``git cat-file``), at most
MAX_FILES files and MAX_BYTES bytes; symbolic links and submodules are not
(an include through one is reported as a missing file).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import BoardError, UsageError, printable
from ..source import SourceLocation

MAX_FILES = 10_000
MAX_BYTES = 64 << 20
_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Side:
    """One side of a diff: the file to load, the catalog root to load it with, and how to name it."""

    path: Path
    catalog: Path | None
    label: str
    #: The temporary directory standing for the revision (files in it are named ``rev:`` + repo path).
    tmp: str = ""
    rev: str = ""

    def rename(self, text: str) -> str:
        """``text`` with the temporary directory's paths written as ``REV:path``."""
        if not self.tmp:
            return text
        # Included files are named by their real path: the same, unless the temporary directory is a link.
        for prefix in dict.fromkeys((os.path.realpath(self.tmp), self.tmp)):
            text = text.replace(prefix + os.sep, self.rev + ":")
        return text

    def relabel(self, err: BoardError) -> BoardError:
        """The same problems, their files named ``REV:path``."""
        if not self.tmp:
            return err
        return BoardError([replace(p, location=self._loc(p.location), message=self.rename(p.message),
                                   hint=self.rename(p.hint) if p.hint else None) for p in err.problems])

    def _loc(self, loc: SourceLocation | None) -> SourceLocation | None:
        if loc is None:
            return None
        chain = tuple(SourceLocation(self.rename(c.file), c.line, c.col) for c in loc.chain)
        return SourceLocation(self.rename(loc.file), loc.line, loc.col, chain)


def split_spec(spec: str) -> tuple[Path, str | None]:
    """``boards/soc.yaml@HEAD~1`` -> (path, "HEAD~1"); a plain path (or an existing file whose
    name holds an ``@``) -> (path, None)."""
    if "@" not in spec or Path(spec).exists():
        return Path(spec), None
    path, _, rev = spec.rpartition("@")
    if not path or not rev:
        raise UsageError(printable(f"machinedesc diff: '{spec}': write BOARD or BOARD@REVISION (e.g. "
                                   "boards/soc.yaml@HEAD~1)"))
    if rev.startswith("-"):
        raise UsageError(printable(f"machinedesc diff: '{rev}' is not a git revision"))
    return Path(path), rev


def _git(cwd: Path, *args: str, data: bytes | None = None, failure: str = "") -> bytes:
    """git's standard output; UsageError with ``failure`` (else git's last line of stderr) when it fails."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, input=data, capture_output=True, check=False,
                              stdin=None if data is not None else subprocess.DEVNULL)
    except FileNotFoundError:
        raise UsageError("machinedesc diff: BOARD@REVISION needs git, which is not installed") from None
    if done.returncode:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(printable(f"machinedesc diff: {failure or 'git ' + args[0] + ' failed'}"
                                   + (f" ({message[-1]})" if message else "")))
    return done.stdout


def _existing_dir(path: Path) -> Path:
    """The nearest directory of ``path`` that exists (the file may exist only at the revision)."""
    cur = Path(os.path.abspath(path)).parent
    while not cur.is_dir():
        cur = cur.parent
    return cur


def _repo_path(path: Path, top: Path) -> str:
    """``path`` relative to the repository's top, with '/' separators."""
    here = _existing_dir(path)
    rest = Path(os.path.abspath(path)).relative_to(Path(os.path.abspath(here)))
    full = Path(os.path.realpath(here)) / rest
    try:
        return full.relative_to(Path(os.path.realpath(top))).as_posix()
    except ValueError:
        raise UsageError(printable(f"machinedesc diff: {path} is outside the git repository {top}")) from None


@contextmanager
def checkout(spec: str, catalog: Path | None) -> Iterator[Side]:
    """The side ``spec`` names: a board file as it is, or its catalog copied from a git revision."""
    path, rev = split_spec(spec)
    if rev is None:
        yield Side(path, catalog, str(path))
        return
    where = _existing_dir(path)
    top = Path(_git(where, "rev-parse", "--show-toplevel",
                    failure=f"{spec}: {where} is not inside a git repository").decode().strip())
    commit = _git(where, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}",
                  failure=f"{spec}: '{rev}' is not a revision (a commit, branch or tag) of {top}").decode().strip()
    board = _repo_path(path, top)
    root = _repo_path(catalog / "x", top).rpartition("/")[0] if catalog is not None else board.rpartition("/")[0]
    listing = _git(top, "ls-tree", "-r", "-z", "-l", "--full-tree", commit, "--", root or ".")
    blobs: list[tuple[str, str]] = []
    total = 0
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, _, name = entry.decode("utf-8", "surrogateescape").partition("\t")
        mode, kind, sha, size = meta.split()
        if kind == "blob" and mode in ("100644", "100755") and name.endswith(_SUFFIXES):
            blobs.append((name, sha))
            total += int(size)
    if board not in {name for name, _ in blobs}:
        raise UsageError(printable(f"machinedesc diff: {board} does not exist at {rev} (a *.yaml file in git)"))
    if len(blobs) > MAX_FILES:
        raise UsageError(f"machinedesc diff: the catalog holds more than {MAX_FILES:,} YAML files at {rev}; "
                         "name a smaller one with --catalog")
    if total > MAX_BYTES:
        raise UsageError(f"machinedesc diff: the catalog's YAML files hold more than {MAX_BYTES >> 20} MiB at "
                         f"{rev}; name a smaller one with --catalog")
    with tempfile.TemporaryDirectory(prefix="machinedesc-diff-") as tmp:
        _write_blobs(top, Path(tmp), blobs)
        label = f"{rev}:{board}"
        yield Side(Path(tmp) / board, Path(tmp) / root if root else Path(tmp), label, tmp, rev)


def _write_blobs(top: Path, tmp: Path, blobs: list[tuple[str, str]]) -> None:
    """Write each blob (``git cat-file --batch``) at its path under ``tmp``."""
    out = _git(top, "cat-file", "--batch", data="".join(f"{sha}\n" for _, sha in blobs).encode())
    pos = 0
    for name, sha in blobs:
        head_end = out.index(b"\n", pos)
        got_sha, kind, size_text = out[pos:head_end].decode().split()
        size = int(size_text)
        if got_sha != sha or kind != "blob":
            raise UsageError(f"machinedesc diff: git cat-file gave {kind} {got_sha} for {sha}")
        target = tmp / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(out[head_end + 1:head_end + 1 + size])
        pos = head_end + 1 + size + 1


