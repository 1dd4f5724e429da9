"""--serial's one parser (qemu/chardevs.py): what the command line accepts is what the QEMU arguments get."""

from __future__ import annotations

from pathlib import Path

import pytest

from machinedesc.qemu.chardevs import SUN_PATH_MAX, parse_serial, rewrite_chardevs


@pytest.mark.parametrize(("spec", "parsed"), [
    ("stdio", ("stdio", "")), ("none", ("none", "")),
    ("file:out.txt", ("file", "out.txt")), ("socket:/tmp/c.sock", ("socket", "/tmp/c.sock")),
])
def test_user_specs(spec: str, parsed: tuple[str, str]) -> None:
    assert parse_serial(spec) == parsed


@pytest.mark.parametrize("spec", ["", "tty", "file:", "socket:", "stdio:x", "none:", "log", "relay"])
def test_malformed_or_internal_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="use stdio, file:PATH, socket:PATH or none"):
        parse_serial(spec)


def test_internal_kinds_only_inside() -> None:
    assert parse_serial("log", internal=True) == ("log", "")
    assert parse_serial("relay", internal=True) == ("relay", "")


def test_a_socket_path_must_fit_sun_path() -> None:
    parse_serial("socket:/" + "s" * (SUN_PATH_MAX - 2))
    with pytest.raises(ValueError, match=f"shorter than {SUN_PATH_MAX} bytes"):
        parse_serial("socket:/" + "s" * (SUN_PATH_MAX - 1))


def test_rewrite_points_the_console_chardevs_at_the_spec(tmp_path: Path) -> None:
    args = ["-chardev", "stdio,id=serial0", "-chardev", "null,id=other", "-S"]
    out = rewrite_chardevs(args, ["serial0"], "file:o,ut.txt", tmp_path)
    assert out[1] == f"file,id=serial0,path={Path('o,ut.txt').absolute()}".replace("o,ut", "o,,ut")
    assert out[2:] == ["-chardev", "null,id=other", "-S"]
    assert rewrite_chardevs(args, ["serial0"], "stdio", tmp_path) == args  # stdio is relayed: unchanged
    with pytest.raises(ValueError):
        rewrite_chardevs(args, ["serial0"], "tty", tmp_path)
