"""How send_all groups steps into x-batch commands and reports a failure inside one (no QEMU: a
recording stand-in for the QMP session; tests/qemu/test_qmp_batch.py runs x-batch in QEMU, and the
apply tests build boards through it)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping
from typing import Any

import pytest

from machinedesc.apply.job import Job
from machinedesc.apply.progress import Reporter
from machinedesc.apply.send import send_all
from machinedesc.errors import QemuError, StepError
from machinedesc.plan.steps import Step, StepKind
from machinedesc.qemu.phases import Phase
from machinedesc.source import SourceLocation


class FakeSession:
    """Records each command; answers x-batch like QEMU (stopping at ``fail_at``, a step's id)."""

    def __init__(self, fail_at: str | None = None, die: bool = False) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail_at = fail_at
        self.die = die
        self.reporter = Reporter(io.StringIO(), verbose=False)
        self.phase_now = "accel-created"

    async def call(self, command: str, arguments: Mapping[str, Any] | None = None,
                   timeout: float | None = None) -> Any:
        self.calls.append((command, arguments))
        await asyncio.sleep(0)
        if command == "x-batch":
            if self.die:
                raise QemuError("machinedesc: lost the QMP connection during 'x-batch'")
            replies: list[dict[str, Any]] = []
            for request in (arguments or {})["commands"]:
                if request.get("arguments", {}).get("id") == self.fail_at:
                    replies.append({"error": {"class": "GenericError", "desc": "refused"}})
                    break
                replies.append({"return": {}})
            return {"replies": replies}
        if command == "x-machine-init":
            self.phase_now = "initialized"
        if command == "x-exit-preconfig":
            self.phase_now = "ready"
        return {}

    async def phase(self) -> str:
        self.calls.append(("query-machine-phase", None))
        return self.phase_now


def step(command: str, line: int, phase: Phase = Phase.INITIALIZED, **arguments: Any) -> Step:
    return Step(phase, StepKind.RAW, command, arguments, SourceLocation("b.yaml", line, 1))


def job(n: int) -> Job:
    steps = [step("x-machine-init", 1, Phase.ACCEL_CREATED)]
    steps += [step("device_add", 10 + k, driver="riscv.sifive.test", id=f"d{k}") for k in range(n)]
    steps += [step("x-exit-preconfig", 9999)]
    return Job("test", steps, "riscv64", (), ())


def sent(session: FakeSession) -> list[tuple[str, int]]:
    """(command, number of commands in it) in the order sent."""
    return [(c, len(a["commands"]) if c == "x-batch" and a else 1) for c, a in session.calls]


def test_runs_of_steps_go_as_batches_of_at_most_the_batch_size() -> None:
    session = FakeSession()
    asyncio.run(send_all(session, job(600), window=8, batch=256))  # type: ignore[arg-type]
    assert sent(session) == [("query-machine-phase", 1), ("x-machine-init", 1), ("query-machine-phase", 1),
                             ("x-batch", 256), ("x-batch", 256), ("x-batch", 88),
                             ("x-exit-preconfig", 1), ("query-machine-phase", 1)]
    commands = [r["arguments"]["id"] for c, a in session.calls if c == "x-batch" for r in a["commands"]]
    assert commands == [f"d{k}" for k in range(600)]  # every step once, in order


def test_without_batch_each_step_is_its_own_command() -> None:
    session = FakeSession()
    asyncio.run(send_all(session, job(3), window=8, batch=0))  # type: ignore[arg-type]
    assert [c for c, _ in session.calls].count("device_add") == 3
    assert "x-batch" not in [c for c, _ in session.calls]


def test_a_lone_step_is_not_batched() -> None:
    session = FakeSession()
    asyncio.run(send_all(session, job(1), window=8, batch=256))  # type: ignore[arg-type]
    assert ("device_add", 1) in sent(session) and "x-batch" not in [c for c, _ in session.calls]


def test_a_refused_step_inside_a_batch_is_reported_at_its_own_step_and_line() -> None:
    session = FakeSession(fail_at="d300")
    with pytest.raises(StepError) as err:
        asyncio.run(send_all(session, job(600), window=8, batch=256))  # type: ignore[arg-type]
    text = str(err.value)
    # Step 1 is x-machine-init, so d300 is step 302, at line 310.
    assert text.startswith("b.yaml:310:1: step 302/602 failed (phase initialized)\n"), text
    assert "device_add driver=riscv.sifive.test id=d300" in text
    assert text.rstrip().endswith("QEMU error GenericError: refused")
    assert err.value.error_class == "GenericError"
    assert err.value.sent == {"execute": "device_add", "arguments": {"driver": "riscv.sifive.test", "id": "d300"}}
    assert "x-exit-preconfig" not in [c for c, _ in session.calls]


def test_qemu_dying_inside_a_batch_names_the_range_and_how_to_find_the_step() -> None:
    session = FakeSession(die=True)
    with pytest.raises(QemuError) as err:
        asyncio.run(send_all(session, job(300), window=8, batch=256))  # type: ignore[arg-type]
    text = str(err.value)
    assert text.startswith("b.yaml:10:1: step 2/302 failed (phase initialized)\n"), text
    assert "QEMU stopped during this step or one of the 255 after it (steps 2-257 were sent as one x-batch)" in text
    assert "hint: -v sends the steps one at a time" in text


def test_commands_with_unbounded_replies_are_not_batched() -> None:
    # qom-list and qom-get answer with data (a qom-list of /machine/peripheral on a 2,000-device machine is
    # about 100 KB): 256 of them in one x-batch reply went past qemu.qmp's 10 MB line limit and apply
    # reported a QEMU that "stopped", exit 5. Only commands that answer {} are batched.
    steps = [step("x-machine-init", 1, Phase.ACCEL_CREATED)]
    steps += [step("device_add", 10 + k, driver="riscv.sifive.test", id=f"d{k}") for k in range(3)]
    steps += [step("qom-list", 20 + k, path="/machine/peripheral") for k in range(300)]
    steps += [step("qom-get", 400, path="/machine/peripheral/d0", property="realized")]
    steps += [step("qom-set", 401 + k, path=f"/machine/peripheral/d{k}", property="x", value=1) for k in range(2)]
    steps += [step("x-exit-preconfig", 9999)]
    session = FakeSession(fail_at="nothing")  # the qom-sets have no id
    asyncio.run(send_all(session, Job("test", steps, "riscv64", (), ()), window=8, batch=256))  # type: ignore[arg-type]
    assert sent(session) == [("query-machine-phase", 1), ("x-machine-init", 1), ("query-machine-phase", 1),
                             ("x-batch", 3)] + [("qom-list", 1)] * 300 + [("qom-get", 1), ("x-batch", 2),
                                                                          ("x-exit-preconfig", 1),
                                                                          ("query-machine-phase", 1)]


def test_a_failure_inside_an_x_batch_of_a_qmp_file_fails_its_step() -> None:
    # A QMP file may send x-batch itself: QEMU answers it with success and the failure inside the
    # list of replies. It used to pass as a successful step (the build went on, exit 0).
    inner = [{"execute": "device_add", "arguments": {"driver": "riscv.sifive.test", "id": k}} for k in ("a", "b")]
    steps = [step("x-machine-init", 1, Phase.ACCEL_CREATED), step("x-batch", 2, commands=inner),
             step("x-exit-preconfig", 3)]
    session = FakeSession(fail_at="b")
    with pytest.raises(StepError) as err:
        asyncio.run(send_all(session, Job("test", steps, "riscv64", (), ()), window=8, batch=256))  # type: ignore[arg-type]
    text = str(err.value)
    assert text.startswith("b.yaml:2:1: step 2/3 failed (phase initialized)\n"), text
    assert text.rstrip().endswith("command 2 of 2 in this x-batch failed: QEMU error GenericError: refused"), text
    assert err.value.error_class == "GenericError"
    assert "x-exit-preconfig" not in [c for c, _ in session.calls]


class HmpSession(FakeSession):
    """Answers a human-monitor-command inside an x-batch with HMP's error text, as QEMU does."""

    async def call(self, command: str, arguments: Mapping[str, Any] | None = None,
                   timeout: float | None = None) -> Any:
        reply = await super().call(command, arguments, timeout)
        if command == "x-batch":
            for k, request in enumerate((arguments or {})["commands"]):
                if request["execute"] == "human-monitor-command":
                    reply["replies"][k] = {"return": "Error: Device 'nosuch' not found\r\n"}
        return reply


def test_an_hmp_error_inside_an_x_batch_of_a_qmp_file_fails_its_step() -> None:
    inner = [{"execute": "device_add", "arguments": {"driver": "riscv.sifive.test", "id": "a"}},
             {"execute": "human-monitor-command", "arguments": {"command-line": "device_del nosuch"}}]
    steps = [step("x-machine-init", 1, Phase.ACCEL_CREATED), step("x-batch", 2, commands=inner),
             step("x-exit-preconfig", 3)]
    session = HmpSession()
    with pytest.raises(StepError) as err:
        asyncio.run(send_all(session, Job("test", steps, "riscv64", (), ()), window=8, batch=256))  # type: ignore[arg-type]
    text = str(err.value)
    assert text.rstrip().endswith("command 2 of 2 in this x-batch failed: HMP error: Error: Device 'nosuch' "
                                  "not found"), text
    assert "x-exit-preconfig" not in [c for c, _ in session.calls]
