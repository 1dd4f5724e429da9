"""QEMU binary lookup order (--qemu, env, patched build, PATH) and the remembered patched prefix."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from machinedesc.qemu import build as qemu_build
from machinedesc.errors import QemuNotFoundError
from machinedesc.qemu.binary import find_binary


def fake_qemu(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def build_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """A fake qemu/build.sh + patches; returns the list of prefixes build.sh was asked for."""
    script = tmp_path / "repo" / "qemu" / "build.sh"
    script.parent.mkdir(parents=True)
    script.write_text("# fake\n")
    (script.parent / "patches").mkdir()
    (script.parent / "patches" / "0001-a.patch").write_text("a\n")
    monkeypatch.setattr(qemu_build, "BUILD_SCRIPT", script)
    calls: list[Path] = []
    prefix = tmp_path / "cache" / "10.0.2-abc"

    def fake_prefix() -> Path:
        calls.append(prefix)
        return prefix
    monkeypatch.setattr(qemu_build, "_ask_build_script", fake_prefix)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    for var in ("MACHINEDESC_QEMU", "MACHINEDESC_QEMU_RISCV64"):
        monkeypatch.delenv(var, raising=False)
    return calls


def test_patched_prefix_is_remembered_until_a_patch_changes(build_tree: list[Path], tmp_path: Path) -> None:
    with pytest.raises(QemuNotFoundError) as err:
        find_binary("riscv64")
    assert "machinedesc qemu build" in str(err.value)
    assert len(build_tree) == 1
    binary = fake_qemu(build_tree[0] / "bin" / "qemu-system-riscv64")
    assert find_binary("riscv64") == binary  # the remembered prefix, now built
    assert len(build_tree) == 1
    patch = qemu_build.BUILD_SCRIPT.parent / "patches" / "0001-a.patch"
    patch.write_text("a changed patch\n")
    os.utime(patch, ns=(1, 1))
    assert find_binary("riscv64") == binary
    assert len(build_tree) == 2  # asked build.sh again


def test_prefix_memos_are_bounded(build_tree: list[Path], tmp_path: Path) -> None:
    # A memo per key (the patches' sizes and mtimes): every edit of a patch adds one; the cache
    # keeps the KEEP_PREFIX_MEMOS newest, the one just written among them.
    patch = qemu_build.BUILD_SCRIPT.parent / "patches" / "0001-a.patch"
    for n in range(qemu_build.KEEP_PREFIX_MEMOS + 5):
        os.utime(patch, ns=(n + 1, n + 1))
        qemu_build.prefix()
    memos = sorted((tmp_path / "xdg" / "machinedesc").glob("patched-prefix-*.json"))
    assert len(memos) == qemu_build.KEEP_PREFIX_MEMOS
    assert len(build_tree) == qemu_build.KEEP_PREFIX_MEMOS + 5
    qemu_build.prefix()
    assert len(build_tree) == qemu_build.KEEP_PREFIX_MEMOS + 5  # the newest key is still remembered


def test_lookup_order(build_tree: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_path = fake_qemu(tmp_path / "empty-path" / "qemu-system-riscv64")
    assert find_binary("riscv64") == on_path  # nothing else: PATH
    patched = fake_qemu(build_tree[0] / "bin" / "qemu-system-riscv64")
    assert find_binary("riscv64") == patched  # the patched build beats PATH
    generic = fake_qemu(tmp_path / "generic" / "qemu")
    monkeypatch.setenv("MACHINEDESC_QEMU", str(generic))
    assert find_binary("riscv64") == generic
    specific = fake_qemu(tmp_path / "specific" / "qemu")
    monkeypatch.setenv("MACHINEDESC_QEMU_RISCV64", str(specific))
    assert find_binary("riscv64") == specific  # per-system beats generic
    explicit = fake_qemu(tmp_path / "explicit" / "qemu")
    assert find_binary("riscv64", str(explicit)) == explicit  # --qemu beats all
    with pytest.raises(QemuNotFoundError, match="--qemu: .*/nope: no such executable"):
        find_binary("riscv64", str(tmp_path / "nope"))
