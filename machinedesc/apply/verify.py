"""After the last step: check every component and link against QEMU's QOM tree (read-only, pipelined).

What the build's own steps proved (``proven``) is not asked again: each
component's place in the tree is checked with one ``qom-list`` per
containing object, and only the realizes and links that no step
established are read one by one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from qemu.qmp import ExecuteError

from ..errors import StepError
from ..plan.steps import Check, Step
from ..qemu.session import Session
from .progress import Reporter
from .proven import proof_of
from .send import PIPELINE_WINDOW


async def verify(session: Session[Reporter], checks: Sequence[Check], steps: Sequence[Step] = ()) -> None:
    """Check every component and link against QEMU's QOM tree; StepError lists all differences.

    ``steps``: the steps that built the machine (all succeeded); what they
    proved is not asked again (see ``proven``).
    """
    limit = asyncio.Semaphore(PIPELINE_WINDOW)
    proof = proof_of(steps)
    listed = await _children(session, {c.path.rsplit("/", 1)[0] for c in checks
                                       if c.prop is None and proof.covers(c) and "/" in c.path})

    async def one(check: Check) -> str | None:
        # Read-only queries: pipelined like the steps, in a QEMU we started or not.
        async with limit:
            if check.prop is None:
                parent, _, name = check.path.rpartition("/")
                if proof.covers(check) and parent in listed:
                    problem = None if name in listed[parent] else f"{check.what}: no object at {check.path}"
                else:
                    problem = await _check_component(session, check)
            elif proof.covers(check):
                problem = None
            else:
                problem = await _check_link(session, check)
        where = f"{check.location}: " if check.location else ""
        return where + problem if problem else None

    tasks = [asyncio.ensure_future(one(c)) for c in checks]
    try:
        results = await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    problems = [p for p in results if p]
    if problems:
        raise StepError("machinedesc: the machine QEMU built differs from the board:\n"
                        + "\n".join("  " + p for p in problems))


async def _children(session: Session[Reporter], parents: set[str]) -> dict[str, set[str]]:
    """The names of the child objects of each of ``parents`` (one qom-list each); a failing one is left out."""
    found: dict[str, set[str]] = {}
    for parent in sorted(parents):
        try:
            entries = await session.call("qom-list", {"path": parent or "/"})
        except ExecuteError:
            continue
        found[parent] = {e["name"] for e in entries
                         if isinstance(e, dict) and str(e.get("type", "")).startswith("child<")}
    return found


async def _check_component(session: Session[Reporter], check: Check) -> str | None:
    try:
        realized = await session.call("qom-get", {"path": check.path, "property": "realized"})
    except ExecuteError:
        # Not a device (e.g. a backend object) or not there at all: ask whether it exists.
        try:
            await session.call("qom-list", {"path": check.path})
        except ExecuteError:
            return f"{check.what}: no object at {check.path}"
        return None
    if realized is not True:
        return f"{check.what}: {check.path} exists but is not realized"
    return None


async def _check_link(session: Session[Reporter], check: Check) -> str | None:
    assert check.prop is not None and check.target is not None
    try:
        value = await session.call("qom-get", {"path": check.path, "property": check.prop})
    except ExecuteError as exc:
        return f"{check.what}: cannot read {check.path} property {check.prop}: {exc.error.error.desc}"
    target = check.target
    ok = value == target or (not target.startswith("/") and isinstance(value, str)
                             and value.endswith("/" + target))
    if not ok:
        return f"{check.what} is {value!r}, the board says {target!r}"
    return None
