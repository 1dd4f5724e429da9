"""machinedesc.board.safety: the host-access policy's pieces, without QEMU."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from machinedesc.board import safety
from machinedesc.plan.qmpfile import load

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("golden", sorted(p.name for p in (ROOT / "tests" / "golden").glob("*.qmp")))
def test_every_plan_file_machinedesc_writes_passes_the_run_policy(golden: str) -> None:
    """A plan file round-trips through run without --allow-host-access (firmware loading included)."""
    qmp = load(ROOT / "tests" / "golden" / golden)
    argv = qmp.qemu_argv
    assert argv is not None
    assert safety.check_qemu_argv(argv[1:]) is None
    assert [c.command for c in qmp.commands if safety.command_problem(c.command, c.arguments)] == []


def test_loader_file_is_an_image_not_host_access() -> None:
    assert safety.command_problem("device_add", {"driver": "loader", "file": "/fw.elf", "cpu-num": 0}) is None
    assert safety.command_problem("device_add", {"driver": "vendor-dev", "file": "/etc/shadow"}) == (
        "property 'file' touches the host: it names a host file", ("file",))


@pytest.mark.parametrize("spec,expected", [
    ("null", []), ("a,b=c", [("", "a"), ("b", "c")]), ("file,path=a,,b", [("", "file"), ("path", "a,b")]),
    ("socket,server", [("", "socket"), ("server", "on")]),
    ("backend=file,path=x", [("backend", "file"), ("path", "x")]),
])
def test_split_options_reads_qemu_option_syntax(spec: str, expected: list[tuple[str, str]]) -> None:
    assert safety.split_options(spec) == (expected or [("", spec)])


@pytest.mark.parametrize("spec,with_id,why", [
    ("stdio", False, None),
    ("ringbuf,size=4096", False, None),
    ("stdio,id=x", False, "a chardev backend may not set 'id'"),
    ("stdio,id=serial0", True, None),
    ("null,id=machinedesc-qmp", True, "chardev id 'machinedesc-qmp' is reserved"),
    ("backend=file,path=/x", False, "chardev backend 'file' touches the host"),
    ("null,logfile=/x", False, "chardev option 'logfile' touches the host"),
    ("null,,path=x", False, "chardev backend '' touches the host"),  # ',,' is an escaped comma: no backend
    ("null\x1b", False, "control character in chardev backend 'null\\x1b'"),
])
def test_chardev_problem(spec: str, with_id: bool, why: str | None) -> None:
    found = safety.chardev_problem(spec, False, with_id=with_id)
    if why is None:
        assert found is None
    else:
        assert found is not None and found[0].startswith(why), found


def test_messages_escape_control_characters() -> None:
    found = safety.command_problem("chardev-add", {"id": "c", "backend": {"type": "fi\x1b[2Jle"}})
    assert found is not None and "\x1b" not in found[0] and "fi\\x1b[2Jle" in found[0]
    why = safety.check_qemu_argv(shlex.split("-M none -D\x1b[2J x"))
    assert why is not None and "\x1b" not in why


def test_transaction_and_qom_set_are_looked_into() -> None:
    assert safety.command_problem("transaction", {"actions": [{"type": "blockdev-snapshot-sync", "data": {}}]})
    assert safety.command_problem("transaction", {"actions": [{"type": "block-dirty-bitmap-add", "data": {}}]}) is None
    assert safety.command_problem("qom-set", {"path": "/machine", "property": "dumpdtb", "value": "x"})
    assert safety.command_problem("qom-set", {"path": "/machine", "property": "dt-compatible", "value": "x"}) is None
    assert safety.command_problem("netdev_add", {"type": "hubport", "id": "h", "hubid": 0}) is None
    assert safety.command_problem("chardev-add", {"id": "c", "backend": {"type": "ringbuf", "data": {}}}) is None


def test_commands_inside_x_batch_are_looked_into() -> None:
    # x-batch (patch 44) runs a list of requests: each is held to the policy, nested batches too.
    pmemsave = {"execute": "pmemsave", "arguments": {"val": 0, "size": 16, "filename": "/tmp/x"}}
    found = safety.command_problem("x-batch", {"commands": [{"execute": "qom-list", "arguments": {"path": "/"}},
                                                            pmemsave]})
    assert found == ("QMP command 'pmemsave' touches the host: it writes guest memory to a host file",
                     ("commands", 1, "execute"))
    found = safety.command_problem("x-batch", {"commands": [{"execute": "x-batch", "arguments": {"commands": [
        {"execute": "chardev-add", "arguments": {"id": "c", "backend": {"type": "file", "data": {}}}}]}}]})
    assert found is not None and found[1] == ("commands", 0, "arguments", "commands", 0, "arguments", "backend",
                                              "type")
    assert safety.command_problem("x-batch", {"commands": [{"exec-oob": "migrate", "arguments": {"uri": "exec:x"}}]})
    ok = {"commands": [{"execute": "device_add", "arguments": {"driver": "serial-mm", "id": "u"}}, 7, {"execute": 1}]}
    assert safety.command_problem("x-batch", ok) is None
    assert safety.command_problem("x-batch", {"commands": "junk"}) is None
