"""The per-binary cache of type databases: ``$MACHINEDESC_CACHE/typedb/`` (``storage.cache_dir``).

``HASH-fFORMAT.json`` holds the database of a binary whose content has the
SHA-256 ``HASH`` (``-static`` for one made with ``--no-probe``);
``stat-KEY`` names that hash for a binary path, size and mtime, so that
``validate`` finds a binary's database without hashing 30 MB (~1 ms).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable
from pathlib import Path

from ..storage import cache_dir, write_file
from .typedb import FORMAT, TypeDatabase, TypeDatabaseError


def cache_entry(digest: str, probe: bool = True) -> str:
    """The cache file name (under ``storage.cache_dir("typedb")``) of a binary with content hash ``digest``."""
    return f"{digest[:32]}-f{FORMAT}{'' if probe else '-static'}.json"


def _stat_entry(binary: Path) -> str | None:
    """The name of the small file that maps ``binary``'s path, size and mtime to its content hash."""
    try:
        st = binary.stat()
    except OSError:
        return None
    key = hashlib.sha256(f"{binary.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()
    return f"stat-{key[:32]}"


def _known_digest(binary: Path) -> str | None:
    """``binary``'s content hash as recorded when it was introspected (no hashing: ~1 ms)."""
    entry = _stat_entry(binary)
    directory = cache_dir("typedb")
    if entry is None or directory is None:
        return None
    try:
        digest = (directory / entry).read_text().strip()
    except OSError:
        return None
    return digest if re.fullmatch(r"[0-9a-f]{64}", digest) else None


def cached_database(binary: Path, probe: bool = True) -> TypeDatabase | None:
    """The cached database of ``binary`` when it was introspected before (and has not changed), else None.

    Starts no QEMU and hashes nothing: a file keyed by the binary's path,
    size and mtime names its content hash.  For ``validate``/``plan``.
    """
    digest = _known_digest(binary)
    directory = cache_dir("typedb")
    if digest is None or directory is None:
        return None
    try:
        return TypeDatabase.loads((directory / cache_entry(digest, probe)).read_bytes())
    except (OSError, TypeDatabaseError):
        return None


def introspect_cached(binary: Path, *, probe: bool = True, jobs: int = 2, refresh: bool = False,
                      progress: Callable[[str], None] | None = None, system: str | None = None) -> TypeDatabase:
    """``typedb.introspect``: the cached database of ``binary``'s content, else introspect and cache it."""
    from . import introspect as run_introspect

    digest = _known_digest(binary) or run_introspect.file_sha256(binary)
    name = cache_entry(digest, probe)
    directory = cache_dir("typedb")
    if directory is not None and not refresh:
        with contextlib.suppress(OSError, TypeDatabaseError):
            cached = TypeDatabase.loads((directory / name).read_bytes(), str(directory / name))
            run_introspect.check_system(binary, cached.system, system)
            return cached
    db = run_introspect.run(binary, probe=probe, jobs=jobs, progress=progress, system=system)
    directory = cache_dir("typedb", create=True)
    stat = _stat_entry(binary)
    if directory is not None:
        with contextlib.suppress(OSError):
            write_file(directory / name, db.dumps().encode(), mode=0o600)
            if stat is not None and db.binary_sha256:
                write_file(directory / stat, db.binary_sha256.encode(), mode=0o600)
    return db
