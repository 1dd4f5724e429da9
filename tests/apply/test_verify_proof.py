"""Verification asks QEMU only what the build did not prove (apply/proven.py), and still finds differences."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from harness import REPO

from machinedesc import api
from machinedesc.apply.proven import proof_of
from machinedesc.plan.steps import Check

SOC = REPO / "boards" / "soc.yaml"


def test_the_steps_prove_every_check_of_a_catalog_board() -> None:
    plan = api.plan(SOC)
    proof = proof_of(plan.steps)
    assert plan.checks and all(proof.covers(c) for c in plan.checks)


def test_a_link_set_again_later_counts_with_its_last_value() -> None:
    plan = api.plan(SOC)
    wire = next(s for s in plan.steps if s.command == "qom-set" and s.arguments["property"] != "realized")
    again = dataclasses.replace(wire, arguments={**wire.arguments, "value": "/machine/elsewhere"})
    check = next(c for c in plan.links if (c.path, c.prop) == (wire.arguments["path"], wire.arguments["property"]))
    assert proof_of([wire]).covers(check)
    assert not proof_of([wire, again]).covers(check)


def test_unrealized_until_a_realize_step() -> None:
    plan = api.plan(SOC)
    cpu = next(c for c in plan.components if c.subject == "hart0")
    create = next(s for s in plan.steps if s.command == "device_add" and s.arguments["id"] == "hart0")
    assert create.arguments.get("realized") is False
    realize = next(s for s in plan.steps if s.command == "qom-set" and s.arguments["path"] == cpu.path
                   and s.arguments["property"] == "realized")
    assert not proof_of([create]).covers(cpu)
    assert proof_of([create, realize]).covers(cpu)


def test_a_component_where_qemu_has_none_is_still_found(patched_riscv64: Path) -> None:
    """The existence of each component is read from QEMU (one qom-list per parent), proven or not."""
    plan = api.plan(SOC)
    uart = next(c for c in plan.components if c.subject == "uart0")
    moved = dataclasses.replace(uart, path="/machine/peripheral/uart9")
    unproven = Check.link(uart.path, "realized", "/nowhere", uart.location)
    plan = dataclasses.replace(plan, checks=tuple(moved if c is uart else c for c in plan.checks) + (unproven,))
    with pytest.raises(api.StepError) as err:
        with api.machine(plan, qemu=patched_riscv64):
            raise AssertionError("not reached")
    text = str(err.value)
    assert "the machine QEMU built differs from the board" in text
    assert f"{uart.location}: component 'uart0': no object at /machine/peripheral/uart9" in text
    assert f"link {uart.path}.realized is True, the board says '/nowhere'" in text
