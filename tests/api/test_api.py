"""machinedesc.api: boards and plans as objects; a machine in the patched QEMU held by a with block."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import pexpect
import pytest

from machinedesc import api
from machinedesc.live.console import Console, ConsoleSink

REPO = Path(__file__).resolve().parents[2]
SOC = REPO / "boards" / "soc.yaml"
RISCV_LINES = ["hello from hart 0", "hello from hart 1", "hello from timer interrupt"]


def gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


# --- boards and plans, no QEMU ----------------------------------------------

def test_every_public_name_exists_and_is_documented() -> None:
    public = {n for n in vars(api) if not n.startswith("_")}
    # Only __all__ plus the modules and typing helpers the module itself uses.
    assert set(api.__all__) <= public
    for name in api.__all__:
        assert getattr(api, name).__doc__, name


def test_load_board_with_sets() -> None:
    board = api.load_board(SOC, {"harts": 4})
    assert board.name == "soc"
    assert board.params["harts"] == 4
    assert [c.id for c in board.components if c.id.startswith("hart")] == [f"hart{i}" for i in range(4)]


def test_check_returns_problems_as_objects(tmp_path: Path) -> None:
    assert api.check(SOC) == []
    problems = api.check(SOC, {"hartz": "4"})
    assert [p.path for p in problems] == ["--set hartz"]
    assert problems[0].hint and "harts" in problems[0].hint
    bad = tmp_path / "bad.yaml"
    bad.write_text(SOC.read_text().replace("parent: cluster0", "parent: cluster9"))
    problems = api.check(bad)
    assert problems and all(isinstance(p, api.Problem) for p in problems)
    assert problems[0].location is not None and problems[0].location.line > 1
    with pytest.raises(api.BoardError) as err:
        api.plan(bad)
    assert err.value.problems == problems


def test_plan_is_the_cli_plan() -> None:
    plan = api.plan(SOC, {"harts": 2}, firmware=[SOC])
    assert isinstance(plan, api.Plan) and plan.system == "riscv64"
    assert plan.steps[0].command == "x-machine-init" or any(s.command == "x-machine-init" for s in plan.steps)
    assert any(s.command == "device_add" and s.arguments.get("driver") == "loader" for s in plan.steps)


# --- a machine ---------------------------------------------------------------

def test_machine_boots_console_qmp_and_exit_status(firmware: Path, patched_riscv64: Path,
                                                   private_tmp: Path) -> None:
    with api.machine(SOC, firmware=[firmware / "riscv64-hello.elf"], qemu=patched_riscv64) as m:
        pid = m._async._started().pid
        assert m.console.expect(["hello from hart 0", "never"], timeout=10) == 0
        assert m.console.expect(r"hello from (\w+) 1", timeout=10) == 0
        assert m.console.match is not None and m.console.match.group(1) == "hart"
        assert m.wait(timeout=10) == 0  # the firmware powers off through the SiFive test device
        assert [ln for ln in m.console.text.splitlines() if ln] == RISCV_LINES
        assert m.exit_status == 0
        assert m.workdir.is_dir()
    assert gone(pid)
    assert list(private_tmp.iterdir()) == []


def test_an_exception_in_the_body_leaves_nothing(firmware: Path, patched_riscv64: Path, private_tmp: Path) -> None:
    with pytest.raises(KeyError):
        with api.machine(SOC, firmware=[firmware / "riscv64-hello-nopoweroff.elf"], qemu=patched_riscv64) as m:
            pid = m._async._started().pid
            m.console.expect("hello from timer interrupt", timeout=10)
            raise KeyError("boom")
    assert gone(pid)
    assert list(private_tmp.iterdir()) == []


def test_expect_failure_shows_console_and_stderr_tail(firmware: Path, patched_riscv64: Path,
                                                      private_tmp: Path) -> None:
    with api.machine(SOC, firmware=[firmware / "riscv64-hello-nopoweroff.elf"], qemu=patched_riscv64) as m:
        with pytest.raises(AssertionError) as err:
            m.console.expect("login:", timeout=0.5)
        assert isinstance(err.value, api.ConsoleExpectError)
        assert "expected 'login:': not seen within 0.5 s" in str(err.value)
        assert "console (last lines):\n    hello from hart 0" in str(err.value)
        # pexpect's own TIMEOUT as a pattern: no error, its index.
        assert m.console.expect(["login:", pexpect.TIMEOUT], timeout=0.2) == 1
        os.kill(m._async._started().pid, signal.SIGKILL)
        with pytest.raises(api.ConsoleExpectError, match="QEMU exited before it appeared"):
            m.console.expect("login:", timeout=10)
        assert m.exit_status == -signal.SIGKILL
    assert list(private_tmp.iterdir()) == []


def test_a_failing_step_raises_and_leaves_nothing(patched_riscv64: Path, private_tmp: Path) -> None:
    with pytest.raises(api.StepError) as err:
        with api.machine(SOC, {"timebase_hz": 0}, qemu=patched_riscv64):
            raise AssertionError("not reached")
    # The timer comes from a fragment (boards/lib/): the step names its line there, and the use in soc.yaml.
    assert re.search(r"\.yaml:\d+:3: step \d+/\d+ failed", str(err.value)), err.value
    assert re.search(r"included from .*soc\.yaml:\d+", str(err.value)), err.value
    assert err.value.exit_code == 4
    assert list(private_tmp.iterdir()) == []


def test_paused_machine_and_qmp_errors(patched_riscv64: Path, private_tmp: Path) -> None:
    with api.machine(SOC, qemu=patched_riscv64, paused=True) as m:
        assert m.qmp("query-status")["status"] == "prelaunch"
        assert m.qmp("qom-get", path="hart1", property="mhartid") == 1
        with pytest.raises(api.StepError) as err:
            m.qmp("qom-get", path="/nowhere", property="x")
        assert err.value.error_class == "DeviceNotFound"
        m.qmp("cont")
        assert m.qmp("query-status")["running"] is True
        with pytest.raises(api.QemuTimeoutError, match="did not power off"):
            m.wait(timeout=0.2)


def test_async_machine(firmware: Path, patched_riscv64: Path, private_tmp: Path) -> None:
    async def main() -> int:
        async with api.machine_async(SOC, firmware=[firmware / "riscv64-hello.elf"], qemu=patched_riscv64,
                                     paused=True) as m:
            # Paused: the firmware powers off within milliseconds of cont, QMP would race with it.
            assert (await m.qmp("query-status"))["running"] is False
            await m.qmp("cont")
            await asyncio.to_thread(m.console.expect, "hello from timer interrupt", 10)
            return await m.wait(10)
    assert asyncio.run(main()) == 0
    assert list(private_tmp.iterdir()) == []


def test_a_plan_object_builds_too_and_refuses_sets(firmware: Path, patched_riscv64: Path) -> None:
    plan = api.plan(SOC, firmware=[firmware / "riscv64-hello.elf"])
    with pytest.raises(api.UsageError):
        api.machine(plan, {"harts": 4})
    with api.machine(plan, qemu=patched_riscv64) as m:
        m.console.expect_exact("hello from hart 1", timeout=10)
        assert m.console.before.strip() == "hello from hart 0"


def test_console_write_goes_to_the_guest_input() -> None:
    sent: list[bytes] = []
    sink = ConsoleSink()
    console = Console(sink, lambda: True, sent.append, lambda: "")
    console.write("ls\n")
    console.sendline("é")
    assert sent == [b"ls\n", "é\n".encode()]
    sink.write(b"$ ")
    assert console.expect(r"\$ ", timeout=1) == 0


def test_wrong_argument_shapes_are_usage_errors_before_any_qemu(tmp_path: Path) -> None:
    """From the adversarial pass: a string where a list is meant used to become one step per character."""
    from machinedesc import api
    from machinedesc.errors import UsageError

    board = Path(__file__).resolve().parents[2] / "boards" / "soc.yaml"
    elf = tmp_path / "fw.bin"
    elf.write_bytes(b"raw image")  # not loaded: the plan only names it (QEMU's loader reads it)
    one = api.plan(board, firmware=str(elf), cache=False)
    assert [s.arguments.get("file") for s in one.steps if s.arguments.get("driver") == "loader"] == [str(elf)]
    with pytest.raises(UsageError, match="cannot read"):
        api.plan(board, firmware=[tmp_path / "missing.elf"], cache=False)
    with pytest.raises(UsageError, match="boot has no option 'nosuch'"):
        api.plan(board, boot={"nosuch": "x"}, cache=False)
    with pytest.raises(UsageError, match="extra_args takes a list"):
        api.machine(board, extra_args="-m 64K")


@pytest.mark.parametrize(("sets", "message"), [
    ("harts=4", "sets takes a mapping of parameter names to values, e.g. {'harts': 4}, got str 'harts=4'"),
    (["harts=4"], "sets takes a mapping of parameter names to values, e.g. {'harts': 4}, got list"),
    ({4: 1}, "sets: parameter names are strings, got 4"),
    ({"harts": 4.5}, "sets harts: a value is a string, an integer or a boolean, got float 4.5"),
    ({"harts": None}, "sets harts: a value is a string, an integer or a boolean, got NoneType None"),
])
def test_sets_of_a_wrong_shape_are_usage_errors(sets: object, message: str) -> None:
    """From the adversarial pass: these gave AttributeError/TypeError, or '--set harts: 'None' is not ...'."""
    from machinedesc import api
    from machinedesc.errors import UsageError

    board = Path(__file__).resolve().parents[2] / "boards" / "riscv-virt.yaml"
    with pytest.raises(UsageError) as err:
        api.load_board(board, sets)  # type: ignore[arg-type]
    assert str(err.value) == f"machinedesc: {message}" or str(err.value).startswith(f"machinedesc: {message}")
    assert api.load_board(board, {"harts": 4, "ram_size": "256 MiB"}).params["harts"] == 4
