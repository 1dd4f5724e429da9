"""dtlib's parser, made safe for trees nobody here wrote (``dtread`` parses with it).

``DTParser`` is dtlib's ``DT`` (the Zephyr project's, PyPI ``devicetree``
0.0.2, pinned in requirements/lock.txt) with three changes, each for a tree
that made the import hang or take hours:

* ``/include/`` and ``/incbin/`` read only regular files of at most
  SIZE_LIMIT bytes (never stdin, a FIFO or a device: /dev/zero would never
  end), a file that includes itself is an error (dtlib compares the name as
  written with the including file's path, so "self.dts" in /dir/self.dts
  was read forever), and a tree's includes have one budget of MAX_FILES
  files and SIZE_LIMIT bytes (two includes a level, 30 deep, were 2**30).
* Property values are built in linear time: dtlib appends each cell, byte
  and string to an immutable ``bytes`` and joins each reference into one
  again, so a property of N values cost O(N**2) (a ``reg`` of 320,000
  cells took 16 s, one of 16 MiB hours). Here a value under construction is
  a ``bytearray`` (dtlib's first call for each value,
  ``_parse_value_labels``, makes it one; ``bytes`` again when the
  assignment ends), and ``_fixup_props`` is dtlib's with a ``bytearray`` for
  its result.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from devicetree import dtlib

#: The largest tree read, and the most all its /include/s and /incbin/s read together (a DTB QEMU
#: dumps is 1 MiB with its padding).
SIZE_LIMIT = 16 * 1024 * 1024
#: The most files one tree /include/s and /incbin/s (Linux's deepest .dts includes a few dozen).
MAX_FILES = 256


class DTParser(dtlib.DT):  # type: ignore[misc]  # dtlib has no type information
    """dtlib's DT with safe includes and linear-time property values (see the module docstring)."""

    _files = 0  # /include/d and /incbin/d files read, and their bytes (instance counters from the first)
    _bytes = 0

    def _parse_value_labels(self, prop: Any) -> None:
        if type(prop.value) is bytes:
            prop.value = bytearray(prop.value)
        super()._parse_value_labels(prop)

    def _parse_assignment(self, prop: Any) -> None:
        try:
            super()._parse_assignment(prop)
        finally:
            prop.value = bytes(prop.value)

    def _fixup_props(self) -> None:
        # dtlib.DT._fixup_props (SPDX-License-Identifier: BSD-3-Clause, Nordic Semiconductor ASA),
        # with a bytearray for ``res``.
        for node in self.node_iter():
            for prop in tuple(node.props.values()):
                prev_pos = 0
                res = bytearray()
                for marker in prop._markers:
                    pos, marker_type, ref = marker
                    res += prop.value[prev_pos:pos]
                    marker[0] = len(res)
                    if marker_type is dtlib._MarkerType.LABEL:
                        dtlib._append_no_dup(prop._label_offset_lst, (ref, len(res)))
                    elif marker_type in (dtlib._MarkerType.PATH, dtlib._MarkerType.PHANDLE):
                        try:
                            ref_node = self._ref2node(ref)
                        except dtlib.DTError as e:
                            dtlib._err(f"{prop.node.path}: {e}")
                        ref_node._is_referenced = True
                        if marker_type is dtlib._MarkerType.PATH:
                            res += ref_node.path.encode("utf-8") + b"\0"
                        else:
                            res += self._node_phandle(ref_node)
                            pos += 4
                    prev_pos = pos
                prop.value = bytes(res + prop.value[prev_pos:])

    def _open(self, filename: str, mode: str = "r", **kwargs: Any) -> Any:
        target = os.path.join(os.path.dirname(self.filename), filename)
        try:
            info = os.stat(target)
        except OSError as err:
            self._parse_error(f"cannot include '{filename}': {err.strerror}")
        if filename == "-" or not stat.S_ISREG(info.st_mode) or info.st_size > SIZE_LIMIT:
            self._parse_error(f"'{filename}' is not a regular file of at most {SIZE_LIMIT} bytes: not included")
        # dtlib compares the name as written with the including files' paths: a file that includes
        # itself ("self.dts" in /dir/self.dts) was read forever. Compared here by real path.
        real = os.path.realpath(target)
        if "b" not in mode and any(os.path.realpath(f[0]) == real for f in self._filestack):
            self._parse_error(f"'{filename}' includes itself (through the files including it): not included")
        # Two includes a level, 30 levels deep, were 2**30 files: a budget of files and bytes for the tree.
        self._files += 1
        self._bytes += info.st_size
        if self._files > MAX_FILES or self._bytes > SIZE_LIMIT:
            self._parse_error(f"'{filename}': the tree's /include/s and /incbin/s are over {MAX_FILES} files or "
                              f"{SIZE_LIMIT} bytes together: not included")
        return open(target, mode, **kwargs)
